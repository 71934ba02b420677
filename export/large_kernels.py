r"""Binary kernels too large for the converter's constant folding, quantized before it.

LCE bitpacks a binary convolution when its kernel reaches LCE's passes as a
constant of \(\pm\alpha_o\) per output channel \(o\): the converter first folds
the kernel quantizer (e.g. larq-zoo's ``xnor_weight_scale``,
\(q(W) = \alpha \operatorname{sign}(\operatorname{clip}(W, -1, 1))\) with
\(\alpha_o = \operatorname{mean}_{h,w,c} |\operatorname{clip}(W)_{hwco}|\)) on
the constant weights. TensorFlow's MLIR constant folding refuses any operation
whose operands exceed \(2^{30}\) bits, 128 MiB (``kOperandsSizeThreshold`` in
``tensorflow/compiler/mlir/tensorflow/transforms/constant_fold.cc``). A kernel
of more than \(2^{25}\) float32 values is therefore never folded: its quantizer
stays in the flatbuffer as float operators computed at run time on the float
kernel, and the convolution stays float. XNOR-Net's 6x6x256x4096 convolution
(37.7M values, 151 MB) is one: LCE's issue 744 (a 235 MB XNOR-Net file).

For those layers only, the export computes \(q(W)\) once in Keras and gives the
converter a convolution with that constant kernel and no kernel quantizer.
In inference a layer computes \(\operatorname{conv}(q_i(x), q(W))\) either
way, so the rewrite changes no value (the kernel constraint acts only in
training and is dropped).
"""


import larq as lq
import tensorflow as tf

from bnnzoo.zoo.binary_layers import is_binary_operation

#: TensorFlow's constant-folding limit on an operation's operands, in bits.
FOLDING_LIMIT_BITS = 1 << 30


def too_large_to_fold(layer) -> bool:
    """A binary convolution whose kernel quantizer the converter cannot fold."""
    if not (isinstance(layer, lq.layers.QuantConv2D) and is_binary_operation(layer)
            and layer.kernel_quantizer is not None):
        return False
    kernel = layer.kernel
    return kernel.shape.num_elements() * kernel.dtype.size * 8 > FOLDING_LIMIT_BITS


def quantize_large_kernels(model: tf.keras.Model) -> tuple[tf.keras.Model, list[str]]:
    """``model`` with each kernel :func:`too_large_to_fold` replaced by its
    quantized value and the layer's kernel quantizer removed (same names, same
    other weights); and those layers' names. A model without one is returned
    as it is."""
    names = [layer.name for layer in model.layers if too_large_to_fold(layer)]
    if not names:
        return model, []

    def clone(layer):
        config = layer.get_config()
        if layer.name in names:
            config.update(kernel_quantizer=None, kernel_constraint=None)
        return layer.__class__.from_config(config)

    rewritten = tf.keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, rewritten.layers):
        weights = old.get_weights()
        if old.name in names:
            # The latent kernel's value: a quantizer with a custom gradient (larq's
            # ste_sign) refuses a variable as its input when called eagerly.
            weights[0] = old.kernel_quantizer(tf.constant(old.kernel.numpy())).numpy()
        new.set_weights(weights)
    return rewritten, names
