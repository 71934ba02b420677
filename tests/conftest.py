import os
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
