"""Training speed, measured side by side in one run on this machine:

1. **vs larq-zoo**: images/s of ``bireal18`` through bnnzoo's default training
   path (the precision ``auto`` picks here, XLA as ``--xla auto`` decides,
   the recipe's optimiser) against larq-zoo's ``BiRealNet`` with a plain
   ``model.fit``, same real images (Fashion-MNIST resized to RGB), same input
   and batch: 72x72x3 batch 64 and 224x224x3 batch 32. Above 64 px both are
   the same architecture (ImageNet stem). Targets: >= 2.5x where the CPU has
   native bf16, >= 1.5x in float32.
2. **Ablation**: ``bireal18`` at 72 px in float32 and bfloat16, with and
   without XLA.
3. **Binary overhead**: a training step of ``bireal18`` and of
   ``siman_resnet18`` against their real twin ``resnet18`` (same layout, same
   precision, no XLA), 28x28x1, batch 64. Target: <= 1.15x.

Sides alternate for ``--repeats`` rounds and each side's median is kept: a
shared 2-core machine is noisy, ratios measured in one run less so.

    python benchmarks/training_throughput.py

Writes ``benchmarks/results/training_throughput.json`` (atomically), with the
CPU and what it computes natively.
"""

import argparse
import dataclasses
import datetime
import statistics
import sys
import time
from pathlib import Path

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow loads)

import larq_zoo
import numpy as np
import tensorflow as tf

from bnnzoo import atomic, datasets
from bnnzoo.runs import package_versions
from bnnzoo.training import TrainConfig, hardware, optimisation
from bnnzoo.training.config import resolve
from bnnzoo.training.run import build_model, compile_model, use_xla

RESULTS = Path(__file__).parent / "results" / "training_throughput.json"
TARGETS = {"vs_larq_zoo_bf16": 2.5, "vs_larq_zoo_float32": 1.5, "binary_over_twin": 1.15}


class StepTimer(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def fit_images_per_second(model, data, steps, warmup, batch_size):
    timer = StepTimer()
    model.fit(data, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0)
    return steps * batch_size / (timer.ends[-1] - timer.ends[warmup - 1])


def config_for(data, model, size, channels, batch, **overrides):
    config = resolve(TrainConfig(model=model, input_size=size, batch_size=batch, epochs=1,
                                 **overrides), data)
    config.input_shape = (size, size, channels)
    return config


def ours(config):
    config = dataclasses.replace(config, xla="on" if use_xla(config)[0] else "off")
    model = build_model(config)
    compile_model(model, config)
    return model, config


def larq_zoo_plain(config):
    model = larq_zoo.literature.BiRealNet(input_shape=tuple(config.input_shape), weights=None,
                                          num_classes=config.num_classes)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate),
                  loss=optimisation.make_loss(config.label_smoothing), metrics=optimisation.make_metrics())
    return model


def alternate(sides: dict, measure, repeats: int) -> dict:
    """Each side measured once per round, rounds alternating; medians and rounds."""
    measured = {name: [] for name in sides}
    for round_ in range(repeats):
        for name, side in sides.items():
            measured[name].append(measure(side, first=round_ == 0))
            print(f"round {round_ + 1}: {name:<28} {measured[name][-1]:8.3f}", flush=True)
    return {name: {"median": statistics.median(v), "rounds": v} for name, v in measured.items()}


def vs_larq_zoo(data, size, batch, args):
    config = config_for(data, "bireal18", size, 3, batch)
    pipeline = datasets.pipeline(data, "train", image_shape=config.input_shape, batch_size=batch,
                                 training=True)
    model, chosen = ours(config)
    sides = {"bnnzoo": model, "larq_zoo_fit": larq_zoo_plain(config)}
    found = alternate(sides, lambda m, first: fit_images_per_second(
        m, pipeline, args.steps, args.warmup if first else 1, batch), args.repeats)
    ratio = found["bnnzoo"]["median"] / found["larq_zoo_fit"]["median"]
    target = TARGETS["vs_larq_zoo_bf16" if chosen.precision == "bfloat16" else "vs_larq_zoo_float32"]
    return {"input_shape": list(config.input_shape), "batch_size": batch,
            "bnnzoo": {"images_per_second": found["bnnzoo"]["median"],
                       "rounds": found["bnnzoo"]["rounds"], "precision": chosen.precision,
                       "xla": chosen.xla, "optimizer": chosen.recipe["optimizer"]},
            "larq_zoo_fit": {"images_per_second": found["larq_zoo_fit"]["median"],
                             "rounds": found["larq_zoo_fit"]["rounds"], "precision": "float32",
                             "xla": "off"},
            "ratio": ratio, "target": target, "meets_target": ratio >= target}


def ablation(data, args):
    size, batch = args.ablation_size, args.ablation_batch
    base = config_for(data, "bireal18", size, 3, batch)
    pipeline = datasets.pipeline(data, "train", image_shape=base.input_shape, batch_size=batch,
                                 training=True)
    sides = {}
    for precision in ("float32", "bfloat16"):
        for xla in ("off", "on"):
            config = dataclasses.replace(base, precision=precision, xla=xla)
            sides[f"{precision}_xla_{xla}"] = model = build_model(config)
            compile_model(model, config)
    found = alternate(sides, lambda m, first: fit_images_per_second(
        m, pipeline, args.steps, args.warmup if first else 1, batch), args.repeats)
    return {"model": "bireal18", "input_shape": list(base.input_shape), "batch_size": batch,
            "images_per_second": {k: v["median"] for k, v in found.items()},
            "rounds": {k: v["rounds"] for k, v in found.items()}}


def step_seconds(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def binary_overhead(data, args, precision):
    size, batch = 28, args.overhead_batch
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, size, size, 1), dtype=np.float32))
    y = tf.one_hot(rng.integers(0, 10, batch), 10)
    sides = {}
    for name in ("resnet18", "bireal18", "siman_resnet18"):
        config = config_for(data, name, size, 1, batch, precision=precision, xla="off")
        sides[name] = model = build_model(config)
        compile_model(model, config)
        model.train_on_batch(x, y)  # traces
    found = alternate(sides, lambda m, first: step_seconds(m, x, y, args.steps), args.repeats)
    twin = found["resnet18"]["median"]
    return {"input_shape": [size, size, 1], "batch_size": batch, "precision": precision,
            "xla": "off",
            "seconds_per_step": {k: v["median"] for k, v in found.items()},
            "rounds": {k: v["rounds"] for k, v in found.items()},
            "bireal18_over_resnet18": found["bireal18"]["median"] / twin,
            "siman_resnet18_over_resnet18": found["siman_resnet18"]["median"] / twin,
            "target": TARGETS["binary_over_twin"],
            "meets_target": found["bireal18"]["median"] / twin <= TARGETS["binary_over_twin"]}


def markdown_table(result: dict) -> str:
    """docs/measurements.md's tables of a results file (a test holds
    docs/measurements.md to it)."""
    lines = ["| input, batch | bnnzoo `bireal18` (default path) | larq-zoo `BiRealNet` + `fit` | "
             "ratio | target |", "| --- | --- | ---: | ---: | --- |"]
    for r in result["vs_larq_zoo"]:
        shape = "x".join(map(str, r["input_shape"]))
        ours = r["bnnzoo"]
        lines.append(f"| {shape}, {r['batch_size']} | {ours['images_per_second']:.1f} images/s "
                     f"({ours['precision']}, XLA {ours['xla']}) | "
                     f"{r['larq_zoo_fit']['images_per_second']:.1f} images/s | "
                     f"**{r['ratio']:.2f}x** | >= {r['target']}x: "
                     f"{'met' if r['meets_target'] else '**not met**'} |")
    ablation = result["ablation"]
    shape = "x".join(map(str, ablation["input_shape"]))
    lines += ["", f"| `bireal18`, {shape}, batch {ablation['batch_size']} | images/s |",
              "| --- | ---: |"]
    lines += [f"| {name.replace('_xla_', ', XLA ')} | {value:.1f} |"
              for name, value in ablation["images_per_second"].items()]
    lines += ["", "| precision (28x28x1, batch 64, no XLA) | `bireal18` / `resnet18` | "
              "`siman_resnet18` / `resnet18` | target |", "| --- | ---: | ---: | --- |"]
    for r in result["binary_overhead"]:
        lines.append(f"| {r['precision']} | **{r['bireal18_over_resnet18']:.2f}x** | "
                     f"{r['siman_resnet18_over_resnet18']:.2f}x | <= {r['target']}x "
                     f"(`bireal18`): {'met' if r['meets_target'] else '**not met**'} |")
    return "\n".join(lines)


def parse_sizes(text):
    try:
        return [tuple(int(n) for n in pair.split(":")) for pair in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("sizes are SIZE:BATCH[,SIZE:BATCH...]") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[(72, 64), (224, 32)],
                        help="input sizes and batches against larq-zoo (> 64 px)")
    parser.add_argument("--ablation-size", type=int, default=72)
    parser.add_argument("--ablation-batch", type=int, default=64)
    parser.add_argument("--overhead-batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (XLA compiles here)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds per side")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one round")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.ablation_size, args.ablation_batch = [(72, 4)], 72, 4
        args.overhead_batch, args.steps, args.warmup, args.repeats = 4, 1, 1, 1
    if any(size <= 64 for size, _ in args.sizes) or args.ablation_size <= 64:
        parser.error("sizes must exceed 64 px: below, bireal18 uses the small-image stem and "
                     "larq-zoo's network differs.")

    data = datasets.load("fashion_mnist")
    precision = hardware.resolve_precision("auto")
    result = {
        "benchmark": "training speed: bireal18 (bnnzoo's default path) vs larq_zoo BiRealNet + "
                     "model.fit; precision and XLA ablation; binary nets against their twin",
        "command": " ".join(["python benchmarks/training_throughput.py", *(argv or sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "machine": hardware.describe(),
        "versions": package_versions(),
        "auto_precision": precision,
        "steps_per_round": args.steps, "rounds": args.repeats,
        "vs_larq_zoo": [vs_larq_zoo(data, size, batch, args) for size, batch in args.sizes],
        "ablation": ablation(data, args),
        "binary_overhead": [binary_overhead(data, args, p) for p in
                            dict.fromkeys((precision, "float32"))],
    }
    atomic.write_json(args.output, result)
    for row in result["vs_larq_zoo"]:
        print(f"{row['input_shape']} batch {row['batch_size']}: bnnzoo {row['bnnzoo']['precision']}, "
              f"XLA {row['bnnzoo']['xla']} / larq-zoo + fit: {row['ratio']:.2f}x "
              f"(target {row['target']}x)")
    for row in result["binary_overhead"]:
        print(f"{row['precision']}: bireal18 / resnet18 {row['bireal18_over_resnet18']:.2f}x, "
              f"siman_resnet18 / resnet18 {row['siman_resnet18_over_resnet18']:.2f}x "
              f"(target <= {row['target']}x)")
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
