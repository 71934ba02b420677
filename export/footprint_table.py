"""Every registered model's footprint at its default input, without building it.

Counting ``bireal152`` or ``resnet152`` means building it at 224 px: listing
the whole registry that way takes minutes. The counts change only when the
code that defines the networks (``zoo/``, ``quantizers/``, ``footprint.py``)
or the stack that builds and counts them (TensorFlow, tf-keras, larq) does,
so ``footprints.json`` beside this file holds them, under a hash of exactly
that code and those versions (``code_hash``). A row is read from it only
while the hash is the current one; otherwise the model is built and counted,
and the row is kept in ``$XDG_CACHE_HOME/bnnzoo/footprints.json`` (``~/.cache``
by default) under the new hash, so only the first listing after a change pays.

    python -m bnnzoo.export.footprint_table           # rebuild every model, rewrite the table
    python -m bnnzoo.export.footprint_table --check   # rebuild every model, compare with it
"""

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from bnnzoo import atomic, quantizers, zoo

from .footprint import footprint

TABLE = Path(__file__).with_name("footprints.json")
VERSIONS = ("tensorflow", "tf-keras", "larq")
REGENERATE = "python -m bnnzoo.export.footprint_table"


def cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "bnnzoo" / "footprints.json"


def code_hash() -> str:
    """SHA-256 of the sources that define and count the networks (line endings
    normalised) and of the versions of the stack that builds them."""
    digest = hashlib.sha256()
    folders = (Path(zoo.__file__).parent, Path(quantizers.__file__).parent)
    files = [path for folder in folders for path in sorted(folder.glob("*.py"))]
    files.append(Path(__file__).with_name("footprint.py"))
    for path in files:
        digest.update(f"{path.parent.name}/{path.name}\n".encode())
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
    for name in VERSIONS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name}=={version}\n".encode())
    return digest.hexdigest()


def read_table(path: Path) -> dict:
    """``{"code": hash, "models": {name: row}}``; empty if absent or unreadable."""
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def count_model(name: str) -> dict:
    """Build ``name`` at its default input and count it: the table's row."""
    import tensorflow as tf

    model = zoo.get_model(name)
    row = {"input_shape": [int(d) for d in model.input_shape[1:]],
           "num_classes": int(model.output_shape[-1]),
           **footprint(model).as_dict()}
    del model
    tf.keras.backend.clear_session()  # 224 px ResNet-152s add up
    return row


def model_footprints(names: Sequence[str], *,
                     note: Optional[Callable[[str], None]] = None) -> Dict[str, dict]:
    """Each name's row: from the committed table or the user's cache while
    their hash is the code's, else counted (and cached). ``note`` is told once
    when models have to be built."""
    current = code_hash()
    rows: Dict[str, dict] = {}
    for source in (TABLE, cache_path()):
        table = read_table(source)
        if table.get("code") == current:
            rows.update({n: r for n, r in table.get("models", {}).items() if n not in rows})
    missing = [name for name in names if name not in rows]
    if missing:
        if note is not None:
            note(f"Note: {TABLE.name} was made for other code (zoo, quantizers or the stack "
                 f"changed): counting {len(missing)} model(s) by building them (`{REGENERATE}` "
                 "updates the table).")
        cache = read_table(cache_path())
        cached = cache.get("models", {}) if cache.get("code") == current else {}
        for name in missing:
            rows[name] = cached[name] = count_model(name)
        try:
            atomic.write_json(cache_path(), {"code": current, "models": cached})
        except OSError:
            pass  # a read-only home: counted again next time
    return {name: rows[name] for name in names}


def describe_models(names: Optional[Sequence[str]] = None, *,
                    note: Optional[Callable[[str], None]] = None) -> List[dict]:
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
    current = code_hash()  # the code the rows are counted with
    counted = {}
    for name in zoo.list_models():
        counted[name] = count_model(name)
        print(f"{name}: {counted[name]['params']:,} params", flush=True)
    table = {"code": current, "models": counted}
    if not check:
        atomic.write_json(TABLE, table)
        print(f"Wrote {TABLE}")
        return 0
    stored = read_table(TABLE)
    differ = [name for name in counted if stored.get("models", {}).get(name) != counted[name]]
    if stored.get("code") != table["code"]:
        print(f"{TABLE} was made for other code: `{REGENERATE}` rewrites it.")
    if differ:
        print(f"Rows that differ from the built models: {', '.join(differ)}.")
    return 1 if differ or stored.get("code") != table["code"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
