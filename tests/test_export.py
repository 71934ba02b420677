"""LCE export: bitpacking proof, MAC and size accounting, parity, int8 I/O."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import export
from bnnzoo.export import flatbuffer as fb
from bnnzoo.export import rounding_noise
from bnnzoo.export.report import match_binary_layers
from conftest import tiny_bnn


@pytest.fixture(scope="module")
def tiny():
    model = tiny_bnn()
    return model, export.export_flatbuffer(model, "arm64")


def test_every_binary_conv_becomes_lce_bconv2d(tiny):
    model, buf = tiny
    report = export.export_report(model, buf)
    assert report["operators"]["LceBconv2d"] == 2
    assert report["binary_convolutions"] == {"keras": 2, "lce_bconv2d": 2, "not_bitpacked": []}
    assert report["operators"]["CONV_2D"] == 1  # the float stem
    export.check_report(report)  # does not raise


def test_binary_mac_share_is_read_from_the_flatbuffer(tiny):
    model, buf = tiny
    macs = export.export_report(model, buf)["macs"]
    binary = 2 * (8 * 8) * 8 * 3 * 3 * 8  # two 3x3 convs, 8 -> 8 channels, 8x8 outputs
    floating = (8 * 8) * 8 * 3 * 3 * 1 + 8 * 10  # the stem and the dense head
    assert macs["binary"] == binary and macs["float"] == floating
    assert macs["binary_share"] == pytest.approx(binary / (binary + floating))
    fp = export.footprint(model)  # larq's own count agrees
    assert (fp.binary_macs, fp.float_macs) == (binary, floating)


def test_sizes_against_float32_and_the_one_bit_budget(tiny):
    model, buf = tiny
    size = export.export_report(model, buf)["size"]
    fp = export.footprint(model)
    assert size["flatbuffer_bytes"] == len(buf)
    assert size["float32_bytes"] == 4 * model.count_params()
    assert size["one_bit_budget_bytes"] == 2 * 8 * 8 * 9 // 8 + 4 * (model.count_params() - 2 * 576)
    assert size["vs_float32"] == pytest.approx(len(buf) / fp.size_float32_bytes)


def test_a_binary_layer_lce_cannot_bitpack_fails_the_export_by_name():
    model = tiny_bnn(binary_head=True, name="binary_head")
    buf = export.export_flatbuffer(model, "arm64")
    report = export.export_report(model, buf)
    assert report["operators"]["LceBconv2d"] == 2 and report["operators"]["FULLY_CONNECTED"] == 1
    assert report["binary_convolutions"] == {"keras": 3, "lce_bconv2d": 2,
                                             "not_bitpacked": ["binary_dense"]}
    with pytest.raises(export.ExportError, match="did not become LceBconv2d: binary_dense"):
        export.check_report(report)


def test_binary_dense_rewritten_as_the_equal_1x1_binary_convolution():
    from bnnzoo.export.dense_as_conv import binary_dense_as_conv

    model = tiny_bnn(binary_head=True, name="binary_head")
    rewritten, names = binary_dense_as_conv(model)
    assert names == ["binary_dense"]
    assert rewritten.get_layer("binary_dense").kernel.shape == (1, 1, 8, 10)
    images = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    np.testing.assert_array_equal(rewritten.predict(images, verbose=0),
                                  model.predict(images, verbose=0))
    buf = export.export_flatbuffer(rewritten, "arm64")
    report = export.export_report(rewritten, buf)
    assert report["binary_convolutions"] == {"keras": 3, "lce_bconv2d": 3, "not_bitpacked": []}
    assert "FULLY_CONNECTED" not in report["operators"]
    assert export.predict_flatbuffer(buf, images) == pytest.approx(
        model.predict(images, verbose=0), abs=1e-4)
    assert binary_dense_as_conv(tiny_bnn())[1] == []  # a float head stays as it is


def test_matching_falls_back_to_the_convolution_shape():
    layer = lq.layers.QuantConv2D(16, 3, strides=2, input_quantizer="ste_sign",
                                  kernel_quantizer="ste_sign", name="renamed")
    layer.build((None, 8, 8, 32))
    op = fb.Operator(name="LceBconv2d", input_names=("model/other/Sign",), output_names=(),
                     output_shape=(1, 4, 4, 16), weight_shape=(16, 3, 3, 1),
                     options={"channels_in": 32, "stride_height": 2, "stride_width": 2}, macs=0)
    assert match_binary_layers([layer], [op]) == []
    wrong = fb.Operator(**{**op.__dict__, "options": {**op.options, "stride_height": 1}})
    assert match_binary_layers([layer], [wrong]) == ["renamed"]


def test_parity_on_images(tiny):
    model, buf = tiny
    images = np.random.default_rng(1).normal(size=(32, 8, 8, 1)).astype("float32")
    parity = export.parity_report(model, buf, images)
    assert parity["images"] == 32
    assert parity["top1_agreement"] == 1.0
    assert parity["max_abs_output_diff"] < 1e-4
    floor = parity["noise_floor"]
    assert floor["faithful"] and floor["flatbuffer"] == {"top1": 0, "moved": 0}
    assert len(floor["jitter"]["top1"]) == rounding_noise.DRAWS
    assert model.predict(images, verbose=0) == pytest.approx(  # weights restored after jitter
        export.predict_flatbuffer(buf, images), abs=1e-4)


def test_the_noise_floor_bound():
    # Draws that never change anything: mu+ = -ln(alpha) / 4 = 1.73, whose
    # 1 - alpha quantile is 7 (of 256: far below a wrong conversion's count).
    assert rounding_noise.allowed_count([0, 0, 0, 0], 256) == 7
    # 4 draws of ~10: a faithful count of 10-15 passes, the 60+ of a wrong
    # scale does not; the bound never exceeds the number of images.
    bound = rounding_noise.allowed_count([8, 12, 9, 11], 256)
    assert 20 <= bound <= 35
    assert rounding_noise.allowed_count([250, 256, 256, 255], 256) == 256
    # mu+ is an upper confidence limit: P(Poisson(4 mu+) <= S) = alpha
    mean = rounding_noise.poisson_upper_mean(40, 4)
    assert rounding_noise._poisson_cdf(40, 4 * mean) == pytest.approx(rounding_noise.ALPHA, rel=1e-3)


def test_parity_beyond_the_noise_floor_fails_the_export(tiny):
    model, buf = tiny
    report = export.export_report(model, buf)
    floor = rounding_noise.judge({"top1": 40, "moved": 256}, [{"top1": 3, "moved": 20}] * 4, 256)
    assert not floor["faithful"] and floor["allowed"]["moved"] < 256
    report["parity"] = {"images": 256, "top1_agreement": 0.84, "max_abs_output_diff": 0.5,
                        "keras_noise_floor_agreement": 0.99, "noise_floor": floor,
                        "inputs": "fashion_mnist test images"}
    with pytest.raises(export.ExportError, match="beyond the model's own rounding noise on 256 "
                       "fashion_mnist test images: top-1 changed on 40"):
        export.check_report(report)
    report["parity"]["noise_floor"] = rounding_noise.judge(
        {"top1": 3, "moved": 20}, [{"top1": 3, "moved": 20}] * 4, 256)
    export.check_report(report)  # within the noise floor; no --min-agreement
    with pytest.raises(export.ExportError, match="84.0 % of 256 images"):
        export.check_report(report, min_agreement=0.9)


@pytest.mark.parametrize("target", ["arm64", "xcore"])
def test_the_flatbuffer_is_byte_identical_to_lces_own_keras_conversion(tiny, target):
    """export.convert saves only the inference function (no per-layer traces);
    what LCE's ``convert_keras_model`` makes of the whole Keras SavedModel is
    the same flatbuffer, signature and tensor names included."""
    import larq_compute_engine as lce

    model, buf = tiny
    lce_target = export.TARGETS[target]
    ours = buf if target == "arm64" else export.export_flatbuffer(model, target)
    assert ours == lce.convert_keras_model(model, target=lce_target)
    inp = tf.keras.Input((8, 8, 1), name="pixels")  # two named outputs
    mid = lq.layers.QuantConv2D(4, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                use_bias=False)(tf.keras.layers.Conv2D(4, 3)(inp))
    flat = tf.keras.layers.Flatten()(mid)
    two = tf.keras.Model(inp, [tf.keras.layers.Dense(3, name="first")(flat),
                               tf.keras.layers.Dense(2, name="second")(flat)])
    assert export.export_flatbuffer(two, target) == lce.convert_keras_model(two, target=lce_target)


def test_a_mixed_precision_model_is_refused_by_name():
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inp = tf.keras.Input((4, 4, 1))
        model = tf.keras.Model(inp, tf.keras.layers.Dense(2)(inp), name="half")
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(export.ConversionError, match="half computes in mixed_bfloat16"):
        export.export_flatbuffer(model)


def test_int8_io_is_refused_for_a_float_model(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match="int8 quantization statistics"):
        export.export_flatbuffer(model, "arm64", int8_io=True)


def test_int8_io_for_a_model_with_quantization_statistics():
    """Fake-quantization ops (from quantization-aware training) give LCE int8 I/O."""
    tf.keras.utils.set_random_seed(0)
    fake_quant = tf.keras.layers.Lambda(
        lambda t: tf.quantization.fake_quant_with_min_max_args(t, -4.0, 4.0))
    inp = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(8, 3, padding="same")(fake_quant(inp))
    x = lq.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, use_bias=False,
                              input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip")(fake_quant(x))
    x = fake_quant(tf.keras.layers.BatchNormalization()(x))
    x = fake_quant(tf.keras.layers.GlobalAveragePooling2D()(x))
    model = tf.keras.Model(inp, fake_quant(tf.keras.layers.Dense(10)(x)))
    buf = export.export_flatbuffer(model, "arm64", int8_io=True)
    assert fb.io_types(buf) == (["INT8"], ["INT8"])
    assert export.operator_histogram(buf)["LceBconv2d"] == 1
    images = np.random.default_rng(0).uniform(-3, 3, (16, 8, 8, 1)).astype("float32")
    keras_out = model.predict(images, verbose=0)
    lce_out = export.predict_flatbuffer(buf, images)  # (de)quantized with the tensors' scales
    # Wrong (de)quantization would be off by the whole int8 range; rounding at the
    # five requantized tensors moves outputs by a few steps of 8/255.
    assert np.abs(keras_out - lce_out).max() <= 16 * 8.0 / 255
    assert (keras_out.argmax(1) == lce_out.argmax(1)).mean() >= 0.9


def test_unknown_target_and_damaged_flatbuffers():
    with pytest.raises(ValueError, match="Targets: arm64, armv7, xcore"):
        export.export_flatbuffer(tiny_bnn(), "riscv")
    with pytest.raises(export.FlatbufferError):
        fb.operators(b"not a flatbuffer at all")


def test_damaged_flatbuffer_is_refused_before_the_interpreter(tiny, tmp_path):
    _, buf = tiny
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(buf[: len(buf) // 3])
    with pytest.raises(export.FlatbufferError):
        export.read_flatbuffer(cut)


def test_int8_parity_holds_the_ranges_exact_and_fails_a_broken_int8_flatbuffer():
    """A small binary net with int8 edges, calibrated on uniform(-1, 1) inputs:
    the jitter leaves its ranges exact (the flatbuffer holds them as scales and
    zero points) and restores every weight; the faithful flatbuffer is within
    the int8 noise floor; the same flatbuffer with a binary layer dropped, or
    its output scale a quarter, is not."""
    from bnnzoo.export.int8_weights import on_int8_grid
    from bnnzoo.quantizers.int8 import int8_ranges
    from bnnzoo.training.calibration import calibrate
    from bnnzoo.zoo.int8_edges import with_int8_edges

    # An untrained net predicts few classes: with most initial weights one class
    # for every image, so no top-1 can change. These weights predict two.
    tf.keras.utils.set_random_seed(0)
    model = with_int8_edges(tiny_bnn(side=8, name="tiny_int8"))
    images = np.random.default_rng(2).uniform(-1, 1, (256, 8, 8, 1)).astype(np.float32)
    calibrate(model, [(images[:128], None), (images[128:], None)])
    on_int8_grid(model)
    buf = export.export_flatbuffer(model, "arm64")
    ranges = [(float(r.range_min), float(r.range_max)) for r in int8_ranges(model)]
    reference = model.predict(images, verbose=0)
    assert len(set(reference.argmax(-1))) > 1, "a model whose top-1 cannot change proves nothing"
    seen = []
    real_set_weights = model.set_weights

    def recording(weights):  # what each draw gave the ranges
        real_set_weights(weights)
        seen.append([(float(r.range_min), float(r.range_max)) for r in int8_ranges(model)])

    model.set_weights = recording
    draws = rounding_noise.jitter_counts(model, images, reference,
                                         epsilon=rounding_noise.INT8_EPSILON)
    del model.set_weights
    assert seen and all(drawn == ranges for drawn in seen)
    assert model.predict(images, verbose=0) == pytest.approx(reference)  # weights restored
    parity = export.parity_report(model, buf, images, int8=True)
    assert parity["noise_floor"]["faithful"], parity
    for name, bad in {"dropped": fb.with_scaled_bconv_output(buf, 1, 0.0, 0.0),
                      "scale x0.25": fb.with_scaled_bconv_output(buf, 0, 0.25, 1.0)}.items():
        verdict = rounding_noise.judge(
            rounding_noise.counts(export.predict_flatbuffer(bad, images), reference), draws, 256,
            keys=("top1",))
        assert not verdict["faithful"], (name, verdict)
