"""Running one local command of a benchmark (``adb``, ``ssh``, or
``lce_benchmark_model`` on this machine): :func:`execute`.

Every command has a time limit, and each failure becomes one
:class:`~.benchmark_devices.BenchmarkError` saying what failed and what to do
(install the tool, check the device, check the binary, allow more time).
"""

import os
import signal
import subprocess

from .benchmark_commands import Step
from .benchmark_devices import BenchmarkError
from .benchmark_report import output_tail

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


def execute(step: Step, device: str, timeout: float, merge_output: bool = False) -> str:
    """Run ``step``; return its standard output or raise :class:`BenchmarkError`.

    The command gets its own session (no terminal to prompt on) and on timeout
    its whole process group is killed.
    """
    proc = _start(step, merge_output)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise BenchmarkError(_timeout_message(step, device, timeout)) from None
    out = out.decode(errors="replace")
    err = (err or b"").decode(errors="replace")
    if proc.returncode != 0:
        raise BenchmarkError(_failure_message(step, device, proc.returncode, err + out))
    return out


def _start(step: Step, merge_output: bool) -> subprocess.Popen:
    """``step``'s process, started in a session of its own with its standard input."""
    tool = step.argv[0]
    try:
        stdin = open(step.stdin, "rb") if step.stdin else subprocess.DEVNULL
    except OSError as error:
        raise BenchmarkError(f"Could not read {str(step.stdin)!r} ({error.strerror}).") from None
    try:
        return subprocess.Popen(
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


def _kill(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s whole process group and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _timeout_message(step: Step, device: str, timeout: float) -> str:
    tool = step.argv[0]
    hint = ("allow more time (timeout) or ask for fewer runs" if step.what.startswith("run")
            else _HINTS.get(tool, "check the device"))
    return f"Could not {step.what} {device}: {tool} did not finish within {timeout:g} s; {hint}."


def _failure_message(step: Step, device: str, returncode: int, output: str) -> str:
    tool = step.argv[0]
    hint = _HINTS.get(tool, "check the binary")
    if step.what.startswith("run") and not (tool == "ssh" and returncode == 255):
        hint = (
            "check that the binary is the build for this device "
            "(aarch64, aarch32 or android_arm64) and that the model was converted by LCE"
        )
    return (f"Could not {step.what} {device}: {tool} exited with status {returncode} "
            f"({output_tail(output, lines=1, width=200)}); {hint}.")
