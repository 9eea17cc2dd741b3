"""Enable-gated delay lines (operand skew, side-band data riding along a pipeline)."""

from amaranth.hdl import Signal

__all__ = ["delay"]


def delay(m, value, cycles, en, name, *, reset_less=True):
    """``value`` through ``cycles`` registers that advance while ``en`` is high (``value`` when 0)."""
    for k in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{k}", reset_less=reset_less)
        with m.If(en):
            m.d.sync += reg.eq(value)
        value = reg
    return value
