"""The benchmark scripts: one command runs them all, and the accuracy table's
script measures what it says on real data."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, requires_fashion_mnist

from bnnzoo.training.hardware import resolve_precision

BENCHMARKS = REPO / "benchmarks"


def _script(name, *args, timeout=900):
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_one_command_plans_every_benchmark_and_quick_never_touches_committed_results(tmp_path):
    full = _script("run_all.py", "--dry-run").stdout.splitlines()
    quick = _script("run_all.py", "--dry-run", "--quick").stdout.splitlines()
    scripts = ["training_throughput.py", "startup_time.py", "export_size_latency.py",
               "family_export.py", "family_export.py", "family_export.py", "accuracy.py",
               "interpreter_threads.py", "deployment_table.py", "int8_edges.py", "readme_job.py"]
    for plan in (full, quick):
        assert [Path(line.split()[1]).name for line in plan] == scripts
    results = BENCHMARKS / "results"
    assert all(f"--output {results}/" in line for line in full)
    assert all(f"--output {results / 'quick'}/" in line for line in quick)
    assert "--family siman" in full[4] and "--family real2bin" in full[5]
    assert quick[6].split()[2] == "--quick" and "--quick" in quick[-1].split()  # accuracy, readme
    assert quick[9].split()[2] == "--quick" and "--quick" not in full[9].split()  # int8_edges
    elsewhere = _script("run_all.py", "--dry-run", "--quick", "--only", "accuracy",
                        "--output-dir", tmp_path).stdout.split()
    assert elsewhere[elsewhere.index("--output") + 1] == str(tmp_path / "accuracy_fashion_mnist.json")
    bad = _script("run_all.py", "--only", "everything")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_quick_accuracy_without_output_is_refused():
    result = _script("accuracy.py", "--quick")
    assert result.returncode == 2 and "--quick needs --output" in result.stderr


@requires_fashion_mnist
def test_accuracy_rows_on_real_data_keras_against_flatbuffer(tmp_path):
    """Two rows of the table, smoke-sized: the twin (float flatbuffer) and
    Bi-Real initialised from it (bitpacked); the flatbuffer's top-1 on the same
    256 real test images equals the Keras model's within rounding noise."""
    output = tmp_path / "accuracy.json"
    result = _script("accuracy.py", "--quick", "--rows", "real-valued twin", "Bi-Real",
                     "--input-size", "14", "--seed-margin", "0",
                     "--runs", tmp_path / "runs", "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads(output.read_text())
    twin, bireal = table["rows"]
    assert (twin["model"], bireal["model"]) == ("resnet18", "bireal18")
    assert table["command"].startswith("python benchmarks/accuracy.py --quick --rows "
                                       "'real-valued twin' Bi-Real")
    (twin_run,), (bireal_run,) = twin["runs"], bireal["runs"]  # margin 0: one seed each
    for row in (twin_run, bireal_run):
        assert row["test_images"] == 256
        # Equal within rounding noise: McNemar's test on the paired predictions.
        assert row["mcnemar_p"] >= 1e-3, row
        assert row["keras_top1"] <= row["keras_top5"] and row["flatbuffer_top1"] <= row["flatbuffer_top5"]
        assert row["flatbuffer_bytes"] > 0 and row["host_latency_ms"] > 0
    assert twin_run["binary_convolutions"] == 0
    assert bireal_run["binary_convolutions"]["lce_bconv2d"] == 16 == bireal_run["binary_convolutions"]["keras"]
    # 16 binary 3x3 kernels at 1 bit: the bitpacked file is far smaller than the float one.
    assert bireal_run["flatbuffer_bytes"] < twin_run["flatbuffer_bytes"] / 5
    # Bi-Real started from the twin's trained weights, as its paper trains it.
    config = json.loads((tmp_path / "runs" / "bireal18-seed0" / "config.json").read_text())
    assert config["init_from"] == str(tmp_path / "runs" / "resnet18-seed0")
    assert config["width"] == table["width"] == 16 and config["input_size"] == 14
    assert table["best_binary"] == "Bi-Real"
    assert table["max_flatbuffer_difference_points"] == max(
        abs(r["runs"][0]["top1_difference_points"]) for r in table["rows"])
    assert table["complete"] and table["pending"] == []
    # --precision auto: what this machine computes natively (bfloat16 on a CPU
    # with AMX-BF16 or AVX512-BF16, float32 elsewhere), recorded by every run.
    assert table["precision"] == "auto"
    assert twin_run["precision"] == bireal_run["precision"] == resolve_precision("auto")
    assert "--runs DIR" in table["command"] and str(tmp_path / "runs") not in table["command"]

    # Killed after its first row: --resume keeps that row and measures the
    # other, its finished run resumed (not trained again) from --runs.
    partial = {**table, "rows": [twin], "complete": False, "pending": ["Bi-Real"]}
    output.write_text(json.dumps(partial))
    args = ["--quick", "--rows", "real-valued twin", "Bi-Real", "--input-size", "14",
            "--seed-margin", "0", "--runs", tmp_path / "runs", "--output", output]
    assert "other input_size" in _script("accuracy.py", *args[:5], "15", *args[6:], "--resume").stderr
    result = _script("accuracy.py", *args, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = json.loads(output.read_text())
    assert resumed["complete"] and resumed["rows"][0] == twin
    (again,) = resumed["rows"][1]["runs"]
    assert again["resumed"] and again["keras_top1"] == bireal_run["keras_top1"]
    assert resumed["resumed"][0]["command"].endswith("--resume")
    assert _script("accuracy.py", *args, "--resume").returncode == 2  # complete: nothing to do


def test_second_seed_goes_to_ranked_rows_within_the_margin(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from accuracy_rows import close_rows

    top1 = {"real-valued twin": 0.80, "XNOR-style": 0.760, "Bi-Real": 0.765, "SiMaN": 0.740,
            "Real-to-Binary stage 2 (binary activations)": 0.762, "Real-to-Binary": 0.7755}
    # Stage rows before the last are not ranked; 0.5 and 1.05 points apart.
    assert close_rows(top1, 1.0) == ["XNOR-style", "Bi-Real"]
    assert close_rows(top1, 1.1) == ["XNOR-style", "Bi-Real", "Real-to-Binary"]
    assert close_rows(top1, 0.1) == []


def test_readme_and_measurements_accuracy_tables_are_the_committed_results_files(monkeypatch):
    """README's and docs/measurements.md's accuracy tables are the renderings
    of the results files their markers name, with command, date and machine."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import accuracy_table
    import figures

    for document in ("README.md", "docs/measurements.md"):
        found = [m for m in figures.BLOCK.finditer((REPO / document).read_text())
                 if m["kind"] == accuracy_table.KIND]
        assert found, document
        for match in found:
            name, body = match["file"], match["body"]
            result = json.loads((REPO / name).read_text())
            assert body == accuracy_table.render(result), (document, name)
            assert f"`{result['command']}`" in body and result["date"] in body
            assert all(run["test_images"] == 10_000 for r in result["rows"] for run in r["runs"])
    assert accuracy_table.main(["--check"]) == 0


def test_measurements_training_speed_tables_are_the_committed_results_file(monkeypatch):
    """docs/measurements.md's training-speed tables render the file the benchmark wrote, with
    its command, date and machine."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import training_throughput

    result = json.loads((BENCHMARKS / "results" / "training_throughput.json").read_text())
    measurements = (REPO / "docs" / "measurements.md").read_text()
    assert training_throughput.markdown_table(result) in measurements
    assert f"`{result['command']}`" in measurements and result["date"] in measurements
    assert result["machine"]["cpu"] in measurements
    assert {r["input_shape"][0] for r in result["vs_larq_zoo"]} == {72, 224}


def test_measurements_startup_table_is_the_committed_results_file(monkeypatch):
    """docs/measurements.md's start-up table renders benchmarks/startup_time.py's file; the
    conversions it timed made byte-identical flatbuffers."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import startup_time

    result = json.loads((BENCHMARKS / "results" / "startup_time.json").read_text())
    measurements = (REPO / "docs" / "measurements.md").read_text()
    assert startup_time.markdown_table(result) in measurements
    assert f"`{result['command']}`" in measurements and result["date"] in measurements
    assert result["machine"]["cpu"] in measurements
    assert all(row["byte_identical"] for row in result["conversion"])
    assert all(row["start_speedup"] > 1 for row in result["tracing"])



def _deployment_table():
    spec = importlib.util.spec_from_file_location("deployment_table",
                                                  BENCHMARKS / "deployment_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deployment_table_measures_one_model_and_renders_readmes_table(tmp_path, monkeypatch,
                                                                        capsys):
    """One small model at 32 px, measured in a process of its own: a row with
    its bitpacking, MAC share and host latency; ``--models`` on an existing
    file of the same settings keeps its other rows; an unregistered model is
    refused; README's table is the committed results file rendered."""
    table_script = _deployment_table()
    output = tmp_path / "deployment.json"
    small = ["--input-size", "32", "--num-classes", "10", "--runs", "1", "--output", str(output)]
    table_script.main(["--models", "siman_resnet20", *small])
    table = json.loads(output.read_text())
    (row,) = table["rows"]
    assert row["model"] == "siman_resnet20" and row["lce_bconv2d"] == row["binary_layers"] == 18
    assert row["not_bitpacked"] == [] and 0.9 < row["binary_mac_share"] < 1
    assert row["flatbuffer_bytes"] > 0 and row["latency_ms"] > 0
    assert row["published"] is None and row["note"] is None
    # int8 edges: the 18 binary convolutions still LceBconv2d (at 32 px the float layers
    # are too small for int8 to shrink the file); and the export's own check names what
    # stays float: SiMaN's centred sign subtracts each sample's mean before every binary
    # convolution, a float SUB between int8 layers.
    assert row["int8_edges"]["lce_bconv2d"] == 18 and row["int8_edges_bytes"] > 0
    assert row["int8_edges"]["float"]["SUB"] == 18
    assert row["int8_edges_note"].startswith("Float arithmetic left between int8 layers "
                                             "with --int8: 18 SUB")
    assert "int8 edges: Float arithmetic left" in table_script.render(table)
    assert table["command"].startswith("python benchmarks/deployment_table.py --models")
    assert table["input_shape"] == [32, 32, 3] and table["num_classes"] == 10

    # --int8-only measures that column again into the file, the other columns kept.
    int8 = {key: row[key] for key in ("int8_edges_bytes", "int8_edges", "int8_edges_note")}
    row.update(int8_edges_bytes=None, int8_edges=None, int8_edges_note="stale")
    output.write_text(json.dumps(table))
    table_script.main(["--int8-only", *small])
    table = json.loads(output.read_text())
    assert {key: table["rows"][0][key] for key in int8} == int8
    assert table["rows"][0]["latency_ms"] == row["latency_ms"]
    assert table["reruns"][-1]["columns"] == ["int8 edges"]
    del table["reruns"]
    output.write_text(json.dumps(table))

    # Another model added to the same file (its process replaced by a failed
    # conversion's row, as DoReFa-Net's at 224 px): the first row stays.
    failed = {"model": "dorefanet", "binary_layers": 0, "binary_weight_only_layers": 6,
              "not_bitpacked": [], "published": None, "error": "LCE could not convert dorefanet"}
    failed["note"] = table_script.note(failed)
    monkeypatch.setattr(table_script.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout=json.dumps(failed) + "\n", stderr=""))
    with pytest.raises(SystemExit) as exit_:
        table_script.main(["--models", "dorefanet", *small])
    assert exit_.value.code == 1  # a failed row fails the run
    table = json.loads(output.read_text())
    assert [r["model"] for r in table["rows"]] == ["dorefanet", "siman_resnet20"]
    assert table["reruns"][0]["models"] == ["dorefanet"]
    rendered = table_script.render(table)
    assert "| `siman_resnet20` |" in rendered
    assert "| `dorefanet` | failed: LCE could not convert dorefanet |" in rendered
    assert "- `dorefanet`: no binary layer to bitpack: its 6 quantized layers have 1-bit " \
           "kernels but multi-bit activations" in rendered

    with pytest.raises(SystemExit) as exit_:
        table_script.main(["--models", "resnet19", *small])
    assert exit_.value.code == 2 and "unknown model(s) resnet19" in capsys.readouterr().err
    committed = table_script.render(json.loads(table_script.RESULTS.read_text()))
    assert committed in (REPO / "docs" / "measurements.md").read_text()  # README: its rows
