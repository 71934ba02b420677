"""The accuracy table (``accuracy.py``'s results file) as markdown, in README.md
and docs/measurements.md.

Each document holds the table between ``<!-- accuracy-table: RESULTS.json -->``
and ``<!-- /accuracy-table -->``, naming the results file it renders (one kind
of ``figures.py``'s blocks); ``--write`` renders them again from that file (or
from the file given, which the marker then names), ``--check`` fails when they
differ (``figures.py --check``, which the suite runs, checks them too).

    python benchmarks/accuracy_table.py --check
    python benchmarks/accuracy_table.py --write benchmarks/results/accuracy_fashion_mnist.json

A row trained with two seeds shows both (seed a / seed b) and its top-1
mean, by which it is ranked. The aims (issue 17) are judged on the means:
the best binary net within 2 points of the real twin; Real-to-Binary >= its
strong baseline >= XNOR-style; Bi-Real >= XNOR-style; SiMaN >= XNOR-style;
every flatbuffer's top-1 within 0.1 point of its Keras model's.
"""

import argparse
import sys
from pathlib import Path

import figures
from accuracy_rows import BEST_BINARY_GAP_AIM, BY_NAME, FLATBUFFER_AIM, ORDER_AIMS

REPO = Path(__file__).resolve().parent.parent
KIND = "accuracy-table"  # its blocks in the documents, rendered by figures.py


def mean_top1(row: dict) -> float:
    return sum(r["keras_top1"] for r in row["runs"]) / len(row["runs"])


def summarise(result: dict) -> dict:
    """The best binary row, its gap to the twin, the largest flatbuffer
    difference and each aim met or missed (from the seeds' means)."""
    rows = {r["row"]: r for r in result["rows"]}
    top1 = {name: mean_top1(r) for name, r in rows.items()}
    binary = [n for n, r in rows.items() if r["ranked"] and BY_NAME[n].binary]
    best = max(binary, key=top1.get) if binary else None
    twin = "real-valued twin" if "real-valued twin" in rows else None
    gap = round(100 * (top1[twin] - top1[best]), 2) if best and twin else None
    worst = max(abs(run["top1_difference_points"]) for r in rows.values() for run in r["runs"])
    aims = {"flatbuffer_within_points": {"aim": FLATBUFFER_AIM, "measured": worst,
                                         "met": worst <= FLATBUFFER_AIM}}
    if gap is not None:
        aims["best_binary_gap_points"] = {"aim": BEST_BINARY_GAP_AIM, "measured": gap,
                                          "met": gap <= BEST_BINARY_GAP_AIM}
    for high, low in ORDER_AIMS:
        if high in rows and low in rows:
            points = round(100 * (top1[high] - top1[low]), 2)
            aims[f"{high} >= {low}"] = {"measured": points, "met": points >= 0}
    return {"best_binary": best, "best_binary_gap_points": gap,
            "max_flatbuffer_difference_points": worst, "aims": aims}


def _cells(runs: list[dict], key: str, fmt) -> str:
    return " / ".join(fmt(r[key]) for r in runs)


def _percent(value: float) -> str:
    return f"{100 * value:.2f}"


def markdown_table(result: dict) -> str:
    """One line per row; two seeds as "seed a / seed b"."""
    lines = ["| method | model | Keras top-1 % | Keras top-5 % | flatbuffer top-1 % | "
             "flatbuffer top-5 % | flatbuffer | host latency | training |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in result["rows"]:
        runs = row["runs"]
        name = row["row"] + (f" (from the {row['initialised_from']})"
                             if row["initialised_from"] else "")
        recipe = f", `{row['recipe']}` recipe" if row["recipe"] else ""
        top1 = _cells(runs, "keras_top1", _percent)
        if len(runs) > 1:
            top1 += f" (mean {_percent(mean_top1(row))})"
        lines.append(
            f"| {name} | `{row['model']}`{recipe} | {top1} | "
            f"{_cells(runs, 'keras_top5', _percent)} | "
            f"{_cells(runs, 'flatbuffer_top1', _percent)} | "
            f"{_cells(runs, 'flatbuffer_top5', _percent)} | "
            f"{_cells(runs, 'flatbuffer_bytes', lambda b: f'{b / 1024:,.0f} KB')} | "
            f"{_cells(runs, 'host_latency_ms', lambda ms: f'{ms:.2f} ms')} | "
            f"{_cells(runs, 'train_seconds', lambda s: f'{s / 60:.1f} min')} |")
    return "\n".join(lines)


def aims_lines(result: dict) -> str:
    lines = []
    for name, aim in result["aims"].items():
        verdict = "met" if aim["met"] else "**missed**"
        if name == "best_binary_gap_points":
            gap = aim["measured"]
            text = (f"best binary net ({result['best_binary']}) within {aim['aim']:g} points "
                    f"of the real twin: {abs(gap):.2f} points {'below' if gap >= 0 else 'above'} "
                    f"it, {verdict}")
        elif name == "flatbuffer_within_points":
            text = (f"every flatbuffer's top-1 within {aim['aim']:g} point of its Keras "
                    f"model's: at most {aim['measured']:.2f}, {verdict}")
        else:
            text = f"{name}: {aim['measured']:+.2f} points, {verdict}"
        lines.append(f"- {text}")
    return "\n".join(lines)


def render(result: dict) -> str:
    """The block between the markers: what was run, the table, the aims."""
    m = result["machine"]
    seeds = (f"; a second seed for {', '.join(result['second_seed_rows'])} (within "
             f"{result['seed_margin_points']:g} point of another row)"
             if result["second_seed_rows"] else "; no two ranked rows within "
             f"{result['seed_margin_points']:g} point, one seed each")
    if not result.get("complete", True):
        seeds = ""  # decided when every row is measured
    runs = [run for row in result["rows"] for run in row["runs"]]
    trained = sorted({(run.get("machine", m["cpu"]), run["precision"])
                      for run in runs if "precision" in run})  # older files: not recorded
    where = "; trained on " + ", ".join(f"{cpu} in {precision}" for cpu, precision in trained) \
        if trained else ""
    resumed = ""
    for command in dict.fromkeys(r["command"] for r in result.get("resumed", [])):
        alike = [r for r in result["resumed"] if r["command"] == command]
        resumed += (f"; resumed by `{command}` ("
                    + ", ".join(dict.fromkeys(r["date"] for r in alike)) + "; "
                    + ", ".join(dict.fromkeys(r["machine"] for r in alike)) + ")")
    unfinished = ""
    if not result.get("complete", True):
        pending = ", ".join(result["pending"]) or "second seeds"
        unfinished = (f"**Unfinished**: still to measure: {pending} (`{result['command']} "
                      "--resume` continues it). The aims below are judged on the rows "
                      "measured so far.\n\n")
    return (f"`{result['command']}` ({result['date']}, {m['cpu']}, {m['cores']} cores{resumed}): "
            f"{result['dataset']} at {result['input_size']} px, width {result['width']}, "
            f"{result['epochs']} epochs per run and per stage at batch {result['batch_size']}, "
            f"{result['rows'][0]['runs'][0]['test_images']:,} test images{seeds}{where}.\n\n"
            f"{unfinished}"
            f"{markdown_table(result)}\n\n{aims_lines(result)}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true")
    action.add_argument("--write", nargs="?", const="", metavar="RESULTS.json")
    args = parser.parse_args(argv)
    retarget = ({KIND: str(Path(args.write).resolve().relative_to(REPO))}
                if args.write else None)
    problems = figures.run(args.write is not None, retarget, kinds={KIND})
    for document, problem in problems:
        if args.check or not problem.stale:
            print(problem.where(document), file=sys.stderr)
    if args.check and problems:
        print("Not the rendering of their results files "
              "(python benchmarks/accuracy_table.py --write)", file=sys.stderr)
        return 1
    return 1 if any(not problem.stale for _, problem in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
