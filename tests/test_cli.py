"""The CLI's listing and its handling of bad input: one message, non-zero exit.

In this process (conftest's ``invoke``): what a command says and does, not its
start-up (tests/test_package.py runs the command as a process)."""

import json
import subprocess
import sys

from conftest import REPO, assert_one_clear_error, cli_env


def test_models_json_lists_the_registry(invoke):
    result = invoke("models", "bireal18", "resnet18", "siman_resnet20", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows) == ["bireal18", "resnet18", "siman_resnet20"]
    b = rows["bireal18"]
    assert (b["input_shape"], b["num_classes"]) == ([224, 224, 3], 1000)
    s = rows["siman_resnet20"]  # a CIFAR layout: counted at 32x32x3, 10 classes
    assert (s["input_shape"], s["num_classes"], s["params"]) == ([32, 32, 3], 10, 272_698)
    assert b["params"] == 11_699_112 and b["binary_params"] == 10_985_472
    assert b["size_1bit_bytes"] == 10_985_472 // 8 + 4 * (11_699_112 - 10_985_472)
    assert b["paper_top1"] == 56.4 and b["paper_flops"] == 1.63e8
    assert rows["resnet18"]["binary_params"] == 0 and rows["resnet18"]["paper_flops"] == 1.81e9
    table = invoke("models", "bireal18")
    assert "bireal18" in table.stdout and "4.03 MB" in table.stdout and "1.63e+08" in table.stdout


def test_unknown_model(invoke):
    assert_one_clear_error(invoke("train", "bireal19"), "Unknown model", "bireal18")
    assert_one_clear_error(invoke("models", "bireal18", "bireal19"), "Unknown model",
                           "bireal152")


def test_missing_dataset_says_where_it_looked(invoke, tmp_path):
    result = invoke("train", "bireal18", "--dataset", "fashion_mnist", "--data-dir", tmp_path)
    assert_one_clear_error(result, "not found", str(tmp_path), "apt-get install dataset-fashion-mnist")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("bireal18-*"))


def test_bad_numbers(invoke):
    result = invoke("train", "bireal18", "--epochs", "0", "--input-size", "8")
    assert_one_clear_error(result, "epochs must be at least 1")
    assert_one_clear_error(invoke("train", "bireal18", "--epochs", "two"), "two")


def test_evaluate_without_any_run(invoke, tmp_path):
    assert_one_clear_error(invoke("evaluate"), "No training run yet")
    assert_one_clear_error(invoke("evaluate", tmp_path / "nowhere"), "does not exist")
    assert_one_clear_error(invoke("train", "bireal18", "--resume"), "No training run yet")


def test_a_bug_keeps_its_traceback_while_bad_input_is_one_line(invoke, monkeypatch):
    """Only ``UserError`` is a tidy line: a plain ``KeyError`` or ``ValueError``
    raised inside the product is a bug and reaches the user with its traceback."""
    from bnnzoo.errors import UserError
    from bnnzoo.export import footprint_table

    for bug in (KeyError("stage"), ValueError("math domain error")):
        def broken(names, note, bug=bug):
            raise bug

        monkeypatch.setattr(footprint_table, "describe_models", broken)
        result = invoke("models", "bireal18")
        assert result.exception is bug, result.output  # not turned into SystemExit
        assert not [line for line in result.output.splitlines() if line.startswith("Error:")]

    def refused(names, note):
        raise UserError("bireal19 is not a model.")

    monkeypatch.setattr(footprint_table, "describe_models", refused)
    assert_one_clear_error(invoke("models", "bireal19"), "bireal19 is not a model.")


def test_a_bug_prints_its_traceback_from_the_command(tmp_path):
    """The same as a user sees it: the command's own process prints the
    traceback on stderr (through the CLI's stderr filter) and exits with 1."""
    code = ("import sys, runpy; sys.argv = ['cli.py', 'models', 'bireal18']; "
            "import bnnzoo.export.footprint_table as table; "
            "table.describe_models = lambda names, note: {}['no such key']; "
            f"runpy.run_path({str(REPO / 'cli.py')!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], env=cli_env(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr and "KeyError: 'no such key'" in result.stderr
    assert "Error:" not in result.stderr.replace("KeyError:", "")
