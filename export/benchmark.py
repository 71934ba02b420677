r"""Benchmark an LCE ``.tflite`` flatbuffer on this host or on an ARM device.

Two tools, one report (:class:`BenchmarkReport`), timed the way TFLite's
``benchmark_model`` times a model (LCE's ``lce_benchmark_model`` is that tool with
LCE's binary ops registered):

* ``Init``: load the flatbuffer and build the interpreter (tensors allocated);
* ``First inference``: the first warm-up run; ``Warmup (avg)``: the mean of the
  warm-up runs, the first one included;
* then timed runs \(t_1, \dots, t_n\) in whole microseconds, summarised as
  \[ \bar t = \frac{1}{n}\sum_i t_i, \qquad
     s = \Big\lfloor \sqrt{\tfrac{1}{n}\textstyle\sum_i t_i^2 - \bar t^{\,2}} \Big\rfloor \]
  (population standard deviation in whole microseconds) with ``min``, ``max``
  and the ``count`` of runs.

Devices (:func:`parse_device`):

* ``host``: LCE's Python interpreter ``larq_compute_engine.testing.Interpreter``
  fed random inputs; ``count == num_runs``. Off ARM, LCE falls back to reference
  kernels: host numbers tell that a model runs and rank models, they do not
  predict device latency. With an explicit ``binary``, that binary runs locally
  instead (e.g. on the Raspberry Pi itself).
* ``adb`` / ``adb:SERIAL`` (Android) and ``ssh:[USER@]HOST[:PORT]`` (Raspberry Pi,
  any aarch64 Linux): the user's ``lce_benchmark_model`` and the model are copied
  to a fresh temporary folder on the device, run there with ``--graph
  --num_threads --num_runs --warmup_runs``, the folder is removed and the printed
  output is parsed (:func:`parse_benchmark_output`). ``benchmark_model`` runs at
  least ``num_runs`` times *and* for at least one second, so ``count`` can exceed
  ``num_runs``.

Safety: local commands are argument lists (never a local shell); every string
that reaches a device's shell is quoted with :func:`shlex.quote`, and the model
is copied under a fixed name, so no file name can inject a command; serials,
users and hosts are validated (none may start with ``-`` and become an option).
Every subprocess has a time limit.
"""

import dataclasses
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]

RELEASES_URL = "https://github.com/larq/compute-engine/releases"
BINARY_NAME = "lce_benchmark_model"
BINARY_ENV = "LCE_BENCHMARK_MODEL"
ANDROID_TMP = "/data/local/tmp"
REMOTE_MODEL_NAME = "model.tflite"

CONNECT_TIMEOUT_S = 10
COPY_TIMEOUT_S = 300
RUN_TIMEOUT_S = 900
CLEANUP_TIMEOUT_S = 60

DEVICE_FORMS = "'host', 'adb', 'adb:SERIAL', 'ssh:HOST', 'ssh:USER@HOST' or 'ssh:USER@HOST:PORT'"


class BenchmarkError(Exception):
    """A benchmark could not run; the message says what failed and what to do."""


# --------------------------------------------------------------------- report


def _g(value: float) -> str:
    """A double as C++ streams print it by default (six significant digits, ``%g``)."""
    return "%g" % value


@dataclasses.dataclass(frozen=True)
class BenchmarkReport:
    """Timings of one benchmark, in microseconds.

    ``num_threads``, ``num_runs`` and ``warmup_runs`` are what was asked for
    (``None`` when parsing an output that does not say); ``count`` is how many
    timed runs happened.
    """

    model: str
    device: str
    tool: str
    num_threads: Optional[int]
    num_runs: Optional[int]
    warmup_runs: Optional[int]
    init_us: int
    first_us: int
    warmup_avg_us: float
    avg_us: float
    min_us: int
    max_us: int
    std_us: int
    count: int

    def summary_line(self) -> str:
        """The last line ``benchmark_model`` prints, in its format."""
        return (
            f"Inference timings in us: Init: {self.init_us}, First inference: {self.first_us}, "
            f"Warmup (avg): {_g(self.warmup_avg_us)}, Inference (avg): {_g(self.avg_us)}"
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# -------------------------------------------------------------------- parsing

_SUMMARY = re.compile(
    r"Inference timings in us: Init: (?P<init>\S+), First inference: (?P<first>\S+), "
    r"Warmup \(avg\): (?P<warmup>\S+), Inference \(avg\): (?P<avg>\S+)"
)
_TIMED_HEADER = "Running benchmark for at least"
_COUNT = re.compile(r"\bcount=\d+")
_PAIR = re.compile(r"(\w+)=(\S+)")
_PARAMS = {  # report field: the parameter lines benchmark_model prints for it
    "model": ("Graph",),
    "num_threads": ("Num threads",),
    "num_runs": ("Min num runs", "Num runs"),
    "warmup_runs": ("Min warmup runs", "Warmup runs"),
}
_OVERRIDABLE = {"model", "device", "tool", "num_threads", "num_runs", "warmup_runs"}


def _tail(text: str, lines: int = 5, width: int = 300) -> str:
    last = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(last) or "(no output)"
    return joined if len(joined) <= width else "..." + joined[-(width - 3) :]


def _number(text: str, what: str, integer: bool):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BenchmarkError(f"The benchmark output has {what}={text!r}, which is not a number.")
    return int(round(value)) if integer else value


def parse_benchmark_output(text: str, **fields) -> BenchmarkReport:
    """Parse what ``lce_benchmark_model`` (TFLite's ``benchmark_model``) printed.

    Timings come from the *last* ``Inference timings in us:`` line and from the
    last ``count=...`` line before it and after the last ``Running benchmark for
    at least N iterations`` header, i.e. the timed runs, not the warm-up ones and
    not the per-operator ``Timings (microseconds): count=`` lines of
    ``--enable_op_profiling``. Log prefixes (``INFO: ``, logcat's) are ignored.
    ``fields`` (``model``, ``device``, ``tool``, ``num_threads``, ``num_runs``,
    ``warmup_runs``) override what the output's parameter lines say.
    """
    unknown = set(fields) - _OVERRIDABLE
    if unknown:
        raise TypeError(f"parse_benchmark_output() got unexpected fields {sorted(unknown)}")
    lines = [line.rstrip("\r") for line in text.splitlines()]
    summaries = [i for i, line in enumerate(lines) if _SUMMARY.search(line)]
    if not summaries:
        raise BenchmarkError(
            "The benchmark output has no 'Inference timings in us:' line, so the benchmark did not "
            f"finish; its last lines were: {_tail(text)}"
        )
    end = summaries[-1]
    summary = _SUMMARY.search(lines[end])
    headers = [i for i in range(end) if _TIMED_HEADER in lines[i]]
    start = headers[-1] if headers else 0
    counts = [i for i in range(start, end) if _COUNT.search(lines[i])]
    if not counts:
        raise BenchmarkError(
            "The benchmark output has no 'count=... avg=...' line for its timed runs before its "
            f"'Inference timings in us:' line; its last lines were: {_tail(text)}"
        )
    line = lines[counts[-1]]
    stats = dict(_PAIR.findall(line[_COUNT.search(line).start() :]))
    count = _number(stats["count"], "count", integer=True)
    if count == 1 and "curr" in stats and "avg" not in stats:  # one run: printed as count=1 curr=T
        stats.update(first=stats["curr"], min=stats["curr"], max=stats["curr"], avg=stats["curr"], std="0")
    missing = [key for key in ("first", "min", "max", "avg", "std") if key not in stats]
    if missing:
        raise BenchmarkError(
            f"The benchmark's timed-runs line lacks {', '.join(missing)}: {line.strip()!r}; "
            "is this the output of lce_benchmark_model (TFLite benchmark_model)?"
        )

    starts = [i for i in range(end) if "STARTING!" in lines[i]]
    values = {"device": "", "tool": BINARY_NAME}
    for field, names in _PARAMS.items():
        values[field] = None
        for candidate in lines[starts[-1] if starts else 0 : end]:
            for name in names:
                found = re.search(rf"(?:^|: ){re.escape(name)}: \[(.*)\]\s*$", candidate)
                if found:
                    values[field] = (
                        found.group(1) if field == "model" else _number(found.group(1), name, True)
                    )
    values["model"] = values["model"] or ""
    values.update(fields)
    return BenchmarkReport(
        **values,
        init_us=_number(summary["init"], "Init", integer=True),
        first_us=_number(summary["first"], "First inference", integer=True),
        warmup_avg_us=_number(summary["warmup"], "Warmup (avg)", integer=False),
        avg_us=_number(summary["avg"], "Inference (avg)", integer=False),
        min_us=_number(stats["min"], "min", integer=True),
        max_us=_number(stats["max"], "max", integer=True),
        std_us=_number(stats["std"], "std", integer=True),
        count=count,
    )


# -------------------------------------------------------------------- devices

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


# ------------------------------------------------------- command construction


class Step(NamedTuple):
    """One local command: its arguments, a local file for its standard input, what it does."""

    argv: List[str]
    what: str
    stdin: Optional[Path] = None


class DeviceSteps(NamedTuple):
    upload_binary: Step
    upload_model: Step
    run: Step
    cleanup: Step


def _check_counts(num_threads: int, num_runs: int, warmup_runs: int) -> None:
    for name, value in (("num_threads", num_threads), ("num_runs", num_runs), ("warmup_runs", warmup_runs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BenchmarkError(f"{name} must be a whole number of at least 1, not {value!r}.")


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


def adb_commands(
    device: Device,
    binary: PathLike,
    model: PathLike,
    remote_dir: str,
    *,
    num_threads: int,
    num_runs: int,
    warmup_runs: int,
) -> DeviceSteps:
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


def _ssh_options(ssh_options: Union[str, Sequence[str]]) -> List[str]:
    options = [ssh_options] if isinstance(ssh_options, str) else list(ssh_options)
    for option in options:
        if not isinstance(option, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*=[^\r\n]+", option):
            raise BenchmarkError(
                f"Bad ssh option {option!r}: give each as Key=Value, e.g. IdentityFile=~/.ssh/id_ed25519."
            )
    return options


def ssh_base(device: Device, ssh_options: Union[str, Sequence[str]] = ()) -> List[str]:
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


def ssh_mktemp_command(device: Device, ssh_options: Union[str, Sequence[str]] = ()) -> List[str]:
    return ssh_base(device, ssh_options) + ['mktemp -d "${TMPDIR:-/tmp}/bnnzoo-benchmark.XXXXXX"']


def ssh_commands(
    device: Device,
    binary: PathLike,
    model: PathLike,
    remote_dir: str,
    *,
    num_threads: int,
    num_runs: int,
    warmup_runs: int,
    ssh_options: Union[str, Sequence[str]] = (),
) -> DeviceSteps:
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
        run=Step(
            ssh
            + [
                benchmark_command(
                    f"{remote_dir}/{BINARY_NAME}",
                    remote_model,
                    num_threads=num_threads,
                    num_runs=num_runs,
                    warmup_runs=warmup_runs,
                )
            ],
            "run lce_benchmark_model on",
        ),
        cleanup=Step(ssh + [f"rm -rf -- {shlex.quote(remote_dir)}"], "remove the temporary folder on"),
    )


# ------------------------------------------------------------------ execution

_HINTS = {
    "adb": "check that `adb devices` lists it as 'device' "
    "(connected, USB debugging on, this computer authorised)",
    "ssh": "check that it is on and reachable and that key-based ssh login works without a "
    "password (`ssh HOST true`); for a device never connected to before, add "
    "--ssh-option StrictHostKeyChecking=accept-new",
}
_INSTALL = {
    "adb": "install Android's platform tools (Debian: apt-get install adb)",
    "ssh": "install an OpenSSH client (Debian: apt-get install openssh-client)",
}


def _execute(step: Step, device: str, timeout: float, merge_output: bool = False) -> str:
    """Run ``step``; return its standard output or raise :class:`BenchmarkError`.

    The command gets its own session (no terminal to prompt on) and on timeout
    its whole process group is killed.
    """
    tool = step.argv[0]
    try:
        stdin = open(step.stdin, "rb") if step.stdin else subprocess.DEVNULL
    except OSError as error:
        raise BenchmarkError(f"Could not read {str(step.stdin)!r} ({error.strerror}).") from None
    try:
        proc = subprocess.Popen(
            step.argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise BenchmarkError(
            f"{tool} is not installed or not on PATH: {_INSTALL.get(tool, f'install {tool}')}."
        ) from None
    except OSError as error:  # e.g. a binary built for another architecture
        raise BenchmarkError(
            f"Could not start {tool} ({error.strerror}); is it built for this machine?"
        ) from None
    finally:
        if step.stdin:
            stdin.close()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        running = step.what.startswith("run")
        hint = (
            "allow more time (timeout) or ask for fewer runs"
            if running
            else _HINTS.get(tool, "check the device")
        )
        raise BenchmarkError(
            f"Could not {step.what} {device}: {tool} did not finish within {timeout:g} s; {hint}."
        ) from None
    out = out.decode(errors="replace")
    err = (err or b"").decode(errors="replace")
    if proc.returncode != 0:
        hint = _HINTS.get(tool, "check the binary")
        if step.what.startswith("run") and not (tool == "ssh" and proc.returncode == 255):
            hint = (
                "check that the binary is the build for this device "
                "(aarch64, aarch32 or android_arm64) and that the model was converted by LCE"
            )
        raise BenchmarkError(
            f"Could not {step.what} {device}: {tool} exited with status {proc.returncode} "
            f"({_tail(err + out, lines=1, width=200)}); {hint}."
        )
    return out


def _model_file(model_path: PathLike) -> Path:
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise BenchmarkError(
            f"Model file {str(model_path)!r} does not exist; "
            "give the path of a .tflite flatbuffer (e.g. from the export step)."
        )
    return path


def device_benchmark(
    model_path: PathLike,
    device: Device,
    *,
    num_threads: int = 1,
    num_runs: int = 50,
    warmup_runs: int = 1,
    binary: Optional[PathLike] = None,
    ssh_options: Union[str, Sequence[str]] = (),
    timeout: float = RUN_TIMEOUT_S,
) -> BenchmarkReport:
    """Copy ``lce_benchmark_model`` and the model to an adb or ssh device, run, parse, clean up."""
    model = _model_file(model_path)
    _check_counts(num_threads, num_runs, warmup_runs)
    binary = find_binary(binary)
    counts = dict(num_threads=num_threads, num_runs=num_runs, warmup_runs=warmup_runs)
    if device.kind == "adb":
        remote_dir = f"{ANDROID_TMP}/bnnzoo-benchmark-{secrets.token_hex(6)}"
        steps = adb_commands(device, binary, model, remote_dir, **counts)
    elif device.kind == "ssh":
        made = _execute(
            Step(ssh_mktemp_command(device, ssh_options), "create a temporary folder on"),
            str(device),
            CONNECT_TIMEOUT_S * 3,
        )
        remote_dir = made.strip().splitlines()[-1].strip() if made.strip() else ""
        if not remote_dir.startswith("/"):
            raise BenchmarkError(
                f"Could not create a temporary folder on {device}: mktemp printed {made.strip()!r}; "
                "check that it has a POSIX shell with mktemp."
            )
        steps = ssh_commands(device, binary, model, remote_dir, ssh_options=ssh_options, **counts)
    else:
        raise BenchmarkError(f"device_benchmark() runs on adb or ssh devices, not {device}.")
    finished = False
    try:
        _execute(steps.upload_binary, str(device), COPY_TIMEOUT_S)
        _execute(steps.upload_model, str(device), COPY_TIMEOUT_S)
        output = _execute(steps.run, str(device), timeout, merge_output=True)
        finished = True
    finally:
        try:
            _execute(steps.cleanup, str(device), CLEANUP_TIMEOUT_S)
        except BenchmarkError as error:
            if finished:
                warnings.warn(f"{error} The folder {remote_dir} is left on {device}.", stacklevel=2)
    return parse_benchmark_output(
        output, model=str(model_path), device=str(device), tool=BINARY_NAME, **counts
    )


def local_binary_benchmark(
    model_path: PathLike,
    binary: PathLike,
    *,
    num_threads: int = 1,
    num_runs: int = 50,
    warmup_runs: int = 1,
    timeout: float = RUN_TIMEOUT_S,
) -> BenchmarkReport:
    """Run ``lce_benchmark_model`` on this machine (e.g. on the Raspberry Pi itself)."""
    model = _model_file(model_path).resolve()
    _check_counts(num_threads, num_runs, warmup_runs)
    binary = find_binary(binary)
    if not os.access(binary, os.X_OK):
        raise BenchmarkError(f"{str(binary)!r} is not executable; run chmod +x on it.")
    argv = [
        str(binary),
        f"--graph={model}",
        f"--num_threads={num_threads}",
        f"--num_runs={num_runs}",
        f"--warmup_runs={warmup_runs}",
    ]
    output = _execute(Step(argv, "run lce_benchmark_model on"), "host", timeout, merge_output=True)
    return parse_benchmark_output(
        output,
        model=str(model_path),
        device="host",
        tool=BINARY_NAME,
        num_threads=num_threads,
        num_runs=num_runs,
        warmup_runs=warmup_runs,
    )


# ----------------------------------------------------------------------- host


def _random_inputs(shapes, dtypes, rng) -> list:
    r"""One batch-of-one sample per input, valued as ``benchmark_model`` fills inputs.

    Floats uniform in \([-0.5, 0.5)\); int8 in \([-127, 127]\), uint8 in
    \([0, 254]\), other integers in \([0, 99]\); booleans 0/1.
    """
    import numpy as np

    inputs = []
    for shape, dtype in zip(shapes, dtypes):
        shape, dtype = tuple(int(d) for d in shape), np.dtype(dtype)
        if not shape or shape[0] != 1:
            raise BenchmarkError(
                f"The model's input shape is {shape}; LCE's interpreter runs one sample at a time, "
                "so convert the model with batch size 1."
            )
        if dtype.kind == "f":
            x = rng.uniform(-0.5, 0.5, size=shape)
        elif dtype.kind == "b":
            x = rng.integers(0, 2, size=shape)
        elif dtype == np.int8:
            x = rng.integers(-127, 128, size=shape)
        elif dtype == np.uint8:
            x = rng.integers(0, 255, size=shape)
        elif dtype.kind in "iu":
            x = rng.integers(0, 100, size=shape)
        else:
            raise BenchmarkError(f"Cannot make random inputs of type {dtype} for the host benchmark.")
        inputs.append(x.astype(dtype))
    return inputs


def host_benchmark(
    model_path: PathLike, *, num_threads: int = 1, num_runs: int = 50, warmup_runs: int = 1
) -> BenchmarkReport:
    """Time the flatbuffer in LCE's Python interpreter on this machine.

    Each run is one call of ``Interpreter.predict`` on a batch of one, so the
    times include its small Python overhead.
    """
    model = _model_file(model_path)
    _check_counts(num_threads, num_runs, warmup_runs)
    import numpy as np
    import larq_compute_engine as lce

    from .flatbuffer import FlatbufferError, operators

    flatbuffer = model.read_bytes()
    try:  # a damaged file would crash LCE's interpreter (and Python with it)
        operators(flatbuffer)
    except FlatbufferError as error:
        raise BenchmarkError(f"{str(model_path)!r} is damaged or not a flatbuffer ({error}); "
                             "give a .tflite flatbuffer converted by LCE.") from None
    start = time.perf_counter_ns()
    try:
        interpreter = lce.testing.Interpreter(flatbuffer, num_threads=num_threads)
    except (RuntimeError, ValueError) as error:
        raise BenchmarkError(
            f"LCE could not load {str(model_path)!r} ({_tail(str(error), lines=1, width=160)}); "
            "give a .tflite flatbuffer converted by LCE."
        ) from None
    init_us = (time.perf_counter_ns() - start) // 1000
    inputs = _random_inputs(interpreter.input_shapes, interpreter.input_types, np.random.default_rng(0))

    def run_us() -> int:
        start = time.perf_counter_ns()
        try:
            interpreter.predict(inputs)
        except (RuntimeError, ValueError) as error:
            raise BenchmarkError(
                f"LCE could not run {str(model_path)!r} ({_tail(str(error), lines=1, width=160)})."
            ) from None
        return (time.perf_counter_ns() - start) // 1000

    warmup = [run_us() for _ in range(warmup_runs)]
    runs = [run_us() for _ in range(num_runs)]
    avg = sum(runs) / len(runs)
    variance = sum(t * t for t in runs) / len(runs) - avg * avg
    return BenchmarkReport(
        model=str(model_path),
        device="host",
        tool="lce_interpreter",
        num_threads=num_threads,
        num_runs=num_runs,
        warmup_runs=warmup_runs,
        init_us=int(init_us),
        first_us=int(warmup[0]),
        warmup_avg_us=sum(warmup) / len(warmup),
        avg_us=avg,
        min_us=int(min(runs)),
        max_us=int(max(runs)),
        std_us=int(math.sqrt(max(variance, 0.0))),
        count=len(runs),
    )


# ----------------------------------------------------------------- entry point


def benchmark(
    model_path: PathLike,
    *,
    device: Union[str, Device] = "host",
    num_threads: int = 1,
    num_runs: int = 50,
    warmup_runs: int = 1,
    binary: Optional[PathLike] = None,
    ssh_options: Union[str, Sequence[str]] = (),
    timeout: float = RUN_TIMEOUT_S,
) -> BenchmarkReport:
    """Benchmark ``model_path`` on ``device`` (see :func:`parse_device`).

    ``host`` uses LCE's Python interpreter unless ``binary`` is given, which then
    runs here. ``adb``/``ssh`` devices run ``lce_benchmark_model`` from
    ``binary``, ``$LCE_BENCHMARK_MODEL`` or ``PATH``; ``ssh_options`` are
    ``Key=Value`` strings passed as ``ssh -o`` (``IdentityFile``,
    ``UserKnownHostsFile``, ``StrictHostKeyChecking``, ...); ``timeout`` bounds
    the benchmark run itself, in seconds.
    """
    target = device if isinstance(device, Device) else parse_device(device)
    if target.kind == "host":
        if binary is None:
            return host_benchmark(
                model_path, num_threads=num_threads, num_runs=num_runs, warmup_runs=warmup_runs
            )
        return local_binary_benchmark(
            model_path,
            binary,
            num_threads=num_threads,
            num_runs=num_runs,
            warmup_runs=warmup_runs,
            timeout=timeout,
        )
    return device_benchmark(
        model_path,
        target,
        num_threads=num_threads,
        num_runs=num_runs,
        warmup_runs=warmup_runs,
        binary=binary,
        ssh_options=ssh_options,
        timeout=timeout,
    )
