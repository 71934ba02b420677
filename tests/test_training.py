"""Training through the CLI on real Fashion-MNIST: run directory, accuracy, resume."""

import json
import shutil
import signal
import subprocess
import time

from conftest import cli_command, cli_env, requires_fashion_mnist, run_cli

pytestmark = requires_fashion_mnist


def test_run_directory_holds_everything_later_stages_read(trained):
    runs, run_dir, result = trained
    for name in ("config.json", "model.h5", "history.csv", "history.json", "curves.png"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "logs").rglob("events.out.tfevents.*"))
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "bireal18" and config["input_shape"] == [14, 14, 1]
    assert config["recipe"]["optimizer"] == "adam" and config["label_smoothing"] == 0.1
    assert config["versions"]["larq"] == "0.14.0"
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1]
    assert history[1]["learning_rate"] < history[0]["learning_rate"]  # linear decay
    assert (runs / "latest").read_text().strip() == str(run_dir.resolve())
    assert "Run directory:" in result.stdout


def test_trained_model_is_clearly_above_chance_on_real_test_images(trained):
    runs, run_dir, _ = trained
    result = run_cli(runs, "evaluate", "--json", "--limit", "2000")  # the latest run
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["examples"] == 2000 and report["dataset"] == "fashion_mnist"
    assert report["top1"] > 0.55, report  # chance is 0.10
    assert report["top5"] > report["top1"]


def test_a_model_file_outside_its_run_needs_a_dataset(trained, tmp_path):
    runs, run_dir, _ = trained
    loose = shutil.copy(run_dir / "model.h5", tmp_path / "model.h5")
    result = run_cli(runs, "evaluate", loose)
    assert result.returncode != 0 and "needs --dataset" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli(runs, "evaluate", loose, "--dataset", "fashion_mnist", "--limit", "500",
                     "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["top1"] > 0.5


def test_new_run_never_overwrites_and_resume_refuses_other_options(trained):
    runs, run_dir, _ = trained
    before = (run_dir / "model.h5").read_bytes()
    result = run_cli(runs, "train", "bireal18", "--output", run_dir, "--epochs", "1")
    assert result.returncode == 1 and "already exists" in result.stderr
    result = run_cli(runs, "train", "bireal18", "--resume", "--output", run_dir, "--epochs", "5",
                     "--batch-size", "64")  # more epochs alone would extend the run
    assert result.returncode == 1 and "differ from its config.json: epochs, batch_size" in result.stderr
    result = run_cli(runs, "train", "bireal18", "--resume", "--output", run_dir)
    assert result.returncode == 0 and "already finished" in result.stdout
    assert (run_dir / "model.h5").read_bytes() == before
    assert "Traceback" not in result.stderr


def test_kill_9_mid_run_then_resume_loses_nothing(tmp_path, invoke):
    runs = tmp_path / "runs"
    run_dir = runs / "killed"  # inside the runs folder: `--resume` alone finds it
    args = ["train", "bireal18", "--epochs", "5", "--steps-per-epoch", "3", "--input-size", "8",
            "--batch-size", "8", "--validation-steps", "1", "--no-xla", "--output", run_dir]
    proc = subprocess.Popen(cli_command(*args), env=cli_env(runs), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    history_file = run_dir / "history.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if history_file.is_file() and len(json.loads(history_file.read_text())) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "model.h5").exists(), "the run finished before it could be killed"
    done = json.loads(history_file.read_text())
    assert 2 <= len(done) < 5

    state = (run_dir / "checkpoints" / "checkpoint").read_text()
    checkpointed = int(state.split('model_checkpoint_path: "ckpt-')[1].split('"')[0])
    assert checkpointed in (len(done), len(done) - 1)  # killed between history and checkpoint

    # The unfinished run is evaluated from its last checkpoint.
    partial = invoke("evaluate", run_dir, "--limit", "64", "--json", runs=runs)
    assert partial.exit_code == 0, partial.output
    assert json.loads(partial.stdout)["examples"] == 64

    result = invoke("train", "bireal18", "--resume", runs=runs)  # the latest run
    assert result.exit_code == 0, result.output
    assert f"Resuming {run_dir} at epoch {checkpointed + 1}/5" in result.stdout
    history = json.loads(history_file.read_text())
    assert [row["epoch"] for row in history] == [0, 1, 2, 3, 4]
    assert history[:checkpointed] == done[:checkpointed]  # checkpointed epochs kept exactly
    assert (run_dir / "model.h5").is_file()
    # The learning-rate schedule continued from the restored step: still decaying.
    rates = [row["learning_rate"] for row in history]
    assert all(a > b for a, b in zip(rates, rates[1:]))
