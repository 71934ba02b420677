"""The CLI's listing; its options, read from their declarations in the package
(docs/cli.md's train table checked against them); its errors: bad input is one
message and a non-zero exit, a bug keeps its traceback.

In this process (conftest's ``invoke``): what a command says and does, not its
start-up (tests/test_package.py runs the command as a process)."""

import json
import re
import subprocess
import sys

import click
import pytest
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


def test_the_products_refusals_are_user_errors():
    """Each exception the package raises for bad input or an environment it
    cannot use is a ``UserError`` (so the CLI prints it as one line), and still
    the built-in type its callers caught before."""
    from bnnzoo import errors, model_files, runs
    from bnnzoo.datasets import DatasetNotFound
    from bnnzoo.export import ConversionError, ExportError, FlatbufferError
    from bnnzoo.export.benchmark import BenchmarkError
    from bnnzoo.training.initialise import InitialisationError
    from bnnzoo.zoo.larq_zoo_models import WeightsUnavailable

    for refusal in (DatasetNotFound, runs.RunError, model_files.ModelFileError, ExportError,
                    ConversionError, FlatbufferError, BenchmarkError, InitialisationError,
                    WeightsUnavailable, errors.UnknownName, errors.OutputExists):
        assert issubclass(refusal, errors.UserError), refusal
    assert issubclass(errors.UserError, ValueError) and issubclass(WeightsUnavailable, OSError)
    assert issubclass(errors.UnknownName, KeyError) and str(errors.UnknownName("no 'x'")) == "no 'x'"
    assert issubclass(errors.OutputExists, FileExistsError)


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


def _train_flags(cli_module) -> dict:
    """``train``'s options as the command builds them: flag -> click option."""
    command = cli_module.train
    params = command.get_params(click.Context(command))
    return {flag: param for param in params if isinstance(param, click.Option)
            for flag in param.opts if flag not in ("-h", "--help")}


def test_the_commands_read_their_options_from_the_package(invoke, cli_module, monkeypatch,
                                                           tmp_path):
    """``train``'s options, generated from ``TrainOptions``, reach ``TrainConfig``
    typed, existing paths made absolute, ``--no-xla`` as ``--xla off``; the
    API-only options are no flags; choices and defaults are the package's own."""
    import bnnzoo.training as training
    from bnnzoo.export.convert import TARGETS
    from bnnzoo.training import distribution, hardware, int8_stage, xla
    from bnnzoo.training.config import OVERRIDABLE, TrainConfig, option_fields

    invoke("train", "--help")  # (the fixture's quiet logs; generates the options)
    flags = _train_flags(cli_module)
    assert {"--epochs", "--learning-rate", "--two-step", "--no-xla", "--output"} <= set(flags)
    assert not {"--label-smoothing", "--variant", "--batchnorm-only"} & set(flags)
    assert flags["--precision"].type.choices == hardware.PRECISIONS
    assert flags["--xla"].type.choices == xla.CHOICES
    assert flags["--strategy"].type.choices == distribution.STRATEGIES
    assert "strategy" not in OVERRIDABLE and {"epochs", "variant"} <= set(OVERRIDABLE)
    assert len(option_fields()) == len(OVERRIDABLE) + 1
    export_target = next(p for p in cli_module.export.params if p.name == "target")
    assert export_target.type.choices == tuple(TARGETS)
    # The other commands' defaults are their API functions' own.
    defaults = {(command.name, p.name): p.get_default(click.Context(command))
                for command in (cli_module.quantize, cli_module.evaluate, cli_module.export,
                                cli_module.benchmark) for p in command.params}
    assert defaults[("quantize", "steps")] == int8_stage.DEFAULT_STEPS
    assert defaults[("quantize", "calibration_images")] == 512
    assert defaults[("evaluate", "batch_size")] == defaults[("export", "parity_images")] == 256
    assert defaults[("export", "target")] == "arm64"
    assert [defaults[("benchmark", name)] for name in ("device", "threads", "num_runs",
                                                        "warmup_runs")] == ["host", 1, 50, 1]

    seen = []
    monkeypatch.setattr(training, "train", lambda config, **run: seen.append(config) or tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "twin").mkdir()
    result = invoke("train", "bireal18", "--epochs", "3", "--learning-rate", "0.5",
                    "--precision", "float16", "--no-xla", "--init-from", "twin", "--two-step",
                    "--strategy", "mirrored", "--recipe", "siman_short")
    assert result.exit_code == 0, result.output
    assert seen == [TrainConfig(model="bireal18", epochs=3, learning_rate=0.5,
                                precision="float16", xla="off",
                                init_from=str(tmp_path / "twin"), two_step=True,
                                strategy="mirrored", recipe="siman_short")]
    assert_one_clear_error(invoke("train", "bireal18", "--no-xla", "--xla", "on"),
                           "--no-xla is --xla off: drop one of --no-xla and --xla on.")
    assert_one_clear_error(invoke("train", "bireal18", "--recipe", "fast"), "Unknown recipe")
    assert_one_clear_error(invoke("train", "bireal18", "--init-from", "nowhere"), "nowhere")
    assert len(seen) == 1


def _documented_options(section: str) -> dict:
    """docs/cli.md's option table under ``section``: flag -> the choices it lists."""
    text = (REPO / "docs" / "cli.md").read_text()
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    options = {}
    for row in body.splitlines():
        if row.startswith("| `"):
            cell = row.split(" | ", 1)[0]
            for flag in re.findall(r"--[a-z][a-z0-9-]*", cell):
                options[flag] = ()
            for flag, choices in re.findall(r"(--[a-z][a-z0-9-]*) ([a-z0-9-]+(?:\\\|[a-z0-9-]+)+)",
                                            cell):
                options[flag] = tuple(choices.split("\\|"))
    return options


def test_the_documented_train_options_are_the_declared_ones(invoke, cli_module):
    """docs/cli.md's train table names every option of ``train`` and no other,
    and lists each option's choices as declared; the export section its targets."""
    invoke("train", "--help")  # (the fixture's quiet logs)
    flags = _train_flags(cli_module)
    documented = _documented_options("## `python cli.py train MODEL [options]`")
    assert set(documented).symmetric_difference(flags) == set()
    for flag, choices in documented.items():
        declared = getattr(flags[flag].type, "choices", ())
        assert choices in ((), tuple(declared)), flag
    assert {flag for flag, choices in documented.items() if choices} == {
        flag for flag, option in flags.items() if isinstance(option.type, click.Choice)}
    from bnnzoo.export.convert import TARGETS

    assert f"--target {'|'.join(TARGETS)} [options]`" in (REPO / "docs" / "cli.md").read_text()


def test_the_python_api_refuses_a_value_outside_its_declared_choices():
    from bnnzoo.errors import UserError
    from bnnzoo.training.config import TrainConfig, check_choices

    check_choices(TrainConfig(model="bireal18", xla="off", precision="bfloat16"))
    for option, value in (("xla", "sometimes"), ("precision", "int8"), ("strategy", "ps")):
        with pytest.raises(UserError, match=f"Unknown --{option} '{value}'. Choices: "):
            check_choices(TrainConfig(model="bireal18", **{option: value}))
