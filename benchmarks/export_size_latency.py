"""Flatbuffer size and host latency of bireal18 against larq-zoo's BiRealNet,
both converted with LCE the same way, in one run.

Rows, all at 224x224x3 with 1000 classes and random weights (size and latency
do not depend on the weights' values):

* ``bnnzoo_bireal18``: ``bnnzoo.zoo.bireal18``, binary convolutions padded with +1;
* ``bnnzoo_bireal18_zero_padded``: the same with zero padding (larq-zoo's choice),
  to show what the padding convention costs on LCE;
* ``larq_zoo_birealnet``: ``larq_zoo.literature.BiRealNet``;
* ``float32_twin``: bireal18 with its quantizers removed, converted with
  ``tf.lite.TFLiteConverter``, for scale.

Latency: LCE's interpreter on this host (the same one for every row), one
image, ``--threads``; rounds alternate between the rows and each row's median
round is kept. On x86, LCE runs portable (not its ARM-optimised) kernels, so
absolute figures say little about a phone; ratios between rows measured in
one run are what this script is for. Targets: size ratio <= 1.0 and latency
ratio <= 1.05 (bnnzoo_bireal18 / larq_zoo_birealnet).

    python benchmarks/export_size_latency.py
    python benchmarks/export_size_latency.py --threads 2 --runs 20 --repeats 3

Writes ``benchmarks/results/export_size_latency.json`` (atomically) and the
flatbuffers to a temporary folder.
"""

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow loads)

import larq_zoo
import tensorflow as tf

from bnnzoo import atomic
from bnnzoo.export import export_flatbuffer, footprint, operator_histogram
from bnnzoo.export.benchmark import host_benchmark
from bnnzoo.zoo.bireal import BiRealNet18
from machine import machine  # benchmarks/machine.py, beside this script

RESULTS = Path(__file__).parent / "results" / "export_size_latency.json"
SHAPE = (224, 224, 3)
SIZE_TARGET, LATENCY_TARGET = 1.0, 1.05


class ZeroPadded(BiRealNet18):
    """bireal18 padding with 0, as larq-zoo's BiRealNet (what weights="imagenet" builds)."""

    pad_values = 0.0


class FloatTwin(BiRealNet18):
    """bireal18 with the quantizers removed: the real-valued network it binarizes."""

    name = "bireal18_float"
    input_quantizer = kernel_quantizer = kernel_constraint = None
    pad_values = 0.0


def build(factory):
    return factory(input_shape=SHAPE, input_tensor=None, weights=None, include_top=True,
                   num_classes=1000).build()


def float_flatbuffer(model):
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


LABELS = {"bnnzoo_bireal18": "bnnzoo `bireal18` (+1 padding)",
          "bnnzoo_bireal18_zero_padded": "bnnzoo `bireal18`, zero padding",
          "larq_zoo_birealnet": "larq-zoo `BiRealNet`",
          "float32_twin": "float32 twin (`tf.lite.TFLiteConverter`)"}


def markdown_table(result: dict) -> str:
    """docs/measurements.md's table of a results file (``figures.py`` holds
    the document to it)."""
    lines = ["| | flatbuffer | LceBconv2d | host latency |", "| --- | --- | --- | --- |"]
    for key, row in result["rows"].items():
        lines.append(f"| {LABELS.get(key, key)} | {row['flatbuffer_bytes']:,} bytes | "
                     f"{row['operators'].get('LceBconv2d', 0)} | "
                     f"{row['latency_us'] / 1000:.1f} ms |")

    def verdict(ratio, target):
        met = "met" if ratio <= target else "**not met**"
        return f"**{ratio:.3f}x** (target <= {target}: {met})"
    size = verdict(result["size_ratio"], result["size_target"])
    latency = verdict(result["latency_ratio"], result["latency_target"])
    lines.append(f"| ratio bnnzoo / larq-zoo | {size} | | {latency} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10, help="timed inferences per round")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds per row")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rows = {
        "bnnzoo_bireal18": (lambda: build(BiRealNet18), export_flatbuffer),
        "bnnzoo_bireal18_zero_padded": (lambda: build(ZeroPadded), export_flatbuffer),
        "larq_zoo_birealnet": (lambda: larq_zoo.literature.BiRealNet(input_shape=SHAPE,
                                                                      weights=None),
                               export_flatbuffer),
        "float32_twin": (lambda: build(FloatTwin), float_flatbuffer),
    }
    folder = Path(tempfile.mkdtemp(prefix="bnnzoo-bench-"))
    results = {}
    for name, (make, convert) in rows.items():
        model = make()
        start = time.perf_counter()
        buf = convert(model)
        path = folder / f"{name}.tflite"
        path.write_bytes(buf)
        fp = footprint(model)
        results[name] = {
            "flatbuffer_bytes": len(buf), "params": fp.params,
            "one_bit_budget_bytes": fp.size_1bit_bytes,
            "conversion_seconds": round(time.perf_counter() - start, 1),
            "operators": operator_histogram(buf), "rounds_us": [],
        }
        print(f"{name:<28} {len(buf):>11,} bytes  ({results[name]['operators'].get('LceBconv2d', 0)}"
              f" LceBconv2d)", flush=True)
        tf.keras.backend.clear_session()
    for round_ in range(args.repeats):
        for name in rows:
            report = host_benchmark(folder / f"{name}.tflite", num_threads=args.threads,
                                    num_runs=args.runs, warmup_runs=1)
            results[name]["rounds_us"].append(report.avg_us)
            print(f"round {round_ + 1}: {name:<28} {report.avg_us / 1000:8.1f} ms", flush=True)
    for row in results.values():
        row["latency_us"] = statistics.median(row["rounds_us"])
    ours, theirs = results["bnnzoo_bireal18"], results["larq_zoo_birealnet"]
    size_ratio = ours["flatbuffer_bytes"] / theirs["flatbuffer_bytes"]
    latency_ratio = ours["latency_us"] / theirs["latency_us"]
    result = {
        "benchmark": "LCE flatbuffer size and host latency: bireal18 (bnnzoo) vs "
                     "larq_zoo.literature.BiRealNet, both through larq_compute_engine.convert_keras_model",
        "command": " ".join(["python benchmarks/export_size_latency.py", *(argv or sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "input_shape": list(SHAPE),
        "interpreter": "larq_compute_engine.testing.Interpreter (default kernels)",
        "threads": args.threads, "runs_per_round": args.runs, "rounds": args.repeats,
        "rows": results,
        "size_ratio": size_ratio, "size_target": SIZE_TARGET,
        "latency_ratio": latency_ratio, "latency_target": LATENCY_TARGET,
        "meets_targets": size_ratio <= SIZE_TARGET and latency_ratio <= LATENCY_TARGET,
        "float32_twin_vs_bireal18_size": results["float32_twin"]["flatbuffer_bytes"]
                                         / ours["flatbuffer_bytes"],
    }
    atomic.write_json(args.output, result)
    print(f"bireal18 / larq-zoo BiRealNet: size {size_ratio:.3f}x (target <= {SIZE_TARGET}), "
          f"host latency {latency_ratio:.3f}x (target <= {LATENCY_TARGET}) -> {args.output}")


if __name__ == "__main__":
    main()
