"""A trained run, exported as users export it, against its Keras model on the whole test split.

The run directory's model is exported (``bnnzoo.export.export_model``, as
``cli.py export RUN --target T`` does) and both the Keras model and the
flatbuffer (in LCE's interpreter) classify every test image
(``bnnzoo.export.compare_with_keras``): their top-1s, the difference in
points against the aim (``AIM_POINTS``), McNemar's test on the images only one
of them gets right, and how many binary convolutions run bitpacked. The run's
training settings (model, width, epochs, batch, rate, precision, stages and
their accuracy) are copied into the results file beside them.

    python cli.py train reactnet_a --width 16 --epochs 1 --batch-size 128 \\
        --learning-rate 1e-3 --output RUN
    python benchmarks/trained_export.py RUN

Writes ``benchmarks/results/trained_export_MODEL.json`` (atomically).
"""

import argparse
import datetime
import json
import os
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
AIM_POINTS = 0.1  # |flatbuffer top-1 - Keras top-1|, in points


def stage_rows(run_dir: Path) -> list[dict]:
    """Each stage's (or the run's) last validation accuracy, epochs and seconds,
    in the order the run trained them."""
    dirs = sorted((p.parent for p in run_dir.glob("*/config.json")),
                  key=lambda d: json.loads((d / "config.json").read_text()).get("stage") or 0)
    dirs = [d for d in dirs if (d / "history.json").is_file()] or [run_dir]
    rows = []
    for directory in dirs:
        history = json.loads((directory / "history.json").read_text())
        rows.append({"stage": directory.name if directory != run_dir else "",
                     "epochs": len(history), "val_accuracy": history[-1].get("val_accuracy"),
                     "seconds": round(sum(r.get("seconds", 0.0) for r in history))})
    return rows


def train_command(config: dict) -> str:
    """``cli.py train`` with the options the run was typed with (``--output RUN``)."""
    typed = [arg for key, value in (config.get("options") or {}).items()
             for arg in ([f"--{key.replace('_', '-')}"] if value is True
                         else [f"--{key.replace('_', '-')}", str(value)])]
    dataset = [] if config.get("dataset") in (None, "fashion_mnist") else [
        "--dataset", config["dataset"]]
    return shlex.join(["python", "cli.py", "train", config["model"], *dataset, *typed,
                       "--output", "RUN"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a trained run directory")
    parser.add_argument("--target", default="arm64")
    parser.add_argument("--limit", type=int, help="test images [the whole test split]")
    parser.add_argument("--output", type=Path, help="[results/trained_export_MODEL.json]")
    args = parser.parse_args(argv)

    from bnnzoo import atomic, export, runs
    from machine import machine  # benchmarks/machine.py, beside this script

    config = runs.read_config(args.run)
    load_before = os.getloadavg()
    path, report = export.export_model(args.run, target=args.target, overwrite=True)
    paired = export.compare_with_keras(path, args.run, limit=args.limit)
    difference = 100 * (paired["lce_top1"] - paired["keras_top1"])
    result = {
        "command": shlex.join(["python", "benchmarks/trained_export.py", "RUN",
                               *(sys.argv[2:] if argv is None else argv[1:])]),
        "train_command": train_command(config),
        "date": datetime.date.today().isoformat(), "machine": machine(),
        "load_average": {"before": [round(v, 2) for v in load_before],
                         "after": [round(v, 2) for v in os.getloadavg()]},
        "model": config["model"], "dataset": paired["dataset"],
        "training": {key: config.get(key) for key in (
            "width", "input_shape", "epochs", "batch_size", "learning_rate", "precision",
            "recipe")} | {"recipe": config["recipe"]["name"]},
        "stages": stage_rows(args.run),
        "target": args.target, "flatbuffer_bytes": path.stat().st_size,
        "binary_convolutions": report["binary_convolutions"],
        "operators": report["operators"],
        "test_images": paired["images"],
        "keras_top1": paired["keras_top1"], "flatbuffer_top1": paired["lce_top1"],
        "top1_difference_points": round(difference, 4),
        "only_keras_correct": paired["only_keras_correct"],
        "only_flatbuffer_correct": paired["only_lce_correct"], "mcnemar_p": paired["mcnemar_p"],
        "aim_points": AIM_POINTS, "aim_met": abs(difference) <= AIM_POINTS,
    }
    output = args.output or RESULTS / f"trained_export_{config['model']}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(output, result)
    print(f"{config['model']}: Keras {100 * paired['keras_top1']:.2f} %, flatbuffer "
          f"{100 * paired['lce_top1']:.2f} % on {paired['images']} test images "
          f"({difference:+.2f} points; aim within {AIM_POINTS}: "
          f"{'met' if result['aim_met'] else 'missed'}); "
          f"{report['binary_convolutions']['lce_bconv2d']} LceBconv2d for "
          f"{report['binary_convolutions']['keras']} binary convolutions. Wrote {output}")


if __name__ == "__main__":
    main()
