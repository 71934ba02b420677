"""Every measured figure in README.md and docs/*.md, rendered from the results
file that holds it.

A document marks each figure with the results file it comes from (a path from
the repository root, or a file name in benchmarks/results/):

- a block, rendered whole from the file by a named renderer (``BLOCKS``: a
  table, with its notes):

      <!-- accuracy-table: benchmarks/results/accuracy_fashion_mnist.json -->
      ...
      <!-- /accuracy-table -->

- one value in a sentence: its path in the file (keys and list indexes joined
  by dots) and its format, an optional scale (``*100``, ``/60``) and a Python
  format spec after ``:`` (none: the value as it is):

      **<!-- figure: startup_time.json tracing.0.start_speedup :.1f -->6.0<!-- /figure -->x**

``--write`` renders every marker again from its file; ``--check`` fails, naming
the document, the line and the marker, where the text differs (a test runs the
same check). A figure that no results file holds has no place in the documents.

    python benchmarks/figures.py --check
    python benchmarks/figures.py --write
"""

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Callable, NamedTuple, Optional

from bnnzoo import atomic

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

# A block's kind -> "module:function" (in benchmarks/) rendering its results file.
BLOCKS = {
    "accuracy-table": "accuracy_table:render",
    "readme-job-table": "readme_job:markdown_table",
    "throughput-tables": "training_throughput:markdown_table",
    "startup-table": "startup_time:markdown_table",
    "threads-table": "interpreter_threads:markdown_table",
    "size-latency-table": "export_size_latency:markdown_table",
    "int8-edges-table": "int8_edges:markdown_table",
    "family-table": "family_export:markdown_table",
    "reactnet-parts-table": "reactnet_parts:markdown_table",
    "deployment-table": "deployment_table:render",
    "deployment-rows": "figures:deployment_rows",
}
BLOCK = re.compile(r"<!-- (?P<kind>[a-z0-9-]+): (?P<file>\S+) -->\n"
                   r"(?P<body>.*?)<!-- /(?P=kind) -->", re.S)
FIGURE = re.compile(r"<!-- figure: (?P<file>\S+) (?P<path>\S+)(?: (?P<format>\S+))? -->"
                    r"(?P<body>[^\n]*?)<!-- /figure -->")
FORMAT = re.compile(r"(?:(?P<op>[*/])(?P<factor>[0-9.e]+))?(?::(?P<spec>\S*))?")


class FigureError(ValueError):
    """A marker that names no results file, no value in it or no renderer."""


def documents(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def results_file(name: str, root: Path = REPO) -> Path:
    return root / name if "/" in name else root / RESULTS.relative_to(REPO) / name


def load(name: str, cache: dict[str, dict], root: Path) -> dict:
    if name not in cache:
        path = results_file(name, root)
        if not path.is_file():
            raise FigureError(f"no results file {path.relative_to(root)}")
        try:
            cache[name] = json.loads(path.read_text())
        except ValueError as err:
            raise FigureError(f"{path.relative_to(root)} is not JSON: {err}") from None
    return cache[name]


def value_at(data, path: str):
    """``data``'s value at ``path``: keys and list indexes joined by dots."""
    value = data
    for key in path.split("."):
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, ValueError, TypeError):
            raise FigureError(f"no value at {path!r}") from None
    return value


def formatted(value, fmt: Optional[str]) -> str:
    """``value`` scaled and formatted by ``fmt`` (``*100:.2f``, ``/60:.1f``, ``:,``)."""
    match = FORMAT.fullmatch(fmt or "")
    if not match:
        raise FigureError(f"format {fmt!r} is not [*N|/N][:SPEC]")
    if match["op"]:
        factor = float(match["factor"])
        value = value * factor if match["op"] == "*" else value / factor
    return format(value, match["spec"] or "")


def renderer(kind: str) -> Callable[[dict], str]:
    if kind not in BLOCKS:
        raise FigureError(f"no renderer for {kind!r} (figures.BLOCKS)")
    module, function = BLOCKS[kind].split(":")
    return getattr(importlib.import_module(module), function)


def deployment_rows(table: dict) -> str:
    """README's deployment table without its notes (docs/measurements.md has them)."""
    from deployment_table import render
    return render(table).split("\n\n")[0]


class Problem(NamedTuple):
    """A marker whose text is not its results file's (``stale``: --write
    mends it) or that cannot be rendered at all."""
    line: int
    marker: str
    what: str
    stale: bool = False

    def where(self, document: str) -> str:
        return f"{document}:{self.line}: {self.marker}: {self.what}"


def _line(match) -> int:
    return match.string.count("\n", 0, match.start()) + 1


def unclosed(text: str) -> list[Problem]:
    """A marker that opens and never closes (on its own line, for a single
    figure) would be skipped silently: one problem each."""
    whole = {m.start() for m in FIGURE.finditer(text)} | {m.start() for m in BLOCK.finditer(text)}
    opening = re.compile("<!-- (?:figure|{}): ".format("|".join(map(re.escape, BLOCKS))))
    return [Problem(_line(m), text[m.start():].partition("\n")[0][:70],
                    "not closed, or not a marker of this module's forms")
            for m in opening.finditer(text) if m.start() not in whole]


def rewrite(text: str, root: Path = REPO, retarget: Optional[dict[str, str]] = None,
            kinds=None) -> tuple[str, list[Problem]]:
    """``text`` with every marker rendered again from the results files under
    ``root``, and its problems. ``retarget`` names another results file for a
    kind of block; ``kinds`` limits the blocks rendered (and then leaves single
    figures alone)."""
    cache: dict[str, dict] = {}
    problems = []

    def figure(match):
        head = match.group(0)[:match.group(0).index("-->") + 3]
        try:
            data = load(match["file"], cache, root)
            body = formatted(value_at(data, match["path"]), match["format"])
        except FigureError as error:
            problems.append(Problem(_line(match), head, str(error)))
            return match.group(0)
        if body != match["body"]:
            problems.append(Problem(_line(match), head, f"reads {match['body']!r}, "
                                    f"{match['file']} gives {body!r}", stale=True))
        return f"{head}{body}<!-- /figure -->"

    def block(match):
        kind, name = match["kind"], (retarget or {}).get(match["kind"], match["file"])
        head = match.group(0).partition("\n")[0]
        if kinds is not None and kind not in kinds:
            return match.group(0)
        try:
            body = renderer(kind)(load(name, cache, root)).rstrip("\n") + "\n"
        except FigureError as error:
            problems.append(Problem(_line(match), head, str(error)))
            return match.group(0)
        if body != match["body"] or name != match["file"]:
            problems.append(Problem(_line(match), head, f"not the rendering of {name}",
                                    stale=True))
        return f"<!-- {kind}: {name} -->\n{body}<!-- /{kind} -->"

    updated = text
    if kinds is None:  # first: a single figure never changes the lines' count
        updated = FIGURE.sub(figure, updated)
        problems += unclosed(text)
    updated = BLOCK.sub(block, updated)
    return updated, sorted(problems)


def run(write: bool, retarget: Optional[dict[str, str]] = None, kinds=None,
        root: Path = REPO) -> list[tuple[str, Problem]]:
    """Every document's problems, with the document's path from ``root``;
    with ``write``, the documents rendered again (a marker that cannot be
    rendered is left as it is). ``root``: the repository, or a copy of its
    documents and results files."""
    problems = []
    for path in documents(root):
        text = path.read_text()
        updated, found = rewrite(text, root, retarget, kinds)
        problems += [(str(path.relative_to(root)), problem) for problem in found]
        if write and updated != text:
            atomic.write_text(path, updated)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true",
                        help="fail when a marked figure is not its results file's")
    action.add_argument("--write", action="store_true",
                        help="render every marked figure again from its results file")
    parser.add_argument("--root", type=Path, default=REPO,
                        help="a copy of the repository's documents and results files [this one]")
    args = parser.parse_args(argv)
    problems = run(args.write, root=args.root.resolve())
    shown = [(d, p) for d, p in problems if args.check or not p.stale]
    for document, problem in shown:
        print(problem.where(document), file=sys.stderr)
    if args.check and problems:
        print("Not the rendering of their results files (python benchmarks/figures.py --write)",
              file=sys.stderr)
    return 1 if shown else 0


if __name__ == "__main__":
    sys.exit(main())
