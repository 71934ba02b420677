import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow, as users get it)
import larq as lq
import numpy as np
import tensorflow as tf

from bnnzoo.datasets.sources import Dataset

REPO = Path(__file__).resolve().parents[1]
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """Keep every run (and the `latest` pointer) inside the test's folder."""
    monkeypatch.setenv("BNNZOO_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def cli_command(*args):
    return [sys.executable, str(REPO / "cli.py"), *map(str, args)]


def cli_env(runs: Path):
    env = dict(os.environ, BNNZOO_RUNS=str(runs), PYTHONUNBUFFERED="1")
    return env


requires_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST.is_dir() and not os.environ.get("CI"),
    reason="real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


# Small and fast on 2 cores: 14x14 inputs, a few hundred steps.
QUICK = ["--input-size", "14", "--batch-size", "32", "--validation-steps", "4"]


def run_cli(runs, *args, timeout=900):
    """``python cli.py ARGS`` as a user types it: a process of its own (its start-up,
    stderr filter and exit code), ~5 s of imports each time. Tests of what the
    command does, rather than of the process, use :func:`invoke`."""
    return subprocess.run(cli_command(*args), env=cli_env(runs), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def cli_module():
    spec = importlib.util.spec_from_file_location("bnnzoo_cli", REPO / "cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def invoke(cli_module, tmp_path, monkeypatch):
    """Run the CLI in this process through click's runner: the same commands
    without a new interpreter (its stderr filter off: it would take fd 2).
    ``invoke(*args, runs=FOLDER)`` keeps ``latest`` there (default: the test's)."""
    monkeypatch.setattr(cli_module, "_silence_python_logs", lambda verbose: None)
    monkeypatch.setenv("BNNZOO_VERBOSE", "0")
    monkeypatch.setenv("BNNZOO_RUNS", str(tmp_path / "runs"))

    def run(*args, runs=None):
        if runs is not None:
            monkeypatch.setenv("BNNZOO_RUNS", str(runs))
        return CliRunner().invoke(cli_module.cli, [str(a) for a in args])

    return run


def assert_one_clear_error(result, *fragments):
    """A non-zero exit with one ``Error:`` line naming the problem, no traceback
    (an in-process result of :func:`invoke`)."""
    assert result.exit_code != 0, result.output
    if not isinstance(result.exception, SystemExit):  # it escaped the CLI: a traceback
        raise AssertionError(f"uncaught {type(result.exception).__name__}") from result.exception
    assert "Traceback" not in result.output and 'File "' not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert str(fragment) in errors[0], errors[0]


def tiny_bnn(side=8, name="tiny", binary_head=False):
    """Float stem, two Bi-Real-style binary blocks, float (or binary) dense head."""
    inp = tf.keras.Input((side, side, 1))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = tf.keras.layers.BatchNormalization()(x)
    for i in range(2):
        y = lq.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, use_bias=False,
                                  input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                  kernel_constraint="weight_clip", name=f"binary_{i}")(x)
        x = tf.keras.layers.add([x, tf.keras.layers.BatchNormalization()(y)])
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    if binary_head:  # XNOR-Net / BinaryAlexNet style: LCE has no binary dense kernel
        out = lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                   kernel_constraint="weight_clip", activation="softmax",
                                   name="binary_dense")(x)
    else:
        out = tf.keras.layers.Dense(10, activation="softmax")(x)
    model = tf.keras.Model(inp, out, name=name)
    # Non-trivial BatchNorm statistics, so that folding them is exercised.
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2, var.shape)])
    return model


def fake_data(n=1000):
    """A dataset of ``n`` 28x28x1 training images and 100 test images, of its
    facts only (no readers): for resolving a configuration."""
    return Dataset(name="fake", num_classes=10, image_shape=(28, 28, 1), source="test",
                   split_sizes={"train": n, "test": 100}, _readers={})


def snapshot(folder: Path) -> dict:
    """Every file below ``folder`` and its bytes: to show that nothing was written there."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file()}


def session_folder(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this session shares (README's test
    command runs two; without xdist, the session's own folder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """bireal18 trained through the CLI on real Fashion-MNIST (shared by training and export
    tests, trained once per session: the first worker to need it trains, the others wait)."""
    if not FASHION_MNIST.is_dir() and not os.environ.get("CI"):
        pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    shared = session_folder(tmp_path_factory)
    runs = shared / "trained-runs"
    run_dir = runs / "fmnist"
    with open(shared / "trained.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        output = shared / "trained-output.json"
        if not output.is_file():
            shutil.rmtree(runs, ignore_errors=True)  # a failed attempt's leftovers
            result = run_cli(runs, "train", "bireal18", "--dataset", "fashion_mnist", "--epochs",
                             "2", "--steps-per-epoch", "60", "--learning-rate", "2e-3", "--output",
                             run_dir, "--no-xla", *QUICK)
            assert result.returncode == 0, result.stderr
            output.write_text(json.dumps({"stdout": result.stdout, "stderr": result.stderr}))
        said = json.loads(output.read_text())
    return runs, run_dir, subprocess.CompletedProcess([], 0, said["stdout"], said["stderr"])


# The test files with the most work, heaviest first (seconds of one worker, 2-core
# AMD EPYC, 2026-12-02). pytest-xdist hands whole files to its workers in
# collection order; the heaviest first leaves short files to fill the end, so
# neither worker idles while the other finishes a long file.
HEAVIEST_FIRST = ("test_real2bin.py", "test_export_cli.py", "test_reactnet.py",
                  "test_training_algorithm.py", "test_siman_nets.py", "test_training.py",
                  "test_precision_and_xla.py", "test_stage_switch.py", "test_distributed.py",
                  "test_zoo.py", "test_family.py", "test_robustness.py", "test_cli.py",
                  "test_benchmark_scripts.py", "test_int8_edges.py", "test_package.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file
