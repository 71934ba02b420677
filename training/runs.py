"""Training run directories and the pointer to the latest one.

A run directory holds everything a later stage reads:

    config.json     the exact configuration (and package versions)
    model.h5        the trained Keras model (written when training ends)
    checkpoints/    model + optimiser + epoch after every completed epoch
    history.csv, history.json, curves.png, logs/ (TensorBoard)

``runs/latest`` (under ``$BNNZOO_RUNS``, default ``./runs``) names the run
that was started last, and ``runs/latest-export`` the last exported flatbuffer,
so later commands can default to them. Only runs and exports inside that
folder are pointed to: one written elsewhere (``--output``) writes nothing
outside its own directory.
"""

import json
import os
import sys
from pathlib import Path
from typing import Optional

from bnnzoo import atomic

CONFIG = "config.json"
MODEL = "model.h5"
CHECKPOINTS = "checkpoints"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
CURVES = "curves.png"
LOGS = "logs"


class RunError(Exception):
    """A run directory that is missing, incomplete or would be overwritten."""


def runs_root() -> Path:
    return Path(os.environ.get("BNNZOO_RUNS", "runs"))


def latest_pointer() -> Path:
    return runs_root() / "latest"


def _under_runs_root(path: Path) -> bool:
    """Whether ``path`` lies in the runs folder: only then are pointers written,
    so a run or export with its own ``--output`` writes nothing outside it."""
    root = runs_root().resolve()
    return Path(path).resolve().is_relative_to(root) or Path(path).absolute().is_relative_to(root)


def set_latest(run_dir: Path) -> None:
    if _under_runs_root(run_dir):
        atomic.write_text(latest_pointer(), str(Path(run_dir).resolve()) + "\n")
    else:
        print(f"Note: {latest_pointer()} still names the previous run ({run_dir} is outside "
              f"{runs_root()}); name {run_dir} in later commands.", file=sys.stderr)


def latest_run() -> Path:
    pointer = latest_pointer()
    if not pointer.is_file():
        raise RunError(
            f"No training run yet ({pointer} does not exist): run "
            "`python cli.py train MODEL` first, or name a run directory."
        )
    run = Path(pointer.read_text().strip())
    if not (run / CONFIG).is_file():
        raise RunError(f"{pointer} points to {run}, which is not a training run.")
    return run


def resolve_run(run: Optional[os.PathLike]) -> Path:
    """The given run directory (checked), or the latest run."""
    if run is None:
        return latest_run()
    run = Path(run)
    if not (run / CONFIG).is_file():
        raise RunError(f"{run} is not a training run directory (no {CONFIG}).")
    return run


def read_config(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / CONFIG).read_text())
    except (OSError, ValueError) as err:
        raise RunError(f"Cannot read {Path(run_dir) / CONFIG}: {err}") from None


def write_config(run_dir: Path, config: dict) -> None:
    atomic.write_json(Path(run_dir) / CONFIG, config)


def latest_export_pointer() -> Path:
    return runs_root() / "latest-export"


def set_latest_export(flatbuffer: Path) -> None:
    if _under_runs_root(flatbuffer):
        atomic.write_text(latest_export_pointer(), str(Path(flatbuffer).resolve()) + "\n")
    else:
        print(f"Note: {latest_export_pointer()} still names the previous export ({flatbuffer} "
              f"is outside {runs_root()}); name {flatbuffer} in later commands.", file=sys.stderr)


def latest_export() -> Path:
    """The flatbuffer written by the last successful ``export``."""
    pointer = latest_export_pointer()
    if not pointer.is_file():
        raise RunError(
            f"No export yet ({pointer} does not exist): run "
            "`python cli.py export --target arm64` first, or name a .tflite file.")
    path = Path(pointer.read_text().strip())
    if not path.is_file():
        raise RunError(f"{pointer} points to {path}, which no longer exists.")
    return path
