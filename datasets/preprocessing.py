"""Preprocessing and augmentation, as the papers do it, into batched pipelines.

Large images (the model's input > 64 px), the ImageNet recipe of Bi-Real Net
and larq-zoo:
- train: random-resized crop (area 8-100 %, aspect 3/4-4/3) to the input
  size, random horizontal flip;
- eval: resize the shorter side to ``size * 256 / 224``, centre crop ``size``.
Small images (<= 64 px, CIFAR/MNIST-like), the usual CIFAR recipe:
- train: resize to the input size if needed, zero-pad by ``size / 8`` (4 px at
  32 px), random crop back, random horizontal flip where it keeps the label;
- eval: resize only.
Then channels are matched to the model (grey -> RGB by repetition, RGB -> grey
by luminance) and pixels normalised with the ImageNet mean and standard
deviation that larq-zoo uses, ``(x - mean) / std`` per channel on the 0-255
scale (their averages for one channel).
Labels come out one-hot, as label smoothing needs.
"""

from typing import Optional
from collections.abc import Sequence

import tensorflow as tf
from larq_zoo.training.data import MEAN_RGB, STDDEV_RGB

from bnnzoo.errors import UserError
from bnnzoo.zoo.core import uses_small_image_stem  # the same boundary as the stems

from .sources import Dataset

EVAL_RESIZE_RATIO = 256 / 224


def normalize(image: tf.Tensor) -> tf.Tensor:
    """``(x - mean) / std`` with larq-zoo's ImageNet statistics (0-255 scale)."""
    channels = image.shape[-1]
    mean = MEAN_RGB if channels == 3 else [sum(MEAN_RGB) / 3] * channels
    std = STDDEV_RGB if channels == 3 else [sum(STDDEV_RGB) / 3] * channels
    return (tf.cast(image, tf.float32) - mean) / std


def match_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return tf.image.grayscale_to_rgb(image)
    if channels == 1:
        return tf.image.rgb_to_grayscale(image)
    raise UserError(f"Cannot turn {image.shape[-1]}-channel images into {channels}.")


def random_resized_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    begin, crop, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop)
    return tf.image.resize(image, (size, size), method="bicubic")


def resize_and_centre_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size * EVAL_RESIZE_RATIO / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, new_shape, method="bicubic")
    return tf.image.resize_with_crop_or_pad(image, size, size)


def pad_and_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    pad = max(1, size // 8)
    image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.random_crop(image, (size, size, image.shape[-1]))


def preprocess(image, *, size: int, channels: int, training: bool, flip: bool):
    """One decoded image (H, W, C) -> a normalised float image (size, size, channels)."""
    image = match_channels(tf.cast(image, tf.float32), channels)
    if not uses_small_image_stem((size, size)):
        image = random_resized_crop(image, size) if training else resize_and_centre_crop(image, size)
    else:
        if image.shape[0] != size or image.shape[1] != size:
            image = tf.image.resize(image, (size, size), method="bilinear")
        if training:
            image = pad_and_crop(image, size)
    if training and flip:
        image = tf.image.random_flip_left_right(image)
    image = tf.clip_by_value(image, 0.0, 255.0)
    return normalize(tf.ensure_shape(image, (size, size, channels)))


def pipeline(
    data: Dataset,
    split: str,
    *,
    image_shape: Sequence[int],
    batch_size: int,
    training: bool = False,
    seed: Optional[int] = None,
    limit: Optional[int] = None,
) -> tf.data.Dataset:
    """Batches of ``(normalised images, one-hot labels)`` for a model input shape.

    ``training=True`` shuffles, augments, repeats forever and drops the last
    partial batch (XLA compiles one static shape); otherwise one pass in file
    order. ``limit`` keeps the first ``limit`` examples of the split.
    """
    shape = tuple(None if side is None else int(side) for side in image_shape)
    stored = "x".join(str(side or "?") for side in data.image_shape)
    if len(shape) != 3 or not all(side is not None and side > 0 for side in shape):
        raise UserError(f"A model input of shape {shape} does not take {data.name}'s {stored} "
                         "images: it must be (height, width, channels) with fixed sides.")
    height, width, channels = shape
    if height != width:
        raise UserError(f"Square inputs only; got {height}x{width}.")
    if channels != data.image_shape[-1] and not {channels, data.image_shape[-1]} <= {1, 3}:
        raise UserError(f"A model input with {channels} channels does not take {data.name}'s "
                         f"{stored} images (1 and 3 channels convert into each other).")
    ds = data.images(split)
    if limit is not None:
        ds = ds.take(limit)
    if training:
        ds = ds.shuffle(min(data.examples(split), 20_000), seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat()

    def decode(image, label):
        if data.encoded:
            image = tf.io.decode_image(image, channels=data.image_shape[-1], expand_animations=False)
        image = preprocess(image, size=height, channels=channels, training=training, flip=data.flip)
        return image, tf.one_hot(label, data.num_classes)

    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
