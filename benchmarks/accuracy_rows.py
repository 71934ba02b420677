"""The rows of the accuracy table (``accuracy.py``): which model, which run, which stage.

Each row is one trained model. Rows of one staged run share it: Real-to-Binary's
four progressive stages are four rows of one ``train real2bin`` run, as
larq-zoo reports its per-stage figures; its strong baseline is a run of its
own (two steps, the row being the fully binary one).

``ranked`` rows are the methods the aims compare (each against the
XNOR-style baseline, the best binary net against the real twin); rows within
``accuracy.py --seed-margin`` points of another ranked row are trained again
with a second seed. The stages before Real-to-Binary's last are reported, not
ranked (they are its teachers, not methods).
"""

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    model: str
    stage: str = ""  # the stage directory inside the run ("" for the run itself)
    init_row: Optional[str] = None  # the row whose run initialises this row's run
    recipe: Optional[str] = None  # a recipe other than the model's (zoo/recipes.py)
    ranked: bool = True
    binary: bool = True  # 1-bit weights and activations: exported bitpacked

    @property
    def run_key(self) -> str:
        """Rows with the same key come from one training run."""
        return self.model if self.recipe is None else f"{self.model}-{self.recipe}"


R2B = "Real-to-Binary"
ROWS: list[Row] = [
    Row("real-valued twin", "resnet18", binary=False),
    Row("XNOR-style", "xnor_resnet18"),
    Row("Bi-Real", "bireal18", init_row="real-valued twin"),
    Row("SiMaN", "siman_resnet18", recipe="siman_short"),
    Row(f"{R2B} strong baseline", "real2bin_baseline"),
    Row(f"{R2B} stage 0 (real teacher)", "real2bin", "stage0-real", recipe="real2bin_short",
        ranked=False, binary=False),
    Row(f"{R2B} stage 1 (tanh)", "real2bin", "stage1-soft", recipe="real2bin_short",
        ranked=False, binary=False),
    Row(f"{R2B} stage 2 (binary activations)", "real2bin", "stage2-binary-activations",
        recipe="real2bin_short", ranked=False, binary=False),
    Row(R2B, "real2bin", "stage3-binary", recipe="real2bin_short"),
]
BY_NAME: dict[str, Row] = {row.name: row for row in ROWS}

#: The aims of issue 17, each (higher row, lower row); "best binary" is checked apart.
ORDER_AIMS = [(R2B, f"{R2B} strong baseline"), (f"{R2B} strong baseline", "XNOR-style"),
              ("Bi-Real", "XNOR-style"), ("SiMaN", "XNOR-style")]
BEST_BINARY_GAP_AIM = 2.0  # points below the real twin
FLATBUFFER_AIM = 0.1  # points between a flatbuffer's top-1 and its Keras model's


def close_rows(top1: dict[str, float], margin_points: float) -> list[str]:
    """The ranked rows whose top-1 lies within ``margin_points`` of another
    ranked row's (fractions in, row names out, in table order)."""
    ranked = [name for name in top1 if BY_NAME[name].ranked]
    return [a for a in ranked
            if any(b != a and abs(top1[a] - top1[b]) * 100 <= margin_points for b in ranked)]
