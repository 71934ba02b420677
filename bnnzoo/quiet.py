"""TensorFlow's native log lines, dropped from stderr unless asked for.

XLA writes lines such as ``I0000 00:00:... service.cc:145] XLA service ...
initialized`` through absl's C++ logging, which ignores
``TF_CPP_MIN_LOG_LEVEL`` and bypasses Python, straight to file descriptor 2.
``native_logs_filtered`` routes that descriptor through a pipe while it is
active; a thread copies every other line to the real stderr. The CLI keeps it
on for the whole process; ``training.train`` (where XLA compiles) for its
call, unless ``BNNZOO_VERBOSE=1``.
"""

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

NATIVE_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog|[IW]\d{4} [\d:. ]+\d+ \S+:\d+\])")


def verbose() -> bool:
    return os.environ.get("BNNZOO_VERBOSE") == "1"


def start_filter():
    """Start filtering file descriptor 2; returns the function that stops it."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not NATIVE_NOISE.match(line):
                    os.write(real, line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()

    def stop():
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last writer: the pump drains and ends
        thread.join(timeout=2)
        os.close(real)

    return stop


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Drop TensorFlow's native log lines from stderr inside (not with BNNZOO_VERBOSE=1)."""
    if verbose():
        yield
        return
    try:
        stop = start_filter()
    except OSError:  # no descriptor 2 to filter (a daemon)
        yield
        return
    try:
        yield
    finally:
        stop()
