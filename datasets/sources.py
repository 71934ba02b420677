"""Where images come from: local files (no internet needed) or TFDS.

Every source gives the same thing, a :class:`Dataset` whose splits yield
``(image, label)`` with ``image`` uint8 ``(H, W, C)`` (or encoded bytes for an
image folder, decoded later in the pipeline) and ``label`` an integer.
"""

import gzip
import os
import pickle
import socket
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from bnnzoo.errors import UserError

#: Where Debian/Ubuntu's ``dataset-*`` packages install their files.
SYSTEM_DATASETS_DIR = Path("/usr/share/datasets")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Horizontal flips change what a digit or a character means.
NO_FLIP = {"mnist", "emnist", "kmnist", "svhn_cropped"}

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "mnist": [str(d) for d in range(10)],
}
_HOW_TO_GET = {
    "fashion_mnist": "on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
    "(installs /usr/share/datasets/fashion-mnist), or put the four IDX files "
    "from github.com/zalandoresearch/fashion-mnist under --data-dir",
    "mnist": "put the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) under --data-dir",
    "cifar10": "download and unpack cifar-10-python.tar.gz from "
    "www.cs.toronto.edu/~kriz/cifar.html and pass --data-dir to the "
    "cifar-10-batches-py folder (or its parent)",
}


class DatasetNotFound(UserError):
    """No local copy and no TFDS copy of a dataset could be read."""


@dataclass
class Dataset:
    """A labelled image dataset with a ``train`` and a ``test`` split.

    ``image_shape`` is the stored ``(H, W, C)`` (``None`` sides when images vary
    in size); ``encoded`` says the split yields encoded image files; ``flip``
    says a horizontal flip keeps the label (not for digits).
    """

    name: str
    num_classes: int
    image_shape: tuple[Optional[int], Optional[int], int]
    source: str
    split_sizes: dict[str, int]
    _readers: dict[str, Callable[[], tf.data.Dataset]] = field(repr=False)
    class_names: Optional[list[str]] = None
    encoded: bool = False
    flip: bool = True

    def examples(self, split: str) -> int:
        return self.split_sizes[split]

    def images(self, split: str) -> tf.data.Dataset:
        """The split as ``(image, label)`` pairs, in file order."""
        if split not in self._readers:
            raise DatasetNotFound(
                f"{self.name} has no {split!r} split (it has {', '.join(self._readers)})."
            )
        return self._readers[split]()


def _in_memory(name, arrays, source, class_names=None) -> Dataset:
    """A dataset held as numpy arrays: ``{split: (images NHWC uint8, labels)}``."""
    readers = {
        split: (lambda x=x, y=y: tf.data.Dataset.from_tensor_slices((x, y)))
        for split, (x, y) in arrays.items()
    }
    x, y = arrays["train"]
    num_classes = int(max(np.max(a[1]) for a in arrays.values())) + 1
    return Dataset(
        name=name,
        num_classes=num_classes if class_names is None else len(class_names),
        image_shape=tuple(int(s) for s in x.shape[1:]),
        source=source,
        split_sizes={split: len(a[1]) for split, a in arrays.items()},
        _readers=readers,
        class_names=class_names,
        flip=name not in NO_FLIP,
    )


# --- IDX files (MNIST, Fashion-MNIST) -------------------------------------------------


def _find_idx_file(folder: Path, stem: str) -> Optional[Path]:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain): big-endian dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip's BadGzipFile is an OSError
        raise DatasetNotFound(f"{path} cannot be read (damaged?): {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetNotFound(f"{path} is not an IDX file of unsigned bytes.")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetNotFound(f"{path} is truncated: expected {np.prod(dims)} values.")
    return data.reshape(dims)


def _is_idx_folder(folder: Path) -> bool:
    return all(_find_idx_file(folder, s) for files in _IDX_FILES.values() for s in files)


def read_idx_folder(name: str, folder: Path) -> Dataset:
    arrays = {}
    for split, (images, labels) in _IDX_FILES.items():
        x = read_idx(_find_idx_file(folder, images))[..., None]
        y = read_idx(_find_idx_file(folder, labels)).astype(np.int64)
        if len(x) != len(y):
            raise DatasetNotFound(f"{folder}: {len(x)} {split} images but {len(y)} labels.")
        arrays[split] = (x, y)
    return _in_memory(name, arrays, f"IDX files in {folder}", _CLASS_NAMES.get(name))


# --- CIFAR-10 python batches ----------------------------------------------------------


def _is_cifar_folder(folder: Path) -> bool:
    return (folder / "test_batch").is_file() and (folder / "data_batch_1").is_file()


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    y = np.asarray(batch[b"labels"], dtype=np.int64)
    return x.transpose(0, 2, 3, 1), y


def read_cifar_folder(name: str, folder: Path) -> Dataset:
    train = [_read_cifar_batch(p) for p in sorted(folder.glob("data_batch_*"))]
    arrays = {
        "train": (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
        "test": _read_cifar_batch(folder / "test_batch"),
    }
    class_names = None
    if (folder / "batches.meta").is_file():
        with open(folder / "batches.meta", "rb") as f:
            meta = pickle.load(f, encoding="bytes")
        class_names = [n.decode() for n in meta.get(b"label_names", [])] or None
    return _in_memory(name, arrays, f"CIFAR-10 python batches in {folder}", class_names)


# --- Image folders: ROOT/train/<class>/*, ROOT/test|val/<class>/* ---------------------

_EVAL_SPLIT_DIRS = ("test", "val", "validation")


def _eval_dir(root: Path) -> Optional[Path]:
    return next((root / d for d in _EVAL_SPLIT_DIRS if (root / d).is_dir()), None)


def _is_image_folder(root: Path) -> bool:
    return (root / "train").is_dir() and _eval_dir(root) is not None


def _list_images(split_dir: Path, class_names: Sequence[str]) -> tuple[list[str], list[int]]:
    files, labels = [], []
    for label, cls in enumerate(class_names):
        for path in sorted((split_dir / cls).rglob("*")) if (split_dir / cls).is_dir() else []:
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(str(path))
                labels.append(label)
    return files, labels


def read_image_folder(name: str, root: Path) -> Dataset:
    class_names = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not class_names:
        raise DatasetNotFound(f"{root / 'train'} has no class folders.")
    eval_dir = _eval_dir(root)
    unknown = sorted({p.name for p in eval_dir.iterdir() if p.is_dir()} - set(class_names))
    if unknown:
        raise DatasetNotFound(
            f"{eval_dir} has classes that {root / 'train'} lacks: {', '.join(unknown)}."
        )
    splits = {"train": _list_images(root / "train", class_names),
              "test": _list_images(eval_dir, class_names)}
    for split, (files, _) in splits.items():
        if not files:
            raise DatasetNotFound(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {root} {split}.")

    def reader(files, labels):
        return lambda: tf.data.Dataset.from_tensor_slices(
            (files, np.asarray(labels, np.int64))
        ).map(lambda f, y: (tf.io.read_file(f), y))

    first = tf.io.decode_image(tf.io.read_file(splits["train"][0][0]), expand_animations=False)
    return Dataset(
        name=name,
        num_classes=len(class_names),
        image_shape=(None, None, 1 if first.shape[-1] == 1 else 3),
        source=f"image folder {root}",
        split_sizes={s: len(f) for s, (f, _) in splits.items()},
        _readers={s: reader(*splits[s]) for s in splits},
        class_names=class_names,
        encoded=True,
    )


# --- TFDS ----------------------------------------------------------------------------


def _internet_reachable(timeout: float = 3.0) -> bool:
    """Whether TFDS's mirror answers; offline, TFDS would retry for minutes."""
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def read_tfds(name: str, data_dir: Optional[Path]) -> Dataset:
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=str(data_dir) if data_dir else None)
    if not tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        if not _internet_reachable():
            raise DatasetNotFound(
                f"not prepared in {builder.data_dir} and no internet to download it"
            )
        builder.download_and_prepare()
    info = builder.info
    image_key = next(k for k, v in info.features.items() if isinstance(v, tfds.features.Image))
    label_key = next(k for k, v in info.features.items() if isinstance(v, tfds.features.ClassLabel))
    eval_split = "test" if "test" in info.splits else "validation"

    def reader(split):
        return lambda: builder.as_dataset(split=split, shuffle_files=False).map(
            lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int64))
        )

    shape = info.features[image_key].shape
    return Dataset(
        name=name,
        num_classes=info.features[label_key].num_classes,
        image_shape=(shape[0], shape[1], shape[2] or 3),
        source=f"TFDS {name} in {builder.data_dir}",
        split_sizes={"train": info.splits["train"].num_examples,
                     "test": info.splits[eval_split].num_examples},
        _readers={"train": reader("train"), "test": reader(eval_split)},
        class_names=list(info.features[label_key].names),
        flip=name not in NO_FLIP,
    )


# --- Finding a dataset ---------------------------------------------------------------


def _candidate_dirs(name: str, data_dir: Optional[Path]) -> list[Path]:
    variants = [name, name.replace("_", "-"), name.replace("-", "_")]
    if name == "cifar10":
        variants += ["cifar-10-batches-py", "cifar-10"]
    # An explicit --data-dir is the only place looked in; else the system's.
    if data_dir is not None:
        return list(dict.fromkeys([data_dir] + [data_dir / v for v in variants]))
    return list(dict.fromkeys(SYSTEM_DATASETS_DIR / v for v in variants))


def _read_folder(name: str, folder: Path) -> Optional[Dataset]:
    if _is_idx_folder(folder):
        return read_idx_folder(name, folder)
    if _is_cifar_folder(folder):
        return read_cifar_folder(name, folder)
    if _is_image_folder(folder):
        return read_image_folder(name, folder)
    return None


def load(name: str, data_dir: Optional[str] = None) -> Dataset:
    """Find and open a dataset: a folder path, local files for a known name, or TFDS.

    Local files are tried first, so nothing is downloaded when a copy is on
    disk: ``name`` itself if it is a folder; else ``data_dir`` and its
    sub-folders named after the dataset (without ``data_dir``:
    ``/usr/share/datasets/<name>``),
    each holding IDX files, CIFAR-10 python batches, or ``train/`` and
    ``test/`` (or ``val/``) image folders. Otherwise TFDS prepares the dataset
    in ``data_dir`` (downloading it if it can).

    Raises:
        DatasetNotFound: with every place looked in and how to get the data.
    """
    data_dir_path = Path(data_dir).expanduser() if data_dir else None
    if data_dir_path is not None and not data_dir_path.is_dir():
        raise DatasetNotFound(f"--data-dir {data_dir} is not a folder.")
    path = Path(name).expanduser()
    if path.is_dir():
        found = _read_folder(path.name, path)
        if found is None:
            raise DatasetNotFound(
                f"{path} holds no dataset: expected IDX files, CIFAR-10 python batches "
                "(data_batch_1..5, test_batch) or train/ and test/ (or val/) class folders."
            )
        return found

    looked = _candidate_dirs(name, data_dir_path)
    for folder in looked:
        if folder.is_dir():
            found = _read_folder(name, folder)
            if found is not None:
                return found
    try:
        return read_tfds(name, data_dir_path)
    except Exception as err:  # TFDS raises many kinds; all mean "not available"
        if isinstance(err, KeyboardInterrupt):
            raise
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        how = _HOW_TO_GET.get(
            name,
            "give a folder with train/<class>/ and test/<class>/ images, or a TFDS "
            "name with internet access (www.tensorflow.org/datasets/catalog)",
        )
        raise DatasetNotFound(
            f"Dataset {name!r} not found. Looked for local files in: "
            f"{', '.join(str(d) for d in looked)}; then TFDS"
            f"{' in ' + str(data_dir_path) if data_dir_path else ''}: {reason[:300]}. "
            f"To get it: {how}."
        ) from None
