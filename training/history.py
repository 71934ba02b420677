"""The per-epoch history of a run: JSON, CSV and a PNG of the curves.

Written atomically after every epoch, just before the epoch's checkpoint. A
run resumes from its checkpoint, and entries from the resumed epoch on are
dropped and written again, so history and checkpoint always agree.
"""

import csv
import io
import json
from pathlib import Path
from typing import Dict, List

import tensorflow as tf

from bnnzoo import atomic, runs


def read_history(run_dir: Path) -> List[Dict[str, float]]:
    path = Path(run_dir) / runs.HISTORY_JSON
    return json.loads(path.read_text()) if path.is_file() else []


def write_history(run_dir: Path, history: List[Dict[str, float]]) -> None:
    run_dir = Path(run_dir)
    atomic.write_json(run_dir / runs.HISTORY_JSON, history)
    keys = list(dict.fromkeys(k for row in history for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic.write_text(run_dir / runs.HISTORY_CSV, text.getvalue())
    plot_curves(history, run_dir / runs.CURVES)


def plot_curves(history: List[Dict[str, float]], target: Path) -> None:
    """Loss and top-1 accuracy per epoch, train and validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] + 1 for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, title in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Top-1 accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = [row.get(prefix + metric) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


class HistoryRecorder(tf.keras.callbacks.Callback):
    """Append each finished epoch's logs (and learning rate) to the run's history."""

    def __init__(self, run_dir: Path, initial_epoch: int):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.history = [r for r in read_history(run_dir) if r["epoch"] < initial_epoch]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        lr = self.model.optimizer.learning_rate
        if callable(lr):
            lr = lr(self.model.optimizer.iterations)
        row["learning_rate"] = float(tf.keras.backend.get_value(lr))
        self.history.append(row)
        write_history(self.run_dir, self.history)
