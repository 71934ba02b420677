r"""Keras's Adam, AdamW and SGD with each variable's update as one fused kernel.

Keras's optimisers write each variable's update as a chain of a dozen small
operations (casts, powers, square roots, three assignments); TensorFlow's
``ResourceApplyAdam`` and ``ResourceApplyKerasMomentum`` kernels compute the
same update in one operation. The graph of a training step then holds a few
operations per variable instead of a dozen: it traces about twice as fast and
each step runs fewer small kernels (``benchmarks/optimizer_updates.py``).

Same maths, same slot variables (so checkpoints are unchanged), the same
schedules and decoupled weight decay (applied by Keras before the update).
Adam, at step \(t\), gradient \(g\), learning rate \(\eta\):

\[ m \leftarrow m + (1-\beta_1)(g - m), \quad v \leftarrow v + (1-\beta_2)(g^2 - v), \]
\[ w \leftarrow w - \eta \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t} \cdot \frac{m}{\sqrt{v} + \epsilon}. \]

SGD with momentum \(\mu\): \( m \leftarrow \mu m - \eta g,\ w \leftarrow w + m \)
(Nesterov: \( w \leftarrow w + \mu m - \eta g \) with the new \(m\)).
Sparse gradients, AMSGrad and Adam's adaptive epsilon keep Keras's own update.
"""

import tensorflow as tf


class _FusedAdamUpdate:
    def update_step(self, gradient, variable):
        if (isinstance(gradient, tf.IndexedSlices) or self.amsgrad
                or getattr(self, "adaptive_epsilon", False)):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._index_dict[self._var_key(variable)]
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(self.learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype), grad=gradient)


class FusedAdam(_FusedAdamUpdate, tf.keras.optimizers.Adam):
    """``tf.keras.optimizers.Adam``, each update one ``ResourceApplyAdam``."""


class FusedAdamW(_FusedAdamUpdate, tf.keras.optimizers.AdamW):
    """``tf.keras.optimizers.AdamW``, each update one ``ResourceApplyAdam``
    (the decoupled decay is Keras's own step before it)."""


class FusedSGD(tf.keras.optimizers.SGD):
    """``tf.keras.optimizers.SGD``, each update one ``ResourceApplyKerasMomentum``."""

    def update_step(self, gradient, variable):
        if isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        momentum = self.momentums[self._index_dict[self._var_key(variable)]]
        return tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=momentum.handle, lr=tf.cast(self.learning_rate, dtype),
            grad=gradient, momentum=tf.cast(self.momentum, dtype), use_nesterov=self.nesterov)
