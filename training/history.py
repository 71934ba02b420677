"""The history of a run: per epoch (JSON, CSV), per training step (JSON), and a PNG of the curves.

Written atomically after every epoch, just before the epoch's checkpoint. A
run resumes from its checkpoint, and entries from the resumed epoch on are
dropped and written again, so history and checkpoint always agree. The
curves are drawn again at most every ``PLOT_EVERY_SECONDS`` and when
training ends: a plot costs about half a second, more than a short epoch.
"""

import csv
import io
import json
import time
from pathlib import Path
from typing import Optional
from collections.abc import Sequence

import tensorflow as tf

from bnnzoo import atomic, runs

PLOT_EVERY_SECONDS = 30


def read_history(run_dir: Path) -> list[dict[str, float]]:
    return runs.read_json(Path(run_dir) / runs.HISTORY_JSON, default=[])


def read_steps(run_dir: Path) -> list[dict[str, float]]:
    return runs.read_json(Path(run_dir) / runs.STEPS_JSON, default=[])


def write_history(run_dir: Path, history: list[dict[str, float]],
                  steps: Optional[list[dict[str, float]]] = None, *, plot: bool = True) -> None:
    """history.json / .csv (per epoch), steps.json (per training step, if
    given) and (if ``plot``) curves.png, titled from the run's config.json."""
    run_dir = Path(run_dir)
    atomic.write_json(run_dir / runs.HISTORY_JSON, history)
    if steps is not None:
        atomic.write_json(run_dir / runs.STEPS_JSON, steps)
    keys = list(dict.fromkeys(k for row in history for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic.write_text(run_dir / runs.HISTORY_CSV, text.getvalue())
    if plot:
        draw_curves(run_dir, history, steps)


def draw_curves(run_dir: Path, history: list[dict[str, float]],
                steps: Optional[list[dict[str, float]]] = None) -> None:
    """curves.png of ``history``, titled from the run's config.json."""
    try:
        config = json.loads((run_dir / runs.CONFIG).read_text())
    except (OSError, ValueError):
        config = {}
    title = f"{config.get('model', '?')} on {config.get('dataset', '?')}, run {run_dir.name}"
    plot_curves(history, run_dir / runs.CURVES, steps=steps or [], title=title)


def plot_curves(history: list[dict[str, float]], target: Path, *,
                steps: Sequence[dict[str, float]] = (), title: str = "") -> dict:
    """Three panels against epochs: the loss (per epoch, and each training
    step's as a faint trace), top-1 and top-5 accuracy (train and validation),
    and the learning rate (per step where recorded). Returns what it drew:
    the title, and each panel's title, axis labels and lines' lengths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] + 1 for row in history]
    fig, (loss_ax, acc_ax, lr_ax) = plt.subplots(1, 3, figsize=(15, 4.2))
    at = [row["epoch"] + row["fraction"] for row in steps]  # the step's end, in epochs
    if steps:
        loss_ax.plot(at, [row["loss"] for row in steps], lw=0.8, alpha=0.4, color="C0",
                     label="train, per step")
    for prefix, label, color in (("", "train", "C0"), ("val_", "validation", "C1")):
        values = [row.get(prefix + "loss") for row in history]
        if any(v is not None for v in values):
            loss_ax.plot(epochs, values, marker="o", color=color, label=f"{label}, epoch")
        for metric, style, name in (("accuracy", "-", "top-1"), ("top5", "--", "top-5")):
            values = [row.get(prefix + metric) for row in history]
            if any(v is not None for v in values):
                acc_ax.plot(epochs, values, style, marker="o", color=color, label=f"{label} {name}")
    if steps and all("learning_rate" in row for row in steps):
        lr_ax.plot(at, [row["learning_rate"] for row in steps], color="C2")
    else:
        lr_ax.plot(epochs, [row.get("learning_rate") for row in history], marker="o", color="C2")
    for ax, ylabel, panel in ((loss_ax, "loss (cross-entropy)", "Loss"),
                              (acc_ax, "accuracy", "Top-1 and top-5 accuracy"),
                              (lr_ax, "learning rate", "Learning rate")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(panel)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    drawn = {"title": title, "panels": [
        {"title": ax.get_title(), "x": ax.get_xlabel(), "y": ax.get_ylabel(),
         "lines": {line.get_label(): len(line.get_xdata()) for line in ax.get_lines()}}
        for ax in (loss_ax, acc_ax, lr_ax)]}
    plt.close(fig)
    return drawn


def _learning_rate(optimizer) -> float:
    """The rate of ``optimizer`` (of a ``CaseOptimizer``'s default optimiser)."""
    optimizer = getattr(optimizer, "default", None) or optimizer
    lr = optimizer.learning_rate
    if callable(lr):
        lr = lr(optimizer.iterations)
    return float(tf.keras.backend.get_value(lr))


class HistoryRecorder(tf.keras.callbacks.Callback):
    """Append each finished epoch's logs (learning rate, and ``seconds``: the
    epoch's wall time, validation included) to the run's history, and each
    training step's loss and learning rate to its steps."""

    def __init__(self, run_dir: Path, initial_epoch: int, steps_per_epoch: int = 0):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.history = [r for r in read_history(run_dir) if r["epoch"] < initial_epoch]
        self.steps = [r for r in read_steps(run_dir) if r["epoch"] < initial_epoch]
        self.steps_per_epoch = steps_per_epoch
        self.epoch, self.mean, self.started = 0, None, time.perf_counter()
        self.plotted = time.monotonic()  # the first epoch's curves wait as the others do

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.mean = epoch, None
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        mean = (logs or {}).get("loss")
        if mean is None:
            return
        # Keras logs the epoch's running mean; the step's own loss is the difference.
        mean = float(mean)
        loss = mean if self.mean is None else (batch + 1) * mean - batch * self.mean
        self.mean = mean
        self.steps.append({"epoch": self.epoch, "step": batch,
                           "fraction": (batch + 1) / max(self.steps_per_epoch, batch + 1),
                           "loss": loss, "learning_rate": _learning_rate(self.model.optimizer)})

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["learning_rate"] = _learning_rate(self.model.optimizer)
        row["seconds"] = round(time.perf_counter() - self.started, 3)
        self.history.append(row)
        plot = time.monotonic() - self.plotted >= PLOT_EVERY_SECONDS
        write_history(self.run_dir, self.history, self.steps, plot=plot)
        if plot:
            self.plotted = time.monotonic()

    def on_train_end(self, logs=None):
        if self.history:
            draw_curves(self.run_dir, self.history, self.steps)
