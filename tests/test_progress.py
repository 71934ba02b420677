"""Progress of long commands: a bar on a terminal, a line every interval in a log."""

import io

from bnnzoo.progress import FitProgress, Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_log_gets_a_line_per_interval_and_nothing_for_a_short_job():
    clock, out = Clock(), io.StringIO()
    with Progress("Evaluating bireal18", 10_000, stream=out, interval=30, clock=clock,
                  tty=False) as progress:
        for _ in range(40):  # 40 batches of 256 images, 2 s each
            clock.now += 2
            progress.update(256)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # at 30 s and 60 s; none at the end
    assert lines[0] == "Evaluating bireal18: 3,840/10,000 images, 30 s, ~48 s left"
    short = io.StringIO()
    with Progress("Evaluating", 512, stream=short, clock=Clock(), tty=False) as progress:
        progress.update(512)
    assert short.getvalue() == ""


def test_a_terminal_gets_one_bar_redrawn_in_place_and_ended():
    clock, out = Clock(), io.StringIO()
    with Progress("Parity: flatbuffer", 256, stream=out, clock=clock, tty=True) as progress:
        for _ in range(4):
            clock.now += 0.5
            progress.update(64)
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1 and text.count("\r") >= 2
    assert text.rsplit("\r", 1)[1].startswith("[" + "#" * 30 + "] Parity: flatbuffer: 256/256")


def test_fit_in_a_log_says_steps_loss_and_validation_within_the_epoch():
    clock, out = Clock(), io.StringIO()
    fit = FitProgress(150, 40, stream=out, interval=30, clock=clock)
    fit.on_epoch_begin(0)
    for step in range(150):
        clock.now += 1
        fit.on_train_batch_end(step, {"loss": 2.0 - step / 100})
    fit.on_test_begin()
    for batch in range(40):
        clock.now += 1
        fit.on_test_batch_end(batch)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Epoch 1: 30/150 steps, 30 s, ~120 s left (loss 1.7100)"
    assert len(lines) == 6 and lines[-1].startswith("Epoch 1 validation: 30/40 batches, 30 s")
