"""bnnzoo's command line: a thin layer over the package's API.

    python cli.py models
    python cli.py train bireal18 --dataset fashion_mnist --epochs 2
    python cli.py evaluate [RUN|model.h5|model.tflite] --json
    python cli.py quantize [RUN]
    python cli.py export [RUN|model.h5] --target arm64 [--int8]
    python cli.py benchmark [model.tflite] --device ssh:pi@raspberrypi --binary lce_benchmark_model
"""

import atexit
import importlib
import inspect
import json
import os
import re
import sys
from pathlib import Path

import click


def _quiet_tensorflow(verbose: bool) -> None:
    """Read by ``bnnzoo`` when it loads, before TensorFlow: sets the C++ log level."""
    os.environ["BNNZOO_VERBOSE"] = "1" if verbose else "0"


_SILENCED = []


def _silence_python_logs(verbose: bool) -> None:
    """Importing ``bnnzoo`` silences TensorFlow's Python logs (``BNNZOO_VERBOSE=0``,
    set above); here the native lines on stderr and Python's warnings go too."""
    if verbose or _SILENCED:
        return
    _SILENCED.append(True)
    import warnings

    from bnnzoo import quiet  # (bnnzoo first: it selects legacy Keras)

    atexit.register(quiet.start_filter())
    warnings.filterwarnings("ignore")


class _Commands(click.Group):
    """The command group. What a user got wrong (``bnnzoo.errors.UserError``)
    is one line and exit code 1, as click's own usage errors are; any other
    exception is a bug and keeps its traceback. ``--verbose`` shows the
    traceback of a ``UserError`` too."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as err:
            from bnnzoo.errors import UserError

            if not isinstance(err, UserError) or os.environ.get("BNNZOO_VERBOSE") == "1":
                raise
            raise click.ClickException(str(err)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up and warning logs.")
@click.pass_context
def cli(ctx, verbose):
    """Binary neural networks from paper to ARM device."""
    _quiet_tensorflow(verbose)
    ctx.obj = {"verbose": verbose}


def _table(header, rows):
    """Columns as wide as their widest cell: the first left-aligned, the rest right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        cells = [f"{row[0]:<{widths[0]}}"] + [f"{cell:>{w}}" for cell, w in zip(row[1:], widths[1:])]
        click.echo("  ".join(cells).rstrip())


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def models(obj, names, as_json):
    """List the registered models (or NAMES): parameters, 1-bit size, operations, paper figures.

    Counted at each model's default input: 224x224x3 with 1000 classes
    (ImageNet layouts), 32x32x3 with 10 (CIFAR layouts); FLOPs = float MACs
    + binary MACs / 64, as the Bi-Real and XNOR-Net papers count them. Paper
    top-1 is ImageNet's, CIFAR-10's for the CIFAR layouts. The counts come
    from a table keyed on each model's built layers (built only for another stack).
    """
    _silence_python_logs(obj["verbose"])
    from bnnzoo.export.footprint_table import describe_models

    rows = describe_models(names, note=lambda text: click.echo(text, err=True))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("model", "input/classes", "params", "binary params", "1-bit size", "binary MACs",
              "float MACs", "FLOPs", "paper FLOPs", "paper top-1")
    cells = []
    for r in rows:
        top1 = "-"
        if r["paper_top1"] is not None:
            top1 = f"{r['paper_top1']:.1f} %"
            if r["paper_top1_dataset"] != "ImageNet":
                top1 += f" ({r['paper_top1_dataset']})"
        paper_flops = f"{r['paper_flops']:.2e}" if r["paper_flops"] is not None else "-"
        shape = "x".join(map(str, r["input_shape"])) + f"/{r['num_classes']}"
        cells.append((r["name"], shape, f"{r['params']:,}", f"{r['binary_params']:,}",
                      f"{r['size_1bit_bytes'] / 2**20:.2f} MB", f"{r['binary_macs']:.2e}",
                      f"{r['float_macs']:.2e}", f"{r['flops']:.2e}", paper_flops, top1))
    _table(header, cells)


def _from_package(read):
    """``read()``, which imports the package: silenced as the commands are, after
    the group has read ``--verbose``."""
    _silence_python_logs(os.environ.get("BNNZOO_VERBOSE") == "1")
    return read()


class _ChoiceOf(click.Choice):
    """A ``click.Choice`` whose choices are read from their one declaration in
    the package when first needed (parsing, help)."""

    def __init__(self, read):
        self._read = read
        self.case_sensitive = True

    @property
    def choices(self):
        return tuple(_from_package(self._read))


class _APIDefault(click.Option):
    """An option whose default is its API function's own: ``default_of`` is
    (module, function, parameter), read when first needed, so the default is
    declared once, in the package."""

    def __init__(self, *args, default_of, **kwargs):
        super().__init__(*args, show_default=True, **kwargs)
        self._default_of = default_of

    def get_default(self, ctx, call=True):
        module, function, parameter = self._default_of
        api = getattr(_from_package(lambda: importlib.import_module(module)), function)
        return inspect.signature(api).parameters[parameter].default


# The API functions whose keyword defaults the commands' options show and use.
_QUANTIZE = ("bnnzoo.training.int8_stage", "quantize")
_EVALUATE = ("bnnzoo.evaluation", "evaluate")
_EXPORT = ("bnnzoo.export.pipeline", "export_model")
_BENCHMARK = ("bnnzoo.export.benchmark", "benchmark")


def _option(field) -> list:
    """The command-line options of a ``TrainOptions`` field (training/config.py):
    ``--name`` with the field's type (or choices, or path), default and help;
    then its shorthand flag, if it has one."""
    meta, flag = field.metadata, "--" + field.name.replace("_", "-")
    declared = next(t for t in getattr(field.type, "__args__", (field.type,))
                    if t is not type(None))  # Optional[int] -> int
    kind = {bool: bool, int: int, float: float}.get(declared)  # None: click's text
    if meta["choices"]:
        kind = click.Choice(meta["choices"])
    elif meta["path"]:
        kind = click.Path(exists=meta["path"] == "existing")
    if kind is bool:
        options = [click.Option([flag], is_flag=True, help=meta["help"])]
    else:
        options = [click.Option([flag], type=kind, default=field.default, help=meta["help"],
                                show_default=field.default is not None)]
    if meta["shorthand"]:
        name, value = meta["shorthand"]
        options.append(click.Option(["--" + name.replace("_", "-"), name], is_flag=True,
                                    help=f"Same as {flag} {value}."))
    return options


def _train_option_fields():
    from bnnzoo.training.config import option_fields

    return option_fields(command_line=True)


def _config_options(values: dict) -> dict:
    """``TrainConfig``'s keyword arguments from the generated options' ``values``:
    a shorthand applied (and refused beside another value of its option), an
    existing path made absolute."""
    options = {}
    for field in _train_option_fields():
        meta, value = field.metadata, values[field.name]
        if meta["shorthand"] and values[meta["shorthand"][0]]:
            name, implied = meta["shorthand"]
            short, flag = "--" + name.replace("_", "-"), "--" + field.name.replace("_", "-")
            if value != field.default:
                raise click.ClickException(f"{short} is {flag} {implied}: drop one of {short} "
                                           f"and {flag} {value}.")
            value = implied
        if meta["path"] == "existing" and value:
            value = str(Path(value).resolve())
        options[field.name] = value
    return options


class _TrainCommand(click.Command):
    """``train``: its options are generated from ``TrainOptions``' fields
    (training/config.py) when the command is first parsed or helped, after
    ``--verbose`` is read (the declaration imports TensorFlow); its help ends
    with the registered model names."""

    _declared = False

    def get_params(self, ctx):
        if not self._declared:
            fields = _from_package(_train_option_fields)
            self.params[1:1] = [o for f in fields for o in _option(f)]  # after MODEL
            self._declared = True
        return super().get_params(ctx)

    def format_epilog(self, ctx, formatter):
        super().format_epilog(ctx, formatter)
        names = _from_package(lambda: importlib.import_module("bnnzoo.zoo").list_models())
        formatter.write_paragraph()
        formatter.write_text("Models: " + ", ".join(names) + " (`models` counts them).")


@cli.command(cls=_TrainCommand)
@click.argument("model")
@click.option("--output", type=click.Path(path_type=Path, resolve_path=True),
              help="Run directory [runs/MODEL-DATASET-TIME].")
@click.option("--resume", is_flag=True,
              help="Continue the run in --output (default: the latest run).")
@click.pass_obj
def train(obj, model, output, resume, **options):
    """Train MODEL with its paper's recipe; writes a run directory.

    Staged recipes run every stage in one run directory: real2bin its four
    progressive teacher-student stages, real2bin_baseline (and --two-step)
    binary activations then fully binary. Killed at any point, `--resume`
    continues from the last completed epoch of the stage that was running.

    Several machines: run the same command on each with --strategy
    multi-worker and TF_CONFIG='{"cluster": {"worker": ["host1:port",
    "host2:port"]}, "task": {"type": "worker", "index": I}}'; worker 0 writes
    the run directory.
    """
    _silence_python_logs(obj["verbose"])
    from bnnzoo import zoo
    from bnnzoo.training import TrainConfig, get_recipe, train as train_model

    zoo.model_entry(model)  # an unknown name: refused before the dataset is read
    config = TrainConfig(model=model, **_config_options(options))
    if config.recipe is not None:
        get_recipe(config.recipe)
    run_dir = train_model(config, output=output, resume=resume)
    click.echo(f"Run directory: {run_dir}")


@cli.command()
@click.argument("run", required=False, type=click.Path(path_type=Path, resolve_path=True))
@click.option("--steps", type=click.IntRange(min=1), cls=_APIDefault,
              default_of=(*_QUANTIZE, "steps"),
              help="Quantization-aware fine-tuning steps.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Batch size [the run's].")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              help="Peak learning rate [a tenth of the run's].")
@click.option("--calibration-images", type=click.IntRange(min=1), cls=_APIDefault,
              default_of=(*_QUANTIZE, "calibration_images"),
              help="Training images that calibrate the int8 ranges.")
@click.pass_obj
def quantize(obj, run, steps, batch_size, learning_rate, calibration_images):
    """Give RUN (default: the latest run) int8 edges: its int8 stage, RUN/int8.

    The same network with int8 ranges on its real-valued layers, calibrated on
    the run's training images, then fine-tuned with the ranges in place
    (quantization-aware), as a run of its own; killed, the same command
    continues it. `export RUN --int8` then converts it.
    """
    _silence_python_logs(obj["verbose"])
    if run is not None and not run.exists():
        raise click.ClickException(f"{run} does not exist.")
    from bnnzoo.training.int8_stage import quantize as quantize_run

    stage = quantize_run(run, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                         calibration_images=calibration_images)
    click.echo(f"int8 stage: {stage}")


@cli.command()
@click.argument("target", required=False, type=click.Path(path_type=Path, resolve_path=True))
@click.option("--dataset", help="Dataset to evaluate on [the run's / the export's].")
@click.option("--data-dir", type=click.Path(),
              help="Folder holding the dataset's local files [the run's].")
@click.option("--batch-size", type=int, cls=_APIDefault,
              default_of=(*_EVALUATE, "batch_size"))
@click.option("--limit", type=int, help="Evaluate on the first N test images only.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def evaluate(obj, target, dataset, data_dir, batch_size, limit, as_json):
    """Top-1 and top-5 of TARGET on the test split.

    TARGET is a run directory (default: the latest run), a Keras model file, or
    an exported .tflite flatbuffer, which runs in LCE's interpreter: the
    deployed model's own accuracy.
    """
    _silence_python_logs(obj["verbose"])
    if target is not None and not target.exists():
        raise click.ClickException(f"{target} does not exist.")
    if batch_size < 1 or (limit is not None and limit < 1):
        raise click.ClickException("--batch-size and --limit must be positive.")
    from bnnzoo.evaluation import evaluate as evaluate_target

    report = evaluate_target(target, dataset=dataset, data_dir=data_dir, batch_size=batch_size,
                             limit=limit)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        runtime = f" [{report['runtime']}]" if "runtime" in report else ""
        click.echo(f"{report['model']}{runtime} on {report['dataset']} test split "
                   f"({report['examples']:,} images): top-1 {100 * report['top1']:.2f} %, "
                   f"top-5 {100 * report['top5']:.2f} %")


def _export_targets():
    from bnnzoo.export.convert import TARGETS

    return TARGETS


@cli.command()
@click.argument("source", required=False, type=click.Path(path_type=Path, resolve_path=True))
@click.option("--target", type=_ChoiceOf(_export_targets), cls=_APIDefault,
              default_of=(*_EXPORT, "target"),
              help="arm64: Android, 64-bit Raspberry Pi OS; armv7: 32-bit Raspberry Pi OS; "
              "xcore: XMOS.")
@click.option("--output", type=click.Path(path_type=Path, resolve_path=True),
              help="The .tflite file [RUN/export/MODEL-TARGET.tflite].")
@click.option("--dataset", help="Dataset for the parity images [the run's; without one, "
              "synthetic inputs].")
@click.option("--data-dir", type=click.Path(),
              help="Folder holding the dataset's local files [the run's].")
@click.option("--parity-images", type=int, cls=_APIDefault, default_of=(*_EXPORT, "parity_images"),
              help="Test images on which the flatbuffer must match the Keras model up to "
              "the model's own rounding noise.")
@click.option("--min-agreement", type=click.FloatRange(0, 1),
              help="Also require this top-1 agreement with the Keras model [off: judged "
              "against the model's own rounding noise only].")
@click.option("--int8", is_flag=True,
              help="int8 weights and activations for the real-valued layers: the run's int8 "
              "stage (`quantize` first) [float].")
@click.option("--int8-io", is_flag=True,
              help="int8 input/output (only for models with int8 quantization statistics).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def export(obj, source, target, output, dataset, data_dir, parity_images, min_agreement,
           int8, int8_io, overwrite, as_json):
    """Convert SOURCE (a run directory or Keras model file; default: the latest
    run) into an LCE flatbuffer, prove it and write it with its report.

    The export fails, writing nothing, if a binary layer did not become
    LceBconv2d or the flatbuffer differs from the Keras model beyond the
    model's own rounding noise. Without a dataset (none recorded, no
    --dataset) parity runs on synthetic inputs, and says so.
    """
    _silence_python_logs(obj["verbose"])
    from bnnzoo.export import export_model, format_report, report_path
    from bnnzoo.export.convert import TARGET_NOTES
    from bnnzoo.export.pipeline import SYNTHETIC

    if source is not None and not source.exists():
        raise click.ClickException(f"{source} does not exist.")
    if target in TARGET_NOTES:
        click.echo(f"Note: {TARGET_NOTES[target]}", err=True)
    path, report = export_model(source, target=target, output=output, dataset=dataset,
                                data_dir=data_dir, parity_images=parity_images,
                                min_agreement=min_agreement, int8=int8, int8_io=int8_io,
                                overwrite=overwrite)
    if report["parity"]["inputs"] == SYNTHETIC:
        click.echo("Note: no dataset for this model (pass --dataset for real test images): "
                   f"parity ran on {SYNTHETIC}, as LCE's own end-to-end tests do.", err=True)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))
        click.echo(f"Wrote {path} and {report_path(path).name}")


@cli.command()
@click.argument("model", required=False, type=click.Path(path_type=Path, resolve_path=True))
@click.option("--device", cls=_APIDefault, default_of=(*_BENCHMARK, "device"),
              help="host | adb[:SERIAL] (Android) | ssh:[USER@]HOST[:PORT] (Raspberry Pi, "
              "any aarch64 Linux).")
@click.option("--threads", type=click.IntRange(min=1), cls=_APIDefault,
              default_of=(*_BENCHMARK, "num_threads"))
@click.option("--num-runs", type=click.IntRange(min=1), cls=_APIDefault,
              default_of=(*_BENCHMARK, "num_runs"))
@click.option("--warmup-runs", type=click.IntRange(min=1), cls=_APIDefault,
              default_of=(*_BENCHMARK, "warmup_runs"))
@click.option("--binary", type=click.Path(path_type=Path),
              help="lce_benchmark_model for the device [$LCE_BENCHMARK_MODEL, then PATH].")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="KEY=VALUE",
              help="Extra ssh option, e.g. IdentityFile=~/.ssh/pi (repeatable).")
@click.option("--output", type=click.Path(path_type=Path, resolve_path=True),
              help="JSON report [beside the model: NAME.benchmark-DEVICE.json].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def benchmark(obj, model, device, threads, num_runs, warmup_runs, binary, ssh_options, output,
              as_json):
    """Latency of MODEL (a .tflite file; default: the latest export).

    On the host through LCE's interpreter, or on a phone / Raspberry Pi
    through LCE's lce_benchmark_model, copied there with adb or ssh.
    """
    _silence_python_logs(obj["verbose"])
    from bnnzoo import atomic, runs
    from bnnzoo.export.benchmark import benchmark as run_benchmark, benchmark_record

    if model is None:
        model = runs.latest_export()
    report = run_benchmark(model, device=device, num_threads=threads, num_runs=num_runs,
                           warmup_runs=warmup_runs, binary=binary, ssh_options=ssh_options)
    if output is None:
        slug = re.sub(r"[^A-Za-z0-9@._-]+", "-", device)
        output = Path(model).with_suffix(f".benchmark-{slug}.json")
    record = benchmark_record(report)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        click.echo(f"{model} on {report.device}, {report.num_threads} thread(s), "
                   f"{report.count} runs ({report.tool}):")
        click.echo(report.summary_line())
        click.echo(f"min {report.min_us:.0f} us, max {report.max_us:.0f} us, "
                   f"std {report.std_us:.0f} us")
    try:
        atomic.write_json(output, record)
    except OSError as err:
        raise click.ClickException(f"Cannot write {output}: {err.strerror or err}.") from None
    if not as_json:
        click.echo(f"Wrote {output}")


if __name__ == "__main__":
    cli()
