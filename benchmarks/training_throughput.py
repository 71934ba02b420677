"""Training throughput of bireal18 through bnnzoo's training path against
larq-zoo's BiRealNet trained with a plain ``model.fit``, in one run.

Both train on the same real images (Fashion-MNIST through bnnzoo's pipeline,
resized and repeated to RGB) at the same input size and batch. Above 64 px the
two networks are the same architecture (ImageNet stem), so the ratio measures
the training path: bnnzoo's recipe optimiser and XLA compilation against
larq-zoo + ``model.fit``. The sides alternate for ``--repeats`` rounds and each
side's median is kept; figures vary run to run on a shared machine, the ratio
less so.

    python benchmarks/training_throughput.py
    python benchmarks/training_throughput.py --input-size 224 --batch-size 32

Writes ``benchmarks/results/training_throughput.json`` (atomically).
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
import tensorflow as tf

from bnnzoo import atomic, datasets
from bnnzoo.training import TrainConfig, recipes
from bnnzoo.training.train import build_model, compile_model, resolve
from machine import machine  # benchmarks/machine.py, beside this script

RESULTS = Path(__file__).parent / "results" / "training_throughput.json"
TARGET = 1.8


class StepTimer(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def images_per_second(model, data, steps, warmup, batch_size):
    timer = StepTimer()
    model.fit(data, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0)
    return steps * batch_size / (timer.ends[-1] - timer.ends[warmup - 1])


def ours(config):
    model = build_model(config)
    compile_model(model, config)
    return model


def larq_zoo_plain(config):
    model = larq_zoo.literature.BiRealNet(input_shape=tuple(config.input_shape), weights=None,
                                          num_classes=config.num_classes)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.learning_rate),
        loss=recipes.make_loss(config.label_smoothing),
        metrics=recipes.make_metrics(),
    )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=72,
                        help="input side (> 64 px: both nets use the ImageNet stem)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (XLA compiles here)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds per side")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.input_size <= 64:
        parser.error("--input-size must exceed 64 px: below, bireal18 uses the small-image "
                     "stem and the two networks differ.")

    data = datasets.load("fashion_mnist")
    config = resolve(TrainConfig(model="bireal18", input_size=args.input_size,
                                 batch_size=args.batch_size, epochs=1), data)
    config.input_shape = (args.input_size, args.input_size, 3)  # as larq-zoo needs
    pipeline = datasets.pipeline(data, "train", image_shape=config.input_shape,
                                 batch_size=args.batch_size, training=True)

    no_xla = dataclasses.replace(config, jit_compile=False)
    sides = {"bnnzoo": ours(config), "bnnzoo_no_xla": ours(no_xla),
             "larq_zoo_fit": larq_zoo_plain(config)}
    measured = {name: [] for name in sides}
    for round_ in range(args.repeats):
        for name, model in sides.items():
            warmup = args.warmup if round_ == 0 else 1
            measured[name].append(images_per_second(model, pipeline, args.steps, warmup,
                                                    args.batch_size))
            print(f"round {round_ + 1}: {name:<14} {measured[name][-1]:7.1f} images/s", flush=True)
    median = {name: statistics.median(v) for name, v in measured.items()}
    ratio = median["bnnzoo"] / median["larq_zoo_fit"]
    result = {
        "benchmark": "training throughput, bireal18 (bnnzoo) vs larq_zoo.literature.BiRealNet + model.fit",
        "command": " ".join(["python benchmarks/training_throughput.py", *(argv or sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "input_shape": list(config.input_shape),
        "batch_size": args.batch_size,
        "timed_steps_per_round": args.steps,
        "rounds": args.repeats,
        "bnnzoo": {"images_per_second": median["bnnzoo"], "rounds": measured["bnnzoo"],
                   "xla": config.jit_compile, "optimizer": config.recipe["optimizer"]},
        "bnnzoo_no_xla": {"images_per_second": median["bnnzoo_no_xla"],
                          "rounds": measured["bnnzoo_no_xla"]},
        "xla_gain": median["bnnzoo"] / median["bnnzoo_no_xla"],
        "larq_zoo_fit": {"images_per_second": median["larq_zoo_fit"],
                         "rounds": measured["larq_zoo_fit"]},
        "ratio": ratio,
        "target": TARGET,
        "meets_target": ratio >= TARGET,
    }
    atomic.write_json(args.output, result)
    print(f"bnnzoo / larq-zoo + fit: {ratio:.2f}x (target {TARGET}x); XLA gain "
          f"{result['xla_gain']:.2f}x -> {args.output}")


if __name__ == "__main__":
    main()
