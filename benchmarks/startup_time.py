"""Start-up time: what a run pays before its first useful step, and an export
before its proof, side by side in one run on this machine.

1. **Tracing** (``bnnzoo.tracing``): building a model, its first training
   step and its first validation step (each one a trace, then the run), with
   AutoGraph kept out of tf-keras's own code (bnnzoo's default) against
   TensorFlow 2.16's behaviour, which converts tf-keras's engine, layers,
   losses and optimizers on every trace; and bnnzoo's path with Keras's own
   optimizer updates in place of its fused ones (``training.fused_optimizers``).
2. **Conversion** (``bnnzoo.export.convert``): ``export_flatbuffer``, which
   hands LCE a SavedModel of the inference function alone, against LCE's own
   ``convert_keras_model``, which saves the whole Keras object with every
   layer's call traced again; the flatbuffers must be byte-identical.

Every measurement runs in a fresh process (traces are cached per process);
sides alternate for ``--repeats`` rounds and each side's median is kept.

    python benchmarks/startup_time.py

Writes ``benchmarks/results/startup_time.json`` (atomically), with the CPU.
"""

import argparse
import datetime
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "startup_time.json"


def child_tracing(model_name: str, side: str, size: int, batch: int) -> dict:
    import numpy as np

    from bnnzoo import datasets
    from bnnzoo.training import TrainConfig
    from bnnzoo.training.config import resolve
    from bnnzoo.training.run import build_model, compile_model
    if side == "tensorflow_default":  # undo bnnzoo.tracing for the comparison
        from tensorflow.python.autograph.core import config
        config.CONVERSION_RULES = tuple(rule for rule in config.CONVERSION_RULES
                                        if not rule.matches("tf_keras"))
    if side in ("tensorflow_default", "keras_updates"):  # Keras's own optimizers
        import tensorflow as tf

        from bnnzoo.training import optimisation
        optimisation.FusedAdam, optimisation.FusedAdamW, optimisation.FusedSGD = (
            tf.keras.optimizers.Adam, tf.keras.optimizers.AdamW, tf.keras.optimizers.SGD)
    config = resolve(TrainConfig(model=model_name, input_size=size, batch_size=batch, epochs=1,
                                 steps_per_epoch=10, xla="off", precision="float32"),
                     datasets.load("fashion_mnist"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 1)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, batch)]
    start = time.perf_counter()
    model = build_model(config)
    compile_model(model, config)
    built = time.perf_counter()
    model.train_on_batch(x, y)
    stepped = time.perf_counter()
    model.test_on_batch(x, y)
    tested = time.perf_counter()
    model.train_on_batch(x, y)
    again = time.perf_counter()
    return {"build_s": built - start, "first_train_step_s": stepped - built,
            "first_test_step_s": tested - stepped, "second_train_step_s": again - tested}


def child_conversion(model_name: str, side: str, size: int, batch: int) -> dict:
    import larq_compute_engine as lce

    import tensorflow as tf

    from bnnzoo import zoo
    from bnnzoo.export import export_flatbuffer
    tf.keras.utils.set_random_seed(0)  # the same weights in every process: comparable bytes
    model = zoo.get_model(model_name, input_shape=(size, size, 1), num_classes=10, weights=None)
    start = time.perf_counter()
    buf = export_flatbuffer(model) if side == "bnnzoo" else lce.convert_keras_model(model)
    return {"seconds": time.perf_counter() - start, "bytes": len(buf),
            "sha256": hashlib.sha256(bytes(buf)).hexdigest()}


CHILDREN = {"tracing": child_tracing, "conversion": child_conversion}
SIDES = {"tracing": ("tensorflow_default", "keras_updates", "bnnzoo"),
         "conversion": ("lce_convert_keras_model", "bnnzoo")}


def in_child(kind: str, model: str, side: str, size: int, batch: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, model, side, str(size),
                          str(batch)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} {model} {side} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(kind: str, model: str, size: int, batch: int, repeats: int) -> dict:
    rounds = {side: [] for side in SIDES[kind]}
    for i in range(repeats):
        for side in SIDES[kind][::1 if i % 2 == 0 else -1]:
            rounds[side].append(in_child(kind, model, side, size, batch))
    medians = {side: {key: statistics.median(r[key] for r in runs)
                      for key in runs[0] if isinstance(runs[0][key], float)}
               for side, runs in rounds.items()}
    result = {"model": model, "input_shape": [size, size, 1], "batch_size": batch,
              "rounds": rounds, "median": medians}
    before, after = SIDES[kind][0], SIDES[kind][-1]
    if kind == "tracing":
        result["fused_updates_first_train_step_speedup"] = (
            medians["keras_updates"]["first_train_step_s"] / medians[after]["first_train_step_s"])
        result["first_train_step_speedup"] = (medians[before]["first_train_step_s"]
                                              / medians[after]["first_train_step_s"])
        result["start_speedup"] = (sum(medians[before][k] for k in
                                       ("build_s", "first_train_step_s", "first_test_step_s"))
                                   / sum(medians[after][k] for k in
                                         ("build_s", "first_train_step_s", "first_test_step_s")))
    else:
        result["speedup"] = medians[before]["seconds"] / medians[after]["seconds"]
        result["byte_identical"] = len({r["sha256"] for runs in rounds.values() for r in runs}) == 1
    return result


def markdown_table(result: dict) -> str:
    """docs/measurements.md's table of a results file (a test holds
    docs/measurements.md to it)."""
    start = ("build_s", "first_train_step_s", "first_test_step_s")
    lines = ["| model, input, batch | build + first training and validation step: "
             "TensorFlow's default | bnnzoo | speedup | conversion: LCE's `convert_keras_model` "
             "| bnnzoo | speedup | same bytes | first training step: Keras's optimizer updates "
             "| bnnzoo's fused ones | speedup |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for trace, conv in zip(result["tracing"], result["conversion"]):
        before, _, after = (sum(trace["median"][side][k] for k in start)
                            for side in SIDES["tracing"])
        shape = "x".join(map(str, trace["input_shape"]))
        lines.append(
            f"| `{trace['model']}`, {shape}, {trace['batch_size']} | {before:.1f} s | "
            f"{after:.1f} s | **{trace['start_speedup']:.1f}x** | "
            f"{conv['median']['lce_convert_keras_model']['seconds']:.1f} s | "
            f"{conv['median']['bnnzoo']['seconds']:.1f} s | **{conv['speedup']:.1f}x** | "
            f"{'yes' if conv['byte_identical'] else '**no**'} | "
            f"{trace['median']['keras_updates']['first_train_step_s']:.1f} s | "
            f"{trace['median']['bnnzoo']['first_train_step_s']:.1f} s | "
            f"**{trace['fused_updates_first_train_step_speedup']:.1f}x** |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="bireal18,siman_resnet20,real2bin",
                        help="comma-separated registry names")
    parser.add_argument("--input-size", type=int, default=28)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds per side")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow loads)
    if args.child:
        kind, model, side, size, batch = args.child
        print(json.dumps(CHILDREN[kind](model, side, int(size), int(batch))))
        return
    from bnnzoo import atomic
    from bnnzoo.training.hardware import describe
    from bnnzoo.runs import package_versions
    models = [m for m in args.models.split(",") if m]
    result = {
        "command": "python benchmarks/startup_time.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "machine": describe(),
        "versions": package_versions(),
        "tracing": [measure("tracing", m, args.input_size, args.batch_size, args.repeats)
                    for m in models],
        "conversion": [measure("conversion", m, args.input_size, args.batch_size, args.repeats)
                       for m in models],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.output, result)
    for row in result["tracing"]:
        print(f"{row['model']}: first training step {row['first_train_step_speedup']:.2f}x "
              f"faster ({row['fused_updates_first_train_step_speedup']:.2f}x from fused updates), "
              f"build + first steps {row['start_speedup']:.2f}x")
    for row in result["conversion"]:
        print(f"{row['model']}: conversion {row['speedup']:.2f}x faster, byte-identical: "
              f"{row['byte_identical']}")


if __name__ == "__main__":
    main()
