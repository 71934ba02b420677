"""Where a benchmark runs (:func:`parse_device`) and the ``lce_benchmark_model`` it runs
there (:func:`find_binary`); :class:`BenchmarkError`, which every benchmark module raises.

Device specs are ``host``, ``adb``, ``adb:SERIAL`` or ``ssh:[USER@]HOST[:PORT]``
(IPv6 as ``[ADDR]``). Serials, users and hosts are validated: letters, digits,
``.``, ``_`` or ``-`` and none may start with ``-`` (and so become an option of
``adb`` or ``ssh``).
"""

import dataclasses
import os
import re
import shutil
from pathlib import Path
from typing import Optional, Union

from bnnzoo.errors import UserError

PathLike = Union[str, os.PathLike]

RELEASES_URL = "https://github.com/larq/compute-engine/releases"
BINARY_NAME = "lce_benchmark_model"
BINARY_ENV = "LCE_BENCHMARK_MODEL"

DEVICE_FORMS = "'host', 'adb', 'adb:SERIAL', 'ssh:HOST', 'ssh:USER@HOST' or 'ssh:USER@HOST:PORT'"


class BenchmarkError(UserError):
    """A benchmark could not run; the message says what failed and what to do."""


_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclasses.dataclass(frozen=True)
class Device:
    """Where a benchmark runs: ``kind`` is ``"host"``, ``"adb"`` or ``"ssh"``."""

    kind: str
    serial: Optional[str] = None
    user: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None

    @property
    def ssh_destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        if self.kind == "adb":
            return f"adb:{self.serial}" if self.serial else "adb"
        if self.kind == "ssh":
            host = f"[{self.host}]" if ":" in self.host else self.host
            port = f":{self.port}" if self.port else ""
            return f"ssh:{self.user + '@' if self.user else ''}{host}{port}"
        return "host"


def _bad_device(spec: str) -> BenchmarkError:
    return BenchmarkError(
        f"Unknown device {spec!r}: use {DEVICE_FORMS}, where serials, users and hosts are letters, "
        "digits, '.', '_' or '-' (never starting with '-') and PORT is 1-65535."
    )


def parse_device(spec: str) -> Device:
    """``host``, ``adb``, ``adb:SERIAL`` or ``ssh:[USER@]HOST[:PORT]`` (IPv6 as ``[ADDR]``).

    Without ``USER`` or ``PORT``, ssh takes them from ``~/.ssh/config`` or its
    defaults, so ``HOST`` may be a ``Host`` alias of that file.
    """
    if not isinstance(spec, str):
        raise _bad_device(repr(spec))
    if spec == "host":
        return Device("host")
    if spec == "adb":
        return Device("adb")
    if spec.startswith("adb:"):
        serial = spec[len("adb:") :]
        if not _SERIAL.fullmatch(serial):
            raise _bad_device(spec)
        return Device("adb", serial=serial)
    if not spec.startswith("ssh:"):
        raise _bad_device(spec)
    rest = spec[len("ssh:") :]
    user = None
    if "@" in rest:
        user, rest = rest.split("@", 1)
        if not _USER.fullmatch(user):
            raise _bad_device(spec)
    port = None
    bracketed = re.fullmatch(r"\[([^\]]*)\](?::([^:]*))?", rest)
    if bracketed:
        host, port = bracketed.groups()
        if not _IPV6.fullmatch(host):
            raise _bad_device(spec)
    else:
        host, colon, port = rest.partition(":")
        port = port if colon else None
        if not _HOST.fullmatch(host):
            raise _bad_device(spec)
    if port is not None and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        raise _bad_device(spec)
    return Device("ssh", user=user, host=host, port=int(port) if port else None)


def find_binary(binary: Optional[PathLike] = None) -> Path:
    """The ``lce_benchmark_model`` to copy to a device.

    In order: ``binary`` (``--binary PATH``), the ``LCE_BENCHMARK_MODEL``
    environment variable, ``lce_benchmark_model`` on ``PATH``. It need not be
    executable here (it is built for the device); it is made executable there.
    """
    if binary is not None:
        path = Path(binary).expanduser()
        if not path.is_file():
            raise BenchmarkError(
                f"The benchmark binary {str(path)!r} is not a file; "
                "give the path of a downloaded lce_benchmark_model."
            )
        return path.resolve()
    from_env = os.environ.get(BINARY_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise BenchmarkError(
                f"{BINARY_ENV}={from_env!r} is not a file; point it at a downloaded lce_benchmark_model."
            )
        return path.resolve()
    on_path = shutil.which(BINARY_NAME)
    if on_path:
        return Path(on_path).resolve()
    raise BenchmarkError(
        "No lce_benchmark_model binary found: download the one for your device from "
        f"{RELEASES_URL} (lce_benchmark_model_aarch64 for a 64-bit Raspberry Pi OS, "
        "lce_benchmark_model_aarch32 for 32-bit, lce_benchmark_model_android_arm64 for Android) "
        f"and give it with --binary PATH, the {BINARY_ENV} environment variable, or as "
        "lce_benchmark_model on PATH."
    )
