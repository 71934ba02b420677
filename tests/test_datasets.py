"""Local dataset readers, TFDS fallback's error, and the papers' preprocessing."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import tensorflow as tf

from bnnzoo import datasets
from bnnzoo.datasets import preprocessing, sources

from conftest import requires_fashion_mnist


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for split, n in (("train", 12), ("t10k", 5)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def test_idx_files_are_read_exactly(idx_folder):
    images = sources.read_idx(idx_folder / "train-images-idx3-ubyte.gz")
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    data = datasets.load("fashion_mnist", data_dir=str(idx_folder.parent))
    assert data.split_sizes == {"train": 12, "test": 5}
    assert data.image_shape == (28, 28, 1) and data.num_classes == 10
    x, y = next(iter(data.images("train")))
    np.testing.assert_array_equal(x.numpy()[..., 0], images[0])
    assert int(y) == 0


def test_testing_a_model_on_another_dataset_than_its_runs_warns_in_one_line(idx_folder, capsys):
    from bnnzoo import runs

    for given in ("fashion_mnist", str(idx_folder)):  # a name, or its folder: the same data
        runs.dataset_for(10, "RUN", dataset=given, data_dir=str(idx_folder.parent),
                         recorded=("fashion_mnist", None), missing="")
        assert capsys.readouterr().err == ""
    runs.dataset_for(10, "RUN", dataset="mnist", data_dir=str(idx_folder),
                     recorded=("fashion_mnist", None), missing="")
    assert capsys.readouterr().err.splitlines() == [
        "Warning: RUN was trained on fashion_mnist; testing it on mnist instead, its images "
        "resized and converted to the model's input."]


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "bad-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 28, 28) + b"\0" * 100)
    with pytest.raises(datasets.DatasetNotFound, match="truncated"):
        sources.read_idx(path)


@requires_fashion_mnist
def test_real_fashion_mnist_is_found_where_debian_installs_it():
    data = datasets.load("fashion_mnist")
    assert data.split_sizes == {"train": 60000, "test": 10000}
    assert data.class_names[0] == "T-shirt/top" and data.flip
    labels = np.concatenate([y.numpy() for _, y in data.images("test").batch(10000)])
    assert np.bincount(labels).tolist() == [1000] * 10  # the real test split is balanced


def test_cifar10_python_batches(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    planes = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        planes[name] = data
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [0, 3, 9, 1]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    data = datasets.load("cifar10", data_dir=str(tmp_path))
    assert data.split_sizes == {"train": 20, "test": 4}
    assert data.image_shape == (32, 32, 3) and data.class_names[9] == "c9"
    x, y = next(iter(data.images("test")))
    # CIFAR stores planes R, G, B of 1024 bytes each; pixel (0, 1) of green:
    assert x.numpy()[0, 1, 1] == planes["test_batch"][0, 1024 + 1] and int(y) == 0


def make_image_folder(root, eval_dir="val"):
    for split, n in (("train", 3), (eval_dir, 2)):
        for cls, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                image = np.full((40 + 7 * i, 50, 3), colour, np.uint8)
                encode = tf.io.encode_png if i % 2 else tf.io.encode_jpeg
                ext = "png" if i % 2 else "jpg"
                tf.io.write_file(str(root / split / cls / f"{i}.{ext}"), encode(image))


def test_image_folder_with_val_split(tmp_path):
    make_image_folder(tmp_path / "pets")
    data = datasets.load(str(tmp_path / "pets"))
    assert data.class_names == ["cat", "dog"] and data.split_sizes == {"train": 6, "test": 4}
    ds = datasets.pipeline(data, "test", image_shape=(96, 96, 3), batch_size=4)
    x, y = next(iter(ds))
    assert x.shape == (4, 96, 96, 3) and y.shape == (4, 2)
    # Red cats, blue dogs survive decoding and normalisation.
    red_minus_blue = (x[..., 0] - x[..., 2]).numpy().mean(axis=(1, 2))
    assert np.all((red_minus_blue > 0) == (np.argmax(y, 1) == 0))


def test_dataset_that_cannot_be_found_says_where_it_looked(tmp_path):
    with pytest.raises(datasets.DatasetNotFound) as err:
        datasets.load("fashion_mnist", data_dir=str(tmp_path))
    message = str(err.value)
    assert str(tmp_path) in message and "apt-get install dataset-fashion-mnist" in message
    with pytest.raises(datasets.DatasetNotFound, match="holds no dataset"):
        datasets.load(str(tmp_path))


def test_small_image_training_augmentation_pads_crops_and_flips():
    image = tf.constant(np.arange(32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3) % 255)
    tf.random.set_seed(0)
    outs = [preprocessing.preprocess(image, size=32, channels=3, training=True, flip=True)
            for _ in range(8)]
    evals = preprocessing.preprocess(image, size=32, channels=3, training=False, flip=True)
    assert all(o.shape == (32, 32, 3) for o in outs)
    assert any(not np.allclose(o, evals) for o in outs)  # augmented
    np.testing.assert_allclose(evals.numpy(), preprocessing.normalize(image).numpy(), rtol=1e-6)


def test_no_flip_for_digits():
    assert "mnist" in sources.NO_FLIP
    image = tf.constant(np.tile(np.arange(28, dtype=np.float32), (28, 1))[..., None])
    tf.random.set_seed(0)
    outs = [preprocessing.preprocess(image, size=28, channels=1, training=True, flip=False)
            for _ in range(16)]
    # Rows still increase left to right wherever the crop kept image content.
    for o in outs:
        row = o.numpy()[14, :, 0]
        inside = row > row.min()
        assert np.all(np.diff(row[inside]) >= 0)


def test_imagenet_eval_resizes_256_and_centre_crops_224():
    image = tf.zeros((300, 400, 3))
    out = preprocessing.resize_and_centre_crop(image, 224)
    assert out.shape == (224, 224, 3)
    train = preprocessing.preprocess(tf.zeros((300, 400, 3)), size=224, channels=3, training=True, flip=True)
    assert train.shape == (224, 224, 3)


def test_grey_and_rgb_are_matched_to_the_model():
    grey = tf.fill((28, 28, 1), 128.0)
    rgb = preprocessing.preprocess(grey, size=32, channels=3, training=False, flip=False)
    assert rgb.shape == (32, 32, 3)
    back = preprocessing.preprocess(tf.fill((32, 32, 3), 128.0), size=28, channels=1,
                                    training=False, flip=False)
    assert back.shape == (28, 28, 1)
