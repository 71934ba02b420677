"""The export's parity rule on trained runs: a faithful flatbuffer within the
model's own rounding-noise floor, wrong ones (one binary layer's folded scale
wrong, one binary layer dropped) beyond it.

For each run: convert with LCE, run the flatbuffer and the Keras model on the
first ``--images`` real test images, count the images whose top-1 changed and
whose outputs moved, for the flatbuffer, for ``rounding_noise.DRAWS`` jittered
copies of the Keras model and for corrupted copies of the flatbuffer (the
folded output multiplier of one ``LceBconv2d`` scaled by 0.5, 0.9 or 2, or
multiplier and bias set to 0: the binary layer dropped from its residual
block), and judge each with ``bnnzoo.export.rounding_noise.judge``.

    python benchmarks/parity_noise_floor.py RUN [RUN ...] --images 1024

Writes ``benchmarks/results/parity_noise_floor.json`` (atomically).
"""

import argparse
import datetime
from pathlib import Path

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow loads)
from bnnzoo import atomic, datasets, export, runs
from bnnzoo.export import flatbuffer, rounding_noise
from bnnzoo.export.pipeline import first_test_images
from machine import machine  # benchmarks/machine.py, beside this script

OUTPUT = Path(__file__).parent / "results" / "parity_noise_floor.json"
CORRUPTIONS = {"scale x0.5": (0.5, 1.0), "scale x0.9": (0.9, 1.0), "scale x2": (2.0, 1.0),
               "dropped": (0.0, 0.0)}


def measure(run: Path, count: int) -> dict:
    source = runs.load_source(run)
    model = source.model
    images = first_test_images(datasets.load(source.dataset, source.data_dir),
                               model.input_shape[1:], count)
    buf = export.export_flatbuffer(model, "arm64")
    reference = model.predict(images, batch_size=64, verbose=0)
    draws = rounding_noise.jitter_counts(model, images, reference)

    def judged(flatbuffer):
        outputs = export.predict_flatbuffer(flatbuffer, images)
        return rounding_noise.judge(rounding_noise.counts(outputs, reference), draws, count)

    layers = export.operator_histogram(buf)["LceBconv2d"]
    config = runs.read_config(run)
    trained = {key: config.get(key) for key in ("dataset", "input_shape", "epochs",
                                                "steps_per_epoch", "batch_size", "learning_rate")}
    row = {"model": source.name, "trained": trained, "images": count,
           "faithful_flatbuffer": judged(buf),
           "corrupted": {}}
    for index in sorted({0, layers // 2, layers - 1}):
        for name, (multiplier, bias) in CORRUPTIONS.items():
            verdict = judged(flatbuffer.with_scaled_bconv_output(buf, index, multiplier, bias))
            row["corrupted"][f"LceBconv2d {index}: {name}"] = {
                "counts": verdict["flatbuffer"], "faithful": verdict["faithful"]}
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--images", type=int, default=1024)
    args = parser.parse_args(argv)
    rows = {str(run.name): measure(run, args.images) for run in args.runs}
    atomic.write_json(OUTPUT, {
        "benchmark": __doc__.splitlines()[0],
        "command": "python benchmarks/parity_noise_floor.py " + " ".join(
            ["RUN"] * len(args.runs)) + f" --images {args.images}",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "rule": {"epsilon": rounding_noise.EPSILON, "draws": rounding_noise.DRAWS,
                 "moved": rounding_noise.MOVED, "alpha": rounding_noise.ALPHA},
        "rows": rows,
    })
    print(OUTPUT)


if __name__ == "__main__":
    main()
