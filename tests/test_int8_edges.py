"""int8 edges on real Fashion-MNIST: calibrate, fine-tune, export --int8, and its accuracy."""

import json
import shutil

import numpy as np
import pytest

from bnnzoo import datasets, runs
from bnnzoo.export import flatbuffer as fb
from bnnzoo.export import rounding_noise
from bnnzoo.export.convert import export_flatbuffer
from bnnzoo.export.int8_weights import on_int8_grid, symmetric_int8
from bnnzoo.export.parity import predict_flatbuffer
from bnnzoo.quantizers.int8 import int8_ranges, tied_groups
from conftest import assert_one_clear_error

IMAGES = 500  # real test images the float model and the flatbuffers are scored on
# The int8 flatbuffer's top-1 may be this far (points) below the float model's on
# IMAGES images; the test itself checks that a broken calibration (every range
# zero) falls below it.
BOUND = 5.0


def test_symmetric_int8_is_the_per_channel_grid():
    kernel = np.array([[0.5, -1.0], [0.25, 0.003]], np.float32)  # channels are columns
    rounded = symmetric_int8(kernel, axes=0)
    assert np.allclose(rounded[:, 0], np.round(kernel[:, 0] / (0.5 / 127)) * 0.5 / 127)
    assert rounded[1, 1] == pytest.approx(0.0) and rounded[0, 1] == pytest.approx(-1.0)
    assert np.array_equal(symmetric_int8(rounded, axes=0), rounded)  # idempotent


def test_tied_groups_join_every_chain_of_ties_once():
    """Ties given in any order and direction join transitively; untied names
    stay alone; each group starts with its first name in the given order."""
    names = ["a", "b", "c", "d", "e", "f"]
    assert tied_groups(names, [("c", "b"), ("e", "d"), ("a", "c"), ("d", "e")]) == \
        [["a", "b", "c"], ["d", "e"], ["f"]]
    assert tied_groups(names, []) == [[name] for name in names]


def test_int8_export_of_a_trained_run(trained, tmp_path, invoke):
    _, trained_dir, _ = trained
    run = tmp_path / "run"
    run.mkdir()
    for name in (runs.CONFIG, runs.MODEL):
        shutil.copy(trained_dir / name, run / name)

    refused = invoke("export", run, "--int8")
    assert_one_clear_error(refused, "no int8 stage", "quantize")

    # The fine-tune's few steps test the stage's plumbing; calibration alone keeps top-1 here.
    quantize = ["quantize", run, "--steps", "2", "--calibration-images", "32"]
    result = invoke(*quantize)
    assert result.exit_code == 0, result.output
    assert "Calibrated 42 int8 ranges on 32 training images" in result.output
    assert (run / "int8" / runs.MODEL).is_file()
    again = invoke(*quantize)
    assert again.exit_code == 0 and "already finished its 2 steps" in again.output
    other = invoke(*quantize[:3], "3", *quantize[4:])
    assert_one_clear_error(other, "other options", "steps_per_epoch")

    # int8 input and output: no float operator left at all.
    result = invoke("export", run, "--int8", "--int8-io", "--parity-images", "16", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    precision = report["precision"]
    assert report["int8_edges"] and report["flatbuffer"] == "bireal18-arm64-int8.tflite"
    assert report["io_types"] == {"input": ["INT8"], "output": ["INT8"]}
    assert report["parity"]["noise_floor"]["faithful"]
    assert precision["int8"]["CONV_2D"] >= 1 and precision["int8"]["FULLY_CONNECTED"] == 1
    assert precision["float_weights"] == [] and precision["float"] == {}
    bconv = report["binary_convolutions"]
    assert bconv["keras"] == bconv["lce_bconv2d"] == 16 and bconv["not_bitpacked"] == []
    assert precision["int8"]["LceBconv2d"] == 16  # the binary convolutions write int8

    # Top-1 on the first IMAGES test images: the float model (Keras), the int8 flatbuffer,
    # and one converted from the int8 stage with a broken calibration (every range zero).
    model = runs.load_source(run).model
    images, labels = next(iter(datasets.pipeline(
        datasets.load("fashion_mnist"), "test", image_shape=model.input_shape[1:],
        batch_size=IMAGES, limit=IMAGES)))

    def top1(outputs):
        return 100 * float(np.mean(np.argmax(outputs, 1) == np.argmax(labels, 1)))

    float_top1 = top1(model(images, training=False))
    int8_top1 = top1(predict_flatbuffer((run / "export" / report["flatbuffer"]).read_bytes(),
                                        images))
    broken = runs.load_source(run / "int8" / runs.MODEL).model
    for layer in int8_ranges(broken):
        layer.set_range(0.0, 0.0)
    on_int8_grid(broken)
    broken_buf = export_flatbuffer(broken, "arm64")  # float input and output, as by default
    default_io = fb.precision_report(broken_buf)
    assert default_io["float"] == {"DEQUANTIZE": 1} and default_io["int8"]["QUANTIZE"] == 1
    broken_top1 = top1(predict_flatbuffer(broken_buf, images))
    assert broken_top1 < float_top1 - BOUND <= int8_top1, (broken_top1, float_top1, int8_top1)

    # The parity verdict the export passed fails the same int8 flatbuffer with one binary
    # layer dropped (measured on this run's recipe: 75 of 256 top-1s changed, bound 35).
    stage = runs.load_source(run / "int8" / runs.MODEL).model
    on_int8_grid(stage)
    sample = np.asarray(images)[:256]
    reference = stage.predict(sample, verbose=0)
    draws = rounding_noise.jitter_counts(stage, sample, reference,
                                         epsilon=rounding_noise.INT8_EPSILON)
    dropped = fb.with_scaled_bconv_output((run / "export" / report["flatbuffer"]).read_bytes(),
                                          8, 0.0, 0.0)
    verdict = rounding_noise.judge(rounding_noise.counts(predict_flatbuffer(dropped, sample),
                                                         reference), draws, 256, keys=("top1",))
    assert not verdict["faithful"], verdict


def test_a_concatenations_inputs_share_one_range_and_convert_to_int8():
    """A DenseNet-style block (larq-zoo's BinaryDenseNets): each binary
    convolution's output concatenated onto the block's input, twice. TFLite's
    int8 concatenation needs one scale for its inputs and output, so every
    range reaching one (through earlier concatenations) is tied and calibrated
    to their union; the file converts with int8 concatenations and binary
    convolutions, and computes what the Keras model computes."""
    import larq as lq
    import tensorflow as tf

    from bnnzoo.export.parity import parity_report
    from bnnzoo.training.calibration import calibrate
    from bnnzoo.zoo.int8_edges import with_int8_edges

    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(image)
    x = tf.keras.layers.BatchNormalization()(x)
    for _ in range(2):
        y = lq.layers.QuantConv2D(4, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                                  kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                                  use_bias=False)(x)
        y = tf.keras.layers.BatchNormalization()(y)
        x = tf.keras.layers.Concatenate()([x, y])
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = with_int8_edges(tf.keras.Model(image, tf.keras.layers.Dense(10)(x)))
    images = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 3)).astype(np.float32)
    calibrate(model, [(images[:32], None), (images[32:], None)])

    ranges = {r.name: r for r in int8_ranges(model)}
    tied = [r for r in ranges.values() if r.shares]
    assert len(tied) == 2  # the second and third block inputs share the first's
    first = ranges[tied[0].shares]
    assert {r.shares for r in tied} == {first.name} and not first.shares
    for r in tied:
        assert (float(r.range_min), float(r.range_max)) == (float(first.range_min),
                                                            float(first.range_max))
    on_int8_grid(model)
    buf = export_flatbuffer(model, "arm64")
    precision = fb.precision_report(buf)
    assert precision["int8"]["CONCATENATION"] == 2 and precision["int8"]["LceBconv2d"] == 2
    assert precision["float"] == {"DEQUANTIZE": 1} and precision["float_weights"] == []
    assert parity_report(model, buf, images, int8=True)["noise_floor"]["faithful"]
