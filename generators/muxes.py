"""Small combinational building blocks shared by the generators."""

import operator
from functools import reduce

from amaranth.hdl import Mux

__all__ = ["select"]


def select(pairs):
    """The value whose condition holds (zero if none): an AND-OR multiplexer over (condition, value) pairs
    with at most one condition true."""
    return reduce(operator.or_, (Mux(cond, value, 0) for cond, value in pairs))
