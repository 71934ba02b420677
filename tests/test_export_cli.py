"""train -> export -> evaluate the flatbuffer -> benchmark, through the CLI, on real data."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import export
from bnnzoo.evaluation import evaluate
from bnnzoo.export import flatbuffer, parity
from conftest import assert_one_clear_error, requires_fashion_mnist, run_cli, tiny_bnn


@pytest.fixture(scope="module")
def exported(trained):
    runs, run_dir, _ = trained
    result = run_cli(runs, "export", "--target", "arm64")  # the latest run
    assert result.returncode == 0, result.stderr
    return runs, run_dir, run_dir / "export" / "bireal18-arm64.tflite", result


def test_export_proves_every_binary_convolution_is_bitpacked(exported):
    runs, run_dir, tflite, result = exported
    assert tflite.is_file() and tflite.read_bytes()[4:8] == b"TFL3"
    report = json.loads(export.report_path(tflite).read_text())
    assert report["binary_convolutions"] == {"keras": 16, "lce_bconv2d": 16, "not_bitpacked": []}
    assert report["operators"]["LceBconv2d"] == 16 and report["operators"]["LceQuantize"] == 16
    assert report["macs"]["binary_share"] > 0.9
    assert report["size"]["flatbuffer_bytes"] == tflite.stat().st_size
    assert report["size"]["vs_one_bit_budget"] < 1.05  # bitpacked: near the 1-bit budget
    assert report["size"]["vs_float32"] < 0.1
    assert report["parity"]["images"] == 256 and report["parity"]["noise_floor"]["faithful"]
    assert report["parity"]["inputs"] == "fashion_mnist test images"
    assert report["dataset"] == "fashion_mnist" and report["target"] == "arm64"
    assert "16 LceBconv2d for 16 in Keras" in result.stdout
    assert (runs / "latest-export").read_text().strip() == str(tflite.resolve())


def test_deployed_top1_equals_the_keras_top1_on_real_test_images(exported, invoke):
    """On the first 2,500 test images (the whole split: benchmarks/accuracy.py,
    every method, in benchmarks/results/accuracy_fashion_mnist_14px.json).

    "Equal" is judged against rounding noise, not by a fixed bound: LCE's
    different float rounding flips a few small-margin predictions either way,
    more or fewer on another CPU. McNemar's exact test on the paired
    predictions fails only a systematic difference (p < 0.001)."""
    runs, run_dir, tflite, _ = exported
    keras = evaluate(run_dir, limit=2500)  # the CLI's evaluate of a run: test_training
    deployed = invoke("evaluate", tflite, "--json", "--limit", "2500", runs=runs)  # dataset from the export report
    assert deployed.exit_code == 0, deployed.output
    deployed = json.loads(deployed.stdout)
    assert deployed["runtime"] == "LCE interpreter"
    assert deployed["examples"] == keras["examples"] == 2_500

    paired = export.compare_with_keras(tflite, limit=2500)  # the run, from the export report
    # The CLI's figures count the same predictions (Keras's evaluate and
    # predict run different graphs: one rounding flip is allowed there too).
    assert paired["images"] == 2_500 and Path(paired["keras_model"]).resolve() == run_dir.resolve()
    assert paired["keras_top1"] == pytest.approx(keras["top1"], abs=1.01 / 2_500)
    assert paired["lce_top1"] == pytest.approx(deployed["top1"], abs=1e-6)
    assert paired["mcnemar_p"] >= 1e-3, paired
    assert deployed["top1"] > 0.5


def test_parity_passes_the_faithful_export_and_fails_wrong_ones_on_real_images(exported):
    """The trained bireal18 on 256 real test images: its own flatbuffer is within
    the model's rounding-noise floor; the same flatbuffer with one binary
    layer's folded scale wrong, or one binary layer dropped, is not."""
    from bnnzoo import datasets, runs
    from bnnzoo.export import rounding_noise
    from bnnzoo.export.pipeline import first_test_images

    _, run_dir, tflite, _ = exported
    model = runs.load_source(run_dir).model
    images = first_test_images(datasets.load("fashion_mnist"), model.input_shape[1:], 256)
    buf = tflite.read_bytes()
    parity = export.parity_report(model, buf, images)
    assert parity["noise_floor"]["faithful"], parity
    reference = model.predict(images, verbose=0)
    draws = rounding_noise.jitter_counts(model, images, reference)
    wrong = {"scale x0.5 (layer 5)": flatbuffer.with_scaled_bconv_output(buf, 5, 0.5, 1.0),
             "scale x2 (layer 10)": flatbuffer.with_scaled_bconv_output(buf, 10, 2.0, 1.0),
             "dropped (layer 8)": flatbuffer.with_scaled_bconv_output(buf, 8, 0.0, 0.0)}
    for name, bad in wrong.items():
        verdict = rounding_noise.judge(
            rounding_noise.counts(export.predict_flatbuffer(bad, images), reference), draws, 256)
        assert not verdict["faithful"], (name, verdict)


def test_mcnemar_separates_rounding_flips_from_a_worse_model():
    # 3 images of 2,500 the other way (the Xeon's 71.36 % vs 71.24 %) among
    # 15 discordant ones is chance; 30 against 5 is a worse model.
    assert parity.mcnemar_p_value(9, 6) > 0.5
    assert parity.mcnemar_p_value(6, 9) == parity.mcnemar_p_value(9, 6)
    assert parity.mcnemar_p_value(0, 0) == 1.0
    assert parity.mcnemar_p_value(30, 5) < 1e-4
    assert parity.mcnemar_p_value(1, 0) == 1.0 and parity.mcnemar_p_value(10, 0) < 2e-3
    assert parity.mcnemar_p_value(600, 500) < 0.01 and parity.mcnemar_p_value(1100, 10) < 1e-300
    assert parity.mcnemar_p_value(5000, 5000) == 1.0  # 10,000 images: no overflow
    outputs = np.eye(3)[[0, 1, 2, 0]]
    wrong_last = np.eye(3)[[0, 1, 2, 1]]
    paired = parity.paired_top1(outputs, wrong_last, np.array([0, 1, 2, 0]))
    assert (paired["only_keras_correct"], paired["only_lce_correct"]) == (1, 0)
    assert paired["keras_top1"] == 1.0 and paired["lce_top1"] == 0.75
    assert paired["top1_agreement"] == 0.75


def test_host_benchmark_of_the_latest_export(exported, invoke):
    runs, _, tflite, _ = exported
    result = invoke("benchmark", "--num-runs", "5", "--threads", "2", runs=runs)
    assert result.exit_code == 0, result.output
    assert "Inference timings in us: Init: " in result.stdout
    saved = json.loads(tflite.with_suffix(".benchmark-host.json").read_text())
    assert saved["count"] == 5 and saved["num_threads"] == 2 and saved["avg_us"] > 0


def test_an_export_never_replaces_a_good_file(exported, invoke):
    runs, run_dir, tflite, _ = exported
    before = tflite.read_bytes()
    assert_one_clear_error(invoke("export", run_dir, runs=runs), "already exists")
    assert tflite.read_bytes() == before


def test_a_failed_overwrite_keeps_the_good_files(exported, invoke):
    runs, run_dir, tflite, _ = exported
    report = export.report_path(tflite)
    before = tflite.read_bytes(), report.read_text()
    result = invoke("export", run_dir, "--overwrite", "--min-agreement", "1.0",
                    "--parity-images", "512", runs=runs)
    if result.exit_code == 0:  # every one of 512 predictions agreed: the check held
        assert json.loads(report.read_text())["parity"]["top1_agreement"] == 1.0
    else:
        assert_one_clear_error(result, "agrees with the Keras model's on only")
        assert (tflite.read_bytes(), report.read_text()) == before
    assert not [p for p in tflite.parent.iterdir() if p.name.startswith(".")]  # no temporaries


def test_bad_export_and_flatbuffer_input_gives_one_message(exported, tmp_path, invoke):
    runs, run_dir, tflite, _ = exported
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(tflite.read_bytes()[:1000])
    loose = tmp_path / "loose.tflite"
    loose.write_bytes(tflite.read_bytes())
    cases = [
        (["evaluate", cut, "--dataset", "fashion_mnist"], "Not a TFLite flatbuffer"),
        (["evaluate", loose], "needs --dataset"),
        (["export", run_dir, "--output", tmp_path / "model.bin"], "must end in .tflite"),
        (["export", run_dir, "--output", "/proc/forbidden/model.tflite"], "Cannot write"),
        (["export", run_dir, "--target", "riscv"], "Invalid value for '--target'"),
        (["benchmark", tmp_path / "missing.tflite"], "does not exist"),
    ]
    for args, message in cases:
        assert_one_clear_error(invoke(*args, runs=runs), message)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "tiny.h5"
    tiny_bnn(side=8).save(path)
    return path


@requires_fashion_mnist
@pytest.mark.parametrize("target, note", [("armv7", "64-bit OS"), ("xcore", "xcore.ai")])
def test_export_a_model_file_for_other_targets(model_file, tmp_path, target, note, invoke):
    result = invoke("export", model_file, "--target", target, "--dataset", "fashion_mnist",
                    "--parity-images", "64")
    assert result.exit_code == 0, result.output
    assert note in result.stderr
    assert (tmp_path / f"tiny-{target}.tflite").is_file()
    report = json.loads((tmp_path / f"tiny-{target}.report.json").read_text())
    assert report["target"] == target
    assert report["binary_convolutions"]["lce_bconv2d"] == 2 and report["parity"]["images"] == 64


def test_a_model_file_without_a_dataset_is_checked_on_synthetic_inputs(model_file, runs_dir):
    path, report = export.export_model(model_file, parity_images=64)  # in-process: no CLI start-up
    assert path == model_file.parent / "tiny-arm64.tflite" and path.is_file()
    assert report["dataset"] is None and report["parity"]["noise_floor"]["faithful"]
    assert report["parity"]["inputs"] == export.pipeline.SYNTHETIC == "synthetic inputs, uniform(-1, 1)"
    printed = export.format_report(report)
    assert "synthetic inputs, uniform(-1, 1): top-1 agreement" in printed
    verdicts = [line for line in printed.splitlines() if "by the Keras model's rounding noise" in line]
    assert len(verdicts) == 2 and all(line.endswith(": passed") for line in verdicts), verdicts
    report["parity"]["noise_floor"]["flatbuffer"]["top1"] = 65  # of 64 images: beyond any bound
    assert export.format_report(report).count(": failed") == 1


def test_a_model_file_without_binary_layers_is_refused(tmp_path, invoke):
    floating = tmp_path / "float.h5"
    tf.keras.Sequential([tf.keras.Input((8, 8, 1)), tf.keras.layers.Flatten(),
                         tf.keras.layers.Dense(10)]).save(floating)
    assert_one_clear_error(invoke("export", floating, "--dataset", "fashion_mnist"),
                           "no binary layers")
    assert not list(tmp_path.glob("*.tflite"))


@requires_fashion_mnist
def test_a_binary_dense_layer_exports_bitpacked_as_a_1x1_binary_convolution(tmp_path, invoke):
    path = tmp_path / "binary_head.h5"
    tiny_bnn(binary_head=True).save(path)
    result = invoke("export", path, "--dataset", "fashion_mnist", "--parity-images", "16")
    assert result.exit_code == 0, result.output
    assert "binary dense layers     1 of 1 as 1x1 LceBconv2d" in result.stdout
    report = json.loads((tmp_path / "tiny-arm64.report.json").read_text())
    assert report["binary_dense"] == {"keras": 1, "as_lce_bconv2d": 1, "layers": ["binary_dense"]}
    assert report["binary_convolutions"] == {"keras": 3, "lce_bconv2d": 3, "not_bitpacked": []}
    assert "FULLY_CONNECTED" not in report["operators"]
    assert report["parity"]["noise_floor"]["faithful"]  # against the model as saved


def larq_zoo_style_model(side=16):
    """A tiny larq model with larq-zoo's own registered functions: QuickNet's
    blur-pool initialiser and XNOR-Net's scaled-sign kernel quantizer."""
    import larq as lq
    from larq_zoo.literature.xnornet import xnor_weight_scale
    from larq_zoo.sota.quicknet import blurpool_initializer

    inp = tf.keras.Input((side, side, 1))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False,
                                        depthwise_initializer=blurpool_initializer,
                                        trainable=False)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, use_bias=False,
                              input_quantizer="ste_sign", kernel_quantizer=xnor_weight_scale,
                              kernel_constraint="weight_clip", name="xnor_conv")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.BatchNormalization()(x))
    return tf.keras.Model(inp, tf.keras.layers.Dense(10, activation="softmax")(x), name="zoo_like")


def test_a_larq_zoo_model_file_loads_and_exports(tmp_path, runs_dir):
    """Keras writes larq-zoo's registered functions into .h5 in a form its own
    reader refuses ("Unknown initializer: 'function'", "Unknown quantization
    function"); bnnzoo reads them back as the same model and exports it."""
    from bnnzoo import runs

    model = larq_zoo_style_model()
    path = tmp_path / "zoo_like.h5"
    model.save(path)
    loaded = runs.load_model_file(path)
    images = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert loaded.get_layer("xnor_conv").kernel_quantizer.__name__ == "xnor_weight_scale"
    tflite, report = export.export_model(path, parity_images=32)
    assert report["binary_convolutions"] == {"keras": 1, "lce_bconv2d": 1, "not_bitpacked": []}
    assert report["parity"]["noise_floor"]["faithful"]


def test_paired_top5_counts_the_true_class_among_each_models_five_best():
    labels = np.array([0, 1, 2])
    keras = np.array([[9, 1, 2, 3, 4, 5, 6],    # top-1 right
                      [0, 1, 9, 8, 7, 6, 5],    # class 1 sixth: top-5 wrong
                      [0, 1, 2, 9, 8, 7, 6]], dtype=float)  # class 2 fifth: top-5 right
    lce = np.array([[0, 9, 8, 7, 6, 5, 4],      # class 0 last: wrong
                    [0, 2, 9, 8, 7, 6, 5],      # class 1 sixth: wrong
                    [0, 1, 5, 9, 8, 7, 6]], dtype=float)  # class 2 fifth: top-5 right
    paired = parity.paired_top1(keras, lce, np.eye(7)[labels])  # one-hot labels too
    assert (paired["keras_top1"], paired["keras_top5"]) == (1 / 3, 2 / 3)
    assert (paired["lce_top1"], paired["lce_top5"]) == (0.0, 1 / 3)
