"""Tensor PE of the systolic arrays: operand registers, a variant's datapath, accumulators and a drain shadow."""

from amaranth.hdl import ClockDomain, ClockSignal, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .array_ports import act_operand_layout, wgt_operand_layout

__all__ = ["TensorPE"]


def _scalar_mac(act, wgt, p, q):
    """``sa``: act × wgt."""
    return [(act[p], wgt[q])], None


def _scalar_mac_zvcg(act, wgt, p, q):
    """``sa_zvcg``: act × wgt, with the accumulator enabled only when both operands are non-zero."""
    return [(act[p], wgt[q])], (act[p] != 0) & (wgt[q] != 0)


def _dot_product(act, wgt, p, q):
    """``s2ta_w`` DP{b}M{bz}: each weight slot muxes its activation out of the dense block."""
    slots = wgt[q]
    return [(slots.values[s], act[p][slots.pos[s]]) for s in range(len(slots.values))], None


def _outer_product(act, wgt, p, q):
    """``s2ta_aw`` DP1M{b}: the weight slot at the activation's position (0 if absent) × the activation."""
    slots = wgt[q]
    matches = [Mux(slots.pos[s] == act[p].pos, slots.values[s], 0) for s in range(len(slots.values))]
    weight = matches[0]
    for match in matches[1:]:
        weight = weight | match  # unused slots hold 0, so at most one term is non-zero
    return [(act[p].value, weight)], None


# Each datapath gives (the int8 operand pairs a step multiplies for accumulator (p, q), ZVCG register enable or
# None).
DATAPATHS = {"sa": _scalar_mac, "sa_zvcg": _scalar_mac_zvcg, "s2ta_w": _dot_product, "s2ta_aw": _outer_product}


class TensorPE(wiring.Component):
    """One TPE of an output-stationary array: a×c accumulators fed by the variant's datapath.

    Operands arrive from the left (``act_in``, with ``valid_in``/``last_in``) and the top
    (``wgt_in``) and are registered, which is also what the right and lower neighbours see
    (``*_out``). The DBB variants (``cfg.select_stage``) then register each accumulator (p, q)'s
    operand pairs out of their muxes (the select stage); the next cycle registers the products (the
    product stage), and the cycle after adds them to the accumulator; on a fold's ``last`` step the
    sum goes to the shadow register instead and the accumulator restarts at 0, so the next fold
    computes while the shadows drain downwards (``shift``: shadow <= ``drain_in``). ``en`` low
    freezes every register.
    ``sa_zvcg`` clocks its accumulators only in cycles that update them (both operands non-zero, or a fold's last
    step, or reset): the update is registered on the falling edge and ANDed with the clock (a latch-free clock
    gate), so a zero operand costs the accumulator flip-flops no clock edge; cycles are those of ``sa``.

    Latency: a step's contribution is in the accumulator ``cfg.tpe_stages + 2`` cycles after it reaches ``act_in``.
    Throughput: one step per cycle.

    Parameters
    ----------
    cfg : ArrayConfig
    """

    def __init__(self, cfg):
        self.cfg = cfg
        acc = data.ArrayLayout(signed(cfg.acc_width), cfg.a * cfg.c)
        super().__init__({
            "en": In(1),
            "act_in": In(act_operand_layout(cfg)),
            "valid_in": In(1),
            "last_in": In(1),
            "wgt_in": In(wgt_operand_layout(cfg)),
            "act_out": Out(act_operand_layout(cfg)),
            "valid_out": Out(1),
            "last_out": Out(1),
            "wgt_out": Out(wgt_operand_layout(cfg)),
            "shift": In(1),
            "drain_in": In(acc),
            "drain_out": Out(acc),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        act = Signal(act_operand_layout(cfg), reset_less=True)
        wgt = Signal(wgt_operand_layout(cfg), reset_less=True)
        valid = Signal()
        last = Signal()
        shadow = Signal(data.ArrayLayout(signed(cfg.acc_width), cfg.a * cfg.c), reset_less=True)
        with m.If(self.en):
            m.d.sync += [act.eq(self.act_in), wgt.eq(self.wgt_in), valid.eq(self.valid_in), last.eq(self.last_in)]
        m.d.comb += [
            self.act_out.eq(act), self.wgt_out.eq(wgt), self.valid_out.eq(valid), self.last_out.eq(last),
            self.drain_out.eq(shadow),
        ]

        # Pipeline: the operand select stage (DBB variants: the datapath's muxes), then the product stage (each
        # accumulator's products), then the accumulator's adder, each its own register-to-register path.
        s_valid, s_last = self._stage(m, [valid, last], "select") if cfg.select_stage else (valid, last)
        p_valid, p_last = self._stage(m, [s_valid, s_last], "product")
        datapath = DATAPATHS[cfg.variant]
        for p in range(cfg.a):
            for q in range(cfg.c):
                k = p * cfg.c + q
                acc = Signal(signed(cfg.acc_width), name=f"acc_{p}_{q}")
                pairs, nonzero = datapath(act, wgt, p, q)
                gated = nonzero is not None
                nonzero = Const(1) if nonzero is None else nonzero
                if cfg.select_stage:
                    *flat, nonzero = self._stage(m, [*(x for pair in pairs for x in pair), nonzero], f"select_{p}_{q}",
                                                 [signed(8)] * (2 * len(pairs)) + [1])
                    pairs = list(zip(flat[::2], flat[1::2]))
                *products, p_nonzero = self._stage(m, [*(x * y for x, y in pairs), nonzero], f"product_{p}_{q}",
                                                   [signed(16)] * len(pairs) + [1])  # int8 × int8
                total = Signal(signed(cfg.acc_width), name=f"total_{p}_{q}")
                m.d.comb += total.eq(acc + sum(products))
                update = self.en & p_valid & (p_nonzero | p_last) if gated else self.en & p_valid
                acc_domain = self._gated_domain(m, update, f"acc_{p}_{q}") if gated else "sync"
                with m.If(update):
                    with m.If(p_last):
                        m.d.sync += shadow[k].eq(total)
                        m.d[acc_domain] += acc.eq(0)
                    with m.Else():
                        m.d[acc_domain] += acc.eq(total)
                with m.If(self.en & self.shift & ~(p_valid & p_last)):
                    m.d.sync += shadow[k].eq(self.drain_in[k])
        return m

    def _stage(self, m, values, name, shapes=None):
        """Pipeline registers of ``values`` (one bit each unless ``shapes`` says), loaded while ``en``."""
        regs = [Signal(shape, name=f"{name}_{i}") for i, shape in enumerate(shapes or [1] * len(values))]
        with m.If(self.en):
            m.d.sync += [reg.eq(value) for reg, value in zip(regs, values)]
        return regs

    @staticmethod
    def _gated_domain(m, update, name):
        """A clock domain ``name`` ticking with ``sync`` only when ``update`` (or reset) holds: the condition is
        registered on the falling edge, so the gated clock has no glitch."""
        neg = ClockDomain(f"{name}_neg", clk_edge="neg", local=True, reset_less=True)
        gated = ClockDomain(f"{name}_gated", local=True)
        m.domains += [neg, gated]
        enable = Signal(name=f"{name}_clock_enable")
        m.d.comb += [neg.clk.eq(ClockSignal()), gated.clk.eq(ClockSignal() & enable), gated.rst.eq(ResetSignal())]
        m.d[neg.name] += enable.eq(update | ResetSignal())
        return gated.name
