r"""The Keras model's own rounding-noise floor, and an export judged against it.

LCE computes the same function as the Keras model with different float32
rounding: BatchNorm and weight scales folded into the binary convolution's
multiplier and bias, other summation orders in the float layers. Each
pre-activation moves by a few units in the last place (ulp, \(2^{-24}\)
relative); one within that of zero flips its sign, and in a binary net one
flipped sign can flip others downstream. How often that changes an image's
output is a property of the model (a short-trained deep net is chaotic), not
of the conversion, so it is measured on the model itself.

**Jitter.** A draw multiplies every float weight and every input value by
\(1 + \varepsilon z\), \(z \sim \mathcal N(0, 1)\) independently, with
\(\varepsilon = 10^{-6}\) (about 16 ulp): a perturbation of the same kind as
LCE's rounding and larger than it (signs of binary kernels do not change).
For \(R\) draws \(r\) and \(N\) images it counts, against the unperturbed
Keras outputs \(y^K\),

* \(c^{top1}_r\): images whose top-1 changes;
* \(c^{moved}_r\): images whose outputs move at all,
  \(\max_k |y_k - y^K_k| > \delta (1 + \max_k |y^K_k|)\), \(\delta = 10^{-4}\)
  (far above float rounding of the outputs: some sign flipped on the way).

**Judgement.** A faithful flatbuffer's counts \(c_L\) are then no larger than
a draw's, up to chance. With \(S = \sum_r c_r\) (approximately Poisson with
mean \(R\mu\)), the upper confidence limit \(\mu^+\) solves
\(P(\operatorname{Poisson}(R\mu^+) \le S) = \alpha\), and the export fails
when \(c_L\) exceeds the smallest \(k\) with
\(P(\operatorname{Poisson}(\mu^+) > k) \le \alpha\) (\(\alpha = 10^{-3}\) for each
count). Poisson's variance bounds the binomial's, so the bound errs towards
passing. A wrong conversion (a dropped layer, a wrongly folded scale) moves
the pre-activations of every image by far more than rounding: it moves nearly
every output and changes many top-1s, beyond both bounds. A model that is
chaotic under the jitter (every output moves) keeps only the top-1 bound.

**int8 edges.** A model with int8 ranges is jittered with
\(\varepsilon_8 = 10^{-5}\) (``INT8_EPSILON``), and its ranges are left
exact: the converter copies each range's bounds into its tensors' scale and
zero point, so the device never differs there, while a jittered bound moves
every level of a tensor at once. What differs is the requantization of each
int8 tensor (an int32 bias, a fixed-point multiplier, against Keras's float
arithmetic): a value within a tiny fraction of a step of a rounding boundary
lands on the neighbouring level. Such a model is far more sensitive than a
float one: every half step is a rounding boundary, so a perturbation moves
about \(|x| / s\) times more values (by a whole step) than the few near 0 a
float net's sign reads, and a value moved between levels 0 and -1 flips the
next binary layer's sign. Measured on an int8 stage (bireal18 at 14 px, 2
epochs of 60 steps, 2 quantization-aware steps; 256 Fashion-MNIST test
images, 2026-12-07): the Keras model gives identical outputs across calls and
batch sizes; the faithful flatbuffer differs from it by one step on 0.35 % of
the values after the stem and changes 16 top-1s (its outputs move between
the jitter's at \(10^{-5}\) and at \(10^{-4}\): summed |output difference| 0.082
per image against 0.05 and 0.10). The jitter changes 12-15 top-1s at
\(\varepsilon_8\) (a bound of 35), 19-24 at \(10^{-4}\), and 18-28 at the
\(2^{-7}\) once used (about a step on every value at once, ranges included:
a bound of 53, which passed the flatbuffer with the last binary layer's
output scale halved, 49 changes; a dropped binary layer changes 75). A model
this chaotic hides a wrong scale early in the net (halved or doubled in the
6th or 11th binary layer: 29 changes) in its own noise. Only the top-1 count
is judged (int8 outputs move every output by a step).
"""

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from bnnzoo.quantizers.int8 import int8_ranges

EPSILON = 1e-6
INT8_EPSILON = 1e-5
DRAWS = 4
MOVED = 1e-4
ALPHA = 1e-3


def _poisson_cdf(k: int, mean: float) -> float:
    r"""\(P(\operatorname{Poisson}(\text{mean}) \le k)\), summed in log space."""
    if k < 0:
        return 0.0
    if mean <= 0:
        return 1.0
    log_mean = math.log(mean)
    return min(1.0, sum(math.exp(i * log_mean - mean - math.lgamma(i + 1)) for i in range(k + 1)))


def poisson_upper_mean(total: int, draws: int, alpha: float = ALPHA) -> float:
    r"""Upper \((1-\alpha)\) confidence limit of the mean count per draw, from
    ``total`` counts over ``draws`` draws (module docstring), by bisection."""
    low, high = float(total), float(total) + 10 * math.sqrt(total + 1) + 20
    for _ in range(100):
        mid = (low + high) / 2
        if _poisson_cdf(total, mid) > alpha:
            low = mid
        else:
            high = mid
    return high / draws


def allowed_count(draw_counts: list[int], images: int, alpha: float = ALPHA) -> int:
    r"""The most images a faithful flatbuffer may count, given the jitter draws'
    counts: the \((1-\alpha)\) Poisson quantile at \(\mu^+\), at most ``images``."""
    mean = poisson_upper_mean(int(sum(draw_counts)), len(draw_counts), alpha)
    k = int(mean)
    while k < images and 1.0 - _poisson_cdf(k, mean) > alpha:
        k += 1
    return min(k, images)


def moved(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per image: whether ``outputs`` moved from ``reference`` beyond float rounding."""
    scale = 1.0 + np.abs(reference).max(axis=-1)
    return np.abs(outputs - reference).max(axis=-1) > MOVED * scale


def counts(outputs: np.ndarray, reference: np.ndarray) -> dict[str, int]:
    """Images whose top-1 changed and whose outputs moved, against ``reference``."""
    return {"top1": int((outputs.argmax(-1) != reference.argmax(-1)).sum()),
            "moved": int(moved(outputs, reference).sum())}


def jitter_counts(model: tf.keras.Model, images: np.ndarray, reference: np.ndarray, *,
                  epsilon: float = EPSILON, draws: int = DRAWS, seed: int = 0) -> list[dict]:
    """:func:`counts` of ``draws`` jittered copies of ``model`` (module docstring;
    int8 ranges left exact). The model's weights are restored afterwards, whatever happens."""
    rng = np.random.default_rng(seed)
    weights = model.get_weights()
    exact = {id(v) for layer in int8_ranges(model) for v in layer.weights}

    def jittered(value):
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.floating):
            return value
        return (value * (1 + epsilon * rng.standard_normal(value.shape))).astype(value.dtype)

    found = []
    try:
        for _ in range(draws):
            model.set_weights([w if id(v) in exact else jittered(w)
                               for v, w in zip(model.weights, weights)])
            found.append(counts(model.predict(jittered(images), batch_size=64, verbose=0),
                                reference))
    finally:
        model.set_weights(weights)
    return found


def judge(lce_counts: dict[str, int], draws: list[dict], images: int,
          keys: Sequence[str] = ("top1", "moved")) -> dict:
    """The flatbuffer's counts against the jitter's (the ``keys`` judged): bounds and verdict."""
    bounds = {key: allowed_count([d[key] for d in draws], images) for key in keys}
    return {
        "flatbuffer": lce_counts,
        "jitter": {key: [d[key] for d in draws] for key in ("top1", "moved")},
        "allowed": bounds,
        "faithful": all(lce_counts[key] <= bounds[key] for key in bounds),
    }
