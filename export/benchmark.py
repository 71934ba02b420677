r"""Benchmark an LCE ``.tflite`` flatbuffer on this host or on an ARM device: :func:`benchmark`.

Two tools, one report (:class:`~.benchmark_report.BenchmarkReport`, whose
docstring says how runs are timed). Devices (:func:`~.benchmark_devices.parse_device`):

* ``host``: LCE's Python interpreter ``larq_compute_engine.testing.Interpreter``
  fed random inputs; ``count == num_runs``. Off ARM, LCE falls back to reference
  kernels: host numbers tell that a model runs and rank models, they do not
  predict device latency. With an explicit ``binary``, that binary runs locally
  instead (e.g. on the Raspberry Pi itself).
* ``adb`` / ``adb:SERIAL`` (Android) and ``ssh:[USER@]HOST[:PORT]`` (Raspberry Pi,
  any aarch64 Linux): the user's ``lce_benchmark_model`` and the model are copied
  to a fresh temporary folder on the device, run there with ``--graph
  --num_threads --num_runs --warmup_runs``, the folder is removed and the printed
  output is parsed (:func:`~.benchmark_report.parse_benchmark_output`).
  ``benchmark_model`` runs at least ``num_runs`` times *and* for at least one
  second, so ``count`` can exceed ``num_runs``.

The parts, one job each: :mod:`.benchmark_devices` (device specs, the binary,
:class:`BenchmarkError`), :mod:`.benchmark_commands` (the device commands, quoted
for the device's shell), :mod:`.benchmark_process` (running one command within a
time limit), :mod:`.benchmark_report` (the report and the output parser). This
module runs them.
"""

import math
import os
import secrets
import time
import warnings
from pathlib import Path
from typing import Optional, Union
from collections.abc import Sequence

import numpy as np

from bnnzoo import machine

from .benchmark_commands import (ANDROID_TMP, CONNECT_TIMEOUT_S, Step, adb_commands, ssh_commands,
                                 ssh_mktemp_command)
from .benchmark_devices import BINARY_NAME, BenchmarkError, Device, PathLike, find_binary, parse_device
from .benchmark_process import execute
from .benchmark_report import BenchmarkReport, output_tail, parse_benchmark_output
from .flatbuffer import FlatbufferError, read_flatbuffer
from .parity import interpreter

__all__ = ["BenchmarkError", "BenchmarkReport", "benchmark", "benchmark_record",
           "device_benchmark", "host_benchmark", "local_binary_benchmark"]

COPY_TIMEOUT_S = 300
RUN_TIMEOUT_S = 900
CLEANUP_TIMEOUT_S = 60


def _check_counts(num_threads: int, num_runs: int, warmup_runs: int) -> None:
    for name, value in (("num_threads", num_threads), ("num_runs", num_runs), ("warmup_runs", warmup_runs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BenchmarkError(f"{name} must be a whole number of at least 1, not {value!r}.")


def _model_file(model_path: PathLike) -> Path:
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise BenchmarkError(
            f"Model file {str(model_path)!r} does not exist; "
            "give the path of a .tflite flatbuffer (e.g. from the export step)."
        )
    return path


def _checked(model_path: PathLike, binary: Optional[PathLike], counts: dict) -> tuple[Path, Path]:
    """The model file and the ``lce_benchmark_model`` binary, both checked, and
    the counts checked: what a run of the binary needs."""
    model = _model_file(model_path)
    _check_counts(**counts)
    return model, find_binary(binary)


def device_benchmark(model_path: PathLike, device: Device, *, num_threads: int = 1,
                     num_runs: int = 50, warmup_runs: int = 1, binary: Optional[PathLike] = None,
                     ssh_options: Union[str, Sequence[str]] = (),
                     timeout: float = RUN_TIMEOUT_S) -> BenchmarkReport:
    """Copy ``lce_benchmark_model`` and the model to an adb or ssh device, run, parse, clean up."""
    counts = dict(num_threads=num_threads, num_runs=num_runs, warmup_runs=warmup_runs)
    model, binary = _checked(model_path, binary, counts)
    if device.kind == "adb":
        remote_dir = f"{ANDROID_TMP}/bnnzoo-benchmark-{secrets.token_hex(6)}"
        steps = adb_commands(device, binary, model, remote_dir, **counts)
    elif device.kind == "ssh":
        made = execute(
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
        execute(steps.upload_binary, str(device), COPY_TIMEOUT_S)
        execute(steps.upload_model, str(device), COPY_TIMEOUT_S)
        output = execute(steps.run, str(device), timeout, merge_output=True)
        finished = True
    finally:
        try:
            execute(steps.cleanup, str(device), CLEANUP_TIMEOUT_S)
        except BenchmarkError as error:
            if finished:
                warnings.warn(f"{error} The folder {remote_dir} is left on {device}.", stacklevel=2)
    return parse_benchmark_output(
        output, model=str(model_path), device=str(device), tool=BINARY_NAME, **counts
    )


def local_binary_benchmark(model_path: PathLike, binary: PathLike, *, num_threads: int = 1,
                           num_runs: int = 50, warmup_runs: int = 1,
                           timeout: float = RUN_TIMEOUT_S) -> BenchmarkReport:
    """Run ``lce_benchmark_model`` on this machine (e.g. on the Raspberry Pi itself)."""
    counts = dict(num_threads=num_threads, num_runs=num_runs, warmup_runs=warmup_runs)
    model, binary = _checked(model_path, binary, counts)
    if not os.access(binary, os.X_OK):
        raise BenchmarkError(f"{str(binary)!r} is not executable; run chmod +x on it.")
    argv = [str(binary), f"--graph={model.resolve()}",
            *(f"--{name}={value}" for name, value in counts.items())]
    output = execute(Step(argv, "run lce_benchmark_model on"), "host", timeout, merge_output=True)
    return parse_benchmark_output(output, model=str(model_path), device="host", tool=BINARY_NAME,
                                  **counts)


def _random_inputs(shapes, dtypes, rng) -> list:
    r"""One batch-of-one sample per input, valued as ``benchmark_model`` fills inputs.

    Floats uniform in \([-0.5, 0.5)\); int8 in \([-127, 127]\), uint8 in
    \([0, 254]\), other integers in \([0, 99]\); booleans 0/1.
    """
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
    times include its small Python overhead; they are summarised as
    :mod:`.benchmark_report` describes.
    """
    model = _model_file(model_path)
    _check_counts(num_threads, num_runs, warmup_runs)
    try:  # a damaged file would crash LCE's interpreter (and Python with it)
        flatbuffer = read_flatbuffer(model)
    except FlatbufferError as error:
        raise BenchmarkError(f"{str(model_path)!r} is damaged or not a flatbuffer ({error}); "
                             "give a .tflite flatbuffer converted by LCE.") from None
    start = time.perf_counter_ns()
    try:
        runner = interpreter(flatbuffer, num_threads, use_indirect_bgemm=False)
    except ValueError as error:
        raise BenchmarkError(
            f"LCE could not load {str(model_path)!r} ({output_tail(str(error), lines=1, width=160)}); "
            "give a .tflite flatbuffer converted by LCE."
        ) from None
    init_us = (time.perf_counter_ns() - start) // 1000
    inputs = _random_inputs(runner.input_shapes, runner.input_types, np.random.default_rng(0))

    def run_us() -> int:
        start = time.perf_counter_ns()
        try:
            runner.predict(inputs)
        except (RuntimeError, ValueError) as error:
            raise BenchmarkError(
                f"LCE could not run {str(model_path)!r} ({output_tail(str(error), lines=1, width=160)})."
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


def benchmark_record(report: BenchmarkReport) -> dict:
    """The report as its JSON file keeps it: the timings, and under
    ``measured`` the date, the CPU of the host that ran the command, and the
    stack's versions (``bnnzoo.machine``)."""
    return {**report.as_dict(), "measured": machine.measured_here()}
