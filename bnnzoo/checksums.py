"""SHA-256 of the model files a run writes, checked whenever one is read.

HDF5 keeps no checksum of its data: bytes changed inside ``model.h5``'s
weights load as other weights, silently. So every model file the project
writes (a run's ``model.h5``, a stage's, the int8 stage's, an exported
``.tflite``) gets a sidecar, ``model.h5.sha256``, in ``sha256sum``'s format
(``sha256sum -c model.h5.sha256`` checks it too), and every read of a model
file goes through :func:`verify`: a file whose bytes are not those recorded
is refused (:class:`ChecksumMismatch`), never used. A file without a sidecar
(from elsewhere, or from before checksums were recorded) is read as it is.

The sidecar is written after its file is renamed into place and removed just
before, so a write killed at any point leaves either the old pair, the new
pair, or a file without a sidecar (read unchecked), never a file beside
another file's checksum. (TensorFlow's checkpoints carry their own CRC32C per
tensor and are checked by TensorFlow when restored.)
"""

import contextlib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from bnnzoo import atomic
from bnnzoo.errors import UserError

SUFFIX = ".sha256"
_CHUNK = 1 << 20
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class ChecksumMismatch(UserError):
    """A model file whose bytes are not the ones recorded when it was written."""


def sidecar(path: atomic.PathLike) -> Path:
    """Where ``path``'s SHA-256 is recorded: ``model.h5`` -> ``model.h5.sha256``."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def sha256(path: atomic.PathLike) -> str:
    """The SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recorded(path: atomic.PathLike) -> Optional[str]:
    """The SHA-256 recorded for ``path``; ``None`` if none is. An unreadable
    record is a :class:`ChecksumMismatch`: the file cannot be vouched for."""
    record = sidecar(path)
    try:
        text = record.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ChecksumMismatch(f"Cannot read {record}, the checksum of {path}: {err}") from None
    found = _LINE.match(text.strip())
    if found is None:
        raise ChecksumMismatch(f"{record} is not a SHA-256 record (damaged): {path} cannot be "
                               "checked; delete the record to read the file unchecked.")
    return found.group(1)


@contextlib.contextmanager
def recorded_path(target: atomic.PathLike, overwrite: bool = True,
                  digest: Optional[str] = None) -> Iterator[Path]:
    """:func:`bnnzoo.atomic.atomic_path` that also records the SHA-256 of what
    was written in ``target``'s sidecar (``digest`` where the caller knows it:
    a verified copy's)."""
    target = Path(target)
    with atomic.atomic_path(target, overwrite) as tmp:
        yield tmp
        digest = digest or sha256(tmp)
        if overwrite or not target.exists():
            sidecar(target).unlink(missing_ok=True)  # the old file's: never beside the new one
    atomic.write_text(sidecar(target), f"{digest}  {target.name}\n")


def verify(path: atomic.PathLike, contents: Optional[bytes] = None,
           what: str = "a Keras model") -> None:
    """Refuse ``path`` (:class:`ChecksumMismatch`, one line naming it and both
    digests) if its bytes (``contents`` when already read) are not those
    recorded beside it; a file without a record passes."""
    expected = recorded(path)
    if expected is None:
        return
    try:
        actual = hashlib.sha256(contents).hexdigest() if contents is not None else sha256(path)
    except OSError as err:
        raise ChecksumMismatch(f"Cannot read {what} from {path}: {err}") from None
    if actual != expected:
        raise ChecksumMismatch(
            f"Cannot load {what} from {path}: it is damaged (its SHA-256 is {actual}, "
            f"{sidecar(path).name} recorded {expected} when it was written): restore it, "
            f"or delete {sidecar(path).name} if it was replaced on purpose.")
