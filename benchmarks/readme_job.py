"""README's main job, measured: train bireal18 on Fashion-MNIST, export, benchmark, evaluate.

The commands README's "Two commands" runs, with one seed per repetition
(``--seed``), each in a fresh runs folder, so the spread of the figures over
seeds is measured beside them: a binary net after 300 steps moves by about a
point with its seed, and with the CPU's rounding, so README quotes the range.

    python benchmarks/readme_job.py --seeds 0,1

Writes ``benchmarks/results/readme_job.json`` (atomically): the commands, the
date, the machine, the stack's versions and, per seed, Keras and flatbuffer
top-1/top-5 on the 10,000 test images, the export's agreement, host latency
and wall times.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "readme_job.json"
TRAIN = ["train", "bireal18", "--dataset", "fashion_mnist", "--epochs", "2", "--steps-per-epoch",
         "150", "--batch-size", "32", "--validation-steps", "20"]


QUICK = ["--steps-per-epoch", "3", "--validation-steps", "2"]  # a smoke run: plumbing only


def cli(runs: Path, *args) -> str:
    env = {**os.environ, "BNNZOO_RUNS": str(runs)}
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), *map(str, args)], env=env,
                            capture_output=True, text=True, cwd=runs.parent)
    if result.returncode:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def one_seed(seed: int, work: Path, quick: bool = False) -> dict:
    runs = work / f"seed{seed}" / "runs"
    runs.mkdir(parents=True)
    times = {}
    limit = ["--limit", "64"] if quick else []
    start = time.perf_counter()
    cli(runs, *TRAIN, "--seed", str(seed), *(QUICK if quick else []))
    times["train_s"] = time.perf_counter() - start
    export = json.loads(cli(runs, "export", "--target", "arm64", "--json"))
    times["export_s"] = time.perf_counter() - start - times["train_s"]
    bench = json.loads(cli(runs, "benchmark", "--json"))
    keras = json.loads(cli(runs, "evaluate", "--json", *limit))
    lce = json.loads(cli(runs, "evaluate", (runs / "latest-export").read_text().strip(), "--json",
                         *limit))
    times["total_s"] = time.perf_counter() - start
    return {"seed": seed, "keras_top1": keras["top1"], "keras_top5": keras["top5"],
            "lce_top1": lce["top1"], "lce_top5": lce["top5"], "examples": keras["examples"],
            "parity_agreement": export["parity"]["top1_agreement"],
            "size_bytes": export["size"]["flatbuffer_bytes"], "host_avg_us": bench["avg_us"],
            **{k: round(v, 1) for k, v in times.items()}}


def markdown_table(result: dict) -> str:
    """docs/measurements.md's table of a results file, one row per seed
    (``figures.py`` holds the document to it)."""
    lines = ["| seed | Keras top-1 | Keras top-5 | flatbuffer top-1 | flatbuffer top-5 | "
             "export's parity | flatbuffer | host latency | wall time |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in result["seeds"]:
        lines.append(f"| {s['seed']} | {100 * s['keras_top1']:.2f} % "
                     f"| {100 * s['keras_top5']:.2f} % "
                     f"| {100 * s['lce_top1']:.2f} % | {100 * s['lce_top5']:.2f} % "
                     f"| {100 * s['parity_agreement']:.2f} % | {s['size_bytes']:,} B "
                     f"| {s['host_avg_us'] / 1000:.1f} ms | {s['total_s'] / 60:.1f} min |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1", help="Comma-separated seeds [0,1].")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true",
                        help="3 steps per epoch, 64 test images: a smoke run (needs --output)")
    args = parser.parse_args()
    if args.quick and args.output == RESULTS:
        parser.error("--quick needs --output (it must not replace the measured results)")
    from machine import machine  # benchmarks/machine.py, beside this script

    from bnnzoo import atomic, runs

    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as work:
        rows = []
        for seed in seeds:
            rows.append(one_seed(seed, Path(work), args.quick))
            print(json.dumps(rows[-1]), flush=True)
    summary = {key: {"min": min(r[key] for r in rows), "max": max(r[key] for r in rows),
                     "mean": statistics.fmean(r[key] for r in rows)}
               for key in ("keras_top1", "lce_top1", "keras_top5", "lce_top5", "total_s")}
    atomic.write_json(args.output, {
        "command": "python benchmarks/readme_job.py --seeds " + args.seeds
                   + (" --quick" if args.quick else ""),
        "job": ["python cli.py " + " ".join(TRAIN) + " --seed SEED",
                "python cli.py export --target arm64", "python cli.py benchmark",
                "python cli.py evaluate", 'python cli.py evaluate "$(cat runs/latest-export)"'],
        "date": datetime.date.today().isoformat(), "machine": machine(),
        "versions": runs.package_versions(), "seeds": rows, "spread": summary})
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
