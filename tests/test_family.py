"""The Bi-Real family 34-152 and the real-valued twins: layout, shortcuts, counts."""

import functools

import numpy as np
import pytest
import tensorflow as tf
from larq_zoo.literature.xnornet import xnor_weight_scale

from bnnzoo import export, zoo
from bnnzoo.export import footprint
from bnnzoo.quantizers import BiRealHardTanh, XNORScaledSign
from bnnzoo.runs import load_model_file
from bnnzoo.zoo.binary_layers import binary_layers, binary_operations
from bnnzoo.zoo.bireal_deep import BiRealBottleneckFactory

SMALL = dict(input_shape=(32, 32, 3), num_classes=10)
BINARY_CONVS = {"bireal18": 16, "bireal34": 32, "bireal50": 48, "bireal101": 99, "bireal152": 150}


@functools.cache
def small(name):
    """Each model built once for the whole module (the 152-layer ones take a while)."""
    return zoo.get_model(name, **SMALL)


def _consumer(tensor_owner):
    (node,) = tensor_owner.outbound_nodes
    return node.outbound_layer


def shortcut_path(layer):
    """The layers on the shortcut around binary ``layer`` ([] for identity).

    Checks the block ``x -> bconv -> BatchNorm -> Add(., shortcut(x))``.
    """
    bn = _consumer(layer)
    assert isinstance(bn, tf.keras.layers.BatchNormalization), layer.name
    add = _consumer(bn)
    assert isinstance(add, tf.keras.layers.Add), layer.name
    (other,) = [t for t in add.input if t is not bn.output]
    path, tensor = [], other
    while tensor is not layer.input:
        producer = tensor._keras_history.layer
        path.append(type(producer).__name__)
        tensor = producer.input
        assert len(path) <= 3, f"{layer.name}'s shortcut does not start at its input"
    return path[::-1]


@pytest.mark.parametrize("name", sorted(BINARY_CONVS))
def test_every_binary_conv_has_its_own_shortcut(name):
    model = small(name)
    layers = binary_layers(model)
    assert len(layers) == BINARY_CONVS[name] == len(binary_operations(model))
    assert {type(layer.input_quantizer).__name__ for layer in layers} == {"BiRealApproxSign"}
    assert {type(layer.kernel_quantizer).__name__ for layer in layers} == {"BiRealMagnitudeAwareSign"}
    adds = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Add)]
    assert len(adds) == len(layers)  # one shortcut per binary conv, none shared
    for layer in layers:
        path = shortcut_path(layer)
        changes = layer.input.shape[-1] != layer.filters or layer.strides != (1, 1)
        if not changes:
            assert path == [], (layer.name, path)
        elif layer.strides != (1, 1):
            assert path == ["AveragePooling2D", "Conv2D", "BatchNormalization"], layer.name
        else:
            assert path == ["Conv2D", "BatchNormalization"], layer.name
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name, blocks", [("bireal50", (3, 4, 6, 3)), ("bireal101", (3, 4, 23, 3)),
                                          ("bireal152", (3, 8, 36, 3))])
def test_bottlenecks_are_1x1_3x3_1x1_with_the_stride_on_the_3x3(name, blocks):
    layers = binary_layers(small(name))
    kernels = [layer.kernel_size[0] for layer in layers]
    assert kernels == [1, 3, 1] * sum(blocks)
    widths = [layer.filters for layer in layers]
    expected = []
    for stage, n in enumerate(blocks):
        w = 64 * 2**stage
        expected += [w, w, 4 * w] * n
    assert widths == expected
    strided = [i for i, layer in enumerate(layers) if layer.strides == (2, 2)]
    starts = np.cumsum((0,) + blocks[:-1])[1:]
    assert strided == [3 * s + 1 for s in starts]  # the 3x3 of each later stage's first block


def test_bireal34_is_resnet34s_stages():
    layers = binary_layers(small("bireal34"))
    widths = [layer.filters for layer in layers]
    assert widths == [64] * 6 + [128] * 8 + [256] * 12 + [512] * 6
    assert all(layer.kernel_size == (3, 3) for layer in layers)


# 101 and 152 are 50's bottlenecks repeated (their layout is checked above).
@pytest.mark.parametrize("binary, real", [("bireal18", "resnet18"), ("bireal34", "resnet34"),
                                          ("bireal50", "resnet50")])
def test_real_twin_has_the_binary_nets_layers_without_quantization(binary, real):
    b, r = small(binary), small(real)
    assert [w.shape for w in b.weights] == [w.shape for w in r.weights]
    assert [type(layer).__name__ for layer in b.layers] == [type(layer).__name__ for layer in r.layers]
    assert binary_layers(r) == []
    quantized = [layer for layer in r.layers if getattr(layer, "input_quantizer", None) is not None]
    assert len(quantized) == BINARY_CONVS[binary]
    assert all(isinstance(layer.input_quantizer, BiRealHardTanh) and layer.kernel_quantizer is None
               and layer.kernel_constraint is None for layer in quantized)


def test_flops_as_the_paper_counts_them():
    """Bi-Real Net's table: Bi-Real-18 1.63e8 FLOPs, ResNet-18 1.81e9, at 224x224."""
    binary = footprint(zoo.get_model("bireal18"))
    real = footprint(zoo.get_model("resnet18"))
    assert binary.flops == binary.float_macs + binary.binary_macs / 64
    assert binary.flops == pytest.approx(1.63e8, rel=0.03)
    assert real.flops == pytest.approx(1.81e9, rel=0.03)
    assert zoo.model_entry("bireal18").paper_flops == 1.63e8
    assert zoo.model_entry("resnet18").paper_flops == 1.81e9


def test_no_imagenet_weights_beyond_bireal18():
    with pytest.raises(ValueError, match="no published ImageNet weights for bireal34"):
        zoo.get_model("bireal34", weights="imagenet")


def test_xnor_baseline_has_two_convs_per_shortcut_and_plain_sign():
    model = small("xnor_resnet18")
    layers = binary_layers(model)
    assert len(layers) == 16 and len(binary_operations(model)) == 16
    assert [layer.input_quantizer.__class__.__name__ for layer in layers] == ["SteSign"] * 16
    assert all(isinstance(layer.kernel_quantizer, XNORScaledSign) for layer in layers)
    kernel = tf.random.stateless_normal((3, 3, 4, 8), seed=(1, 2))
    np.testing.assert_array_equal(XNORScaledSign()(kernel), xnor_weight_scale(kernel))
    adds = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Add)]
    assert len(adds) == 8  # one shortcut per basic block of two binary convs
    for first, second in zip(layers[::2], layers[1::2]):
        assert _consumer(_consumer(first)) is second  # sign -> conv -> BN -> sign -> conv


class CompactBottleneckNet(BiRealBottleneckFactory):
    """One bottleneck per stage: every shortcut kind of bireal50/101/152, converted in seconds."""

    name = "bireal_bottleneck_compact"
    stage_blocks = (1, 1, 1, 1)


@pytest.mark.parametrize("name, shape, classes", [
    ("xnor_resnet18", (16, 16, 1), 10),
    ("bottlenecks", (16, 16, 1), 10),  # the 1x1s bitpack too
    ("bireal34", (72, 72, 3), 1000),  # ImageNet stem and head: the 224-px file's weights
])
def test_family_exports_every_binary_conv_bitpacked(name, shape, classes):
    """The full 50/101/152 at 16 px: benchmarks/family_export.py (minutes each)."""
    if name == "bottlenecks":
        model = CompactBottleneckNet(input_shape=shape, input_tensor=None, weights=None,
                                     include_top=True, num_classes=classes).build()
    else:
        model = zoo.get_model(name, input_shape=shape, num_classes=classes)
    count = len(binary_operations(model))
    assert count == {"xnor_resnet18": 16, "bottlenecks": 12, "bireal34": 32}[name]
    report = export.export_report(model, export.export_flatbuffer(model, "arm64"))
    assert report["binary_convolutions"] == {"keras": count, "lce_bconv2d": count,
                                             "not_bitpacked": []}
    if name == "bireal34":  # within 5 % of the 1-bit budget
        assert abs(report["size"]["vs_one_bit_budget"] - 1) < 0.05


@pytest.mark.parametrize("name", ["xnor_resnet18", "resnet18"])
def test_trained_model_files_load_back(name, tmp_path):
    """A run's model.h5 must load for export and --init-from (custom quantizers included)."""
    model = small(name)
    model.save(tmp_path / "model.h5", include_optimizer=False, save_format="h5")
    loaded = load_model_file(tmp_path / "model.h5")
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
