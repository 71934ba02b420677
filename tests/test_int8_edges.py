"""int8 edges on real Fashion-MNIST: calibrate, fine-tune, export --int8, and its accuracy."""

import json
import shutil

import numpy as np
import pytest

from bnnzoo import runs
from bnnzoo.evaluation import evaluate
from bnnzoo.export import flatbuffer as fb
from bnnzoo.export.convert import export_flatbuffer
from bnnzoo.export.int8_weights import on_int8_grid, symmetric_int8
from bnnzoo.quantizers.int8 import int8_ranges
from conftest import assert_one_clear_error

IMAGES = 1000  # test images both flatbuffers are scored on
# The int8 flatbuffer's top-1 may be this far (points) below the float-edge one's
# on IMAGES images; the test itself checks that a broken calibration (every
# range zero) falls below it.
BOUND = 5.0


def test_symmetric_int8_is_the_per_channel_grid():
    kernel = np.array([[0.5, -1.0], [0.25, 0.003]], np.float32)  # channels are columns
    rounded = symmetric_int8(kernel, axes=0)
    assert np.allclose(rounded[:, 0], np.round(kernel[:, 0] / (0.5 / 127)) * 0.5 / 127)
    assert rounded[1, 1] == pytest.approx(0.0) and rounded[0, 1] == pytest.approx(-1.0)
    assert np.array_equal(symmetric_int8(rounded, axes=0), rounded)  # idempotent


def test_int8_export_of_a_trained_run(trained, tmp_path, invoke):
    _, trained_dir, _ = trained
    run = tmp_path / "run"
    run.mkdir()
    for name in (runs.CONFIG, runs.MODEL):
        shutil.copy(trained_dir / name, run / name)

    refused = invoke("export", run, "--int8")
    assert_one_clear_error(refused, "no int8 stage", "quantize")

    result = invoke("quantize", run, "--steps", "10", "--calibration-images", "256")
    assert result.exit_code == 0, result.output
    assert "Calibrated" in result.output and (run / "int8" / runs.MODEL).is_file()
    again = invoke("quantize", run, "--steps", "10", "--calibration-images", "256")
    assert again.exit_code == 0 and "already finished" in again.output
    other = invoke("quantize", run, "--steps", "11", "--calibration-images", "256")
    assert_one_clear_error(other, "other options", "steps_per_epoch")

    result = invoke("export", run, "--int8", "--parity-images", "64", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    precision = report["precision"]
    assert report["int8_edges"] and report["flatbuffer"] == "bireal18-arm64-int8.tflite"
    assert precision["int8"]["CONV_2D"] >= 1 and precision["int8"]["FULLY_CONNECTED"] == 1
    assert precision["float_weights"] == []
    assert set(precision["float"]) <= {"DEQUANTIZE"}  # the float output only: no float conv/MUL/ADD
    bconv = report["binary_convolutions"]
    assert bconv["keras"] == bconv["lce_bconv2d"] == 16 and bconv["not_bitpacked"] == []
    assert precision["int8"]["LceBconv2d"] == 16  # the binary convolutions write int8
    int8_path = run / "export" / report["flatbuffer"]

    float_path = tmp_path / "float.tflite"
    float_path.write_bytes(export_flatbuffer(runs.load_source(run).model, "arm64"))
    assert fb.precision_report(float_path.read_bytes())["int8_operators"] == 0
    dataset = {"dataset": "fashion_mnist", "limit": IMAGES}
    float_top1 = 100 * evaluate(float_path, **dataset)["top1"]
    int8_top1 = 100 * evaluate(int8_path, **dataset)["top1"]
    assert int8_top1 >= float_top1 - BOUND, (int8_top1, float_top1)

    # The bound fails a broken calibration: every range zero.
    broken = runs.load_source(run / "int8" / runs.MODEL).model
    for layer in int8_ranges(broken):
        layer.set_range(0.0, 0.0)
    on_int8_grid(broken)
    broken_path = tmp_path / "broken.tflite"
    broken_path.write_bytes(export_flatbuffer(broken, "arm64"))
    assert 100 * evaluate(broken_path, **dataset)["top1"] < float_top1 - BOUND
