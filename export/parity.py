r"""Running a flatbuffer on the host, and its parity with the Keras model.

The flatbuffer runs in LCE's interpreter (``larq_compute_engine.testing``),
which executes the same operators as on the device: exact XNOR-popcount
arithmetic for ``LceBconv2d`` (its indirect-BGEMM kernel, the fastest on x86),
TFLite's float kernels for the rest. int8 inputs / outputs are (de)quantized
with the tensors' own scale and zero point, \(x = s\,(q - z)\).

Parity on \(N\) images compares the two models' outputs \(y^{K}, y^{L}\):
top-1 agreement \(\frac{1}{N}\sum_n [\arg\max y^K_n = \arg\max y^L_n]\) and the
largest \(|y^K - y^L|\) over all images and classes (the outputs are the
models' softmax probabilities). The two compute the same function with
different float rounding (LCE folds BatchNorm and weight scales into the
binary convolution's output), and a pre-activation within rounding of zero
flips its sign; in a binary net one flipped sign can flip others downstream,
so some predictions may change. How many is judged against the Keras model's
own noise floor (:mod:`.rounding_noise`), never by a fixed agreement.

Whether such flips change the *accuracy* is judged against that noise with
McNemar's exact test (:func:`paired_top1`): of the \(n = b + c\) images that
exactly one model classifies correctly (\(b\) only Keras, \(c\) only LCE),
rounding flips favour neither, so under a faithful export
\(b \sim \operatorname{Binomial}(n, \tfrac12)\) and
\[ p = \min\Bigl(1,\; 2 \sum_{k=0}^{\min(b, c)} \binom{n}{k} 2^{-n}\Bigr) . \]
A small \(p\) means the deployed model is systematically worse (or better):
a dropped layer or a wrongly folded scale, not rounding. A fixed bound on the
accuracy difference instead fails a faithful export by chance on another CPU.
"""

import math
from collections.abc import Iterable

import larq_compute_engine as lce
import numpy as np
import tensorflow as tf

from bnnzoo.errors import UserError
from bnnzoo.progress import KerasProgress, Progress

from . import rounding_noise
from .flatbuffer import io_types


#: Threads of LCE's interpreter when it runs many images (parity, evaluation):
#: it takes one image at a time, and a second thread made images slower,
#: 1.4-4.4x at 14 and 64 px, about even at 224 px (bireal18, 2-core AMD EPYC, 2026-12-02,
#: benchmarks/interpreter_threads.py). Latency on a device is ``benchmark --threads``.
EVALUATION_THREADS = 1


def interpreter(buf: bytes, num_threads: int = EVALUATION_THREADS, *,
                use_indirect_bgemm: bool = True):
    """LCE's interpreter for ``buf``; ``UserError`` if it cannot run it.

    ``use_indirect_bgemm=False`` keeps LCE's default binary-convolution kernel
    instead of the indirect-BGEMM one (the host benchmark times that default).
    """
    try:
        return lce.testing.Interpreter(buf, num_threads=num_threads,
                                       use_indirect_bgemm=use_indirect_bgemm)
    except RuntimeError as err:  # e.g. an operator LCE's runtime does not have
        raise UserError(f"LCE's interpreter cannot run this flatbuffer: {err}") from None


def predict(runner, images: np.ndarray) -> np.ndarray:
    """Float outputs of an interpreter for a batch of float ``images``."""
    x = np.asarray(images, dtype=np.float32)
    if runner.input_types[0] == np.int8:
        scale, zero = runner.input_scales[0], runner.input_zero_points[0]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    y = runner.predict(x)
    if runner.output_types[0] == np.int8:
        y = runner.output_scales[0] * (y.astype(np.float32) - runner.output_zero_points[0])
    return np.asarray(y, dtype=np.float32)


def predict_flatbuffer(buf: bytes, images: np.ndarray, *,
                       num_threads: int = EVALUATION_THREADS) -> np.ndarray:
    """The flatbuffer's float outputs for a batch of float ``images``."""
    return predict(interpreter(buf, num_threads), images)


def predict_batches(buf: bytes, batches: Iterable, *, num_threads: int = EVALUATION_THREADS):
    """Yield ``(outputs, labels)`` for each ``(images, labels)`` batch."""
    runner = interpreter(buf, num_threads)
    for images, labels in batches:
        yield predict(runner, np.asarray(images)), np.asarray(labels)


def parity_report(model: tf.keras.Model, buf: bytes, images: np.ndarray, *,
                  int8: bool = False) -> dict:
    r"""The flatbuffer against the Keras model on ``images``, judged against the
    model's own rounding noise (:mod:`.rounding_noise`).

    Gives the top-1 agreement, the largest |output difference|, the Keras
    model's worst top-1 agreement with its jittered copies
    (``keras_noise_floor_agreement``) and ``noise_floor``: the counts of images
    whose top-1 changed or whose outputs moved, for the flatbuffer and for each
    jitter draw, the most a faithful flatbuffer may have, and the verdict
    (``faithful``). For a flatbuffer with int8 input or output, or int8 edges
    (``int8``), the jitter is the int8 one (:mod:`.rounding_noise`: requantization,
    the ranges exact) and only the top-1 count is judged.
    """
    with Progress("Parity: Keras", len(images)) as progress:
        keras_out = model.predict(images, batch_size=64, verbose=0,
                                  callbacks=[KerasProgress(progress, 64)])
    runner = interpreter(buf)
    with Progress("Parity: flatbuffer", len(images)) as progress:
        lce_out = []
        for start in range(0, len(images), 64):
            lce_out.append(predict(runner, images[start:start + 64]))
            progress.update(len(lce_out[-1]))
        lce_out = np.concatenate(lce_out)
    int8 = int8 or "INT8" in sum(io_types(buf), [])
    draws = rounding_noise.jitter_counts(
        model, images, keras_out,
        epsilon=rounding_noise.INT8_EPSILON if int8 else rounding_noise.EPSILON)
    verdict = rounding_noise.judge(rounding_noise.counts(lce_out, keras_out), draws, len(images),
                                   keys=("top1",) if int8 else ("top1", "moved"))
    return {
        "images": int(len(images)),
        "top1_agreement": float((np.argmax(keras_out, -1) == np.argmax(lce_out, -1)).mean()),
        "max_abs_output_diff": float(np.abs(keras_out - lce_out).max()),
        "keras_noise_floor_agreement": 1.0 - max(d["top1"] for d in draws) / len(images),
        "noise_floor": verdict,
    }


def mcnemar_p_value(only_first: int, only_second: int) -> float:
    """Exact two-sided McNemar p-value for ``b`` vs ``c`` discordant pairs (module docstring)."""
    n = only_first + only_second
    tail = sum(math.comb(n, k) for k in range(min(only_first, only_second) + 1))
    return min(1.0, 2 * tail / 2 ** n)  # exact integers: no overflow at large n


def paired_top1(keras_outputs: np.ndarray, lce_outputs: np.ndarray, labels: np.ndarray) -> dict:
    """Both models' top-1 (and top-5) on the same images and McNemar's test of
    their top-1 difference.

    ``labels`` are class indices or one-hot rows.
    """
    labels = np.asarray(labels)
    truth = labels.argmax(-1) if labels.ndim == 2 else labels
    keras_right = np.argmax(keras_outputs, axis=-1) == truth
    lce_right = np.argmax(lce_outputs, axis=-1) == truth

    def top5(outputs):
        return float((np.argsort(-outputs, axis=-1)[:, :5] == truth[:, None]).any(-1).mean())

    only_keras = int((keras_right & ~lce_right).sum())
    only_lce = int((lce_right & ~keras_right).sum())
    return {
        "images": int(len(truth)),
        "keras_top1": float(keras_right.mean()),
        "lce_top1": float(lce_right.mean()),
        "keras_top5": top5(keras_outputs),
        "lce_top5": top5(lce_outputs),
        "top1_agreement": float((np.argmax(keras_outputs, -1) == np.argmax(lce_outputs, -1)).mean()),
        "only_keras_correct": only_keras,
        "only_lce_correct": only_lce,
        "mcnemar_p": mcnemar_p_value(only_keras, only_lce),
    }
