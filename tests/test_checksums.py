"""Model files carry their SHA-256: a damaged one is refused, never silently used.

HDF5 keeps no checksum of its data, so bytes changed in the middle of
``model.h5`` load as other weights. Every model file a run writes gets a
``.sha256`` sidecar, and every load checks it (``bnnzoo.checksums``).
"""

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import larq as lq
import pytest
import tensorflow as tf

from bnnzoo import atomic, checksums, model_files, runs
from bnnzoo.export import export_flatbuffer
from bnnzoo.export import flatbuffer as fb
from conftest import assert_one_clear_error, requires_fashion_mnist, run_cli, snapshot

TINY_TRAIN = ["siman_resnet20", "--dataset", "fashion_mnist", "--epochs", "1",
              "--steps-per-epoch", "1", "--batch-size", "8", "--input-size", "8",
              "--validation-steps", "1", "--no-xla"]


def flip_middle(path: Path) -> None:
    """Invert 64 bytes in the middle of ``path`` (its size stays): inside an
    HDF5 file's weights, which load as other numbers."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def small_bnn() -> tf.keras.Model:
    inp = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = lq.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, use_bias=False,
                              input_quantizer="ste_sign", kernel_quantizer="ste_sign")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, tf.keras.layers.Dense(10, activation="softmax")(x), name="small")


# ------------------------------------------------------------ the sidecar


def test_a_recorded_write_leaves_the_file_and_its_sha256sum_line(tmp_path):
    target = tmp_path / "model.h5"
    with checksums.recorded_path(target) as tmp:
        tmp.write_bytes(b"weights" * 1000)
    digest = hashlib.sha256(b"weights" * 1000).hexdigest()
    assert checksums.sidecar(target).read_text() == f"{digest}  model.h5\n"  # sha256sum -c reads it
    assert checksums.recorded(target) == digest
    checksums.verify(target)
    flip_middle(target)
    with pytest.raises(checksums.ChecksumMismatch) as refused:
        checksums.verify(target)
    message = str(refused.value)
    assert "\n" not in message and str(target) in message and digest in message
    assert checksums.sha256(target) in message


def test_a_file_without_a_record_is_read_as_it_is(tmp_path):
    target = tmp_path / "model.h5"
    target.write_bytes(b"from elsewhere")
    assert checksums.recorded(target) is None
    checksums.verify(target)


def test_a_damaged_record_refuses_the_file(tmp_path):
    target = tmp_path / "model.h5"
    target.write_bytes(b"weights")
    checksums.sidecar(target).write_text("not a checksum\n")
    with pytest.raises(checksums.ChecksumMismatch, match="not a SHA-256 record"):
        checksums.verify(target)


def test_a_failed_or_refused_write_keeps_the_old_pair(tmp_path):
    target = tmp_path / "model.h5"
    with checksums.recorded_path(target) as tmp:
        tmp.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with checksums.recorded_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    with pytest.raises(FileExistsError):
        with checksums.recorded_path(target, overwrite=False) as tmp:
            tmp.write_bytes(b"new")
    assert target.read_bytes() == b"old"
    checksums.verify(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5", "model.h5.sha256"]


def test_killed_before_its_record_is_written_a_new_file_has_none_not_the_old_one(tmp_path,
                                                                                  monkeypatch):
    target = tmp_path / "model.h5"
    with checksums.recorded_path(target) as tmp:
        tmp.write_bytes(b"old")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        with checksums.recorded_path(target) as tmp:
            tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and not checksums.sidecar(target).exists()
    checksums.verify(target)  # unchecked, as a file from elsewhere: never refused wrongly


# ------------------------------------------------------- every load checks


def test_a_damaged_keras_file_is_refused_and_an_unrecorded_one_loads(tmp_path):
    model = small_bnn()
    recorded = tmp_path / "recorded.h5"
    with checksums.recorded_path(recorded) as tmp:
        model.save(tmp, save_format="h5")
    unrecorded = tmp_path / "unrecorded.h5"
    shutil.copyfile(recorded, unrecorded)
    assert model_files.load_model_file(recorded).count_params() == model.count_params()
    flip_middle(recorded)
    flip_middle(unrecorded)
    for load in (model_files.load_model_file, runs.load_model_file,
                 lambda path: runs.load_source(path)):
        with pytest.raises(checksums.ChecksumMismatch, match="Cannot load a Keras model from"):
            load(recorded)
    # No record: HDF5 reads the changed weights as it always did (the damage this guards).
    assert model_files.load_model_file(unrecorded).count_params() == model.count_params()


def test_a_damaged_flatbuffer_is_refused(tmp_path):
    path = tmp_path / "small.tflite"
    with checksums.recorded_path(path) as tmp:
        tmp.write_bytes(export_flatbuffer(small_bnn()))
    assert fb.read_flatbuffer(path) == path.read_bytes()
    flip_middle(path)
    with pytest.raises(checksums.ChecksumMismatch, match="Cannot load a flatbuffer from"):
        fb.read_flatbuffer(path)


# ---------------------------------------------- a real run, through the CLI


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-step training run and its export (shared: copies are damaged)."""
    runs_dir = tmp_path_factory.mktemp("checksum-runs")
    run_dir = runs_dir / "run"
    result = run_cli(runs_dir, "train", *TINY_TRAIN, "--output", run_dir)
    assert result.returncode == 0, result.stderr
    result = run_cli(runs_dir, "export", run_dir, "--parity-images", "8")
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    return Path(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("logs")))


@requires_fashion_mnist
def test_a_run_records_the_sha256_of_its_model_and_its_export(tiny_run):
    [flatbuffer] = (tiny_run / "export").glob("*.tflite")
    for path in (tiny_run / runs.MODEL, flatbuffer):
        assert checksums.recorded(path) == checksums.sha256(path), path
        check = subprocess.run(["sha256sum", "-c", checksums.sidecar(path).name], cwd=path.parent,
                               capture_output=True, text=True)
        assert check.returncode == 0 and ": OK" in check.stdout, check.stdout + check.stderr


@requires_fashion_mnist
def test_a_damaged_model_h5_is_refused_by_every_command_that_reads_it(invoke, run_copy):
    model = run_copy / runs.MODEL
    flip_middle(model)
    before = snapshot(run_copy)
    for args in (["evaluate", run_copy, "--limit", "8"],
                 ["evaluate", model, "--dataset", "fashion_mnist", "--limit", "8"],
                 ["export", run_copy, "--parity-images", "8", "--overwrite"],
                 ["train", "siman_resnet20", "--resume", "--output", run_copy],
                 ["quantize", run_copy, "--steps", "1", "--calibration-images", "8"],
                 ["train", *TINY_TRAIN, "--init-from", run_copy, "--output",
                  run_copy.parent / "student"],
                 ["train", "real2bin", *TINY_TRAIN[1:], "--stage", "1", "--teacher", model,
                  "--output", run_copy.parent / "taught"]):
        assert_one_clear_error(invoke(*args), "Cannot load a Keras model from", model, "SHA-256")
    assert snapshot(run_copy) == before
    assert not (run_copy.parent / "student").exists() and not (run_copy.parent / "taught").exists()


@requires_fashion_mnist
def test_a_damaged_export_is_refused_and_an_unrecorded_model_still_loads(invoke, run_copy):
    [flatbuffer] = (run_copy / "export").glob("*.tflite")
    flip_middle(flatbuffer)
    assert_one_clear_error(invoke("evaluate", flatbuffer, "--limit", "8"),
                           "Cannot load a flatbuffer from", flatbuffer, "SHA-256")
    checksums.sidecar(run_copy / runs.MODEL).unlink()  # as a file from elsewhere
    result = invoke("evaluate", run_copy, "--limit", "8", "--json")
    assert result.exit_code == 0, result.output


@requires_fashion_mnist
def test_the_cli_refuses_a_damaged_model_in_one_line_without_a_traceback(run_copy, tmp_path):
    flip_middle(run_copy / runs.MODEL)
    result = run_cli(tmp_path / "runs", "evaluate", run_copy, "--limit", "8")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "SHA-256" in line]
    assert len(errors) == 1 and str(run_copy / runs.MODEL) in errors[0], result.stderr


def test_a_staged_run_copies_its_last_stage_checked_and_refuses_a_damaged_stage(tmp_path,
                                                                                 monkeypatch):
    """A staged run's ``model.h5`` is a copy of its last stage's, written with
    its record once the source is checked; resumed, a finished stage whose file
    is damaged is refused, neither taken as done nor copied."""
    from bnnzoo.training import stages
    from bnnzoo.training.train import train_plan

    monkeypatch.setattr(stages, "plan", lambda config, run_dir: [("one", None), ("two", None)])
    for stage in ("one", "two"):
        with checksums.recorded_path(tmp_path / stage / runs.MODEL) as tmp:
            tmp.write_bytes(f"{stage}'s weights".encode())
    flip_middle(tmp_path / "one" / runs.MODEL)
    with pytest.raises(checksums.ChecksumMismatch, match=re.escape(str(tmp_path / "one"))):
        train_plan(None, None, tmp_path, resume=True, point_latest=False)
    assert not (tmp_path / runs.MODEL).exists()
    (tmp_path / "one" / runs.MODEL).write_bytes(b"one's weights")
    train_plan(None, None, tmp_path, resume=True, point_latest=False)
    assert (tmp_path / runs.MODEL).read_bytes() == b"two's weights"
    assert checksums.recorded(tmp_path / runs.MODEL) == checksums.sha256(tmp_path / runs.MODEL)
