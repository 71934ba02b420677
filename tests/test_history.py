"""A run's history: per epoch and per step, and curves.png drawn from both."""

import json
import time
from types import SimpleNamespace

from bnnzoo import runs
from bnnzoo.training import history


def test_curves_are_titled_labelled_with_top5_learning_rate_and_a_per_step_trace(tmp_path):
    runs.write_config(tmp_path, {"model": "bireal18", "dataset": "fashion_mnist"})
    epochs = [{"epoch": e, "loss": 2.0 - e, "accuracy": 0.3 + e / 10, "top5": 0.8,
               "val_loss": 1.9 - e, "val_accuracy": 0.35, "val_top5": 0.85,
               "learning_rate": 1e-3 * (1 - e / 2)} for e in range(2)]
    steps = [{"epoch": e, "step": s, "fraction": (s + 1) / 5, "loss": 2.0 - e - s / 10,
              "learning_rate": 1e-3 * (1 - (5 * e + s + 1) / 10)}
             for e in range(2) for s in range(5)]
    history.write_history(tmp_path, epochs, steps)
    assert json.loads((tmp_path / runs.STEPS_JSON).read_text()) == steps
    drawn = history.plot_curves(epochs, tmp_path / "c.png", steps=steps, title="T")
    assert (tmp_path / runs.CURVES).read_bytes()[:4] == b"\x89PNG"
    loss, accuracy, lr = drawn["panels"]
    assert drawn["title"] == "T"
    assert [p["x"] for p in drawn["panels"]] == ["epoch"] * 3
    assert (loss["y"], accuracy["y"], lr["y"]) == ("loss (cross-entropy)", "accuracy",
                                                   "learning rate")
    assert loss["lines"] == {"train, per step": 10, "train, epoch": 2, "validation, epoch": 2}
    assert set(accuracy["lines"]) == {"train top-1", "train top-5", "validation top-1",
                                      "validation top-5"}
    assert list(lr["lines"].values()) == [10]


def test_the_recorder_turns_keras_running_means_into_each_steps_loss(tmp_path):
    recorder = history.HistoryRecorder(tmp_path, 0, steps_per_epoch=3)

    class Optimizer:
        learning_rate, iterations = 0.5, 0

    recorder.model = type("Model", (), {"optimizer": Optimizer})()
    recorder.on_epoch_begin(0)
    for batch, mean in enumerate([3.0, 2.0, 2.0]):  # step losses 3, 1, 2
        recorder.on_train_batch_end(batch, {"loss": mean})
    assert [round(r["loss"], 6) for r in recorder.steps] == [3.0, 1.0, 2.0]
    assert [r["fraction"] for r in recorder.steps] == [1 / 3, 2 / 3, 1.0]
    time.sleep(0.05)
    recorder.on_epoch_end(0, {"loss": 2.0})
    assert history.read_steps(tmp_path) == recorder.steps
    # The epoch's wall time, what the accuracy table sums per stage.
    (row,) = history.read_history(tmp_path)
    assert 0.05 <= row["seconds"] < 5


def test_curves_are_redrawn_at_most_every_30_seconds_and_when_training_ends(tmp_path, monkeypatch):
    drawn, clock = [], [0.0]
    monkeypatch.setattr(history, "draw_curves", lambda run_dir, rows, steps=None: drawn.append(
        len(rows)))
    monkeypatch.setattr(history.time, "monotonic", lambda: clock[0])
    recorder = history.HistoryRecorder(tmp_path, 0)
    recorder.set_model(SimpleNamespace(optimizer=SimpleNamespace(learning_rate=0.1)))
    for epoch, seconds in enumerate((10, 20, 35, 50, 70)):
        clock[0] = seconds
        recorder.on_epoch_end(epoch, {"loss": 1.0})
        assert len(history.read_history(tmp_path)) == epoch + 1  # the JSON: every epoch
    assert drawn == [3, 5]
    recorder.on_train_end()
    assert drawn == [3, 5, 5]
