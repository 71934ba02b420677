"""The local commands of a device benchmark, built as argument lists (never run here).

For ``adb`` / ``adb:SERIAL`` (Android) and ``ssh:[USER@]HOST[:PORT]`` (Raspberry
Pi, any aarch64 Linux): copy the user's ``lce_benchmark_model`` and the model
into a temporary folder on the device, run it there with ``--graph
--num_threads --num_runs --warmup_runs``, remove the folder (:class:`DeviceSteps`).

Safety: local commands are argument lists (never a local shell); every string
that reaches a device's shell is quoted with :func:`shlex.quote`, and the model
is copied under a fixed name, so no file name can inject a command; ssh options
must be ``Key=Value`` (none can become a command-line option).
"""

import re
import shlex
from pathlib import Path
from typing import NamedTuple, Optional, Union
from collections.abc import Sequence

from .benchmark_devices import BINARY_NAME, BenchmarkError, Device, PathLike

ANDROID_TMP = "/data/local/tmp"
REMOTE_MODEL_NAME = "model.tflite"
CONNECT_TIMEOUT_S = 10


class Step(NamedTuple):
    """One local command: its arguments, a local file for its standard input, what it does."""

    argv: list[str]
    what: str
    stdin: Optional[Path] = None


class DeviceSteps(NamedTuple):
    """A device benchmark's four commands, run in this order (``cleanup`` always)."""

    upload_binary: Step
    upload_model: Step
    run: Step
    cleanup: Step


def benchmark_command(binary: str, model: str, *, num_threads: int, num_runs: int, warmup_runs: int) -> str:
    """The shell command that runs the benchmark on the device, output and errors merged."""
    return " ".join(
        [
            shlex.quote(binary),
            shlex.quote(f"--graph={model}"),
            f"--num_threads={int(num_threads)}",
            f"--num_runs={int(num_runs)}",
            f"--warmup_runs={int(warmup_runs)}",
            "2>&1",
        ]
    )


def adb_commands(device: Device, binary: PathLike, model: PathLike, remote_dir: str, *,
                 num_threads: int, num_runs: int, warmup_runs: int) -> DeviceSteps:
    """``adb [-s SERIAL]`` push, run and clean-up commands for ``remote_dir`` on the phone.

    ``adb push`` takes its device path literally (no shell); ``adb shell`` strings
    are quoted. Local paths are absolute, so none can be read as an option.
    """
    adb = ["adb"] + (["-s", device.serial] if device.serial else [])
    remote_binary = f"{remote_dir}/{BINARY_NAME}"
    remote_model = f"{remote_dir}/{REMOTE_MODEL_NAME}"
    run = f"chmod 755 {shlex.quote(remote_binary)} && " + benchmark_command(
        remote_binary, remote_model, num_threads=num_threads, num_runs=num_runs, warmup_runs=warmup_runs
    )
    return DeviceSteps(
        upload_binary=Step(
            adb + ["push", str(Path(binary).resolve()), remote_binary], "copy lce_benchmark_model to"
        ),
        upload_model=Step(adb + ["push", str(Path(model).resolve()), remote_model], "copy the model to"),
        run=Step(adb + ["shell", run], "run lce_benchmark_model on"),
        cleanup=Step(adb + ["shell", f"rm -rf {shlex.quote(remote_dir)}"], "remove the temporary folder on"),
    )


def _ssh_options(ssh_options: Union[str, Sequence[str]]) -> list[str]:
    options = [ssh_options] if isinstance(ssh_options, str) else list(ssh_options)
    for option in options:
        if not isinstance(option, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*=[^\r\n]+", option):
            raise BenchmarkError(
                f"Bad ssh option {option!r}: give each as Key=Value, e.g. IdentityFile=~/.ssh/id_ed25519."
            )
    return options


def ssh_base(device: Device, ssh_options: Union[str, Sequence[str]] = ()) -> list[str]:
    """``ssh`` to the device, never prompting; the remote command is appended as one string.

    ``BatchMode=yes`` comes first and ssh keeps the first value it gets, so it
    cannot be overridden; the user's options come before the default
    ``ConnectTimeout`` so they can change it.
    """
    argv = ["ssh", "-o", "BatchMode=yes"]
    for option in _ssh_options(ssh_options):
        argv += ["-o", option]
    argv += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
    if device.port:
        argv += ["-p", str(device.port)]
    return argv + ["--", device.ssh_destination]


def ssh_mktemp_command(device: Device, ssh_options: Union[str, Sequence[str]] = ()) -> list[str]:
    return ssh_base(device, ssh_options) + ['mktemp -d "${TMPDIR:-/tmp}/bnnzoo-benchmark.XXXXXX"']


def ssh_commands(device: Device, binary: PathLike, model: PathLike, remote_dir: str, *,
                 num_threads: int, num_runs: int, warmup_runs: int,
                 ssh_options: Union[str, Sequence[str]] = ()) -> DeviceSteps:
    """ssh commands that copy (``cat > FILE`` fed from a local file), run and clean up.

    Copying through ``cat`` needs only a POSIX shell on the device (no sftp
    server, unlike modern ``scp``).
    """
    ssh = ssh_base(device, ssh_options)
    remote_binary = shlex.quote(f"{remote_dir}/{BINARY_NAME}")
    remote_model = f"{remote_dir}/{REMOTE_MODEL_NAME}"
    return DeviceSteps(
        upload_binary=Step(
            ssh + [f"cat > {remote_binary} && chmod 755 {remote_binary}"],
            "copy lce_benchmark_model to",
            Path(binary).resolve(),
        ),
        upload_model=Step(
            ssh + [f"cat > {shlex.quote(remote_model)}"], "copy the model to", Path(model).resolve()
        ),
        run=Step(ssh + [benchmark_command(f"{remote_dir}/{BINARY_NAME}", remote_model,
                                          num_threads=num_threads, num_runs=num_runs,
                                          warmup_runs=warmup_runs)],
                 "run lce_benchmark_model on"),
        cleanup=Step(ssh + [f"rm -rf -- {shlex.quote(remote_dir)}"], "remove the temporary folder on"),
    )
