"""int8 edges, measured: size at ImageNet scale, accuracy on a real training run.

1. Size: ``bireal18`` at 224x224x3 / 1000 classes with int8 edges
   (``zoo.int8_edges``; ranges calibrated on 64 uniform(-1, 1) inputs: a
   flatbuffer's size depends on its tensors' types, not on the ranges'
   values) against larq-zoo's ``BiRealNet`` with float edges, both converted
   in this run by the project's converter (``export.convert``); target <= 0.55x.
2. Accuracy: README's main job (bireal18 on the real Fashion-MNIST, 2 epochs
   x 150 steps, batch 32), then its int8 stage (``cli.py quantize``), both
   exported (float edges, ``--int8``) and both flatbuffers evaluated on the
   full test split in LCE's interpreter; target: int8 within 0.5 point of
   float edges.

    python benchmarks/int8_edges.py [--quick --output FILE]

Writes ``benchmarks/results/int8_edges.json`` (atomically): the commands,
date, machine, versions and figures.
"""

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "int8_edges.json"
# README's main job and its runner, as readme_job.py (beside this script) runs them.
from readme_job import QUICK, TRAIN, cli  # noqa: E402


def sizes() -> dict:
    import larq_zoo as lqz

    from bnnzoo import zoo
    from bnnzoo.export import flatbuffer as fb
    from bnnzoo.export.convert import export_flatbuffer
    from bnnzoo.export.int8_weights import on_int8_grid
    from bnnzoo.export.pipeline import synthetic_inputs
    from bnnzoo.training.calibration import calibrate
    from bnnzoo.zoo.int8_edges import with_int8_edges

    reference = export_flatbuffer(lqz.literature.BiRealNet(weights=None), "arm64")
    model = with_int8_edges(zoo.get_model("bireal18", input_shape=(224, 224, 3),
                                          num_classes=1000, weights=None))
    images = synthetic_inputs((224, 224, 3), 64)
    calibrate(model, [(images[i:i + 16], None) for i in range(0, 64, 16)])
    on_int8_grid(model)
    int8 = export_flatbuffer(model, "arm64")
    return {"larq_zoo_birealnet_float_edges_bytes": len(reference),
            "bireal18_int8_edges_bytes": len(int8),
            "ratio": len(int8) / len(reference), "target_ratio": 0.55,
            "int8_operators": fb.operator_histogram(int8),
            "precision": fb.precision_report(int8)}


def accuracy(work: Path, quick: bool) -> dict:
    runs = work / "runs"
    runs.mkdir(parents=True)
    limit = ["--limit", "64"] if quick else []
    times = {}
    start = time.perf_counter()
    cli(runs, *TRAIN, *(QUICK if quick else []))
    times["train_s"] = time.perf_counter() - start
    run = Path((runs / "latest").read_text().strip())
    float_export = json.loads(cli(runs, "export", run, "--json"))
    start = time.perf_counter()
    cli(runs, "quantize", run, *(["--steps", "3", "--calibration-images", "64"] if quick else []))
    times["quantize_s"] = time.perf_counter() - start
    int8_export = json.loads(cli(runs, "export", run, "--int8", "--json"))
    folder = run / "export"
    keras = json.loads(cli(runs, "evaluate", run, "--json", *limit))
    keras_int8 = json.loads(cli(runs, "evaluate", run / "int8", "--json", *limit))
    lce = json.loads(cli(runs, "evaluate", folder / float_export["flatbuffer"], "--json", *limit))
    lce_int8 = json.loads(cli(runs, "evaluate", folder / int8_export["flatbuffer"], "--json",
                              *limit))
    return {
        "examples": lce["examples"],
        "keras_top1": keras["top1"], "keras_int8_stage_top1": keras_int8["top1"],
        "float_edges_flatbuffer_top1": lce["top1"], "int8_flatbuffer_top1": lce_int8["top1"],
        "difference_points": 100 * (lce_int8["top1"] - lce["top1"]), "target_points": 0.5,
        "float_edges_bytes": float_export["size"]["flatbuffer_bytes"],
        "int8_bytes": int8_export["size"]["flatbuffer_bytes"],
        "int8_report": {k: int8_export[k] for k in ("operators", "binary_convolutions",
                                                    "precision", "parity")},
        **{k: round(v, 1) for k, v in times.items()},
    }


def markdown_table(result: dict) -> str:
    """docs/measurements.md's table of a results file (``figures.py`` holds
    the document to it)."""
    size, run = result["size_224"], result["fashion_mnist"]
    met = {True: "met", False: "**not met**"}
    ratio = run["int8_bytes"] / run["float_edges_bytes"]
    return "\n".join([
        "| | float edges | int8 edges | ratio |", "| --- | ---: | ---: | ---: |",
        f"| 224x224x3, 1000 classes: larq-zoo `BiRealNet` / bnnzoo `bireal18` | "
        f"{size['larq_zoo_birealnet_float_edges_bytes']:,} bytes | "
        f"{size['bireal18_int8_edges_bytes']:,} bytes | **{size['ratio']:.3f}x** (target <= "
        f"{size['target_ratio']}x: {met[size['ratio'] <= size['target_ratio']]}) |",
        f"| Fashion-MNIST run (28 px, 10 classes), flatbuffer | "
        f"{run['float_edges_bytes']:,} bytes | {run['int8_bytes']:,} bytes | {ratio:.3f}x |",
        f"| Fashion-MNIST run, top-1 of the flatbuffer on the {run['examples']:,} test images | "
        f"{100 * run['float_edges_flatbuffer_top1']:.2f} % | "
        f"{100 * run['int8_flatbuffer_top1']:.2f} % | **{run['difference_points']:+.2f} point** "
        f"(target within {run['target_points']}: "
        f"{met[abs(run['difference_points']) <= run['target_points']]}) |"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true",
                        help="3 steps, 64 test images: a smoke run (needs --output)")
    parser.add_argument("--skip-size", action="store_true", help="only the accuracy part")
    args = parser.parse_args()
    if args.quick and args.output == RESULTS:
        parser.error("--quick needs --output (it must not replace the measured results)")
    from machine import machine  # benchmarks/machine.py, beside this script

    from bnnzoo import atomic, runs

    result = {"command": "python benchmarks/int8_edges.py" + (" --quick" if args.quick else ""),
              "job": ["python cli.py " + " ".join(TRAIN), "python cli.py export RUN",
                      "python cli.py quantize RUN", "python cli.py export RUN --int8",
                      "python cli.py evaluate RUN/export/bireal18-arm64.tflite",
                      "python cli.py evaluate RUN/export/bireal18-arm64-int8.tflite"],
              "date": datetime.date.today().isoformat(), "machine": machine(),
              "versions": runs.package_versions()}
    if not args.skip_size:
        result["size_224"] = sizes()
        print(json.dumps(result["size_224"]), flush=True)
    with tempfile.TemporaryDirectory() as work:
        result["fashion_mnist"] = accuracy(Path(work), args.quick)
    print(json.dumps(result["fashion_mnist"]), flush=True)
    atomic.write_json(args.output, result)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
