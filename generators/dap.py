"""DAP: a cascade of magnitude-maxpool stages that DBB-compresses one activation block (docs/dap.md)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DapCascade", "dap_input_layout", "dap_output_layout"]


def dap_input_layout(cfg):
    """One dense block and the run-time density bound ``nnz`` (1..nnz_max)."""
    return data.StructLayout({
        "values": data.ArrayLayout(signed(8), cfg.bz),
        "nnz": unsigned(cfg.nnz_width),
    })


def dap_output_layout(cfg):
    """One compressed DBB block: kept values in position order, then the BZ-bit mask (docs/conventions.md).

    With ``cfg.dense_out`` the input block follows as ``dense`` (for a dense-activation bypass).
    """
    fields = {
        "values": data.ArrayLayout(signed(8), cfg.nnz_max),
        "mask": unsigned(cfg.bz),
    }
    if cfg.dense_out:
        fields["dense"] = data.ArrayLayout(signed(8), cfg.bz)
    return data.StructLayout(fields)


class DapCascade(wiring.Component):
    """Top-k magnitude pruner for one DBB block: ``nnz_max`` maxpool stages, then compaction.

    Stage k picks the largest magnitude among the positions not yet picked (ties to the
    lower position) when k < nnz and that magnitude is non-zero; otherwise it is bypassed.
    The BZ·(BZ-1)/2 magnitude comparisons are made once per block, ahead of stage 0, and ride
    along the stages, so a stage is AND/OR logic of depth ~log BZ rather than a comparator tree.
    The mask of picked positions drives a position-order compaction into ``nnz_max`` slots (unused slots are 0).
    An ``nnz`` of 0 keeps nothing; one above ``nnz_max`` behaves as ``nnz_max``.

    Handshake: valid/ready streams (``amaranth.lib.stream``). The pipeline moves
    as one: ``act.ready = ~dbb.valid | dbb.ready``; ``dbb.valid`` never depends on
    ``dbb.ready``; a payload is held while valid and not ready. Synchronous reset
    empties the pipeline.

    Latency: ``cfg.latency`` cycles (``nnz_max`` with stage registers, else 1).
    Throughput: one block per cycle when not stalled.

    Parameters
    ----------
    cfg : DapConfig

    Members
    -------
    act : In(stream.Signature(dap_input_layout(cfg)))
    dbb : Out(stream.Signature(dap_output_layout(cfg)))
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "act": In(stream.Signature(dap_input_layout(cfg))),
            "dbb": Out(stream.Signature(dap_output_layout(cfg))),
        })

    @property
    def latency(self):
        return self.cfg.latency

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.dbb.valid | self.dbb.ready),
            self.act.ready.eq(advance),
        ]

        valid = self.act.valid
        values = self.act.payload.values
        nnz = self.act.payload.nnz
        ranks = self._ranks(m, values)
        picked = Const(0, cfg.bz)
        for k in range(cfg.nnz_max):
            pick = self._stage_pick(m, k, ranks, picked)
            picked_next = Signal(cfg.bz, name=f"picked_{k}")
            m.d.comb += picked_next.eq(picked | Mux(nnz > k, pick, 0))
            if cfg.stage_regs or k == cfg.nnz_max - 1:
                valid, values, nnz, ranks, picked = self._register(
                    m, k, advance, valid, values, nnz, ranks, picked_next)
            else:
                picked = picked_next

        m.d.comb += [
            self.dbb.valid.eq(valid),
            self.dbb.payload.mask.eq(picked),
        ]
        if cfg.dense_out:
            m.d.comb += self.dbb.payload.dense.eq(values)
        self._compact(m, values, picked)
        return m

    def _pairs(self):
        """Position pairs (i, j), i < j, in the order of the ``beats`` bits."""
        return [(i, j) for i in range(self.cfg.bz) for j in range(i + 1, self.cfg.bz)]

    def _ranks(self, m, values):
        """The block's magnitude order, computed once: bit (i, j) of ``beats`` (i < j) says position i's magnitude
        is ≥ position j's (ties go to the lower position), and ``nonzero`` which magnitudes are non-zero."""
        cfg = self.cfg
        magnitudes = []
        for i in range(cfg.bz):
            magnitude = Signal(8, name=f"mag_{i}")  # |-128| = 128 fits 8 unsigned bits
            m.d.comb += magnitude.eq(Mux(values[i] < 0, -values[i], values[i]))
            magnitudes.append(magnitude)
        pairs = self._pairs()
        ranks = Signal(data.StructLayout({"beats": max(1, len(pairs)), "nonzero": cfg.bz}), name="ranks")
        for bit, (i, j) in enumerate(pairs):
            m.d.comb += ranks.beats[bit].eq(magnitudes[i] >= magnitudes[j])
        m.d.comb += ranks.nonzero.eq(Cat(*(magnitude != 0 for magnitude in magnitudes)))
        return ranks

    def _stage_pick(self, m, k, ranks, picked):
        """One-hot position of the largest remaining magnitude (ties to the lower position), 0 when none is
        non-zero: the position that beats every other not yet picked, from the block's ranks (no comparator)."""
        cfg = self.cfg
        pairs = {pair: bit for bit, pair in enumerate(self._pairs())}
        pick = Signal(cfg.bz, name=f"pick_{k}")
        for i in range(cfg.bz):
            wins = ~picked[i] & ranks.nonzero[i]
            for j in range(cfg.bz):
                if j != i:
                    beats = ranks.beats[pairs[i, j]] if i < j else ~ranks.beats[pairs[j, i]]
                    wins = wins & (picked[j] | beats)
            m.d.comb += pick[i].eq(wins)
        return pick

    def _register(self, m, k, advance, valid, values, nnz, ranks, picked):
        cfg = self.cfg
        r_valid = Signal(name=f"s{k}_valid")
        r_values = Signal(data.ArrayLayout(signed(8), cfg.bz), name=f"s{k}_values")
        r_nnz = Signal(cfg.nnz_width, name=f"s{k}_nnz")
        r_ranks = Signal.like(ranks, name=f"s{k}_ranks")
        r_picked = Signal(cfg.bz, name=f"s{k}_picked")
        with m.If(advance):
            m.d.sync += [
                r_valid.eq(valid),
                r_values.eq(values),
                r_nnz.eq(nnz),
                r_ranks.eq(ranks),
                r_picked.eq(picked),
            ]
        return r_valid, r_values, r_nnz, r_ranks, r_picked

    def _compact(self, m, values, picked):
        """Slot j takes the value at the j-th picked position (ascending)."""
        cfg = self.cfg
        rank = []
        for i in range(cfg.bz):
            r = Signal(range(cfg.bz + 1), name=f"rank_{i}")
            m.d.comb += r.eq(sum(picked[t] for t in range(i)) if i else 0)
            rank.append(r)
        for j in range(cfg.nnz_max):
            terms = [Mux(picked[i] & (rank[i] == j), values[i], 0) for i in range(cfg.bz)]
            slot = terms[0]
            for t in terms[1:]:
                slot = slot | t
            m.d.comb += self.dbb.payload.values[j].eq(slot)


# the blocks (CATALOG keys) this module's component builds
COMPONENTS = {"dap": DapCascade}
