"""Mixture-of-Rookies binCU (docs/mor.md): XNOR-popcount of sign bits, fixed-point line, predict-zero."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BinaryPredictor", "bincu_input_layout", "bincu_output_layout"]


def bincu_input_layout(cfg):
    """One chunk of a neuron: ``count`` (1..bits_per_cycle) valid input bits (x > 0) and weight bits (w ≥ 0),
    ``last`` on the neuron's final chunk, which also carries its fit ``m_q``, ``b_q``."""
    return data.StructLayout({
        "x_bits": data.ArrayLayout(unsigned(1), cfg.bits_per_cycle),
        "w_bits": data.ArrayLayout(unsigned(1), cfg.bits_per_cycle),
        "count": unsigned(cfg.bits_per_cycle.bit_length()),
        "last": unsigned(1),
        "m_q": signed(32),
        "b_q": signed(32),
    })


def bincu_output_layout(cfg):
    """One neuron's prediction: ``p_bin`` and ``zero`` (m_q·p_bin + b_q < 0)."""
    return data.StructLayout({"p_bin": signed(cfg.p_width), "zero": unsigned(1)})


class BinaryPredictor(wiring.Component):
    """binCU: per chunk, ``2·popcount(XNOR(x_bits, w_bits)) - count`` accumulates into p_bin; after a
    neuron's last chunk the estimate ``m_q·p_bin + b_q`` (exact) is tested for < 0.

    Throughput: ``bits_per_cycle`` bits per cycle, neurons back to back. Latency: a neuron's
    prediction is valid 4 cycles after its last chunk is accepted (popcount, accumulate, m_q·p_bin, + b_q
    and sign). While ``pred`` is valid and not ready the unit holds.

    Parameters
    ----------
    cfg : BinCuConfig
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "chunk": In(stream.Signature(bincu_input_layout(cfg))),
            "pred": Out(stream.Signature(bincu_output_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        chunk = self.chunk.payload
        en = Signal()
        m.d.comb += [en.eq(~(self.pred.valid & ~self.pred.ready)), self.chunk.ready.eq(en)]

        mask = Signal(cfg.bits_per_cycle)
        m.d.comb += mask.eq((Const(1, cfg.bits_per_cycle + 1) << chunk.count) - 1)
        agree = ~(chunk.x_bits.as_value() ^ chunk.w_bits.as_value()) & mask
        agreeing = Signal(range(cfg.bits_per_cycle + 1))
        m.d.comb += agreeing.eq(sum(agree[i] for i in range(cfg.bits_per_cycle)))

        # Popcount stage: the chunk's agreeing bits and count are registered, then its contribution
        # 2·agreeing - count is accumulated.
        part, part_count = Signal.like(agreeing), Signal.like(chunk.count)
        part_valid, part_last = Signal(), Signal()
        part_m_q, part_b_q = Signal(signed(32)), Signal(signed(32))
        acc = Signal(signed(cfg.p_width))
        fresh = Signal(init=1)  # the next contribution starts a neuron
        total = Signal(signed(cfg.p_width))
        m.d.comb += total.eq(2 * part - part_count + Mux(fresh, 0, acc))

        p_bin = Signal(signed(cfg.p_width))
        m_q, b_q = Signal(signed(32)), Signal(signed(32))
        p_valid = Signal()
        line, line_b_q = Signal(signed(32 + cfg.p_width)), Signal(signed(32))
        line_p_bin, line_valid = Signal(signed(cfg.p_width)), Signal()
        with m.If(en):
            m.d.sync += [part.eq(agreeing), part_count.eq(chunk.count), part_valid.eq(self.chunk.valid),
                         part_last.eq(chunk.last), part_m_q.eq(chunk.m_q), part_b_q.eq(chunk.b_q),
                         p_valid.eq(part_valid & part_last)]
            with m.If(part_valid):
                m.d.sync += [acc.eq(total), fresh.eq(part_last)]
                with m.If(part_last):
                    m.d.sync += [p_bin.eq(total), m_q.eq(part_m_q), b_q.eq(part_b_q)]
            # Line stage: m_q·p_bin registered, then + b_q tested for < 0.
            m.d.sync += [line.eq(m_q * p_bin), line_b_q.eq(b_q), line_p_bin.eq(p_bin), line_valid.eq(p_valid),
                         self.pred.valid.eq(line_valid), self.pred.payload.p_bin.eq(line_p_bin),
                         self.pred.payload.zero.eq(line + line_b_q < 0)]
        return m


# the blocks (CATALOG keys) this module's component builds
COMPONENTS = {"bincu": BinaryPredictor}
