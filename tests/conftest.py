import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow, as users get it)

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
    return subprocess.run(cli_command(*args), env=cli_env(runs), capture_output=True, text=True,
                          timeout=timeout)


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
