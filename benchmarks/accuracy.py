"""Accuracy of every method on real data, trained and deployed, in one table.

Compact ResNet-18s of one width, one input size and one number of epochs,
each trained by the same ``training.train`` the CLI runs, on the same data
pipeline (same augmentation); the rows (``accuracy_rows.py``):

| row | model | how it is trained |
| --- | --- | --- |
| real-valued twin | ``resnet18`` | real weights, hard tanh where the others take a sign |
| XNOR-style | ``xnor_resnet18`` | from scratch (``bireal`` recipe) |
| Bi-Real | ``bireal18`` | initialised from the twin above, as the paper trains it |
| SiMaN | ``siman_resnet18`` | from scratch, ``siman_short`` recipe (SiMaN's, for short runs) |
| Real-to-Binary strong baseline | ``real2bin_baseline`` | two steps (binary activations, then binary) |
| Real-to-Binary stage 0-2, Real-to-Binary | ``real2bin`` | one run of four progressive stages, each a row, ``real2bin_short`` recipe (the paper's; the binary stage's kernels alpha_c sign(W)) |

Every run and every stage gets ``--epochs`` epochs. Each row: top-1 and
top-5 of the Keras model on the whole test split, the same for its
flatbuffer in LCE's interpreter (binary nets through ``export.export_model``,
bitpacked and parity-checked; the real-valued ones through the same converter,
float), the flatbuffer's size, its host latency (LCE's interpreter, one
thread) and the training time (a stage row: the epochs of its stage and of the
stages before it). Ranked rows within ``--seed-margin`` points of each other
are then trained with a second seed (``--seed`` + 1), and their order is the
mean's. The machine's load average is recorded beside each row: on a shared
machine the times are upper bounds.

    python benchmarks/accuracy.py                       # 28 px Fashion-MNIST, the committed table
    python benchmarks/accuracy.py --runs DIR --resume   # continue it where it stopped
    python benchmarks/accuracy.py --input-size 14 --width 16 --epochs 2   # the 14 px table
    python benchmarks/accuracy.py --dataset cifar10 --data-dir ~/data/cifar-10-batches-py --input-size 32
    python benchmarks/accuracy.py --quick --output accuracy-quick.json   # smoke run, minutes

The defaults (28 px, width 16, 3 epochs, batch 128) were sized from the
14 px runs to take 1.5-3 hours on 2 cores; measured, a run takes about half
an hour on a 2-core x86 VM that trains in float32, and the whole table, with
the second seeds of three close rows, took 5.9 hours there; about half of
that is expected where training runs in bfloat16 (docs/measurements.md,
"The 28 px table").
Writes ``benchmarks/results/accuracy_DATASET[_SIZEpx].json`` atomically (the size suffix for sizes other than the dataset's own)
after every row, ``"complete": false`` with the rows still to measure until
the last; ``--quick`` never writes there unless ``--output`` says so.
``--resume`` continues such a file (same settings): its rows are kept and
the others measured, their runs resumed from ``--runs`` where they are there
(a killed run continues from its last epoch). Each run records the machine
and precision it trained with: a table finished on another machine says so.
``accuracy_table.py`` renders the file into README.md and
docs/measurements.md.
"""

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow loads)

import tensorflow as tf

from bnnzoo import atomic, datasets, export, runs as bnn_runs
from bnnzoo.export.benchmark import benchmark
from bnnzoo.training import TrainConfig, train
from accuracy_rows import BY_NAME, ROWS, close_rows  # beside this script
from accuracy_table import summarise
from machine import machine

RESULTS = Path(__file__).parent / "results"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def train_run(row, seed: int, args, folder: Path, trained: dict) -> tuple:
    """Train ``row``'s run (once for all rows sharing it); (run directory, wall seconds)."""
    key = (row.run_key, seed)
    if key in trained:
        return trained[key]
    init_from = None
    if row.init_row:  # the initialising row's run of the same seed (trained or resumed here)
        init_from = train_run(BY_NAME[row.init_row], seed, args, folder, trained)[0]
    config = TrainConfig(
        model=row.model, recipe=row.recipe, dataset=args.dataset, data_dir=args.data_dir,
        input_size=args.input_size, width=args.width, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
        validation_steps=args.validation_steps, xla=args.xla, precision=args.precision,
        seed=seed, init_from=str(init_from) if init_from else None)
    output = folder / f"{row.run_key}-seed{seed}"
    resume = (output / "config.json").exists()  # a run of an earlier, killed invocation
    tf.keras.backend.clear_session()
    start = time.perf_counter()
    run_dir = train(config, output=output, resume=resume, verbose=0)
    trained[key] = (run_dir, None if resume else time.perf_counter() - start)
    return trained[key]


def epoch_seconds(run_dir: Path) -> float:
    return sum(r.get("seconds", 0.0) for r in json.loads((run_dir / "history.json").read_text()))


def training_seconds(row, run_dir: Path, wall) -> dict:
    """A run's row: the run's wall time (a resumed run: its epochs' seconds).
    A stage's row: its own epochs and, as its training time, those of every
    stage up to it."""
    if not row.stage:
        if wall is None:
            return {"train_seconds": round(epoch_seconds(run_dir)), "resumed": True}
        return {"train_seconds": round(wall)}
    stages = [r.stage for r in ROWS if r.run_key == row.run_key]
    before = stages[:stages.index(row.stage) + 1]
    return {"stage_seconds": round(epoch_seconds(run_dir / row.stage)),
            "train_seconds": round(sum(epoch_seconds(run_dir / s) for s in before))}


def flatbuffer_of(row, model_dir: Path, args) -> tuple:
    """(file, report fields): binary nets the way users export them; real-valued
    ones have nothing to bitpack, so they go through the same converter as float nets."""
    if not row.binary:
        model = bnn_runs.load_source(model_dir).model
        path = model_dir / "export" / f"{row.model}-arm64-float.tflite"
        buf = export.export_flatbuffer(model, "arm64")
        with atomic.atomic_path(path, overwrite=True) as tmp:
            tmp.write_bytes(buf)
        return path, {"binary_convolutions": 0, "parity_agreement": None}
    path, report = export.export_model(model_dir, target="arm64", min_agreement=0.0,
                                       parity_images=args.parity_images, overwrite=True)
    return path, {"binary_convolutions": report["binary_convolutions"],
                  "parity_agreement": report["parity"]["top1_agreement"]}


def measure(row, seed: int, args, folder: Path, trained: dict) -> dict:
    load_before = _load()
    run_dir, wall = train_run(row, seed, args, folder, trained)
    model_dir = run_dir / row.stage if row.stage else run_dir
    tf.keras.backend.clear_session()
    path, exported = flatbuffer_of(row, model_dir, args)
    # Keras and the flatbuffer image by image: top-1s, top-5s and McNemar's test.
    paired = export.compare_with_keras(path, model_dir, dataset=args.dataset,
                                       data_dir=args.data_dir, limit=args.limit)
    latency = benchmark(path, device="host", num_threads=1, num_runs=args.latency_runs)
    return {
        "seed": seed,
        "keras_top1": paired["keras_top1"], "keras_top5": paired["keras_top5"],
        "flatbuffer_top1": paired["lce_top1"], "flatbuffer_top5": paired["lce_top5"],
        "top1_difference_points": round(100 * (paired["lce_top1"] - paired["keras_top1"]), 4),
        "test_images": paired["images"],
        "only_keras_correct": paired["only_keras_correct"],
        "only_flatbuffer_correct": paired["only_lce_correct"], "mcnemar_p": paired["mcnemar_p"],
        "flatbuffer_bytes": path.stat().st_size,
        "host_latency_ms": round(latency.avg_us / 1000, 3),
        **training_seconds(row, run_dir, wall),
        "precision": json.loads((run_dir / "config.json").read_text()).get("precision"),
        "machine": machine()["cpu"],
        "load_average": [load_before, _load()],
        **exported,
    }


def describe(row) -> dict:
    return {"row": row.name, "model": row.model, "stage": row.stage or None,
            "recipe": row.recipe, "initialised_from": row.init_row, "ranked": row.ranked}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--width", type=int, default=16, help="first-stage width of every row")
    parser.add_argument("--input-size", type=int, default=28,
                        help="model input side in pixels (small-image stem at <= 64)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of every run and stage")
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
    parser.add_argument("--seed-margin", type=float,
                        help="ranked rows within this many points of another get a second "
                             "seed (0: never) [1; --quick: 0]")
    parser.add_argument("--rows", nargs="+", choices=[r.name for r in ROWS],
                        default=[r.name for r in ROWS], metavar="ROW")
    parser.add_argument("--runs", type=Path, help="keep the run directories here [temporary]")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 steps per epoch, 256 test images, 3 timed inferences")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--resume", action="store_true",
                        help="continue the results file of an unfinished run of these settings")
    args = parser.parse_args(argv)
    args.rows = [row for row in ROWS if row.name in args.rows]  # the table's order, once each
    names = {row.name for row in args.rows}
    for row in args.rows:
        if row.init_row and row.init_row not in names:
            parser.error(f"{row.name} starts from the {row.init_row!r} row: include it in --rows.")
    if args.quick:
        args.epochs, args.steps_per_epoch, args.validation_steps = 1, 3, 1
        args.limit, args.parity_images, args.latency_runs = 256, 32, 3
        args.batch_size, args.xla = 32, "off"
        if args.seed_margin is None:  # 3-step nets differ by noise: no second seeds
            args.seed_margin = 0.0
        if args.output is None:
            parser.error("--quick needs --output (it must not replace the committed results).")
    if args.seed_margin is None:
        args.seed_margin = 1.0
    for option in ("width", "input_size", "epochs", "batch_size", "latency_runs"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1.")
    return parser, args


def default_output(args, data) -> Path:
    native = data.image_shape[0]
    suffix = "" if native in (None, args.input_size) else f"_{args.input_size}px"
    return RESULTS / f"accuracy_{Path(args.dataset).name}{suffix}.json"


SETTINGS = ("dataset", "width", "input_size", "epochs", "steps_per_epoch", "batch_size",
            "validation_steps", "limit", "xla", "precision", "seed")


def settings(args) -> dict:
    return {key: getattr(args, key) for key in SETTINGS} | {"seed_margin_points": args.seed_margin}


def resumed(parser, args, output: Path) -> dict:
    """``--resume``: the unfinished results file at ``output``, checked to have
    been measured with these settings."""
    if not output.exists():
        parser.error(f"--resume continues {output}, which does not exist.")
    previous = json.loads(output.read_text())
    differing = [key for key, value in settings(args).items() if previous.get(key) != value]
    if differing:
        parser.error(f"{output} was measured with other {', '.join(differing)}: name the "
                     "same options to resume it, or start it again without --resume.")
    if previous.get("complete", True):
        parser.error(f"{output} is complete: nothing to resume.")
    return previous


def public(argv) -> list:
    """The command line as the results file records it: where the runs were
    kept (``--runs``) is this machine's business, not the table's."""
    argv = [str(a) for a in argv]
    return [("DIR" if i and argv[i - 1] == "--runs" else a.split("=")[0] + "=DIR"
             if a.startswith("--runs=") else a) for i, a in enumerate(argv)]


def main(argv=None):
    parser, args = parse_args(argv)
    try:
        data = datasets.load(args.dataset, args.data_dir)
    except datasets.DatasetNotFound as err:
        parser.exit(1, f"{err}\n")
    output = args.output or default_output(args, data)
    previous = resumed(parser, args, output) if args.resume else None
    command = shlex.join(["python", "benchmarks/accuracy.py", *public(
        sys.argv[1:] if argv is None else argv)])

    measured = {row.name: [] for row in args.rows}
    spent, resumptions = 0, []
    if previous:  # its rows are kept; the command is the one that started the table
        for row in previous["rows"]:
            if row["row"] in measured:
                measured[row["row"]] = row["runs"]
        spent = previous["total_seconds"]
        resumptions = previous.get("resumed", []) + [
            {"command": command, "date": datetime.date.today().isoformat(),
             "machine": machine()["cpu"]}]
        command = previous["command"]
    start = time.perf_counter()

    def write(complete: bool, again: list) -> dict:
        done = [row for row in args.rows if measured[row.name]]
        result = {
            "benchmark": "accuracy of every method, Keras and LCE flatbuffer, one compact ResNet-18",
            "command": command, "date": datetime.date.today().isoformat(), "machine": machine(),
            "versions": bnn_runs.package_versions(),
            **settings(args), "second_seed_rows": again,
            "complete": complete,
            "pending": [row.name for row in args.rows if not measured[row.name]],
            "rows": [{**describe(row), "runs": measured[row.name]} for row in done],
            "total_seconds": spent + round(time.perf_counter() - start),
            **({"resumed": resumptions} if resumptions else {}),
        }
        if done:
            result.update(summarise(result))
        atomic.write_json(output, result)
        return result

    with tempfile.TemporaryDirectory() as temporary:
        folder = args.runs or Path(temporary)
        trained = {}
        for row in args.rows:
            if measured[row.name]:
                continue
            print(f"{row.name} ({row.model}, seed {args.seed}) ...", flush=True)
            measured[row.name].append(measure(row, args.seed, args, folder, trained))
            write(False, [])
        top1 = {name: runs[0]["keras_top1"] for name, runs in measured.items()}
        again = close_rows(top1, args.seed_margin) if args.seed_margin > 0 else []
        # A second seed of a stage row retrains its whole run: every row of it gets one.
        again_keys = {BY_NAME[name].run_key for name in again}
        for row in args.rows:
            if row.run_key in again_keys and len(measured[row.name]) < 2:
                print(f"{row.name}: second seed ({args.seed + 1}) ...", flush=True)
                measured[row.name].append(measure(row, args.seed + 1, args, folder, trained))
                write(False, again)
    result = write(True, again)
    from accuracy_table import markdown_table

    print(markdown_table(result))
    print(f"Wrote {output}")


if __name__ == "__main__":
    main()
