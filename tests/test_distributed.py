"""--strategy mirrored and multi-worker on CPU: the same tiny real run as on one device."""

import json
import socket
import subprocess
import types

import pytest

from conftest import cli_command, cli_env, requires_fashion_mnist, run_cli, snapshot

# bireal18 at width 8 on 14x14 Fashion-MNIST: 40 steps of a global batch of 32.
TINY = ["train", "bireal18", "--width", "8", "--input-size", "14", "--batch-size", "32",
        "--epochs", "1", "--steps-per-epoch", "40", "--validation-steps", "8",
        "--learning-rate", "2e-3", "--no-xla"]


def _last_row(run_dir):
    (row,) = json.loads((run_dir / "history.json").read_text())
    return row


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    runs = tmp_path_factory.mktemp("single")
    result = run_cli(runs, *TINY, "--output", runs / "run")
    assert result.returncode == 0, result.stderr
    return _last_row(runs / "run")


def _close_to(row, reference):
    """Above chance and within 12 points of the single-device run on the same
    256 test images (BatchNorm sees each replica's half of the batch, so the
    runs are not identical; measured: 57.0 % single, 51.6 % mirrored, 52.7 %
    multi-worker)."""
    assert row["val_accuracy"] > 0.3, row
    assert abs(row["val_accuracy"] - reference["val_accuracy"]) < 0.12, (row, reference)
    assert row["loss"] < 2.2 and abs(row["loss"] - reference["loss"]) < 0.3, (row, reference)


@requires_fashion_mnist
def test_mirrored_over_two_logical_cpus_reaches_the_single_device_result(tmp_path, single_device):
    result = run_cli(tmp_path, *TINY, "--strategy", "mirrored", "--output", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "mirroring over 2 logical CPU devices" in result.stdout
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["strategy"] == "mirrored"
    _close_to(_last_row(tmp_path / "run"), single_device)


@requires_fashion_mnist
def test_two_workers_on_loopback_reach_the_single_device_result(tmp_path, single_device):
    ports = _free_ports(2)
    run_dir = tmp_path / "run"
    temporaries = [tmp_path / f"tmp{i}" for i in range(2)]
    workers = []
    for index, temporary in enumerate(temporaries):
        temporary.mkdir()
        env = dict(cli_env(tmp_path / "runs"), TF_CONFIG=_tf_config(ports, index),
                   TMPDIR=str(temporary))
        workers.append(subprocess.Popen(
            cli_command(*TINY, "--strategy", "multi-worker", "--output", run_dir),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=900) for worker in workers]
    for worker, (_stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    # Both workers trained the same replicated model: the same epoch figures.
    rows = [line for stdout, _ in outputs for line in stdout.splitlines() if "val_accuracy" in line]
    assert len(rows) == 2 and rows[0].split(" - ")[2:6] == rows[1].split(" - ")[2:6], rows
    _close_to(_last_row(run_dir), single_device)
    assert (run_dir / "model.h5").is_file() and (run_dir / "checkpoints").is_dir()
    # Worker 1 (not the chief) wrote only into its own temporary folder, and removed it.
    assert "Worker 1: training beside the chief" in outputs[1][0]
    assert f"writing to {temporaries[1]}" in outputs[1][0]
    assert "Worker" not in outputs[0][0]
    assert not list(temporaries[1].glob("run-worker-*"))


def test_multi_worker_without_tf_config_is_one_message(tmp_path):
    env = cli_env(tmp_path / "runs")
    env.pop("TF_CONFIG", None)
    result = subprocess.run(cli_command(*TINY, "--strategy", "multi-worker", "--output",
                                        tmp_path / "run"),
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "TF_CONFIG, which is not set" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("tf_config, message", [
    ("{not json", "TF_CONFIG must be JSON"),
    ('{"cluster": {"worker": ["localhost:1"]}}', "TF_CONFIG must be JSON"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}',
     "is not one of its 1 workers"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "ps", "index": 0}}',
     "is not one of its 1 workers"),
])
def test_bad_tf_config_is_refused(monkeypatch, tf_config, message):
    from bnnzoo.training import distribution

    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        distribution.make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    assert distribution.cluster_spec()["task"]["index"] == 1
    with pytest.raises(ValueError, match="Unknown strategy"):
        distribution.make_strategy("parameter-server")


@requires_fashion_mnist
def test_a_non_chief_worker_resumes_from_the_chiefs_checkpoint_and_writes_nothing_of_its_own(
        invoke, tmp_path, monkeypatch):
    """A run killed after its first of two epochs, resumed by worker 1 of two
    (``training.distribution``: only the chief writes the run directory): the
    worker continues at epoch 2 from the chief's checkpoint (its weights, its
    optimiser, its epoch counter), trains in a temporary copy it removes at
    the end, and leaves every byte of the chief's run as it was."""
    import tempfile

    import tensorflow as tf

    from bnnzoo.training import distribution

    chief_dir = tmp_path / "run"
    tiny = ["siman_resnet20", "--epochs", "2", "--steps-per-epoch", "1", "--batch-size", "8",
            "--input-size", "8", "--validation-steps", "1", "--no-xla"]
    assert invoke("train", *tiny, "--output", chief_dir).exit_code == 0
    # Killed after epoch 1: its checkpoint the latest, no epoch-2 checkpoint, no model.h5.
    checkpoints = chief_dir / "checkpoints"
    for part in checkpoints.glob("ckpt-2.*"):
        part.unlink()
    (checkpoints / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n'
                                            'all_model_checkpoint_paths: "ckpt-1"\n')
    (chief_dir / "model.h5").unlink()
    chief_files = snapshot(chief_dir)

    # Worker 1 of a two-worker cluster, in this process: the default strategy
    # stands in for the cluster's (what the worker writes is tested here, not
    # the all-reduce), and is_chief gives worker 1's answer.
    cluster = tf.train.ClusterSpec({"worker": ["localhost:1", "localhost:2"]})
    for index, chief in ((0, True), (1, False)):
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            cluster, task_type="worker", task_id=index)
        assert distribution.is_chief(types.SimpleNamespace(cluster_resolver=resolver)) is chief
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    monkeypatch.setattr(distribution, "make_strategy", lambda name: tf.distribute.get_strategy())
    monkeypatch.setattr(distribution, "is_chief", lambda strategy: False)
    worker_tmp = tmp_path / "worker-tmp"
    worker_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(worker_tmp))
    result = invoke("train", "siman_resnet20", "--resume", "--output", chief_dir,
                    "--strategy", "multi-worker")
    assert result.exit_code == 0, result.output
    assert "Worker 1: training beside the chief" in result.output
    assert f"writing to {worker_tmp}" in result.output
    assert "at epoch 2/2" in result.output  # the chief's epoch counter, restored
    assert snapshot(chief_dir) == chief_files  # nothing written into the chief's run
    assert list(worker_tmp.iterdir()) == []  # its own copy removed
