"""Progress of long loops on stderr: a bar on a terminal, a line now and then in a log.

On a terminal the bar is redrawn in place (from one second in, so short jobs
draw nothing); written to a file or a pipe, one line every ``interval``
seconds (30), so a log shows the job alive without a line per batch.
``KerasProgress`` feeds one from Keras's batch callbacks (``evaluate``,
``predict``); ``FitProgress`` gives ``fit`` lines within each epoch in a log.
"""

import sys
import time
from typing import Callable, Optional, TextIO

import tensorflow as tf

BAR = 30


class Progress:
    """``update(n)`` as work is done; ``close()`` (or leave the ``with`` block) at the end."""

    def __init__(self, what: str, total: Optional[int], unit: str = "images", *,
                 stream: Optional[TextIO] = None, interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, tty: Optional[bool] = None):
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval, self.clock = interval, clock
        self.done, self.start = 0, clock()
        self.shown = self.start if not self.tty else self.start + 1.0 - 0.25  # first draw at 1 s
        self.drawn = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        now = self.clock()
        if now - self.shown >= (0.25 if self.tty else self.interval):
            self.shown = now
            self._write(now, note)

    def _count(self) -> str:
        done = min(self.done, self.total) if self.total else self.done
        return f"{done:,}/{self.total:,} {self.unit}" if self.total else f"{done:,} {self.unit}"

    def _write(self, now: float, note: str = "") -> None:
        elapsed = now - self.start
        text = f"{self.what}: {self._count()}, {elapsed:.0f} s"
        if self.total and 0 < self.done < self.total:
            text += f", ~{elapsed * (self.total - self.done) / self.done:.0f} s left"
        if note:
            text += f" ({note})"
        if self.tty:
            share = min(self.done / self.total, 1.0) if self.total else 0.0
            bar = "#" * int(BAR * share) + "." * (BAR - int(BAR * share))
            self.stream.write(f"\r[{bar}] {text}\033[K")
            self.drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """The bar's last state and its line end (a log says nothing more)."""
        if self.drawn:
            self._write(self.clock())
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


class KerasProgress(tf.keras.callbacks.Callback):
    """Keras batches into a ``Progress``: test or predict batches of
    ``batch_size`` images (``evaluate``, ``predict``)."""

    def __init__(self, progress: Progress, batch_size: int = 1):
        super().__init__()
        self.progress, self.batch_size = progress, batch_size

    def on_test_batch_end(self, batch, logs=None):
        self.progress.update(self.batch_size)

    def on_predict_batch_end(self, batch, logs=None):
        self.progress.update(self.batch_size)

    def on_test_end(self, logs=None):
        self.progress.close()

    def on_predict_end(self, logs=None):
        self.progress.close()


class FitProgress(tf.keras.callbacks.Callback):
    """``fit`` in a log, where Keras writes one line per epoch: a line every
    ``interval`` seconds within the epoch (steps and loss) and its validation."""

    def __init__(self, steps: int, validation_steps: Optional[int], *,
                 stream: Optional[TextIO] = None, interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.steps, self.validation_steps = steps, validation_steps
        self.options = dict(stream=stream, interval=interval, clock=clock, tty=False)
        self.epoch = 0
        self.current: Optional[Progress] = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.current = Progress(f"Epoch {self.epoch}", self.steps, "steps", **self.options)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        self.current.update(1, f"loss {float(loss):.4f}" if loss is not None else "")

    def on_test_begin(self, logs=None):
        self.current = Progress(f"Epoch {self.epoch} validation", self.validation_steps,
                                "batches", **self.options)

    def on_test_batch_end(self, batch, logs=None):
        self.current.update(1)
