"""The deployment table: every registry model exported at 224x224x3, 1000 classes.

One row per model, each built by the registry with random weights and its
constant-initialised weights moved as training moves them (``as_trained``:
sizes, operator counts and latency then do not depend on the values), its binary
dense layers rewritten as 1x1 binary convolutions and converted by
``bnnzoo.export.export_flatbuffer`` for arm64, as ``cli.py export`` does:

* ``flatbuffer_bytes``: the file with float edges (the non-binary layers in float32);
* ``int8_edges_bytes``: the file with int8 edges, as ``cli.py export --int8``
  converts a run's int8 stage: ranges around the float layers
  (``zoo.int8_edges``) calibrated on ``CALIBRATION_IMAGES`` uniform(-1, 1)
  inputs (``training.calibration``; the file's size depends on its tensors'
  types, not on the ranges' values), kernels on the device's int8 grid, and
  the same checks as ``export --int8`` (``export.report.check_report``): every
  real-valued layer int8, no float arithmetic left between int8 layers, every
  binary layer ``LceBconv2d``. ``int8_edges`` holds the file's int8 and float
  operator counts; ``int8_edges_note`` says what failed, else ``null``;
* ``binary_mac_share``, ``binary_macs``, ``float_macs``: read from the flatbuffer;
* ``binary_layers`` (1-bit input and kernel, in Keras, binary dense layers
  included), ``lce_bconv2d`` (bitpacked in the file), ``not_bitpacked``, and
  ``binary_weight_only_layers`` (1-bit kernel, wider activations: they run in float);
* ``latency_ms``: mean of ``--runs`` single-image inferences (after one
  warm-up) in LCE's interpreter on this host, ``--threads`` threads (``bnnzoo.export.benchmark.
  host_benchmark``). On x86 LCE runs its portable kernels: compare rows of one
  run, not a phone;
* ``published``: larq-zoo's figures for the same network (top-1, top-5,
  parameters, memory), quoted from the installed larq-zoo's docstrings, with
  the function they come from; ``null`` for networks larq-zoo does not publish.

Each model is measured in a process of its own (memory, and a crash stays one
row). The deep Bi-Real nets and their twins (101, 152) run last.

    python benchmarks/deployment_table.py
    python benchmarks/deployment_table.py --models quicknet,xnornet --runs 10
    python benchmarks/deployment_table.py --markdown      # README's table from the results file
    python benchmarks/deployment_table.py --int8-only     # only the int8-edges column, into the file

``--int8-only`` measures only the int8-edges column (sizes and operator
counts, which depend on the versions, not on the machine) and writes it
into the results file's rows, keeping their other columns.

Writes ``benchmarks/results/deployment_table.json`` atomically after every row.
With ``--models``, an existing results file of the same settings (input,
classes, threads, runs) and package versions keeps its other rows: the named
ones are measured again or added, and the run is listed under ``reruns``
(a row measured on another machine than the table's names it).
"""

import argparse
import datetime
import inspect
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bnnzoo  # noqa: F401  (legacy Keras before TensorFlow loads)

from bnnzoo import atomic, zoo

RESULTS = Path(__file__).parent / "results" / "deployment_table.json"
SIDE, CLASSES = 224, 1000
CALIBRATION_IMAGES = 32
LAST = ("bireal101", "bireal152", "resnet101", "resnet152")  # the slowest, run after the others
#: registry models that are larq-zoo's networks although the zoo builds them itself
PUBLISHED_AS = {"bireal18": "larq_zoo.literature.BiRealNet",
                "real2bin": "larq_zoo.literature.RealToBinaryNet"}


def ordered(names):
    return [n for n in names if n not in LAST] + [n for n in LAST if n in names]


def published(name: str):
    """larq-zoo's ImageNet metrics table for ``name``'s network, as its docstring states it."""
    function = zoo.model_entry(name).larq_zoo or PUBLISHED_AS.get(name)
    if not function:
        return None
    import larq_zoo

    builder = larq_zoo
    for part in function.split(".")[1:]:
        builder = getattr(builder, part)
    doc = inspect.getdoc(builder) or ""
    table = doc.split("# ImageNet Metrics", 1)[-1].split("#", 1)[0]
    lines = [line.strip().strip("|") for line in table.splitlines() if line.strip().startswith("|")]
    if len(lines) < 3:
        return None
    keys = [cell.strip() for cell in lines[0].split("|")]
    values = [cell.strip() for cell in lines[2].split("|")]
    return {"source": f"larq-zoo {larq_zoo.__version__}, docstring of {function}",
            **dict(zip(keys, values))}


def int8_column(model) -> dict:
    """The int8-edges fields of ``model``'s row (module docstring). Puts the
    model's float kernels on the int8 grid: measure the float file first."""
    from bnnzoo.export import export_flatbuffer, export_report
    from bnnzoo.export.convert import ConversionError
    from bnnzoo.export.int8_weights import on_int8_grid
    from bnnzoo.export.pipeline import synthetic_inputs
    from bnnzoo.export.report import ExportError, check_report
    from bnnzoo.training.calibration import calibrate
    from bnnzoo.zoo.int8_edges import with_int8_edges

    int8 = with_int8_edges(model)
    images = synthetic_inputs(model.input_shape[1:], CALIBRATION_IMAGES)
    calibrate(int8, [(images[i:i + 8], None) for i in range(0, len(images), 8)])
    on_int8_grid(int8)
    try:
        buf = export_flatbuffer(int8, "arm64")
    except ConversionError as err:
        return {"int8_edges_bytes": None, "int8_edges": None, "int8_edges_note": str(err)[:300]}
    report = {**export_report(int8, buf), "int8_edges": True}
    try:
        check_report(report)
        problem = None
    except ExportError as err:
        problem = str(err)
    precision = report["precision"]
    return {"int8_edges_bytes": len(buf), "int8_edges_note": problem,
            "int8_edges": {"int8_operators": precision["int8_operators"],
                           "float_operators": precision["float_operators"],
                           "float": precision["float"],
                           "lce_bconv2d": report["binary_convolutions"]["lce_bconv2d"]}}


def as_trained(model, spread: float = 0.05):
    """``model`` with every trainable weight that starts as one constant
    (BatchNorm's beta and gamma, biases, learned shifts and scales, PReLU
    slopes) moved by N(0, ``spread``) noise, as training moves it: the
    converter folds an ``x + 0`` or an ``x * 1`` away, which a trained
    network's file keeps, so a row of untouched initial values would count
    fewer operators than the model deployed (ReActNet's shifts, the
    BatchNorm before a sign, Real-to-Binary's scales). Seeded."""
    import numpy as np

    rng = np.random.default_rng(0)
    for weight in model.trainable_weights:
        value = weight.numpy()
        if value.size > 1 and np.all(value == value.flat[0]):
            weight.assign(value + rng.normal(0, spread, value.shape).astype(value.dtype))
    return model


def build(name: str, side: int, classes: int):
    """(model, the model with binary dense layers as 1x1 binary convolutions, the
    Keras side's fields of the row). The random weights are seeded: the int8
    column's ranges are calibrated on them, and unseeded builds of
    ``siman_resnet20`` once gave 66 int8 operators where seeded ones give 67."""
    import tensorflow as tf

    from bnnzoo.export.dense_as_conv import binary_dense_as_conv
    from bnnzoo.zoo.binary_layers import binary_layers, binary_operations

    tf.keras.utils.set_random_seed(0)
    model = as_trained(zoo.get_model(name, input_shape=(side, side, 3), num_classes=classes))
    converted, dense = binary_dense_as_conv(model)
    keras = {"model": name, "larq_zoo": zoo.model_entry(name).larq_zoo or None,
             "params": int(model.count_params()),
             "binary_layers": len(binary_operations(model)),
             "binary_weight_only_layers": len(binary_layers(model)) - len(binary_operations(model)),
             "binary_dense_rewritten": len(dense),
             "not_bitpacked": [], "published": published(name)}
    return model, converted, keras


def measure(name: str, side: int, classes: int, runs: int, threads: int,
            announce=lambda keras: None) -> dict:
    """One row: build, convert, count, time. ``announce`` gets the Keras
    side's counts before the conversion (a converter that crashes the process
    leaves them for the row)."""
    import tensorflow as tf

    from bnnzoo.export import export_flatbuffer, export_report
    from bnnzoo.export.benchmark import host_benchmark
    from bnnzoo.export.convert import ConversionError

    model, converted, keras = build(name, side, classes)
    announce(keras)
    start = time.perf_counter()
    try:
        buf = export_flatbuffer(converted, "arm64")
    except ConversionError as err:  # the Keras side still says what the model is
        return {**keras, "error": str(err), "note": note(keras)}
    seconds = time.perf_counter() - start
    report = export_report(converted, buf)
    with tempfile.TemporaryDirectory(prefix="bnnzoo-deploy-") as folder:
        path = Path(folder) / f"{name}.tflite"
        path.write_bytes(buf)
        timing = host_benchmark(path, num_threads=threads, num_runs=runs, warmup_runs=1)
    bconv = report["binary_convolutions"]
    row = {
        **keras,
        "flatbuffer_bytes": len(buf),
        "binary_mac_share": report["macs"]["binary_share"],
        "binary_macs": report["macs"]["binary"],
        "float_macs": report["macs"]["float"],
        "lce_bconv2d": bconv["lce_bconv2d"],
        "not_bitpacked": bconv["not_bitpacked"],
        "operators": report["operators"],
        "conversion_seconds": round(seconds, 1),
        "latency_ms": timing.avg_us / 1000,
        "latency_min_ms": timing.min_us / 1000, "latency_max_ms": timing.max_us / 1000,
    }
    row.update(int8_column(converted))  # after the float file and its timing
    row["note"] = note(row)
    del model, converted
    tf.keras.backend.clear_session()
    return row


def note(row: dict):
    """Why a row's binary layers are not all bitpacked, from its own counts; else None."""
    if row["binary_layers"] == 0 and row["binary_weight_only_layers"]:
        return (f"no binary layer to bitpack: its {row['binary_weight_only_layers']} quantized "
                "layers have 1-bit kernels but multi-bit activations, for which LCE has no "
                "bitpacked operator, so they run in float and `export` refuses the file "
                "(no binary layers)")
    if row["not_bitpacked"]:
        return (f"{', '.join(row['not_bitpacked'])} not bitpacked (converted to float "
                "operators): `export` refuses the file")
    return None


def render(table: dict) -> str:
    """The results file as README's markdown table."""
    lines = ["| model | flatbuffer (float edges) | int8 edges | binary MACs | LceBconv2d / binary layers "
             "| host latency | larq-zoo: memory, top-1 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in table["rows"]:
        pub = row.get("published")
        quoted = f"{pub.get('Memory', '-')}, {pub.get('Top-1 Accuracy', '-')}" if pub else "-"
        if "error" in row:
            lines.append(f"| `{row['model']}` | failed: {row['error']} | | | "
                         f"- / {row.get('binary_layers', '?')} | | {quoted} |")
            continue
        int8 = f"{row['int8_edges_bytes'] / 1e6:.2f} MB" if row.get("int8_edges_bytes") else "-"
        if row.get("int8_edges_note") and row.get("int8_edges_bytes"):
            int8 += " (see below)"
        lines.append(
            f"| `{row['model']}` | {row['flatbuffer_bytes'] / 1e6:.2f} MB | {int8} "
            f"| {100 * row['binary_mac_share']:.1f} % | {row['lce_bconv2d']} / {row['binary_layers']} "
            f"| {row['latency_ms']:.0f} ms{' (*)' if 'machine' in row else ''} | {quoted} |")
    notes = [f"- `{row['model']}`: {row['note']}." for row in table["rows"] if row.get("note")]
    others = sorted({row["machine"]["cpu"] + ("" if row["machine"].get("native_bf16")
                                              else " without native bfloat16")
                     for row in table["rows"] if "machine" in row})
    if others:
        notes.append(f"- (*) measured again later on another machine ({', '.join(others)}): "
                     "compare its latency with care.")
    unmeasured = [row["model"] for row in table["rows"]
                  if "error" not in row and "int8_edges" not in row]  # rows older than the column
    notes += [f"- `{row['model']}`, int8 edges: {_short(row['int8_edges_note'])}."
              for row in table["rows"] if row.get("int8_edges_note") and "error" not in row
              and row["model"] not in unmeasured]
    if unmeasured:
        notes.append(f"- int8 edges not measured yet: {', '.join(f'`{m}`' for m in unmeasured)} "
                     f"(`python benchmarks/deployment_table.py --int8-only --models "
                     f"{','.join(unmeasured)}`).")
    return "\n".join(lines + ([""] + notes if notes else []))


def _short(note: str) -> str:
    """A check's message without its list of operator names (the file has them)."""
    head, _, names = note.partition(" with --int8: ")
    if head.endswith("kept float weights") and len(note) > 160:
        first = names.split(", ")[0]
        return f"{head} with --int8 (the first: `{first}`; all in the results file)"
    return note.rstrip(".")


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.markdown:
        print(render(json.loads(args.output.read_text())))
        return
    if args.runs < 1 or args.threads < 1:
        parser.error("--runs and --threads must be at least 1")
    if args.row:
        return print_row(args)
    names = args.models.split(",") if args.models else zoo.list_models()
    unknown = [n for n in names if n not in zoo.list_models()]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; models: {', '.join(zoo.list_models())}")
    command = " ".join(["python benchmarks/deployment_table.py",
                        *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    if args.int8_only:
        return int8_only(parser, args, names, command)
    table = _table_for(args, names, command)
    for name in ordered(names):
        row = measure_in_process(name, args)
        if table["machine"] != _machine():  # its latency is another machine's
            row["machine"] = _machine()
        table["rows"].append(row)
        table["rows"].sort(key=lambda row: ordered(zoo.list_models()).index(row["model"]))
        atomic.write_json(args.output, table)
    failed = [row["model"] for row in table["rows"] if "error" in row]
    print(f"{len(table['rows']) - len(failed)} rows -> {args.output}"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if failed:
        sys.exit(1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help="comma-separated registry names [all of them]")
    parser.add_argument("--runs", type=int, default=5, help="timed single-image inferences")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--input-size", type=int, default=SIDE, help=argparse.SUPPRESS)
    parser.add_argument("--num-classes", type=int, default=CLASSES, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--markdown", action="store_true",
                        help="print the results file as README's table and exit")
    parser.add_argument("--int8-only", action="store_true",
                        help="measure only the int8-edges column into the results file's rows")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # one model, its row as JSON on stdout
    return parser


def print_row(args) -> None:
    """``--row NAME``: one model measured in this process (the int8-edges
    fields alone with ``--int8-only``), its row as the last line of JSON."""
    if args.int8_only:
        print(json.dumps(int8_column(build(args.row, args.input_size, args.num_classes)[1])))
        return
    row = measure(args.row, args.input_size, args.num_classes, args.runs, args.threads,
                  announce=lambda keras: print(json.dumps(keras), flush=True))
    print(json.dumps(row))


def _table_for(args, names, command: str) -> dict:
    """The table the rows of ``names`` go into: with ``--models``, the results
    file's (measured with the same settings; its rows of ``names`` dropped and
    the rerun recorded), else a new one."""
    settings = {"input_shape": [args.input_size, args.input_size, 3],
                "num_classes": args.num_classes, "threads": args.threads, "runs": args.runs}
    table = _previous(args.output, settings) if args.models else None
    if table is None:
        return _new_table(command, settings)
    table["rows"] = [row for row in table["rows"] if row["model"] not in names]
    table.setdefault("reruns", []).append(
        {"command": command, "date": datetime.date.today().isoformat(), "models": names})
    return table


def measure_in_process(name: str, args) -> dict:
    """``name``'s row, measured by this script in a process of its own (a crash
    or an exhausted memory fails that row only); prints one line on it."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--row", name, "--runs", str(args.runs),
         "--threads", str(args.threads), "--input-size", str(args.input_size),
         "--num-classes", str(args.num_classes)], capture_output=True, text=True)
    if done.returncode != 0:
        announced = [line for line in done.stdout.splitlines() if line.startswith("{")]
        keras = json.loads(announced[-1]) if announced else {"model": name}
        row = {**keras, "error": _failure(done, with_status=True)}
        if "binary_layers" in keras:
            row["note"] = note(keras)
        print(f"{name:<22} FAILED: {row['error']}", flush=True)
        return row
    row = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in row:
        print(f"{name:<22} FAILED: {row['error']}", flush=True)
    else:
        print(f"{name:<22} {row['flatbuffer_bytes']:>12,} bytes  {row['lce_bconv2d']:>3} / "
              f"{row['binary_layers']:<3} LceBconv2d  {100 * row['binary_mac_share']:5.1f} % "
              f"binary MACs  {row['latency_ms']:8.1f} ms  ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return row


def _failure(done: subprocess.CompletedProcess, with_status: bool = False) -> str:
    """What a failed measuring process said: its last error line (and its exit
    status), or the signal that killed it (no traceback then)."""
    if done.returncode < 0:
        return f"killed by signal {-done.returncode}" + (" (no error of its own)" if with_status else "")
    lines = done.stderr.strip().splitlines() or ["no output"]
    why = ([line for line in lines if "Error" in line] or lines)[-1]
    return (why + (f" (exit status {done.returncode})" if with_status else ""))[:300]


def int8_only(parser, args, names, command) -> None:
    """``--int8-only``: the int8-edges fields of ``names``' rows of the results
    file, each measured in a process of its own; the other columns stay."""
    if not args.output.exists():
        parser.error(f"--int8-only fills the rows of {args.output}, which does not exist: "
                     "measure the table first.")
    table = json.loads(args.output.read_text())
    if (table["input_shape"] != [args.input_size, args.input_size, 3]
            or table["num_classes"] != args.num_classes or table["versions"] != _versions()):
        parser.error(f"{args.output} was measured at another input size, class count or "
                     "with other package versions: its sizes would not compare.")
    rows = {row["model"]: row for row in table["rows"] if "error" not in row}
    rerun = {"command": command, "date": datetime.date.today().isoformat(), "machine": _machine(),
             "models": [], "columns": ["int8 edges"]}  # the models measured, as they are
    table.setdefault("reruns", []).append(rerun)
    for name in ordered([name for name in names if name in rows]):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--row", name, "--int8-only", "--input-size",
             str(args.input_size), "--num-classes", str(args.num_classes)],
            capture_output=True, text=True)
        if done.returncode == 0:
            fields = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            fields = {"int8_edges_bytes": None, "int8_edges": None,
                      "int8_edges_note": _failure(done)}
        rows[name].update(fields)
        rerun["models"].append(name)
        size = f"{fields['int8_edges_bytes']:>12,} bytes" if fields["int8_edges_bytes"] else "failed"
        print(f"{name:<22} int8 edges {size}  {fields['int8_edges_note'] or 'checked'}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        atomic.write_json(args.output, table)
    failed = [name for name in names if name in rows and rows[name]["int8_edges_bytes"] is None]
    print(f"int8 edges -> {args.output}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    if failed:
        sys.exit(1)


def _new_table(command: str, settings: dict) -> dict:
    return {
        "benchmark": "every registry model exported for arm64 (LCE): size, bitpacking, "
                     "binary-MAC share, host latency, beside larq-zoo's published figures",
        "command": command,
        "date": datetime.date.today().isoformat(),
        "machine": _machine(),
        "versions": _versions(),
        "input_shape": settings["input_shape"], "num_classes": settings["num_classes"],
        "interpreter": "larq_compute_engine.testing.Interpreter (default kernels), one image",
        "threads": settings["threads"], "runs": settings["runs"],
        "rows": [],
    }


def _previous(path: Path, settings: dict):
    """The results file at ``path`` if it was measured with ``settings``, else None."""
    if not path.exists():
        return None
    table = json.loads(path.read_text())
    if any(table.get(key) != value for key, value in settings.items()):
        return None
    if table.get("versions") != _versions():
        return None  # other versions: sizes and operators would not compare
    return table


def _machine() -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import machine  # benchmarks/machine.py, beside this script

    return machine()


def _versions() -> dict:
    from bnnzoo import runs

    return runs.package_versions()


if __name__ == "__main__":
    main()
