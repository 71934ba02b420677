"""Every model of a family, trained on real data and exported bitpacked, in one run.

Families: ``bireal`` (``bireal18`` ... ``bireal152``, ``xnor_resnet18`` and
the real-valued twins ``resnet18`` ... ``resnet152``, which only train: they
have nothing to bitpack), ``siman`` (``siman_resnet18/34/20``,
``siman_resnet18_cifar``, ``siman_vgg_small``) and ``real2bin``
(``real2bin``, all four progressive stages, and ``real2bin_baseline``, both
of its stages). For each model, the same two calls the CLI makes, with the
model's own recipe:

1. ``training.train``: a short run on Fashion-MNIST (real images, offline),
   ``--input-size`` px (small-image stem), ``--steps`` steps of batch 32;
2. ``export.export_model(target="arm64")``: LCE conversion, every binary
   convolution matched to an ``LceBconv2d``, size against the 1-bit budget,
   Keras/LCE parity on 256 real test images.

Each row records the training loss and time, the LceBconv2d count against the
Keras model's binary convolutions, the flatbuffer's size, conversion time and
parity, and the model's figures at its default input shape from ``cli.py
models`` (parameters, 1-bit size, FLOPs: ``footprint``). For ``real2bin`` the network is also converted at its
default 224x224x3 input (untrained: operator shapes do not depend on weights)
and the flatbuffer's MACs split into binary, the gating branch's
``FULLY_CONNECTED`` operators and the rest, with the gates' pooling and
multiplying counted beside (``gating_224``). The test suite
exports compact stand-ins; this script converts the full networks (minutes
each for the deep ones).

    python benchmarks/family_export.py
    python benchmarks/family_export.py --models bireal101 bireal152 --steps 20
    python benchmarks/family_export.py --family siman
    python benchmarks/family_export.py --family real2bin --steps 20

Writes ``benchmarks/results/family_export.json`` (bireal) or
``siman_export.json`` (atomically); if a model fails to train or to export
fully bitpacked, writes ``*.failed.json`` instead and exits 1.
"""

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow loads)

import numpy as np
import tensorflow as tf

from bnnzoo import atomic, export, zoo
from bnnzoo.training import history
from bnnzoo.training import TrainConfig, train
from machine import machine  # benchmarks/machine.py, beside this script

RESULTS = Path(__file__).parent / "results"
OUTPUT = {"bireal": "family_export.json", "siman": "siman_export.json",
          "real2bin": "real2bin_export.json"}
BIREAL = ["bireal18", "bireal34", "bireal50", "bireal101", "bireal152", "xnor_resnet18"]
TWINS = {zoo.model_entry(name).twin for name in BIREAL} - {None}
FAMILIES = {
    "bireal": BIREAL + [zoo.model_entry(name).twin for name in BIREAL
                        if zoo.model_entry(name).twin],
    "siman": ["siman_resnet18", "siman_resnet34", "siman_resnet20", "siman_resnet18_cifar",
              "siman_vgg_small"],
    "real2bin": ["real2bin", "real2bin_baseline"],
}
BINARY = [name for names in FAMILIES.values() for name in names
          if name not in TWINS]


def mac_split(model: tf.keras.Model) -> dict:
    """MACs per image of ``model``'s flatbuffer: binary, the gating branch's dense
    layers (every FULLY_CONNECTED but the classifier, the last), all float; and
    the gates' element-wise work (the global pool's additions over its H W C_in
    input, the multiply's H W C_out products), counted from the Keras layers."""
    ops = export.operators(export.export_flatbuffer(model, "arm64"))
    dense = [op.macs for op in ops if op.name == "FULLY_CONNECTED"]
    binary = sum(op.macs for op in ops if op.binary)
    floats = sum(op.macs for op in ops if not op.binary)
    gating = sum(dense[:-1])
    elementwise = sum(
        int(np.prod((layer.input_shape if layer.name.endswith("_scaling_pool_pool")
                     else layer.output_shape)[1:]))
        for layer in model.layers
        if layer.name.endswith(("_scaling_pool_pool", "_scaling_multiplication")))
    flops = floats + binary / 64
    return {"binary_macs": binary, "float_macs": floats, "gating_macs": gating,
            "gating_elementwise_ops": elementwise, "flops": flops,
            "gating_share_of_flops": gating / flops,
            "gating_share_with_elementwise": (gating + elementwise) / (flops + elementwise)}


def row(name: str, folder: Path, args) -> dict:
    model = zoo.get_model(name)  # its default input shape and classes
    full = export.footprint(model)
    gating = mac_split(model) if name.startswith("real2bin") else None
    tf.keras.backend.clear_session()
    config = TrainConfig(model=name, dataset="fashion_mnist", input_size=args.input_size,
                         epochs=1, steps_per_epoch=args.steps, batch_size=32,
                         validation_steps=4, xla="on" if args.xla else "off")
    start = time.perf_counter()
    run_dir = train(config, output=folder / name, verbose=0)
    train_seconds = time.perf_counter() - start
    last_stage = sorted(p.parent for p in run_dir.glob("*/history.json"))
    (epoch,) = history.read_history(last_stage[-1] if last_stage else run_dir)
    result = {
        "footprint": {"input_shape": list(model.input_shape[1:]),
                      "num_classes": int(model.output_shape[-1]),
                      "params": full.params, "binary_params": full.binary_params,
                      "one_bit_mbytes": round(full.size_1bit_bytes / 2**20, 2),
                      "flops": full.flops, "binary_macs": full.binary_macs,
                      "float_macs": full.float_macs},
        "train": {"steps": args.steps, "input_size": args.input_size, "seconds": round(train_seconds),
                  "loss": epoch["loss"], "val_accuracy": epoch.get("val_accuracy")},
        **({"gating_224": gating} if gating else {}),
    }
    if name not in BINARY:
        return result
    tf.keras.backend.clear_session()
    start = time.perf_counter()
    path, report = export.export_model(run_dir, target="arm64", min_agreement=0.0)
    export_seconds = time.perf_counter() - start
    return {
        **result,
        "export": {"seconds": round(export_seconds),
                   "binary_convolutions": report["binary_convolutions"],
                   "operators": report["operators"], "size": report["size"],
                   "binary_mac_share": report["macs"]["binary_share"],
                   "parity_agreement": report["parity"]["top1_agreement"],
                   "keras_noise_floor_agreement": report["parity"]["keras_noise_floor_agreement"]},
    }


def markdown_table(result: dict) -> str:
    """docs/measurements.md's table of a results file, one row per exported
    model (``figures.py`` holds the document to it)."""
    lines = ["| model | binary convs → `LceBconv2d` | flatbuffer | vs 1-bit budget | binary MACs "
             "| top-1 agreement (Keras vs itself under noise) | training steps: loss, validation "
             "top-1 | train (all stages) / export |",
             "| --- | --- | ---: | ---: | ---: | --- | --- | ---: |"]
    for name, row in result["rows"].items():
        if "export" not in row:  # a real-valued twin: trained, nothing to bitpack
            continue
        export, trained = row["export"], row["train"]
        convs = export["binary_convolutions"]
        lines.append(
            f"| `{name}` | {convs['keras']} → {convs['lce_bconv2d']} | "
            f"{export['size']['flatbuffer_bytes']:,} B | "
            f"{export['size']['vs_one_bit_budget']:.3f}x | "
            f"{100 * export['binary_mac_share']:.1f} % | {100 * export['parity_agreement']:.2f} % "
            f"({100 * export['keras_noise_floor_agreement']:.2f} %) | {trained['steps']}: "
            f"{trained['loss']:.2f}, {100 * trained['val_accuracy']:.1f} % | "
            f"{trained['seconds']} s / {export['seconds']} s |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="bireal")
    parser.add_argument("--models", nargs="+", choices=sorted(set().union(*FAMILIES.values())),
                        help="a subset of the family (default: all of it)")
    parser.add_argument("--input-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30, help="training steps (batch 32)")
    parser.add_argument("--xla", action="store_true", help="train with XLA (--xla on)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    args.models = args.models or FAMILIES[args.family]
    if set(args.models) - set(FAMILIES[args.family]):
        parser.error(f"--models must be models of the {args.family} family: "
                     f"{', '.join(FAMILIES[args.family])}")
    args.output = args.output or RESULTS / OUTPUT[args.family]

    rows, failed = {}, []
    with tempfile.TemporaryDirectory(prefix="bnnzoo-family-") as folder:
        for name in args.models:
            try:
                rows[name] = row(name, Path(folder), args)
            except Exception as error:  # recorded; the other models still run
                rows[name] = {"error": f"{type(error).__name__}: {error}"}
                failed.append(name)
            result = rows[name]
            if "error" in result:
                print(f"{name:<14} FAILED {result['error']}", flush=True)
            elif "export" not in result:
                print(f"{name:<14} trained {result['train']['seconds']:>4} s (loss "
                      f"{result['train']['loss']:.3f})", flush=True)
            else:
                convs = result["export"]["binary_convolutions"]
                print(f"{name:<14} trained {result['train']['seconds']:>4} s (loss "
                      f"{result['train']['loss']:.3f}), {convs['lce_bconv2d']}/{convs['keras']} "
                      f"LceBconv2d, {result['export']['size']['flatbuffer_bytes']:,} bytes, parity "
                      f"{result['export']['parity_agreement']:.2%}, export "
                      f"{result['export']['seconds']} s", flush=True)
            tf.keras.backend.clear_session()
    # A failed run never replaces a good results file.
    output = args.output.with_suffix(".failed.json") if failed else args.output
    atomic.write_json(output, {
        "benchmark": f"{args.family} family: short training on Fashion-MNIST, then LCE "
                     "export (arm64) with the bitpacking proof and parity",
        "command": " ".join(["python benchmarks/family_export.py", *(argv or sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "rows": rows,
        "all_bitpacked": not failed and all(
            r["export"]["binary_convolutions"]["not_bitpacked"] == []
            for name, r in rows.items() if name in BINARY),
    })
    print(f"-> {output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
