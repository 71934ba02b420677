"""The registry and bireal18: structure, larq-zoo compatibility, stems, weights."""

import inspect

import larq_zoo
from larq_zoo.core import utils as lqz_utils
import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import zoo
from bnnzoo.export import footprint
from bnnzoo.quantizers import BiRealApproxSign, BiRealMagnitudeAwareSign
from bnnzoo.zoo import recipes
from bnnzoo.zoo import bireal, model_docs, registry
from bnnzoo.zoo.binary_layers import binary_layers

#: larq-zoo's keyword-only arguments, and the zoo's width.
ARGUMENTS = ["input_shape", "input_tensor", "weights", "include_top", "num_classes", "filters"]


def test_registry_lists_and_builds_by_name():
    assert "bireal18" in zoo.list_models()
    model = zoo.get_model("bireal18", input_shape=(28, 28, 1), num_classes=10)
    assert model.output_shape == (None, 10)
    with pytest.raises(KeyError, match="Available: .*bireal18"):
        zoo.get_model("bireal19")


def test_every_model_function_is_the_one_generated_function():
    """No model function is written out by hand: each is ``registry.model_function``'s,
    one signature and one call for all."""
    codes = {zoo.model_entry(name).build.__code__ for name in zoo.list_models()}
    assert codes == {registry.model_function("x", None, "").__code__}


def test_generated_docstrings_follow_the_template():
    """What a model's facts say lands in its sections; the arguments are the
    template's, with the model's defaults; links and tables are never wrapped."""
    link = "[A paper with a long title that does not fit](https://arxiv.org/abs/0000.00000)"
    facts = model_docs.ModelDoc("What it is.\n\nA second paragraph.", references=(link,),
                                metrics="ImageNet metrics (paper)", rows=(("60.1 %", "82.3 %"),),
                                notes="A note.", weights="none published.")
    doc = model_docs.docstring(facts, input_shape=(32, 32, 3), num_classes=10)
    sections = [line for line in doc.splitlines() if line.startswith("# ")]
    assert sections == ["# ImageNet metrics (paper)", "# Arguments", "# References"]
    assert doc.startswith("What it is.\n\nA second paragraph.\n\n# ImageNet metrics")
    assert "| Top-1 | Top-5 |\n| ----- | ----- |\n| 60.1 % | 82.3 % |\n\nA note." in doc
    assert "default ``(32, 32, 3)``" in doc and "- weights: none published." in doc
    assert "- num_classes: classes of the classifier; default 10." in doc
    assert "(https://arxiv.org/abs/0000.00000)" in doc
    assert all(len(line) <= 88 for line in doc.splitlines() if "https://" not in line)
    assert "default ``(224, 224, 3)``" in model_docs.docstring(facts, input_shape=None,
                                                               num_classes=1000)


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_registered_model_is_declared_and_built_the_same_way(name):
    """One way to declare a model (larq-zoo's ``models_test.py`` is the model):
    a keyword-only function named as registered, generated with a docstring
    from its facts (the paper's figure, every argument, references), a recipe
    that exists, a registered twin, and the template build's default class count."""
    entry = zoo.model_entry(name)
    assert entry.build.__name__ == name and getattr(zoo, name) is entry.build
    parameters = inspect.signature(entry.build).parameters
    assert list(parameters) == ARGUMENTS
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters.values())
    assert [p.default for p in parameters.values()] == [None, None, None, True, None, None]
    with pytest.raises(TypeError):
        entry.build((16, 16, 3))  # positional arguments are refused
    doc = inspect.getdoc(entry.build)
    assert "# Arguments" in doc and "# References" in doc
    assert "arxiv.org/abs/" in doc or "openreview.net/" in doc  # the paper, linked
    assert all(f"- {argument}:" in doc for argument in ARGUMENTS)
    if entry.paper_top1 is not None:
        assert f"{entry.paper_top1} %" in doc
    recipes.get_recipe(entry.recipe)  # raises for an unknown recipe

    if entry.twin is not None:  # its trained weights initialise this model (test_family)
        twin = zoo.model_entry(entry.twin)
        assert f"``{name}``" in inspect.getdoc(twin.build) and twin.twin is None
    if name.endswith(("101", "152")):
        return  # the 50's factory with more blocks (test_family): slow to build
    if entry.larq_zoo:
        return  # larq-zoo's own model at its one width: test_larq_zoo_models
    model = entry.build(input_shape=(16, 16, 3), filters=8)
    assert model.name == name
    assert (len(binary_layers(model)) > 0) != name.startswith("resnet")  # twins: none
    assert f"num_classes: classes of the classifier; default {model.output_shape[-1]}." in doc
    # Three stride-2 stages need 5 px ("same": 5 -> 3 -> 2 -> 1), ResNet-20's two 3 px,
    # VGG-small's three "valid" 2x2 max-pools 8 px (8 -> 4 -> 2 -> 1), ReActNet-A's
    # four stride-2 blocks 9 px (9 -> 5 -> 3 -> 2 -> 1).
    least = {"siman_resnet20": 3, "siman_vgg_small": 8, "reactnet_a": 9}.get(name, 5)
    assert zoo.smallest_input_side(model) == least
    zoo.check_input_side(model, name)  # 16 px: usable


@pytest.mark.parametrize("name, side, least", [("bireal18", 3, 5), ("siman_vgg_small", 4, 8)])
def test_training_refuses_inputs_too_small_for_the_strides_and_pooling(name, side, least):
    """Padding "same", bireal18 builds at 3x3 but its last stride-2 stage gets
    1 px; VGG-small's third "valid" max-pool gets nothing and does not build."""
    from bnnzoo.training import TrainConfig
    from bnnzoo.training.run import build_model

    config = TrainConfig(model=name, input_shape=(side, side, 1), num_classes=10,
                         precision="float32", width=8)
    with pytest.raises(ValueError, match=f"{name} cannot use {side}x{side} inputs: .* at least "
                                         f"{least}x{least}"):
        build_model(config)
    build_model(TrainConfig(model=name, input_shape=(least, least, 1), num_classes=10,
                            precision="float32", width=8))


@pytest.fixture(scope="module")
def imagenet_bireal18():
    return zoo.get_model("bireal18")


def test_bireal18_has_16_binary_convs_each_with_its_own_shortcut(imagenet_bireal18):
    model = imagenet_bireal18
    binary = binary_layers(model)
    assert len(binary) == 16
    for layer in binary:
        assert isinstance(layer.input_quantizer, BiRealApproxSign)
        assert isinstance(layer.kernel_quantizer, BiRealMagnitudeAwareSign)
        assert layer.get_config()["pad_values"] == 1.0 and not layer.use_bias
    adds = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Add)]
    assert len(adds) == 16  # one shortcut per binary conv
    # Downsampling shortcuts: AvgPool -> real 1x1 conv -> BN, at the three stage changes.
    pools = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.AveragePooling2D)]
    assert [p.pool_size for p in pools][:3] == [(2, 2)] * 3
    real_1x1 = [layer for layer in model.layers
                if type(layer) is tf.keras.layers.Conv2D and layer.kernel_size == (1, 1)]
    assert len(real_1x1) == 3
    # No ReLU anywhere.
    assert not any(isinstance(layer, (tf.keras.layers.ReLU, tf.keras.layers.PReLU)) for layer in model.layers)
    assert not any(getattr(layer, "activation", None) is tf.keras.activations.relu for layer in model.layers)
    # ImageNet stem: 7x7/2 conv then 3x3/2 max-pool.
    assert model.layers[1].kernel_size == (7, 7) and model.layers[1].strides == (2, 2)
    assert isinstance(model.layers[3], tf.keras.layers.MaxPool2D)


def test_bireal18_matches_larq_zoo_size(imagenet_bireal18):
    fp = footprint(imagenet_bireal18)
    assert fp.params == 11_699_112  # larq-zoo's table
    assert round(fp.size_1bit_bytes / 2**20, 2) == 4.03


def test_zero_padded_bireal18_reproduces_larq_zoo_birealnet_with_its_weights():
    """The layout that lets larq-zoo's published ImageNet weights load into bireal18."""
    theirs = larq_zoo.literature.BiRealNet(weights=None)
    class ZeroPadded(bireal.BiRealNet18):
        pad_values = 0.0  # larq-zoo's padding, what weights="imagenet" builds

    ours = ZeroPadded().build()
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(x, training=False).numpy(), theirs(x, training=False).numpy(),
                               atol=1e-6)


def test_default_bireal18_takes_larq_zoo_weights_and_differs_only_at_borders(imagenet_bireal18):
    theirs = larq_zoo.literature.BiRealNet(weights=None)
    imagenet_bireal18.set_weights(theirs.get_weights())  # same layer order and shapes
    # A constant +1 input makes +1 padding and 0 padding differ at a corner: a
    # copy of bireal18's first binary conv sees 9 ones there, larq-zoo's 4.
    def corner(layer):
        config = {**layer.get_config(), "filters": 1, "kernel_initializer": "ones",
                  "kernel_quantizer": None, "kernel_constraint": None}
        return float(type(layer).from_config(config)(tf.ones((1, 5, 5, 2)))[0, 0, 0, 0])

    first_binary = binary_layers(imagenet_bireal18)[0]
    first_theirs = binary_layers(theirs)[0]
    assert first_binary.get_config()["pad_values"] == 1.0
    assert corner(first_binary) == 18.0 and corner(first_theirs) == 8.0


def test_imagenet_weights_build_the_zero_padded_layout(monkeypatch):
    loaded = {}
    monkeypatch.setattr(lqz_utils, "download_pretrained_model",
                        lambda **kw: loaded.update(kw) or "weights.h5")
    monkeypatch.setattr(tf.keras.Model, "load_weights", lambda self, path: loaded.update(path=path))
    model = zoo.bireal18(weights="imagenet")
    assert loaded["file_hash"] == "6e6efac1584fcd60dd024198c87f42eb53b5ec719a5ca1f527e1fe7e8b997117"
    assert loaded["path"] == "weights.h5"
    assert all(layer.get_config()["pad_values"] == 0.0 for layer in binary_layers(model))


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_small_inputs_use_the_small_image_stem(shape):
    model = zoo.bireal18(input_shape=shape, num_classes=10)
    stem = model.layers[1]
    assert stem.kernel_size == (3, 3) and stem.strides == (1, 1)
    assert not any(isinstance(layer, tf.keras.layers.MaxPool2D) for layer in model.layers)
    # Resolution halves only at the three stage changes.
    assert binary_layers(model)[-1].output_shape[1] == -(-shape[0] // 8)


def test_imagenet_weights_refuse_small_inputs():
    with pytest.raises(ValueError, match="ImageNet stem"):
        zoo.bireal18(input_shape=(28, 28, 1), weights="imagenet")


def test_weights_from_a_local_file(tmp_path):
    a = zoo.bireal18(input_shape=(16, 16, 1), num_classes=10)
    a.save_weights(tmp_path / "w.h5")
    b = zoo.bireal18(input_shape=(16, 16, 1), num_classes=10, weights=str(tmp_path / "w.h5"))
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(a(x).numpy(), b(x).numpy(), atol=1e-6)


def test_include_top_false_returns_features():
    model = zoo.bireal18(input_shape=(32, 32, 3), include_top=False)
    assert model.output_shape == (None, 4, 4, 512)


@pytest.mark.parametrize("name", [n for n in zoo.list_models() if not n.endswith(("101", "152"))
                                  and not zoo.model_entry(n).larq_zoo])
def test_every_model_takes_a_width_and_scales_every_stage_by_it(name):
    """``filters`` (``--width``): the first stage's width, and every layer's
    width in proportion to it (the defaults' layer widths, divided by 8 at 8).
    The 101- and 152-layer nets are the 50's factory with more blocks (slow
    to build twice); larq-zoo's models have one width and refuse any
    (test_larq_zoo_models)."""
    default_width = {"siman_resnet20": 16, "siman_vgg_small": 128, "reactnet_a": 32}.get(name, 64)

    def conv_widths(model):
        return [layer.filters for layer in model.layers if hasattr(layer, "filters")
                and isinstance(layer.filters, int)]

    shape = (16, 16, 3)
    wide = zoo.get_model(name, input_shape=shape, num_classes=10)
    narrow = zoo.get_model(name, input_shape=shape, num_classes=10, filters=default_width // 8)
    assert conv_widths(narrow) == [w // 8 for w in conv_widths(wide)]
    assert conv_widths(narrow)[0] == default_width // 8
    assert len(binary_layers(narrow)) == len(binary_layers(wide)) > 0 or name.startswith("resnet")
    for bad in (0, -4):
        with pytest.raises(ValueError, match="filters must be"):
            zoo.get_model(name, input_shape=shape, num_classes=10, filters=bad)
