"""One output-stationary systolic array skeleton for every variant of docs/arrays.md (sa, sa_zvcg, s2ta_w, s2ta_aw)."""

from amaranth.hdl import ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .array_ports import act_operand_layout, feed_layout, result_layout, step_layout, wgt_operand_layout
from .config import VARIANTS
from .dap import DapCascade
from .delay import delay
from .positions import mask_positions
from .time_unroller import TimeUnroller
from .tpe import TensorPE

__all__ = ["SystolicArray"]


class SystolicArray(wiring.Component):
    """``cfg.rows × cfg.cols`` TensorPEs, output-stationary, with skewed operand entry and overlapped drain.

    Input ``step`` (valid/ready stream of ``step_layout``): one PE step of every TPE row's
    activations and every TPE column's weights; ``last`` ends a fold (a tile of
    ``cfg.pixels × cfg.channels`` outputs). ``s2ta_aw`` first DAP-compresses each K-block at
    its run-time ``nnz`` and time-unrolls it into nnz PE steps (bz steps when ``nnz`` = bz).
    Row i's operands enter i cycles late, column j's weights j cycles late.
    Output ``y``: a fold's results as ``cfg.rows`` words, one TPE row each, bottom row first;
    they drain while the next fold computes. A fold's last step waits until
    ``cfg.min_fold_steps`` PE steps have passed since the previous fold's last step, so no
    result overwrites an undrained one. While ``y`` is valid and not ready the array freezes.

    Latency: ``cfg.latency`` cycles from a fold's last PE step to its last result word
    (plus ``cfg.front_latency`` ahead of the PE steps). Throughput: one PE step per cycle.

    Parameters
    ----------
    cfg : ArrayConfig
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.tpe_module = f"{cfg.module}_tpe"
        self.dap_module = f"{cfg.module}_dap"
        super().__init__({
            "step": In(stream.Signature(step_layout(cfg))),
            "y": Out(stream.Signature(result_layout(cfg))),
        })

    def leaves(self):
        """(module name, component) of each module instantiated as a black box, emitted once each."""
        leaves = [(self.tpe_module, TensorPE(self.cfg))]
        if self.cfg.variant == "s2ta_aw":
            leaves.append((self.dap_module, DapCascade(self.cfg.dap)))
        return leaves

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        en = Signal()
        m.d.comb += en.eq(~(self.y.valid & ~self.y.ready))

        if cfg.variant == "s2ta_aw":
            m.submodules.unroller = unroller = TimeUnroller(cfg, self.dap_module)
            wiring.connect(m, wiring.flipped(self.step), unroller.step)
            feed_valid, feed_ready, feed = unroller.sub.valid, unroller.sub.ready, unroller.sub.payload
        else:
            feed = Signal(feed_layout(cfg))
            m.d.comb += feed.eq(self.step.payload)
            feed_valid, feed_ready = self.step.valid, self.step.ready

        # A fold's last step may enter only min_fold_steps after the previous fold's last step.
        since_last = Signal(range(cfg.min_fold_steps + 1), init=cfg.min_fold_steps)
        fire = Signal()
        m.d.comb += [
            feed_ready.eq(en & (~feed.last | (since_last == cfg.min_fold_steps))),
            fire.eq(feed_valid & feed_ready),
        ]
        with m.If(en):
            with m.If(fire & feed.last):
                m.d.sync += since_last.eq(1)
            with m.Elif(since_last != cfg.min_fold_steps):
                m.d.sync += since_last.eq(since_last + 1)

        row_act, row_valid, row_last = [], [], []
        for i in range(cfg.rows):
            row_act.append(delay(m, feed.act[i], i, en, f"skew_act{i}"))
            row_valid.append(delay(m, fire, i, en, f"skew_valid{i}", reset_less=False))
            row_last.append(delay(m, fire & feed.last, i, en, f"skew_last{i}", reset_less=False))
        col_wgt = [delay(m, self._column_weights(m, feed, j), j, en, f"skew_wgt{j}") for j in range(cfg.cols)]

        acc_words = data.ArrayLayout(signed(cfg.acc_width), cfg.a * cfg.c)
        drain = [[Signal(acc_words, name=f"drain_{i}_{j}") for j in range(cfg.cols)] for i in range(cfg.rows)]
        shift = [Signal(name=f"shift_{i}") for i in range(cfg.rows)]
        act_out = [[Signal(act_operand_layout(cfg), name=f"act_{i}_{j}") for j in range(cfg.cols)]
                   for i in range(cfg.rows)]
        wgt_out = [[Signal(wgt_operand_layout(cfg), name=f"wgt_{i}_{j}") for j in range(cfg.cols)]
                   for i in range(cfg.rows)]
        valid_out = [[Signal(name=f"valid_{i}_{j}") for j in range(cfg.cols)] for i in range(cfg.rows)]
        last_out = [[Signal(name=f"last_{i}_{j}") for j in range(cfg.cols)] for i in range(cfg.rows)]
        for i in range(cfg.rows):
            for j in range(cfg.cols):
                west = (row_act[i], row_valid[i], row_last[i]) if j == 0 else \
                    (act_out[i][j - 1], valid_out[i][j - 1], last_out[i][j - 1])
                north = col_wgt[j] if i == 0 else wgt_out[i - 1][j]
                m.submodules[f"pe_{i}_{j}"] = Instance(
                    self.tpe_module,
                    i_clk=ClockSignal(), i_rst=ResetSignal(), i_en=en,
                    i_act_in=west[0].as_value(), i_valid_in=west[1], i_last_in=west[2],
                    i_wgt_in=north.as_value(), i_shift=shift[i],
                    i_drain_in=Const(0, acc_words.size) if i == 0 else drain[i - 1][j].as_value(),
                    o_act_out=act_out[i][j].as_value(), o_valid_out=valid_out[i][j],
                    o_last_out=last_out[i][j], o_wgt_out=wgt_out[i][j].as_value(),
                    o_drain_out=drain[i][j].as_value(),
                )

        # Drain: once the last PE's final stage holds a fold's final step, every shadow is captured; word k is
        # the bottom row, and sending it moves rows i > k down by one. Rows i <= k are done, so
        # the next fold may capture into them while the rest drains.
        draining = Signal()
        word = Signal(range(max(2, cfg.rows)))
        # the last PE's final stage holds the fold's final step tpe_stages cycles after its operand registers do
        done = delay(m, valid_out[-1][-1] & last_out[-1][-1], cfg.tpe_stages, en, "done", reset_less=False)
        y_fire = self.y.valid & self.y.ready
        m.d.comb += self.y.valid.eq(draining)
        for i in range(1, cfg.rows):  # row 0 has nothing above it to take
            m.d.comb += shift[i].eq(y_fire & (word < i))
        for p in range(cfg.a):
            for j in range(cfg.cols):
                for q in range(cfg.c):
                    m.d.comb += self.y.payload[p][j * cfg.c + q].eq(drain[-1][j][p * cfg.c + q])
        with m.If(en & done):
            m.d.sync += [draining.eq(1), word.eq(0)]
        with m.Elif(y_fire):
            m.d.sync += word.eq(word + 1)
            with m.If(word == cfg.rows - 1):
                m.d.sync += draining.eq(0)
        return m

    def _column_weights(self, m, feed, j):
        """Column j's weight bus: the step's weights, W-DBB masks decoded into slot positions."""
        cfg = self.cfg
        bus = Signal(wgt_operand_layout(cfg), name=f"col_wgt{j}")
        if cfg.scalar:
            m.d.comb += bus.eq(feed.wgt[j])
            return bus
        for q in range(cfg.c):
            positions, present = mask_positions(m, feed.wgt_mask[j][q], cfg.bz, cfg.b, cfg.pos_width,
                                                name=f"wmask_{j}_{q}")
            for s in range(cfg.b):
                m.d.comb += [
                    bus[q].pos[s].eq(positions[s]),
                    bus[q].values[s].eq(Mux(present[s], feed.wgt_values[j][q][s], 0)),
                ]
        return bus


# the blocks (CATALOG keys) this module's component builds
COMPONENTS = {variant: SystolicArray for variant in VARIANTS}
