"""Real image datasets, from local files or TFDS, as ``tf.data`` pipelines.

>>> from bnnzoo import datasets
>>> data = datasets.load("fashion_mnist")          # finds the local IDX files
>>> train = datasets.pipeline(data, "train", image_shape=(28, 28, 1), batch_size=64)

A dataset is named by a TFDS name (``cifar10``, ``imagenet2012``,
``fashion_mnist``, ``mnist``...) or by a folder. Without internet, local files
are read directly: Fashion-MNIST / MNIST IDX files, CIFAR-10's python batches,
and image folders (``ROOT/train/<class>/*``, ``ROOT/test|val/<class>/*``).
"""

import bnnzoo  # (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

bnnzoo.one_import_path(__name__)

from .sources import Dataset, DatasetNotFound, load
from .preprocessing import pipeline

__all__ = ["Dataset", "DatasetNotFound", "load", "pipeline"]
