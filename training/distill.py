r"""A student taught by a teacher: Real-to-Binary's attention matching and output
distillation, with larq-zoo's loss layers.

For a batch, with teacher and student seeing the same images:

* **Attention matching** (``AttentionMatchingLossLayer``), at the output
  \(A_j\) of each matched block \(j = 1..J\): the spatial attention
  \( Q_j = \operatorname{mean}_c A_j^2 \) flattened over the \(HW\)
  positions and divided by its maximum,
  \[ L_{att} = \beta \operatorname{mean}_{b,j} \tfrac{1}{HW}
     \big\lVert Q^s_j / \max Q^s_j - Q^t_j / \max Q^t_j \big\rVert^2 ,
     \qquad \beta = 30 \]
  (the paper writes an \(\ell_2\) norm of \(\ell_2\)-normalised maps;
  larq-zoo's re-implementation, used here, max-normalises and squares).
* **Output distillation** (``OutputDistributionMatchingLossLayer``) on the
  logits \(t, s\):
  \( L_{out} = w\, T^2\, \operatorname{mean}_b
     \mathrm{KL}\big(\mathrm{softmax}(t/T) \,\Vert\, \mathrm{softmax}(s/T)\big) \),
  \(w = 3\), \(T = 1\).

Both are added to the student's cross-entropy with the labels (weighted by
the run's ``label_weight``; ReActNet's distributional loss is output
distillation alone, \( w = 1, T = 1 \): the KL divergence differs from the
student's cross-entropy against the teacher's softmax by the teacher's
entropy, a constant, so the two have the same gradients); the teacher is frozen (its
BatchNorms in inference mode) and gets no gradient. Matched blocks are the
model's attention points (``zoo.core.AttentionPoint``), in order; the logits are
the input of the final softmax.
"""

import tensorflow as tf
from larq_zoo.training.knowledge_distillation.knowledge_distillation import (
    AttentionMatchingLossLayer, OutputDistributionMatchingLossLayer)

from bnnzoo.errors import UserError
from bnnzoo.zoo.core import attention_points


def logits(model: tf.keras.Model) -> tf.Tensor:
    """The pre-softmax logits of a classifier ending in a softmax layer."""
    last = model.layers[-1]  # a softmax layer: its input is the logits
    if not (isinstance(last, tf.keras.layers.Softmax) or (
            isinstance(last, tf.keras.layers.Activation)
            and getattr(last.activation, "__name__", "") == "softmax")):
        raise UserError(f"{model.name} does not end in a softmax layer; no logits to distil.")
    return last.input


class TeacherStudent(tf.keras.Model):
    """``student`` trained with a frozen ``teacher``'s losses added; predicts
    what ``student`` predicts. Only ``student`` is saved as the result."""

    def __init__(self, student: tf.keras.Model, teacher: tf.keras.Model, *,
                 attention_weight: float, output_weight: float, temperature: float = 1.0):
        s_points, t_points = attention_points(student), attention_points(teacher)
        if attention_weight and ([tuple(p.shape) for p in s_points]
                                 != [tuple(p.shape) for p in t_points] or not s_points):
            raise UserError(
                f"The teacher {teacher.name} and the student {student.name} must have the same "
                f"block outputs to match attention: {[tuple(p.shape[1:]) for p in t_points]} "
                f"vs {[tuple(p.shape[1:]) for p in s_points]}.")
        if tuple(teacher.input_shape[1:]) != tuple(student.input_shape[1:]):
            raise UserError(f"The teacher {teacher.name} takes {teacher.input_shape[1:]}, "
                             f"the student {student.name} {student.input_shape[1:]}.")
        if teacher.output_shape[-1] != student.output_shape[-1]:
            raise UserError(f"The teacher {teacher.name} has {teacher.output_shape[-1]} classes, "
                             f"the student {student.name} {student.output_shape[-1]}.")
        teacher.trainable = False
        t_view = tf.keras.Model(teacher.inputs, [logits(teacher), *t_points], name="teacher")
        s_view = tf.keras.Model(student.inputs, [student.output, logits(student), *s_points],
                                name="student")
        image = tf.keras.Input(student.input_shape[1:])
        t_logits, *t_att = tf.nest.flatten(t_view(image, training=False))
        probs, s_logits, *s_att = s_view(image)
        x = probs
        if attention_weight:
            x = AttentionMatchingLossLayer(attention_weight, dtype="float32")([x, t_att, s_att])
        if output_weight:  # in float32 (the inputs cast), whatever the policy
            x = OutputDistributionMatchingLossLayer(
                output_weight, temperature, propagate_teacher_gradients=False, dtype="float32"
            )([x, t_logits, s_logits])
        super().__init__(inputs=image, outputs=x, name=f"{student.name}_taught")
        self._student = student

    @property
    def student(self) -> tf.keras.Model:
        return self._student
