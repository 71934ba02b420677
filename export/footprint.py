r"""A model's deployment footprint: parameters, 1-bit size, MACs.

The 1-bit budget is what an ideal bitpacked file of the network weighs:
\[ \text{bytes} = \frac{\#\text{binary params}}{8} + 4\,\#\text{other params}, \]
every non-binary parameter (BatchNorm statistics included) kept as float32.
MACs are counted per image: binary MACs are those of layers whose input and
kernel are both 1-bit (counted by larq's ``ModelProfile``). Operations are
counted the way the Bi-Real and XNOR-Net papers count them, a 64-bit CPU doing
64 binary MACs in one XNOR-popcount:
\[ \text{FLOPs} = \text{MAC}_{float} + \text{MAC}_{binary} / 64 . \]
"""

import dataclasses

import larq as lq
import tensorflow as tf

from bnnzoo.zoo.binary_layers import binary_kernels


@dataclasses.dataclass(frozen=True)
class Footprint:
    params: int
    binary_params: int
    size_1bit_bytes: int
    size_float32_bytes: int
    binary_macs: int
    float_macs: int

    @property
    def other_params(self) -> int:
        return self.params - self.binary_params

    @property
    def flops(self) -> float:
        return self.float_macs + self.binary_macs / 64

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "other_params": self.other_params,
                "flops": self.flops}


def footprint(model: tf.keras.Model) -> Footprint:
    profile = lq.models.ModelProfile(model)
    params = model.count_params()
    binary = sum(int(k.shape.num_elements()) for k in binary_kernels(model))
    return Footprint(
        params=params,
        binary_params=binary,
        size_1bit_bytes=binary // 8 + 4 * (params - binary),
        size_float32_bytes=4 * params,
        binary_macs=profile.op_count("mac", 1),
        float_macs=profile.op_count("mac", 32),
    )
