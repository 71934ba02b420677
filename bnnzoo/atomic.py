"""Atomic file output: a file is either its old self or complete, never half-written.

Everything is first written to a temporary file in the same folder, flushed to
disk, then renamed over the target (``os.replace`` is atomic on POSIX).
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Union
from collections.abc import Iterator

from bnnzoo.errors import OutputExists

PathLike = Union[str, os.PathLike]


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # once, at import: setting it briefly is not thread-safe


@contextlib.contextmanager
def atomic_path(target: PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``.

    On any error the temporary file is removed and ``target`` is untouched. With
    ``overwrite=False`` an existing ``target`` (even one created meanwhile by
    another process) raises ``OutputExists`` (a ``FileExistsError``) instead of being replaced.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes the file private (0600): give it the mode a plain open()
        # would, the replaced file's or the umask's, so that outputs stay readable
        # (after the write: a read-only target's mode would forbid it).
        try:
            mode = target.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # atomic, and fails if target exists
            except FileExistsError:
                raise OutputExists(f"{target} already exists.") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(target: PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: PathLike, data) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False) + "\n")
