"""Every registered model's footprint at its default input, without building it.

Counting ``bireal152`` or ``resnet152`` means building it at 224 px: listing
the whole registry that way takes minutes. So ``footprints.json`` beside this
file holds the counts, each row under what decides them, the digest of the
model's built layers (``layers``: :func:`.model_digest.layers_digest`), and
the whole table under the versions of the stack that builds and counts them
(TensorFlow, tf-keras, larq). A comment, a docstring or a refactor that builds
the same layers leaves every digest, and so the table, as it was.

``cli.py models`` reads the table, building nothing, while the stack is the one
it was counted with; with another stack (or for a model the table lacks) it
counts the models it lists by building them and keeps their rows in
``$XDG_CACHE_HOME/bnnzoo/footprints.json`` (``~/.cache`` by default), so only
the first listing pays. Whether the table holds for the code is
:func:`stale_models`' question, which the test suite asks: it builds each
model and compares digests, unless the code is, comments and docstrings
aside, the code the table was checked against (``sources``:
:func:`.model_digest.sources_digest`), a shortcut only.

    python -m bnnzoo.export.footprint_table           # rebuild every model, rewrite the table
    python -m bnnzoo.export.footprint_table --check   # rebuild every model, compare with it
"""

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

import tensorflow as tf

from bnnzoo import atomic, runs, zoo

from .footprint import footprint
from .model_digest import code_digest, layers_digest, sources_digest

TABLE = Path(__file__).with_name("footprints.json")
STACK = ("tensorflow", "tf-keras", "larq")
REGENERATE = "python -m bnnzoo.export.footprint_table"


def cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "bnnzoo" / "footprints.json"


def stack_versions() -> dict[str, str]:
    """The installed versions of the packages that build and count the models,
    and the digest of the code that counts them (``footprint.py``): a change
    to either makes the table another stack's."""
    found = {"footprint.py": code_digest(Path(__file__).with_name("footprint.py").read_text())}
    for name in STACK:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    return found


@contextlib.contextmanager
def _built(name: str) -> Iterator[tf.keras.Model]:
    """``name`` built at its default input in float32 (whatever precision the
    process uses), its memory given back afterwards."""
    with runs.float32_layers():
        model = zoo.get_model(name)
    try:
        yield model
    finally:
        tf.keras.backend.clear_session()  # 224 px ResNet-152s add up


def count_model(name: str) -> dict:
    """Build ``name`` at its default input and count it: the table's row,
    with the digest of the layers it counted."""
    with _built(name) as model:
        return {"layers": layers_digest(model),
                "input_shape": [int(d) for d in model.input_shape[1:]],
                "num_classes": int(model.output_shape[-1]),
                **footprint(model).as_dict()}


def read_table(path: Path) -> dict:
    """``{"stack": versions, "sources": digest, "models": {name: row}}``; empty
    if absent or unreadable."""
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def stale_models(table: dict, names: Optional[Sequence[str]] = None) -> list[str]:
    """The models among ``names`` (default: the registry) whose row in
    ``table`` was not counted on the layers they build now, or that have no
    row. Each is built (in float32) unless the code is the one the table was
    checked against (its ``sources``)."""
    names = zoo.list_models() if names is None else list(names)
    rows = table.get("models", {})
    if table.get("sources") == sources_digest():
        return [name for name in names if name not in rows]
    stale = []
    for name in names:
        if name in rows:
            with _built(name) as model:
                if layers_digest(model) == rows[name].get("layers"):
                    continue
        stale.append(name)
    return stale


def _counts(row: dict) -> dict:
    return {key: value for key, value in row.items() if key != "layers"}


def model_footprints(names: Sequence[str], *,
                     note: Optional[Callable[[str], None]] = None) -> dict[str, dict]:
    """Each name's row: from the committed table while the stack is the one it
    was counted with, else from the user's cache (counted with this stack and
    this code), else counted and cached. ``note`` is told once when models
    have to be built."""
    stack = stack_versions()
    table = read_table(TABLE)
    rows = dict(table.get("models", {})) if table.get("stack") == stack else {}
    cache = read_table(cache_path())
    key = {"stack": stack, "sources": sources_digest()}
    cached = cache.get("models", {}) if {k: cache.get(k) for k in key} == key else {}
    missing = [name for name in names if name not in rows and name not in cached]
    if missing:
        if note is not None:
            why = ("was counted with other versions of TensorFlow, tf-keras or larq, or "
                   "by other counting code"
                   if table.get("stack") != stack else "lacks them")
            note(f"Note: {TABLE.name} {why}: counting {len(missing)} model(s) by building "
                 f"them (`{REGENERATE}` updates the table).")
        for name in missing:
            cached[name] = count_model(name)
        try:
            atomic.write_json(cache_path(), {**key, "models": cached})
        except OSError:
            pass  # a read-only home: counted again next time
    return {name: _counts(rows[name] if name in rows else cached[name]) for name in names}


def describe_models(names: Optional[Sequence[str]] = None, *,
                    note: Optional[Callable[[str], None]] = None) -> list[dict]:
    """What ``cli.py models`` prints: for each name (default: the registry)
    its default input, footprint and the paper's figures. An unknown name is a
    ``KeyError`` naming the choices."""
    entries = [zoo.model_entry(name) for name in names or zoo.list_models()]
    footprints = model_footprints([entry.name for entry in entries], note=note)
    return [{"name": entry.name, **footprints[entry.name], "paper_top1": entry.paper_top1,
             "paper_top1_dataset": entry.paper_top1_dataset if entry.paper_top1 else None,
             "paper_flops": entry.paper_flops, "paper": entry.paper, "recipe": entry.recipe}
            for entry in entries]


def main(argv: Sequence[str]) -> int:
    check = "--check" in argv
    table = {"stack": stack_versions(), "sources": sources_digest(), "models": {}}
    for name in zoo.list_models():
        table["models"][name] = count_model(name)
        print(f"{name}: {table['models'][name]['params']:,} params", flush=True)
    if not check:
        atomic.write_json(TABLE, table)
        print(f"Wrote {TABLE}")
        return 0
    stored = read_table(TABLE)
    differ = [name for name, row in table["models"].items()
              if stored.get("models", {}).get(name) != row]
    if stored.get("stack") != table["stack"]:
        print(f"{TABLE} was counted with another stack: `{REGENERATE}` rewrites it.")
    if differ:
        print(f"Rows that differ from the built models: {', '.join(differ)}.")
    return 1 if differ or stored.get("stack") != table["stack"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
