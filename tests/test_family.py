"""The Bi-Real family 34-152 and the real-valued twins: layout, shortcuts, counts."""

import functools

import numpy as np
import pytest
import tensorflow as tf
from larq_zoo.literature.xnornet import xnor_weight_scale

from bnnzoo import export, quantizers, zoo
from bnnzoo.export import footprint
from bnnzoo.quantizers import BiRealHardTanh, XNORScaledSign
from bnnzoo.runs import load_model_file
from bnnzoo.training.initialise import initialise_from
from bnnzoo.zoo.binary_layers import binary_layers, binary_operations
from bnnzoo.zoo.bireal_deep import BiRealBottleneckFactory

SMALL = dict(input_shape=(32, 32, 3), num_classes=10)
# Bottlenecks: three binary convolutions each, but the first block's real opening 1x1.
BINARY_CONVS = {"bireal18": 16, "bireal34": 32, "bireal50": 47, "bireal101": 98, "bireal152": 149}
STAGES = {"bireal50": (3, 4, 6, 3), "bireal101": (3, 4, 23, 3), "bireal152": (3, 8, 36, 3)}


@functools.cache
def small(name):
    """Each model built once for the whole module (the 152-layer ones take a while)."""
    return zoo.get_model(name, **SMALL)


def _consumer(tensor_owner):
    (node,) = tensor_owner.outbound_nodes
    return node.outbound_layer


def _add_after(layer):
    """The Add closing ``x -> bconv -> BatchNorm -> Add``."""
    bn = _consumer(layer)
    assert isinstance(bn, tf.keras.layers.BatchNormalization), layer.name
    add = _consumer(bn)
    assert isinstance(add, tf.keras.layers.Add), layer.name
    return bn, add


def path_between(source, tensor, limit=3):
    """The layer kinds from tensor ``source`` to ``tensor``, each with one input."""
    path = []
    while tensor is not source:
        producer = tensor._keras_history.layer
        path.append(type(producer).__name__)
        tensor = producer.input
        assert len(path) <= limit, f"{path} does not start at {source.name}"
    return path[::-1]


def shortcut_of(layer, source):
    """The layers on the shortcut around binary ``layer``, from tensor ``source``."""
    bn, add = _add_after(layer)
    (other,) = [t for t in add.input if t is not bn.output]
    return path_between(source, other)


@pytest.mark.parametrize("name", sorted(BINARY_CONVS))
def test_every_binary_conv_has_its_own_shortcut(name):
    model = small(name)
    layers = binary_layers(model)
    assert len(layers) == BINARY_CONVS[name] == len(binary_operations(model))
    assert {type(layer.input_quantizer).__name__ for layer in layers} == {"BiRealApproxSign"}
    assert {type(layer.kernel_quantizer).__name__ for layer in layers} == {"BiRealMagnitudeAwareSign"}
    adds = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Add)]
    # One shortcut per binary conv, none shared; the bottleneck nets' leaky clip adds too.
    assert len(adds) == len(layers) + (name in STAGES)
    own = {_add_after(layer)[1] for layer in layers}
    assert len(own) == len(layers) and own <= set(adds)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name", ["bireal18", "bireal34"])
def test_basic_stages_shortcuts_are_identities_but_where_the_shape_changes(name):
    for layer in binary_layers(small(name)):
        path = shortcut_of(layer, layer.input)
        changes = layer.input.shape[-1] != layer.filters or layer.strides != (1, 1)
        if not changes:
            assert path == [], (layer.name, path)
        elif layer.strides != (1, 1):
            assert path == ["AveragePooling2D", "Conv2D", "BatchNormalization"], layer.name
        else:
            assert path == ["Conv2D", "BatchNormalization"], layer.name


def leaky_clip_layers(model):
    """The opening leaky clip's layers: (hard tanh, its scaling, x's scaling, the sum)."""
    (clip,) = [layer for layer in model.layers if isinstance(layer, BiRealHardTanh)]
    scale_clip = _consumer(clip)
    add = _consumer(scale_clip)
    (other,) = [t for t in add.input if t is not scale_clip.output]
    scale_x = other._keras_history.layer
    assert isinstance(add, tf.keras.layers.Add) and scale_x.input is clip.input
    assert {type(scale_clip), type(scale_x)} == {tf.keras.layers.Rescaling}
    return clip, scale_clip, scale_x, add


def bottleneck_blocks(model):
    """(first 1x1, 3x3, last 1x1) of each block; the first block's first 1x1 is real."""
    layers = binary_layers(model)
    real_1x1 = _consumer(leaky_clip_layers(model)[-1])
    return [(real_1x1, *layers[:2])] + [tuple(layers[i:i + 3]) for i in range(2, len(layers), 3)]


@pytest.mark.parametrize("name", ["bireal50", "resnet50"])
def test_the_opening_leaky_clip_is_the_authors(name):
    """The layers before the opening 1x1 compute 0.1x - 0.9 below -1, 0.1x + 0.9 above 1,
    x between (the authors' ``Leakyclip``), with gradient 1 up to |x| = 1 and 0.1 beyond."""
    clip, scale_clip, scale_x, add = leaky_clip_layers(small(name))
    x = tf.Variable(np.array([[-3.0, -1.5, -1.0, -0.4, 0.0, 0.7, 1.0, 1.2, 4.0]], np.float32))
    upstream = np.linspace(0.5, 2.0, x.shape[1]).astype(np.float32)
    with tf.GradientTape() as tape:
        y = add([scale_clip(clip(x)), scale_x(x)])
        target = y * upstream
    value = x.numpy()
    closed = np.where(np.abs(value) <= 1, value, np.sign(value) * (1 + 0.1 * (np.abs(value) - 1)))
    np.testing.assert_allclose(y.numpy(), closed, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), quantizers.leaky_clip(x).numpy(), atol=1e-6)
    grad = np.where(np.abs(value) <= 1, 1.0, 0.1) * upstream
    np.testing.assert_allclose(tape.gradient(target, x).numpy(), grad, atol=1e-6)
    assert _consumer(add).kernel_size == (1, 1)  # it feeds the opening real 1x1


@pytest.mark.parametrize("name", sorted(STAGES))
def test_bottlenecks_are_1x1_3x3_1x1_with_the_stride_on_the_3x3(name):
    blocks = STAGES[name]
    found = bottleneck_blocks(small(name))
    assert len(found) == sum(blocks)
    kernels = [layer.kernel_size[0] for block in found for layer in block]
    assert kernels == [1, 3, 1] * sum(blocks)
    widths = [layer.filters for block in found for layer in block]
    expected = []
    for stage, n in enumerate(blocks):
        w = 64 * 2**stage
        expected += [w, w, 4 * w] * n
    assert widths == expected
    strided = [i for i, block in enumerate(found) for layer in block if layer.strides == (2, 2)]
    starts = list(np.cumsum((0,) + blocks[:-1])[1:])
    assert strided == starts  # each later stage's first block, on its 3x3
    assert all(block[1].strides == (2, 2) for i, block in enumerate(found) if i in starts)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_bottleneck_shortcuts_are_the_authors_two_streams(name):
    """Bi-Real-50 as its authors built it (zoo/bireal_deep.py): the first 1x1 adds the
    narrow stream (the previous 3x3's output), the 3x3 its own input, the last 1x1 the
    wide stream (the previous block's output); identities, but in a stage's first block."""
    model = small(name)
    blocks = STAGES[name]
    firsts = set(np.cumsum((0,) + blocks[:-1]))
    found = bottleneck_blocks(model)
    opening, first_3x3, _ = found[0]
    clip, _, _, leaky = leaky_clip_layers(model)
    assert opening.input is leaky.output
    # The opening 1x1: leaky clip -> real 1x1 -> BatchNorm -> the 3x3, no shortcut.
    bn = _consumer(opening)
    assert isinstance(bn, tf.keras.layers.BatchNormalization) and first_3x3.input is bn.output
    assert opening.kernel_size == (1, 1) and opening not in binary_layers(model)
    wide = clip.input  # the stem's output: both streams start there
    narrow = wide
    for index, (first_1x1, conv3x3, last_1x1) in enumerate(found):
        first, strided = index in firsts, index in firsts and index > 0
        if index > 0:
            assert first_1x1.input is wide
            assert shortcut_of(first_1x1, narrow) == (["Conv2D"] if first else [])
            assert conv3x3.input is _add_after(first_1x1)[1].output
            if first:  # the narrow real 1x1: no BatchNorm, at the input resolution
                bn, add = _add_after(first_1x1)
                (other,) = [t for t in add.input if t is not bn.output]
                conv = other._keras_history.layer
                assert conv.kernel_size == (1, 1) and conv.strides == (1, 1)
                assert conv.filters == first_1x1.filters == 2 * narrow.shape[-1]
        assert shortcut_of(conv3x3, conv3x3.input) == (["AveragePooling2D"] if strided else [])
        narrow = _add_after(conv3x3)[1].output
        assert last_1x1.input is narrow
        wide_path = ["AveragePooling2D", "Conv2D", "BatchNormalization"] if strided else (
            ["Conv2D", "BatchNormalization"] if first else [])
        assert shortcut_of(last_1x1, wide) == wide_path, index
        wide = _add_after(last_1x1)[1].output
    (flatten,) = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Flatten)]
    assert path_between(wide, flatten.output) == ["AveragePooling2D", "Flatten"]
    assert wide.shape[-1] == 2048  # the head reads the wide stream


@pytest.mark.parametrize("name", sorted(STAGES))
def test_bottleneck_nets_real_convolutions_are_the_first_blocks_shortcuts(name):
    """Stem, the opening 1x1, four wide and three narrow shortcuts: nine at any depth."""
    model = small(name)
    binary = binary_layers(model)
    real = [layer for layer in model.layers
            if isinstance(layer, tf.keras.layers.Conv2D) and layer not in binary]
    assert len(real) == 9
    assert [layer.kernel_size for layer in real].count((1, 1)) == 8
    pools = [layer.pool_size for layer in model.layers
             if isinstance(layer, tf.keras.layers.AveragePooling2D)]
    assert pools.count((2, 2)) == 6 and len(pools) == 7  # 3x3s' and wide shortcuts; the head
    assert sum(isinstance(layer, BiRealHardTanh) for layer in model.layers) == 1


def torch_parameter_count(stage_repeat, num_classes=1000, stem=7):
    """``BiRealNet``'s ``parameters()`` in the authors' birealnet.py (Bi-Real-50), by hand:
    convolutions, BatchNorm's weight and bias (its statistics are buffers there), the
    classifier; each stage's first block also holds ``down_conv1x1`` (inplanes/4 ->
    planes/4), stage 1's too, though its forward pass never calls it. ``stem``: the
    first convolution's kernel size (the small-image stem's is 3)."""
    count = stem * stem * 3 * 64 + 2 * 64
    inplanes = 64
    for stage, repeat in enumerate(stage_repeat):
        planes = 256 * 2**stage
        mid = planes // 4
        for block in range(repeat):
            count += inplanes * mid + 9 * mid * mid + mid * planes + 2 * (mid + mid + planes)
            if block == 0:
                count += (inplanes // 4) * mid + inplanes * planes + 2 * planes
            inplanes = planes
    return count + 2048 * num_classes + num_classes


def test_bireal50_at_imagenet_size_is_the_authors_network():
    """25.7M parameters (PyTorch's count), ~86 % of the MACs binary, 0.63 GFLOPs."""
    assert torch_parameter_count((3, 4, 6, 3)) == 25_730_088
    model = zoo.get_model("bireal50")  # 224x224x3, 1000 classes
    fp = footprint(model)  # as `cli.py models` counts (export/footprint_table.py)
    trainable = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    # Ours lacks only the authors' unused stage-1 down_conv1x1 (16 x 64 weights).
    assert trainable == torch_parameter_count((3, 4, 6, 3)) - 16 * 64 == 25_729_064
    assert fp.params == 25_782_184  # Keras also counts BatchNorm's moving mean and variance
    assert abs(fp.params / 25.7e6 - 1) < 0.01
    share = fp.binary_macs / (fp.binary_macs + fp.float_macs)
    assert 0.85 <= share < 0.87
    assert fp.flops == pytest.approx(0.63e9, rel=0.01)
    assert fp.binary_params == 20_672_512


@pytest.mark.parametrize("name", sorted(STAGES))
def test_bottleneck_nets_weights_are_the_authors_at_any_depth(name):
    """101 and 152 are Bi-Real-50's blocks repeated (3, 4, 23, 3) and (3, 8, 36, 3) times."""
    model = small(name)
    trainable = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    assert trainable == torch_parameter_count(STAGES[name], num_classes=10, stem=3) - 16 * 64


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
    clips = [i for i, layer in enumerate(r.layers) if isinstance(layer, BiRealHardTanh)]
    assert clips == [i for i, layer in enumerate(b.layers) if isinstance(layer, BiRealHardTanh)]
    assert len(clips) == (binary in STAGES)  # the twin keeps the opening leaky clip


def test_bireal50_initialises_from_its_twin_one_to_one():
    """``train bireal50 --init-from <resnet50 run>``: every weighted layer, in order."""
    twin = zoo.get_model("resnet50", **SMALL)
    rng = np.random.default_rng(3)
    twin.set_weights([rng.uniform(-1, 1, w.shape).astype("float32") for w in twin.get_weights()])
    binary = zoo.get_model("bireal50", **SMALL)
    copied = initialise_from(binary, twin)
    # Per block 3 convs + 3 BatchNorms; 4 wide shortcuts (conv, BN), 3 narrow; stem; dense.
    assert copied == sum(1 for layer in binary.layers if layer.weights) == 16 * 6 + 4 * 2 + 3 + 2 + 1
    for ours, theirs in zip(binary.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


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
    """One bottleneck per stage: every shortcut kind of bireal50/101/152 and the opening
    leaky clip, converted in seconds."""

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
    assert count == {"xnor_resnet18": 16, "bottlenecks": 11, "bireal34": 32}[name]
    report = export.export_report(model, export.export_flatbuffer(model, "arm64"))
    assert report["binary_convolutions"] == {"keras": count, "lce_bconv2d": count,
                                             "not_bitpacked": []}
    if name == "bireal34":  # within 5 % of the 1-bit budget
        assert abs(report["size"]["vs_one_bit_budget"] - 1) < 0.05


@pytest.mark.parametrize("name", ["xnor_resnet18", "resnet18", "resnet50", "bireal50"])
def test_trained_model_files_load_back(name, tmp_path):
    """A run's model.h5 must load for export and --init-from (custom quantizers included)."""
    model = small(name)
    model.save(tmp_path / "model.h5", include_optimizer=False, save_format="h5")
    loaded = load_model_file(tmp_path / "model.h5")
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bottleneck_nets_export_with_int8_edges():
    """``export --int8``: the opening leaky clip's clip, scalings and sum run in int8 like
    every real layer (one layer's inner arithmetic would stay float), the shortcuts'
    convolutions get int8 weights, and every binary conv stays ``LceBconv2d``."""
    from bnnzoo.export.int8_weights import on_int8_grid
    from bnnzoo.export.pipeline import synthetic_inputs
    from bnnzoo.export.report import check_report
    from bnnzoo.training.calibration import calibrate
    from bnnzoo.zoo.int8_edges import with_int8_edges

    tf.keras.utils.set_random_seed(0)
    model = CompactBottleneckNet(input_shape=(72, 72, 3), input_tensor=None, weights=None,
                                 include_top=True, num_classes=10).build()
    int8 = with_int8_edges(model)
    images = synthetic_inputs(model.input_shape[1:], 16)
    calibrate(int8, [(images[:8], None), (images[8:], None)])
    on_int8_grid(int8)
    report = {**export.export_report(int8, export.export_flatbuffer(int8, "arm64")),
              "int8_edges": True}
    check_report(report)  # no float arithmetic, no float weights, every binary conv bitpacked
    precision = report["precision"]
    assert precision["float"] == {"DEQUANTIZE": 1} and precision["float_weights"] == []
    assert precision["int8"]["RELU_N1_TO_1"] == 1 and precision["int8"]["LceBconv2d"] == 11
