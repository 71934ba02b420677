"""What ReActNet's RSign and RPReLU cost on LCE: each network against the same graph without them.

For ``reactnet_a`` and ``reactnet_resnet18`` (untrained, their constant
initial weights moved as training moves them: ``deployment_table.as_trained``;
a zero shift would be folded away), at
224x224x3 and 1000 classes by default: the network as registered, and the
same layers with Bi-Real's plain approximate sign in
place of RSign (no shift: no ADD before ``LceQuantize``) and nothing in place
of RPReLU (no ADD, PRELU, ADD). Both are converted for arm64 and run single
image by single image in LCE's interpreter on this host, one thread,
alternating for ``--repeats`` rounds in one process; each file's median
milliseconds per image is kept, and the ratio of the two. On x86 LCE runs its
portable kernels: the ratio, not the milliseconds, is what carries to a device.

    python benchmarks/reactnet_parts.py
    python benchmarks/reactnet_parts.py --input-size 64 --repeats 3

Writes ``benchmarks/results/reactnet_parts.json`` (atomically), with the CPU
and the load average before and after.
"""

import argparse
import datetime
import os
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "reactnet_parts.json"
MODELS = ("reactnet_a", "reactnet_resnet18")


def without_parts(factory):
    """``factory``'s network with a plain sign for RSign and no RPReLU."""

    class Plain(factory):
        input_quantizer = "bireal_approx_sign"

        def activation(self, x):
            return x

    return Plain


def markdown_table(result: dict) -> str:
    """docs/measurements.md's table of a results file."""
    lines = ["| model | with RSign, RPReLU | without | cost | operators added |",
             "| --- | ---: | ---: | ---: | --- |"]
    for row in result["rows"]:
        added = ", ".join(f"{n} {k}" for k, n in row["operators_added"].items())
        lines.append(f"| `{row['model']}` | {row['ms_per_image']['with']:.1f} ms | "
                     f"{row['ms_per_image']['without']:.1f} ms | "
                     f"{row['with_vs_without']:.3f}x | {added} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--images", type=int, default=5, help="images per timing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import numpy as np

    from bnnzoo import atomic, zoo
    from bnnzoo.export import export_flatbuffer, flatbuffer, parity
    from bnnzoo.zoo import reactnet
    from deployment_table import as_trained  # beside this script
    from machine import machine

    shape = (args.input_size, args.input_size, 3)
    factories = {"reactnet_a": reactnet.ReActNetA, "reactnet_resnet18": reactnet.ReActResNet18}
    load_before = os.getloadavg()
    rows = []
    for name in MODELS:
        built = {"with": as_trained(zoo.get_model(name, input_shape=shape)),
                 "without": as_trained(without_parts(factories[name])(input_shape=shape).build())}
        buffers = {kind: export_flatbuffer(model, "arm64") for kind, model in built.items()}
        counts = {kind: flatbuffer.operator_histogram(buf) for kind, buf in buffers.items()}
        images = np.random.default_rng(0).uniform(-1, 1, (args.images, *shape)).astype(np.float32)
        runners = {kind: parity.interpreter(buf, 1) for kind, buf in buffers.items()}
        times = {kind: [] for kind in buffers}
        for _ in range(args.repeats):
            for kind, runner in runners.items():
                parity.predict(runner, images[:1])  # warm-up
                start = time.perf_counter()
                parity.predict(runner, images)
                times[kind].append((time.perf_counter() - start) / len(images) * 1e3)
        ms = {kind: statistics.median(t) for kind, t in times.items()}
        added = {op: counts["with"].get(op, 0) - counts["without"].get(op, 0)
                 for op in sorted(set(counts["with"]) | set(counts["without"]))
                 if counts["with"].get(op, 0) != counts["without"].get(op, 0)}
        rows.append({"model": name, "input_shape": list(shape),
                     "ms_per_image": {kind: round(v, 2) for kind, v in ms.items()},
                     "ms_spread": {kind: [round(min(t), 2), round(max(t), 2)]
                                   for kind, t in times.items()},
                     "with_vs_without": round(ms["with"] / ms["without"], 3),
                     "flatbuffer_bytes": {kind: len(buf) for kind, buf in buffers.items()},
                     "lce_bconv2d": {kind: c.get("LceBconv2d", 0) for kind, c in counts.items()},
                     "operators_added": added})
        print(f"{name}: {ms['with']:.1f} ms with RSign and RPReLU, {ms['without']:.1f} ms "
              f"without ({ms['with'] / ms['without']:.3f}x); added {added}", flush=True)
    result = {
        "command": "python benchmarks/reactnet_parts.py"
                   + (f" --input-size {args.input_size}" if args.input_size != 224 else ""),
        "date": datetime.date.today().isoformat(), "machine": machine(),
        "load_average": {"before": [round(v, 2) for v in load_before],
                         "after": [round(v, 2) for v in os.getloadavg()]},
        "threads": 1, "images_per_timing": args.images, "repeats": args.repeats, "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.output, result)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
