"""Threads of LCE's interpreter for evaluation: milliseconds per image with 1 and 2.

Parity and ``evaluate`` run a flatbuffer image by image in LCE's interpreter
(``bnnzoo.export.parity``); this measures which thread count does that faster
here, for ``bireal18`` flatbuffers (untrained: speed does not depend on the
weights) at 14x14x1, 64x64x1 and 224x224x3, 10 classes. The thread counts
alternate for ``--repeats`` rounds in one process; each count's median is kept.
``bnnzoo.export.parity.EVALUATION_THREADS`` is the default these figures chose.

    python benchmarks/interpreter_threads.py

Writes ``benchmarks/results/interpreter_threads.json`` (atomically), with the CPU.
"""

import argparse
import datetime
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "interpreter_threads.json"
SHAPES = {14: (14, 14, 1), 64: (64, 64, 1), 224: (224, 224, 3)}


def markdown_table(result: dict) -> str:
    """docs/measurements.md's table of a results file (``figures.py`` holds
    the document to it)."""
    lines = ["| input | 1 thread | 2 threads | 2 vs 1 |", "| --- | ---: | ---: | ---: |"]
    for row in result["rows"]:
        ratio = row["two_threads_vs_one"]
        verdict = f"{ratio:.2f}x slower" if ratio >= 1 else f"{1 / ratio:.2f}x faster"
        lines.append(f"| {'x'.join(map(str, row['input_shape']))} | "
                     f"{row['ms_per_image']['1']:.2f} ms | {row['ms_per_image']['2']:.2f} ms | "
                     f"{verdict} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=50, help="images per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import numpy as np

    from bnnzoo import atomic, zoo
    from bnnzoo.export import export_flatbuffer, parity
    from machine import machine  # benchmarks/machine.py, beside this script

    rows = []
    for side, shape in SHAPES.items():
        buf = export_flatbuffer(zoo.get_model("bireal18", input_shape=shape, num_classes=10))
        images = np.random.default_rng(0).uniform(-1, 1, (args.images, *shape)).astype(np.float32)
        times = {1: [], 2: []}
        for _ in range(args.repeats):
            for threads in times:
                runner = parity.interpreter(buf, threads)
                parity.predict(runner, images[:2])  # warm-up
                start = time.perf_counter()
                parity.predict(runner, images)
                times[threads].append((time.perf_counter() - start) / len(images) * 1e3)
        ms = {threads: statistics.median(t) for threads, t in times.items()}
        rows.append({"model": "bireal18", "input_shape": list(shape),
                     "ms_per_image": {str(t): round(v, 3) for t, v in ms.items()},
                     "two_threads_vs_one": round(ms[2] / ms[1], 3)})
        print(f"{side:>3} px: 1 thread {ms[1]:.2f} ms/image, 2 threads {ms[2]:.2f} "
              f"({ms[2] / ms[1]:.2f}x)", flush=True)
    result = {
        "command": "python benchmarks/interpreter_threads.py",
        "date": datetime.date.today().isoformat(), "machine": machine(),
        "images_per_timing": args.images, "repeats": args.repeats, "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.output, result)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
