"""Robustness: damaged files, atomic output, bad input, nothing written outside --output.

Most commands run in this process through click's runner (a CLI run that
fails with a traceback shows up as an exception other than ``SystemExit``);
the few that could crash the interpreter, or that must start from an empty
home folder, run as subprocesses. One tiny training run (``tiny_run``, started
in empty working and home folders) gives the files that are damaged here:
copies of it, never the run itself. Tests that need the real Fashion-MNIST (that run,
parity and evaluation on its images) are gated one by one; atomic writes, the
flatbuffer checks and the benchmark scripts' lint run without it.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tensorflow as tf

from bnnzoo import atomic, runs
from bnnzoo.training import history
from conftest import (REPO, assert_one_clear_error, cli_command, requires_fashion_mnist, snapshot,
                      tiny_bnn)

TINY_TRAIN = ["siman_resnet20", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "8",
              "--input-size", "8", "--validation-steps", "1", "--no-xla"]
# What TensorFlow / Keras and matplotlib themselves keep in a home folder.
LIBRARY_CACHES = re.compile(r"^(\.keras(/keras\.json)?|\.cache(/matplotlib(/.*)?)?|\.config(/matplotlib)?)$")


# ------------------------------------------------------------------ helpers


def garble(path: Path, at: float = 0.5) -> None:
    """Overwrite 512 bytes (from ``at`` of the way in) with other bytes; the size stays."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start:start + 512] = bytes(b ^ 0x5A for b in data[start:start + 512])
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {"truncated": truncate, "garbled": garble, "garbled header": lambda p: garble(p, 0),
          "garbled early": lambda p: garble(p, 0.1)}  # a checkpoint's model weights, not slots


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-step training run started in an empty working folder with an empty HOME."""
    root = tmp_path_factory.mktemp("tiny")
    cwd, home, run_dir = root / "cwd", root / "home", root / "out" / "run"
    cwd.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("BNNZOO_RUNS", "MPLCONFIGDIR",
                                                          "KERAS_HOME", "XDG_CACHE_HOME",
                                                          "XDG_CONFIG_HOME")}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    result = subprocess.run(cli_command("train", *TINY_TRAIN, "--output", run_dir), cwd=cwd,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return run_dir, cwd, home


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A copy of the tiny run, to damage."""
    return Path(shutil.copytree(tiny_run[0], tmp_path / "run", ignore=shutil.ignore_patterns("logs")))


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """A small binary Keras model file and its LCE flatbuffer."""
    from bnnzoo.export import export_flatbuffer

    folder = tmp_path_factory.mktemp("tiny-files")
    model = tiny_bnn(side=8)
    model.save(folder / "tiny.h5")
    (folder / "tiny.tflite").write_bytes(export_flatbuffer(model))
    return folder / "tiny.h5", folder / "tiny.tflite"


class Recorder:
    """Wraps ``bnnzoo.atomic.atomic_path`` and notes every target written through it."""

    def __init__(self, monkeypatch):
        self.targets = []
        real = atomic.atomic_path

        def recording(target, *args, **kwargs):
            self.targets.append(Path(target).resolve())
            return real(target, *args, **kwargs)

        monkeypatch.setattr(atomic, "atomic_path", recording)

    def __contains__(self, path):
        return Path(path).resolve() in self.targets


# ------------------------------------------------- nothing outside --output


@requires_fashion_mnist
def test_training_writes_nothing_outside_its_output_folder(tiny_run):
    run_dir, cwd, home = tiny_run
    assert list(cwd.iterdir()) == []  # no runs/latest pointer beside the user
    ours = [str(p.relative_to(home)) for p in home.rglob("*")]
    assert all(LIBRARY_CACHES.match(p) for p in ours), ours  # only TF's and matplotlib's own
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["run"]
    for name in ("config.json", "model.h5", "history.json", "history.csv", "steps.json",
                 "curves.png"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o666 & ~current_umask(), name
    assert not [p for p in run_dir.rglob(".*") if p.is_file()]  # no temporaries left


@requires_fashion_mnist
def test_a_run_logs_every_step_to_tensorboard_and_its_steps(tiny_run):
    run_dir = tiny_run[0]
    tags = set()
    for events in (run_dir / "logs" / "train").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            tags.update(value.tag for value in event.summary.value)
    assert {"batch_loss", "epoch_loss"} <= tags, tags
    (step,) = history.read_steps(run_dir)  # one step of one epoch
    assert step["epoch"] == step["step"] == 0 and step["fraction"] == 1.0 and step["loss"] > 0


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@requires_fashion_mnist
def test_export_writes_nothing_outside_its_output(invoke, tiny_files, tmp_path, monkeypatch):
    model_file, _ = tiny_files
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("BNNZOO_RUNS")  # the default runs folder: ./runs
    recorder = Recorder(monkeypatch)
    result = invoke("export", model_file, "--dataset", "fashion_mnist", "--parity-images", "16",
                    "--output", out / "m.tflite")
    assert result.exit_code == 0, result.output
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["m.report.json", "m.tflite", "m.tflite.sha256"]
    assert sorted(p.name for p in model_file.parent.iterdir()) == ["tiny.h5", "tiny.tflite"]
    # Both written through bnnzoo.atomic.
    assert out / "m.tflite" in recorder and out / "m.report.json" in recorder


# ----------------------------------------------------------- atomic output


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    atomic.write_json(target, {"good": 1})
    good = target.read_bytes()
    with pytest.raises(RuntimeError, match="killed"):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("killed midway")
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    with pytest.raises(FileExistsError):  # overwrite=False never replaces
        with atomic.atomic_path(target, overwrite=False) as tmp:
            tmp.write_text("{}")
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_atomic_files_get_the_mode_a_plain_write_would(tmp_path):
    fresh = tmp_path / "fresh.txt"
    atomic.write_text(fresh, "x")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # not mkstemp's 0600
    fresh.chmod(0o640)
    atomic.write_text(fresh, "y")
    assert fresh.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode


def test_run_files_are_written_through_bnnzoo_atomic(tmp_path, monkeypatch):
    recorder = Recorder(monkeypatch)
    runs.write_config(tmp_path, {"model": "x"})
    history.write_history(tmp_path, [{"epoch": 0, "loss": 1.0, "accuracy": 0.5}])
    for name in (runs.CONFIG, runs.HISTORY_JSON, runs.HISTORY_CSV, runs.CURVES):
        assert tmp_path / name in recorder, name


def test_a_checkpoint_save_interrupted_before_it_is_recorded_keeps_the_previous_one(tmp_path,
                                                                                   monkeypatch):
    """TensorFlow writes a checkpoint's files first and names it in
    ``checkpoints/checkpoint`` (renamed into place) last: killed before that,
    the previous checkpoint is the latest and intact."""
    from tensorflow.python.checkpoint import checkpoint_management

    value = tf.Variable(1.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=value), tmp_path, max_to_keep=2)
    manager.save(checkpoint_number=1)
    value.assign(2.0)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_management, "update_checkpoint_state_internal", killed)
    with pytest.raises(KeyboardInterrupt):
        manager.save(checkpoint_number=2)
    assert tf.train.latest_checkpoint(tmp_path).endswith("ckpt-1")
    tf.train.Checkpoint(v=value).restore(tf.train.latest_checkpoint(tmp_path)).assert_consumed()
    assert float(value.numpy()) == 1.0


@requires_fashion_mnist
def test_finishing_a_run_from_its_checkpoint_writes_model_h5_atomically(invoke, run_copy,
                                                                       monkeypatch):
    """Killed after the last checkpoint but before model.h5: --resume writes it."""
    (run_copy / "model.h5").unlink()
    recorder = Recorder(monkeypatch)
    result = invoke("train", "siman_resnet20", "--resume", "--output", run_copy)
    assert result.exit_code == 0, result.output
    assert (run_copy / "model.h5").is_file() and run_copy / "model.h5" in recorder


@requires_fashion_mnist
def test_resume_with_more_epochs_extends_a_finished_run_and_refuses_what_it_cannot(invoke,
                                                                                    run_copy,
                                                                                    capsys):
    """The extension re-plans the run (its training continues as any resumed run's,
    tested in test_training); fewer epochs and staged runs are refused."""
    from bnnzoo.training import TrainConfig
    from bnnzoo.training.train import prepare_run

    assert_one_clear_error(invoke("train", "siman_resnet20", "--resume", "--output", run_copy,
                                  "--epochs", "1", "--batch-size", "9"), "batch_size")
    staged = runs.read_config(run_copy)
    staged = dict(staged, two_step=True, options=dict(staged["options"], two_step=True))
    staged_copy = Path(shutil.copytree(run_copy, run_copy.parent / "staged"))
    runs.write_config(staged_copy, staged)
    assert_one_clear_error(
        invoke("train", "siman_resnet20", "--resume", "--output", staged_copy, "--epochs", "3"),
        "trains in stages", "python cli.py train siman_resnet20 ", "--epochs 3", "--two-step")
    run_dir, config = prepare_run(TrainConfig(model="siman_resnet20", epochs=3), run_copy,
                                  resume=True)
    assert run_dir == run_copy and config.epochs == 3 and config.steps_per_epoch == 1
    assert f"Extending {run_copy} from 1 to 3 epochs" in capsys.readouterr().out
    stored = runs.read_config(run_copy)
    assert stored["epochs"] == stored["options"]["epochs"] == 3
    assert not (run_copy / "model.h5").exists()  # the run is unfinished again
    assert_one_clear_error(invoke("train", "siman_resnet20", "--resume", "--output", run_copy,
                                  "--epochs", "1"), "already trained 1 epochs")


def test_benchmark_report_is_written_atomically(invoke, tiny_files, tmp_path, monkeypatch):
    _, flatbuffer = tiny_files
    recorder = Recorder(monkeypatch)
    report = tmp_path / "bench.json"
    result = invoke("benchmark", flatbuffer, "--num-runs", "1", "--output", report)
    assert result.exit_code == 0, result.output
    saved = json.loads(report.read_text())
    assert saved["count"] == 1 and report in recorder
    measured = saved["measured"]  # where and with what it was measured
    assert measured["host_cpu"] and measured["host_cores"] >= 1 and measured["date"][:2] == "20"
    assert measured["versions"]["larq-compute-engine"] == "0.16.0"


def test_benchmark_scripts_write_their_results_through_bnnzoo_atomic():
    """benchmarks/*.py: results only through ``atomic``, never a plain write."""
    plain_write = re.compile(r"json\.dump\(|(?<!atomic)\.write_text\(|\.savefig\(|open\([^)]*[\"'][wax]b?\+?[\"']")
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        source = script.read_text()
        assert not plain_write.search(source), (script.name, plain_write.search(source).group())
        for line in source.splitlines():
            if ".write_bytes(" in line:  # only into an atomic temporary or a scratch folder
                assert re.search(r"\btmp\.write_bytes\(|^\s*path\.write_bytes\(buf\)", line), \
                    (script.name, line)
        if re.search(r"Writes ``benchmarks/results/", source):
            assert "atomic.write_json(" in source, script.name


# ---------------------------------------------------------- damaged files


# HDF5 has no checksums on its data: bytes changed inside the weights load as
# other weights. Its structure (superblock, headers, B-trees) is checked.
@requires_fashion_mnist
@pytest.mark.parametrize("damage", ["truncated", "garbled header"])
def test_a_damaged_model_file_is_one_clear_error(invoke, run_copy, damage):
    DAMAGE[damage](run_copy / "model.h5")
    before = snapshot(run_copy)
    for args in (["evaluate", run_copy, "--limit", "8"],
                 ["evaluate", run_copy / "model.h5", "--dataset", "fashion_mnist"],
                 ["export", run_copy, "--parity-images", "8"]):
        assert_one_clear_error(invoke(*args), "Cannot load a Keras model from",
                               run_copy / "model.h5")
    assert snapshot(run_copy) == before  # no export folder, nothing rewritten


@requires_fashion_mnist
def test_a_damaged_config_is_one_clear_error(invoke, run_copy):
    (run_copy / "config.json").write_text('{"model": "siman_res')
    before = snapshot(run_copy)
    for args in (["evaluate", run_copy], ["export", run_copy],
                 ["train", "siman_resnet20", "--resume", "--output", run_copy]):
        assert_one_clear_error(invoke(*args), "Cannot read", run_copy / "config.json")
    assert snapshot(run_copy) == before


@requires_fashion_mnist
@pytest.mark.parametrize("damage, part", [("truncated", "data-00000-of-00001"),
                                          ("garbled early", "data-00000-of-00001"),
                                          ("garbled", "index")])
def test_a_damaged_checkpoint_is_one_clear_error_and_stays_as_it_was(invoke, run_copy, damage,
                                                                     part):
    (run_copy / "model.h5").unlink()  # an unfinished run: both commands read the checkpoint
    DAMAGE[damage](run_copy / "checkpoints" / f"ckpt-1.{part}")
    before = snapshot(run_copy)
    assert_one_clear_error(invoke("evaluate", run_copy, "--limit", "8"), "ckpt-1")
    assert_one_clear_error(invoke("train", "siman_resnet20", "--resume", "--output", run_copy),
                           "ckpt-1")
    assert snapshot(run_copy) == before  # not retrained over, no model.h5


@requires_fashion_mnist
def test_a_damaged_checkpoint_state_is_not_mistaken_for_a_fresh_run(invoke, run_copy):
    """``checkpoints/checkpoint`` unreadable: --resume must not start again from
    epoch 0 (losing every epoch and overwriting ckpt-1)."""
    (run_copy / "model.h5").unlink()
    (run_copy / "checkpoints" / "checkpoint").write_text("garbage {{{")
    before = snapshot(run_copy)
    assert_one_clear_error(invoke("train", "siman_resnet20", "--resume", "--output", run_copy),
                           run_copy / "checkpoints")
    assert_one_clear_error(invoke("evaluate", run_copy), run_copy / "checkpoints")
    assert snapshot(run_copy) == before


def damaged_flatbuffers(good: bytes, folder: Path) -> dict:
    middle = len(good) // 2
    cases = {
        "truncated": good[:middle],
        "header": b"\xff" * 64 + good[64:],
        "garbled": good[:middle] + bytes(b ^ 0x5A for b in good[middle:middle + 256])
        + good[middle + 256:],  # crashed LCE's interpreter (SIGSEGV) before it was checked
    }
    paths = {}
    for name, data in cases.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(data)
    return paths


def test_a_damaged_flatbuffer_is_one_clear_error(invoke, tiny_files, tmp_path):
    _, flatbuffer = tiny_files
    for name, path in damaged_flatbuffers(flatbuffer.read_bytes(), tmp_path).items():
        assert_one_clear_error(invoke("evaluate", path, "--dataset", "fashion_mnist"),
                               "Not a TFLite flatbuffer")
        if name != "garbled":  # in a subprocess below: it used to kill the interpreter
            assert_one_clear_error(invoke("benchmark", path, "--num-runs", "1"), path)
    garbled = tmp_path / "garbled.tflite"
    result = subprocess.run(cli_command("benchmark", garbled, "--num-runs", "1"),
                            env=dict(os.environ, BNNZOO_RUNS=str(tmp_path / "runs")),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, (result.returncode, result.stderr)  # not -11 (SIGSEGV)
    assert "damaged or not a flatbuffer" in result.stderr and str(garbled) in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.json"))  # no benchmark report for a damaged model


def test_any_damage_to_a_flatbuffer_is_a_flatbuffer_error(tiny_files):
    """Random byte damage: decoded or refused as FlatbufferError, never another exception
    (IndexError, KeyError, UnicodeDecodeError ... escaped before)."""
    import random

    from bnnzoo.export import flatbuffer as fb

    good = tiny_files[1].read_bytes()
    rng = random.Random(0)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.choice([1, 4, 16])):
            data[rng.randrange(8, len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(8, len(data))]
        try:
            fb.operators(bytes(data))
            fb.io_types(bytes(data))
            fb.input_shape(bytes(data))
        except fb.FlatbufferError:
            pass


@requires_fashion_mnist
def test_a_good_export_is_never_replaced_by_a_failed_or_unasked_one(invoke, tiny_files, tmp_path):
    model_file, _ = tiny_files
    out = tmp_path / "m.tflite"
    assert invoke("export", model_file, "--dataset", "fashion_mnist", "--parity-images", "16",
                  "--output", out).exit_code == 0
    good = snapshot(tmp_path)
    # Without --overwrite: refused, for the flatbuffer or its report alone.
    assert_one_clear_error(invoke("export", model_file, "--dataset", "fashion_mnist",
                                  "--output", out), "already exists", out)
    assert snapshot(tmp_path) == good
    out.unlink()
    before = snapshot(tmp_path)
    assert_one_clear_error(invoke("export", model_file, "--dataset", "fashion_mnist",
                                  "--output", out), "already exists", "m.report.json")
    assert snapshot(tmp_path) == before
    # With --overwrite but a damaged source: nothing replaced.
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(model_file.read_bytes()[:1000])
    before = snapshot(tmp_path)
    assert_one_clear_error(invoke("export", damaged, "--dataset", "fashion_mnist", "--overwrite",
                                  "--output", tmp_path / "m.tflite"), "Cannot load", damaged)
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------ bad input


@requires_fashion_mnist
def test_bad_training_input_is_one_clear_error(invoke, tmp_path):
    out = tmp_path / "run"
    cases = [
        (["--batch-size", "0"], "batch-size must be at least 1"),
        (["--batch-size", "-3"], "batch-size must be at least 1"),
        (["--epochs", "-1"], "epochs must be at least 1"),
        (["--steps-per-epoch", "0"], "steps-per-epoch must be at least 1"),
        (["--dataset", "no_such_dataset"], "no_such_dataset"),
        (["--input-size", "2", "--no-xla"], "siman_resnet20 cannot use 2x2 inputs: its strides "
                                            "and pooling need at least 3x3"),
    ]
    for extra, message in cases:
        assert_one_clear_error(invoke("train", "siman_resnet20", *extra, "--output", out), message)
        assert not out.exists()
    assert_one_clear_error(invoke("train", "resnet9000", "--output", out), "Unknown model")
    # An output folder that cannot be created: the error names it.
    assert_one_clear_error(invoke("train", *TINY_TRAIN, "--output", "/proc/forbidden/run"),
                           "/proc/forbidden")
    # An output that is a file, not a folder.
    a_file = tmp_path / "a_file"
    a_file.write_text("not a run\n")
    assert_one_clear_error(invoke("train", *TINY_TRAIN, "--output", a_file),
                           "Cannot use", str(a_file))
    assert a_file.read_text() == "not a run\n"


@requires_fashion_mnist
def test_bad_evaluate_export_and_benchmark_input_is_one_clear_error(invoke, tiny_files, tmp_path):
    model_file, flatbuffer = tiny_files
    empty = tmp_path / "empty"
    empty.mkdir()
    damaged = tmp_path / "damaged"  # IDX files whose gzip streams are garbage
    damaged.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (damaged / f"{stem}.gz").write_bytes(b"\x1f\x8b\x08 not a gzip stream")
    bad_report = tmp_path / "bad_report"  # a flatbuffer whose export report is damaged
    bad_report.mkdir()
    shutil.copy(flatbuffer, bad_report / "m.tflite")
    (bad_report / "m.report.json").write_text('{"dataset": "fashion_mn')
    flat = tmp_path / "flat.h5"  # not an image model
    tf.keras.Sequential([tf.keras.Input((784,)), tf.keras.layers.Dense(10)]).save(flat)
    two_channels = tmp_path / "two.h5"
    tf.keras.Sequential([tf.keras.Input((8, 8, 2)), tf.keras.layers.Flatten(),
                         tf.keras.layers.Dense(10)]).save(two_channels)
    cases = [
        (["evaluate", model_file, "--dataset", "fashion_mnist", "--data-dir", empty], "not found"),
        (["evaluate", model_file, "--dataset", "no_such_dataset"], "no_such_dataset"),
        (["evaluate", model_file, "--dataset", "fashion_mnist", "--data-dir", damaged],
         "cannot be read"),
        (["evaluate", bad_report / "m.tflite"], "Cannot read"),
        (["evaluate", model_file, "--dataset", "fashion_mnist", "--batch-size", "0"], "positive"),
        (["evaluate", model_file, "--dataset", "fashion_mnist", "--limit", "-5"], "positive"),
        (["evaluate", flat, "--dataset", "fashion_mnist"], "(784,)"),
        (["evaluate", two_channels, "--dataset", "fashion_mnist"], "2 channels"),
        (["export", model_file, "--dataset", "fashion_mnist", "--data-dir", empty], "not found"),
        (["export", model_file, "--dataset", "fashion_mnist", "--parity-images", "0"],
         "parity-images must be at least 1"),
        (["export", model_file, "--target", "x86"], "'--target'"),
        (["export", flat, "--dataset", "fashion_mnist"], "no binary layers"),
        (["export", tmp_path / "missing.h5"], "does not exist"),
        (["benchmark", flatbuffer, "--device", "bluetooth"], "Unknown device"),
        (["benchmark", flatbuffer, "--num-runs", "0"], "--num-runs"),
        (["benchmark", flatbuffer, "--threads", "-1"], "--threads"),
        (["benchmark", flatbuffer, "--num-runs", "1", "--output", "/proc/forbidden/b.json"],
         "/proc/forbidden"),
        (["benchmark", model_file], "give a .tflite flatbuffer"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), \
            (args, result.exception)
        assert message in result.output, (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_report", "damaged", "empty",
                                                          "flat.h5", "two.h5"]


@requires_fashion_mnist
def test_a_binary_model_whose_input_is_not_an_image_is_refused_by_export(invoke, tmp_path):
    import larq as lq

    path = tmp_path / "flat_binary.h5"
    tf.keras.Sequential([
        tf.keras.Input((784,)),
        lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                             kernel_constraint="weight_clip"),
    ]).save(path)
    result = invoke("export", path, "--dataset", "fashion_mnist", "--parity-images", "8")
    assert_one_clear_error(result, "(784,)", "fashion_mnist")
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".h5"] in ([], ["runs"])
    assert not list(tmp_path.rglob("*.tflite"))
