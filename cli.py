"""bnnzoo's command line: a thin layer over the package's API.

    python cli.py models
    python cli.py train bireal18 --dataset fashion_mnist --epochs 2
    python cli.py evaluate [RUN] --json
"""

import atexit
import json
import os
import re
import sys
import threading
from pathlib import Path

import click


def _quiet_tensorflow(verbose: bool) -> None:
    """Read by ``bnnzoo`` when it loads, before TensorFlow: sets the C++ log level."""
    os.environ["BNNZOO_VERBOSE"] = "1" if verbose else "0"


# Native (C++) log lines TensorFlow and XLA print whatever TF_CPP_MIN_LOG_LEVEL says.
_NATIVE_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog|[IW]\d{4} [\d:. ]+\d+ \S+:\d+\])"
)


def _filter_native_stderr() -> None:
    """Drop TensorFlow's native start-up lines from file descriptor 2.

    They bypass Python, so stderr's descriptor is routed through a pipe and a
    thread copies every other line to the real stderr.
    """
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not _NATIVE_NOISE.match(line):
                    os.write(real, line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()

    def restore():
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last writer: the pump drains and ends
        thread.join(timeout=2)

    atexit.register(restore)


def _silence_python_logs(verbose: bool) -> None:
    if verbose:
        return
    _filter_native_stderr()
    import logging
    import warnings

    import bnnzoo  # noqa: F401  (before TensorFlow: selects legacy Keras)

    import absl.logging
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


class UserError(click.ClickException):
    """One clear message, exit code 1, no traceback."""


def _user_errors():
    """The exceptions that mean bad input rather than a bug."""
    from bnnzoo.datasets import DatasetNotFound
    from bnnzoo.training.runs import RunError

    return (DatasetNotFound, RunError, ValueError, KeyError, FileNotFoundError, OSError)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except _user_errors() as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise UserError(str(message)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up and warning logs.")
@click.pass_context
def cli(ctx, verbose):
    """Binary neural networks from paper to ARM device."""
    _quiet_tensorflow(verbose)
    ctx.obj = {"verbose": verbose}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def models(obj, as_json):
    """List the registered models: parameters, 1-bit size, paper top-1.

    Counted at the ImageNet shape (224x224x3, 1000 classes).
    """
    _silence_python_logs(obj["verbose"])
    from bnnzoo import zoo
    from bnnzoo.export import footprint

    rows = []
    for name in zoo.list_models():
        entry = zoo.model_entry(name)
        fp = footprint(zoo.get_model(name))
        rows.append({"name": name, **fp.as_dict(), "paper_top1": entry.paper_top1,
                     "paper": entry.paper, "recipe": entry.recipe})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'model':<12} {'params':>12} {'binary params':>14} {'1-bit size':>11} "
               f"{'float32 size':>13} {'paper top-1':>12}")
    for r in rows:
        top1 = f"{r['paper_top1']:.1f} %" if r["paper_top1"] is not None else "-"
        click.echo(f"{r['name']:<12} {r['params']:>12,} {r['binary_params']:>14,} "
                   f"{r['size_1bit_bytes'] / 2**20:>8.2f} MB {r['size_float32_bytes'] / 2**20:>10.2f} MB "
                   f"{top1:>12}")


@cli.command()
@click.argument("model")
@click.option("--dataset", default="fashion_mnist", show_default=True,
              help="TFDS name (cifar10, imagenet2012, mnist, ...) or a dataset folder.")
@click.option("--data-dir", type=click.Path(), help="Where local dataset files (or TFDS data) are.")
@click.option("--epochs", type=int, help="Epochs [recipe's].")
@click.option("--steps-per-epoch", type=int, help="Batches per epoch, for quick runs [whole train split].")
@click.option("--batch-size", type=int, help="Batch size [recipe's].")
@click.option("--learning-rate", type=float, help="Peak learning rate [recipe's, scaled to the batch size].")
@click.option("--weight-decay", type=float, help="Decoupled weight decay on real-valued weights [recipe's].")
@click.option("--input-size", type=int, help="Model input side in pixels [dataset's, 224 for varying sizes].")
@click.option("--validation-steps", type=int, help="Validate on this many test batches per epoch [all].")
@click.option("--xla/--no-xla", default=True, show_default=True, help="Compile with XLA (jit_compile).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", type=click.Path(path_type=Path), help="Run directory [runs/MODEL-DATASET-TIME].")
@click.option("--resume", is_flag=True, help="Continue the run in --output (default: the latest run).")
@click.pass_obj
def train(obj, model, dataset, data_dir, epochs, steps_per_epoch, batch_size, learning_rate,
          weight_decay, input_size, validation_steps, xla, seed, output, resume):
    """Train MODEL with its paper's recipe; writes a run directory.

    Killed at any point, `--resume` continues from the last completed epoch.
    """
    _silence_python_logs(obj["verbose"])
    from bnnzoo import zoo
    from bnnzoo.training import TrainConfig, train as train_model

    if model not in zoo.list_models():
        raise UserError(f"Unknown model {model!r}. Available: {', '.join(zoo.list_models())}.")
    config = TrainConfig(
        model=model, dataset=dataset, data_dir=data_dir, input_size=input_size, epochs=epochs,
        steps_per_epoch=steps_per_epoch, batch_size=batch_size, learning_rate=learning_rate,
        weight_decay=weight_decay, validation_steps=validation_steps, jit_compile=xla, seed=seed,
    )
    run_dir = _run(train_model, config, output=output, resume=resume)
    click.echo(f"Run directory: {run_dir}")


@cli.command()
@click.argument("target", required=False, type=click.Path(path_type=Path))
@click.option("--dataset", help="Dataset to evaluate on [the run's].")
@click.option("--data-dir", type=click.Path())
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--limit", type=int, help="Evaluate on the first N test images only.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def evaluate(obj, target, dataset, data_dir, batch_size, limit, as_json):
    """Top-1 and top-5 of TARGET (a run directory or a Keras model file;
    default: the latest run) on the test split."""
    _silence_python_logs(obj["verbose"])
    from bnnzoo.training import evaluate as evaluate_target

    if target is not None and not target.exists():
        raise UserError(f"{target} does not exist.")
    report = _run(evaluate_target, target, dataset=dataset, data_dir=data_dir,
                  batch_size=batch_size, limit=limit)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"{report['model']} on {report['dataset']} test split "
                   f"({report['examples']:,} images): top-1 {100 * report['top1']:.2f} %, "
                   f"top-5 {100 * report['top5']:.2f} %")


if __name__ == "__main__":
    cli()
