"""What a results file records about the machine that measured it: the CPU,
its cores and what it computes natively (``bnnzoo.training.hardware``)."""

from bnnzoo.training.hardware import describe


def machine() -> dict:
    return describe()
