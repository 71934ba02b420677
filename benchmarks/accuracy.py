"""Accuracy of every method on real data, trained and deployed, in one table.

Five ResNet-18s of one compact width, one input size and one number of
epochs, each trained with its paper's recipe by the same ``training.train``
the CLI runs, on the same data pipeline (same augmentation):

| row | model | how it is trained |
| --- | --- | --- |
| real-valued twin | ``resnet18`` | real weights, hard tanh where the others take a sign |
| XNOR-style | ``xnor_resnet18`` | from scratch (``bireal`` recipe) |
| Bi-Real | ``bireal18`` | initialised from the twin above, as the paper trains it |
| SiMaN | ``siman_resnet18`` | from scratch (``siman_imagenet`` recipe) |
| Real-to-Binary | ``real2bin`` | four progressive stages, each taught by the previous; stage 0 (real) is its teacher |

Every stage and run gets ``--epochs`` epochs. Each row: test top-1 of the
Keras model on the whole test split, then the same for its flatbuffer in
LCE's interpreter (binary nets through ``export.export_model``, bitpacked and
parity-checked; the real twin through the same converter, float), the
flatbuffer's size, its host latency (LCE's interpreter, one thread) and the
training time. The machine's load average is recorded beside each row: on a
shared machine the times are upper bounds.

    python benchmarks/accuracy.py                       # Fashion-MNIST (offline); ~1 h on 2 cores
    python benchmarks/accuracy.py --dataset cifar10 --data-dir ~/data/cifar-10-batches-py --input-size 32
    python benchmarks/accuracy.py --dataset imagenet2012 --data-dir ~/imagenet --input-size 64
    python benchmarks/accuracy.py --quick --output /tmp/accuracy.json   # smoke run, minutes

Writes ``benchmarks/results/accuracy_DATASET.json`` atomically; ``--quick``
never writes there unless ``--output`` says so.
"""

import argparse
import datetime
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow loads)

import tensorflow as tf

from bnnzoo import atomic, datasets, export
from bnnzoo.evaluation import evaluate
from bnnzoo.export.benchmark import benchmark
from bnnzoo.runs import package_versions
from bnnzoo.training import TrainConfig, train
from machine import machine  # benchmarks/machine.py, beside this script

RESULTS = Path(__file__).parent / "results"
ROWS = {  # row -> (model, the row whose run initialises it)
    "real-valued twin": ("resnet18", None),
    "XNOR-style": ("xnor_resnet18", None),
    "Bi-Real": ("bireal18", "real-valued twin"),
    "SiMaN": ("siman_resnet18", None),
    "Real-to-Binary": ("real2bin", None),
}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def train_row(name: str, args, folder: Path, runs: dict) -> Path:
    model, init_row = ROWS[name]
    init_from = runs[init_row] if init_row else None  # main() keeps the rows in order
    config = TrainConfig(
        model=model, dataset=args.dataset, data_dir=args.data_dir, input_size=args.input_size,
        width=args.width, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size, validation_steps=args.validation_steps,
        xla=args.xla, precision=args.precision, seed=args.seed, init_from=str(init_from) if init_from else None)
    return train(config, output=folder / model, verbose=0)


def flatbuffer_of(name: str, run_dir: Path, args) -> tuple:
    """(file, report fields): binary nets the way users export them; the real twin
    has nothing to bitpack, so it goes through the same converter as a float net."""
    if ROWS[name][0] in ("resnet18",):
        model = tf.keras.models.load_model(run_dir / "model.h5", compile=False)
        path = run_dir / "export" / "resnet18-arm64-float.tflite"
        buf = export.export_flatbuffer(model, "arm64")
        with atomic.atomic_path(path) as tmp:
            tmp.write_bytes(buf)
        return path, {"binary_convolutions": 0, "parity_agreement": None}
    path, report = export.export_model(run_dir, target="arm64", min_agreement=0.0,
                                       parity_images=args.parity_images)
    return path, {"binary_convolutions": report["binary_convolutions"],
                  "parity_agreement": report["parity"]["top1_agreement"]}


def measure(name: str, args, folder: Path, runs: dict) -> dict:
    tf.keras.backend.clear_session()
    load_before = _load()
    start = time.perf_counter()
    run_dir = train_row(name, args, folder, runs)
    train_seconds = time.perf_counter() - start
    runs[name] = run_dir
    tf.keras.backend.clear_session()
    path, exported = flatbuffer_of(name, run_dir, args)
    # Keras and the flatbuffer image by image: both top-1s and McNemar's test.
    paired = export.compare_with_keras(path, run_dir, dataset=args.dataset,
                                       data_dir=args.data_dir, limit=args.limit)
    latency = benchmark(path, device="host", num_threads=1, num_runs=args.latency_runs)
    row = {
        "row": name, "model": ROWS[name][0],
        "initialised_from": ROWS[name][1],
        "keras_top1": paired["keras_top1"], "flatbuffer_top1": paired["lce_top1"],
        "top1_difference_points": round(100 * (paired["lce_top1"] - paired["keras_top1"]), 4),
        "test_images": paired["images"],
        "only_keras_correct": paired["only_keras_correct"],
        "only_flatbuffer_correct": paired["only_lce_correct"], "mcnemar_p": paired["mcnemar_p"],
        "flatbuffer_bytes": path.stat().st_size,
        "host_latency_ms": round(latency.avg_us / 1000, 3),
        "train_seconds": round(train_seconds),
        "load_average": [load_before, _load()],
        **exported,
    }
    if ROWS[name][0] == "real2bin":  # its teacher: stage 0, the same net with real weights
        row["teacher_top1"] = evaluate(run_dir / "stage0-real", limit=args.limit)["top1"]
    return row


def markdown_table(result: dict) -> str:
    """docs/measurements.md's table of a results file (a test holds
    docs/measurements.md to it)."""
    lines = ["| method | model | Keras top-1 | flatbuffer top-1 (LCE) | difference | "
             "flatbuffer size | host latency | training |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        init = f" (from the {r['initialised_from']})" if r["initialised_from"] else ""
        teacher = (f"; its stage-0 teacher {100 * r['teacher_top1']:.2f} %"
                   if "teacher_top1" in r else "")
        lines.append(
            f"| {r['row']}{init} | `{r['model']}` | {100 * r['keras_top1']:.2f} %{teacher} | "
            f"{100 * r['flatbuffer_top1']:.2f} % | {r['top1_difference_points'] + 0.0:+.2f} | "
            f"{r['flatbuffer_bytes'] / 1024:,.0f} KB | {r['host_latency_ms']:.2f} ms | "
            f"{r['train_seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def print_table(rows) -> None:
    print(markdown_table({"rows": rows}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--width", type=int, default=16, help="first-stage width of every row")
    parser.add_argument("--input-size", type=int, default=14,
                        help="model input side in pixels (small-image stem at <= 64)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of every run and stage")
    parser.add_argument("--steps-per-epoch", type=int, help="[the whole train split]")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--validation-steps", type=int, default=8)
    parser.add_argument("--limit", type=int, help="test images evaluated [the whole test split]")
    parser.add_argument("--parity-images", type=int, default=256)
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--xla", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--no-xla", dest="xla", action="store_const", const="off")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16", "float16"],
                        default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS), metavar="ROW")
    parser.add_argument("--runs", type=Path, help="keep the run directories here [temporary]")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 steps per epoch, 256 test images, 3 timed inferences")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    args.rows = [name for name in ROWS if name in args.rows]  # the table's order, once each
    for name in args.rows:
        if ROWS[name][1] and ROWS[name][1] not in args.rows:
            parser.error(f"{name} starts from the {ROWS[name][1]!r} row: include it in --rows.")
    if args.quick:
        args.epochs, args.steps_per_epoch, args.validation_steps = 1, 3, 1
        args.limit, args.parity_images, args.latency_runs = 256, 32, 3
        args.batch_size, args.xla = 32, "off"
        if args.output is None:
            parser.error("--quick needs --output (it must not replace the committed results).")
    for option in ("width", "input_size", "epochs", "batch_size", "latency_runs"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1.")
    try:
        datasets.load(args.dataset, args.data_dir)
    except datasets.DatasetNotFound as err:
        parser.exit(1, f"{err}\n")
    output = args.output or RESULTS / f"accuracy_{args.dataset}.json"

    rows, runs = [], {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.runs or Path(temporary)
        for name in args.rows:
            print(f"{name} ({ROWS[name][0]}) ...", flush=True)
            rows.append(measure(name, args, folder, runs))
            print_table(rows[-1:])
    binary = [r for r in rows if r["binary_convolutions"]]
    real = next((r for r in rows if r["model"] == "resnet18"), None)
    best = max(binary, key=lambda r: r["keras_top1"]) if binary else None
    result = {
        "benchmark": "accuracy of every method, Keras and LCE flatbuffer, one compact ResNet-18",
        "command": shlex.join(["python", "benchmarks/accuracy.py",
                               *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.date.today().isoformat(), "machine": machine(),
        "versions": package_versions(),
        "dataset": args.dataset, "width": args.width, "input_size": args.input_size,
        "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
        "batch_size": args.batch_size, "xla": args.xla, "seed": args.seed,
        "rows": rows,
        "total_seconds": round(time.perf_counter() - start),
        "best_binary": best and best["row"],
        "best_binary_gap_points": (round(100 * (real["keras_top1"] - best["keras_top1"]), 2)
                                   if best and real else None),
        "max_flatbuffer_difference_points": max(abs(r["top1_difference_points"]) for r in rows),
        "aims": {"best_binary_gap_points": 2.0, "max_flatbuffer_difference_points": 0.1},
    }
    atomic.write_json(output, result)
    print_table(rows)
    print(f"Wrote {output}")


if __name__ == "__main__":
    main()
