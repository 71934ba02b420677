"""Every benchmark in one command: each script in its own process, one after another.

| script | measures | results file |
| --- | --- | --- |
| ``training_throughput.py`` | training images/s against larq-zoo's BiRealNet + ``model.fit``, precision/XLA ablation, binary nets vs their twin | ``training_throughput.json`` |
| ``startup_time.py`` | a run's first steps (their traces) and an export's conversion, bnnzoo's path against TensorFlow's and LCE's defaults | ``startup_time.json`` |
| ``export_size_latency.py`` | flatbuffer size and host latency against larq-zoo's BiRealNet | ``export_size_latency.json`` |
| ``family_export.py`` (x3) | every Bi-Real, SiMaN and Real-to-Binary net trained briefly and exported bitpacked | ``family_export.json``, ``siman_export.json``, ``real2bin_export.json`` |
| ``accuracy.py`` | test top-1 of every method, Keras and flatbuffer, size, latency, training time | ``accuracy_DATASET.json`` |
| ``interpreter_threads.py`` | milliseconds per image in LCE's interpreter with 1 and 2 threads (evaluation's default) | ``interpreter_threads.json`` |
| ``deployment_table.py`` | every registry model exported at 224 px: size, bitpacking, binary-MAC share, host latency, larq-zoo's published figures | ``deployment_table.json`` |
| ``int8_edges.py`` | int8 edges: flatbuffer size at 224 px against larq-zoo's BiRealNet, and the int8 flatbuffer's test top-1 against float edges after README's main job | ``int8_edges.json`` |
| ``readme_job.py`` | README's main job (train, export, benchmark, evaluate) over two seeds: its figures and their spread | ``readme_job.json`` |

    python benchmarks/run_all.py                    # all of it (the accuracy table alone: hours)
    python benchmarks/run_all.py --quick            # a smoke run of every script
    python benchmarks/run_all.py --only accuracy --dataset cifar10 --data-dir ~/cifar-10-batches-py

The full run writes ``benchmarks/results/``; ``--quick`` writes
``benchmarks/results/quick/`` (not committed) unless ``--output-dir`` says
otherwise, so a smoke run never replaces measured results. A failing script
does not stop the others; the exit status is 1 if any failed. After a run into
``benchmarks/results/``, ``figures.py --write`` renders README.md and docs/
from the files again.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# name -> (script, results file, arguments of the full run, of the quick run)
BENCHMARKS = {
    "training_throughput": ("training_throughput.py", "training_throughput.json", [],
                            ["--quick"]),
    "startup_time": ("startup_time.py", "startup_time.json", [],
                     ["--models", "bireal18", "--repeats", "1", "--input-size", "14"]),
    "export_size_latency": ("export_size_latency.py", "export_size_latency.json", [],
                            ["--runs", "2", "--repeats", "1"]),
    "family_bireal": ("family_export.py", "family_export.json", ["--family", "bireal"],
                      ["--family", "bireal", "--models", "bireal18", "--steps", "2"]),
    "family_siman": ("family_export.py", "siman_export.json", ["--family", "siman"],
                     ["--family", "siman", "--models", "siman_resnet20", "--steps", "2"]),
    "family_real2bin": ("family_export.py", "real2bin_export.json", ["--family", "real2bin"],
                        ["--family", "real2bin", "--models", "real2bin_baseline", "--steps", "2"]),
    "accuracy": ("accuracy.py", "accuracy_{dataset}.json", [], ["--quick"]),
    "interpreter_threads": ("interpreter_threads.py", "interpreter_threads.json", [],
                            ["--images", "4", "--repeats", "1"]),
    "deployment_table": ("deployment_table.py", "deployment_table.json", [],
                         ["--models", "siman_resnet20", "--input-size", "32", "--runs", "1"]),
    "int8_edges": ("int8_edges.py", "int8_edges.json", [], ["--quick"]),
    "readme_job": ("readme_job.py", "readme_job.json", ["--seeds", "0,1"],
                   ["--seeds", "0", "--quick"]),
}


def commands(quick: bool, output_dir: Path, only, dataset: str, data_dir) -> list:
    """(name, argv, results file) of each benchmark to run."""
    planned = []
    for name in only or BENCHMARKS:
        script, results, full, smoke = BENCHMARKS[name]
        output = output_dir / results.format(dataset=dataset)
        argv = [sys.executable, str(HERE / script), *(smoke if quick else full),
                "--output", str(output)]
        if name == "accuracy":
            argv += ["--dataset", dataset] + (["--data-dir", str(data_dir)] if data_dir else [])
        planned.append((name, argv, output))
    return planned


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of every benchmark")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"run only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--dataset", default="fashion_mnist", help="for the accuracy table")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--output-dir", type=Path,
                        help="where the results files go [benchmarks/results, --quick: "
                             "benchmarks/results/quick]")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    output_dir = (args.output_dir or (RESULTS / "quick" if args.quick else RESULTS)).resolve()
    data_dir = args.data_dir.resolve() if args.data_dir else None  # the scripts run in the repo
    dataset = str(Path(args.dataset).resolve()) if Path(args.dataset).exists() else args.dataset
    planned = commands(args.quick, output_dir, args.only, dataset, data_dir)
    if args.dry_run:
        for _, command, _ in planned:
            print(" ".join(command))
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, command, output in planned:
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, cwd=HERE.parent).returncode
        minutes = (time.perf_counter() - start) / 60
        print(f"== {name}: {'ok' if code == 0 else f'FAILED ({code})'} in {minutes:.1f} min, "
              f"{output if code == 0 else 'no results written'}", flush=True)
        if code:
            failed.append(name)
    if output_dir == RESULTS.resolve() and len(failed) < len(planned):
        subprocess.run([sys.executable, str(HERE / "figures.py"), "--write"], cwd=HERE.parent)
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
