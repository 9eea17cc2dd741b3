"""S2TA-AW's activation front end: DAP per pixel row, then each K-block serialised into nnz_a PE steps."""

from amaranth.hdl import ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .array_ports import feed_layout, step_layout
from .dap import dap_input_layout, dap_output_layout
from .delay import delay
from .positions import mask_positions

__all__ = ["TimeUnroller"]


class TimeUnroller(wiring.Component):
    """Time-unrolled variable A-DBB (S2TA Fig. 6e): one K-block step in, ``nnz`` PE steps out.

    Every pixel row's dense activation block goes through its own DAP cascade (the
    ``dap_module`` black box, ``cfg.dap``) at the step's run-time ``nnz``; the weights, ``nnz``
    and ``last`` ride alongside through registers of the same latency. The compressed block is
    then held for ``nnz`` cycles, presenting in cycle u each pixel's u-th kept (value, position)
    (value 0 past the kept ones, so every block takes exactly ``nnz`` cycles). ``nnz`` >= bz is
    the dense mode: DAP is bypassed and the block takes bz cycles, position u in cycle u. An
    ``nnz`` of 0 behaves as 1; one between nnz_max and bz keeps nnz_max and takes ``nnz`` cycles.

    Handshake: valid/ready streams. ``step.ready`` is the DAP pipeline's advance; a held block
    is replaced in the cycle its last PE step is taken, so PE steps flow without bubbles.

    Latency: ``cfg.front_latency`` cycles (DAP latency + 1) from a K-block to its first PE step.
    Throughput: one K-block per ``nnz`` cycles.

    Parameters
    ----------
    cfg : ArrayConfig
    dap_module : str
        Name of the emitted DapCascade(cfg.dap) module.
    """

    def __init__(self, cfg, dap_module):
        self.cfg = cfg
        self.dap_module = dap_module
        super().__init__({
            "step": In(stream.Signature(step_layout(cfg))),
            "sub": Out(stream.Signature(feed_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        dcfg = cfg.dap
        pixels = [(i, p) for i in range(cfg.rows) for p in range(cfg.a)]
        step = self.step.payload

        take = Signal()
        dap_nnz = Signal(dcfg.nnz_width)
        m.d.comb += dap_nnz.eq(Mux(step.nnz > dcfg.nnz_max, dcfg.nnz_max, step.nnz))
        readies, valids, blocks = [], [], []
        for k, (i, p) in enumerate(pixels):
            dap_in = Signal(dap_input_layout(dcfg), name=f"dap_in_{k}")
            dap_out = Signal(dap_output_layout(dcfg), name=f"dap_out_{k}")
            ready, valid = Signal(name=f"dap_ready_{k}"), Signal(name=f"dap_valid_{k}")
            m.d.comb += [dap_in.values.eq(step.act[i][p]), dap_in.nnz.eq(dap_nnz)]
            m.submodules[f"dap_{i}_{p}"] = Instance(
                self.dap_module, i_clk=ClockSignal(), i_rst=ResetSignal(),
                i_act__valid=self.step.valid, o_act__ready=ready, i_act__payload=dap_in.as_value(),
                o_dbb__valid=valid, i_dbb__ready=take, o_dbb__payload=dap_out.as_value(),
            )
            readies.append(ready)
            valids.append(valid)
            blocks.append(dap_out)
        # All cascades see the same valid and ready, so they move in lockstep; cascade 0 speaks for all.
        m.d.comb += self.step.ready.eq(readies[0])
        ride_layout = data.StructLayout({
            name: field.shape for name, field in step_layout(cfg) if name != "act"})
        ride_in = Signal(ride_layout)
        for name, _field in ride_layout:
            m.d.comb += ride_in[name].eq(step[name])
        ride = delay(m, ride_in, dcfg.latency, ~valids[0] | take, "ride")

        held = Signal()
        u = Signal(range(cfg.bz))
        steps_m1 = Signal(range(cfg.bz))
        vals = Signal(data.ArrayLayout(data.ArrayLayout(signed(8), cfg.bz), len(pixels)), reset_less=True)
        poss = Signal(data.ArrayLayout(data.ArrayLayout(unsigned(cfg.pos_width), cfg.bz), len(pixels)),
                      reset_less=True)
        wgt_values = Signal.like(ride.wgt_values, reset_less=True)
        wgt_mask = Signal.like(ride.wgt_mask, reset_less=True)
        block_last = Signal()
        last_sub = Signal()
        sub_fire = Signal()
        m.d.comb += [
            last_sub.eq(u == steps_m1),
            self.sub.valid.eq(held),
            sub_fire.eq(self.sub.valid & self.sub.ready),
            take.eq(valids[0] & (~held | (sub_fire & last_sub))),
            self.sub.payload.wgt_values.eq(wgt_values),
            self.sub.payload.wgt_mask.eq(wgt_mask),
            self.sub.payload.last.eq(block_last & last_sub),
        ]
        for k, (i, p) in enumerate(pixels):
            m.d.comb += [
                self.sub.payload.act[i][p].value.eq(vals[k][u]),
                self.sub.payload.act[i][p].pos.eq(poss[k][u]),
            ]

        dense = Signal()
        m.d.comb += dense.eq(ride.nnz >= cfg.bz)
        kept_positions = [mask_positions(m, block.mask, cfg.bz, dcfg.nnz_max, cfg.pos_width, f"amask_{k}")[0]
                          for k, block in enumerate(blocks)]
        with m.If(take):
            m.d.sync += [
                held.eq(1), u.eq(0), wgt_values.eq(ride.wgt_values), wgt_mask.eq(ride.wgt_mask),
                block_last.eq(ride.last),
                steps_m1.eq(Mux(dense, cfg.bz - 1, Mux(ride.nnz == 0, 0, ride.nnz - 1))),
            ]
            for k, (block, positions) in enumerate(zip(blocks, kept_positions)):
                for s in range(cfg.bz):
                    sparse_value = block.values[s] if s < dcfg.nnz_max else Const(0, signed(8))
                    sparse_pos = positions[s] if s < dcfg.nnz_max else Const(0, cfg.pos_width)
                    m.d.sync += [
                        vals[k][s].eq(Mux(dense, block.dense[s], sparse_value)),
                        poss[k][s].eq(Mux(dense, s, sparse_pos)),
                    ]
        with m.Elif(sub_fire):
            with m.If(last_sub):
                m.d.sync += [held.eq(0), u.eq(0)]
            with m.Else():
                m.d.sync += u.eq(u + 1)
        return m
