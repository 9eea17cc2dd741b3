"""Cartesian-product PE (docs/cscnn.md): SCNN's PE, or with reuse CSCNN's (dual-weight products into AB1)."""

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .cartesian_ports import KINDS, act_vector_layout, op_layout, result_layout, wgt_vector_layout
from .config import PE_BLOCKS
from .muxes import select
from .ram import Ram, address_bits, ram_instance

__all__ = ["CartesianPE"]


def _times(value, constant):
    """``value`` · ``constant`` as shifted adds (a few carry chains rather than a multiplier block)."""
    return sum(value << k for k in range(constant.bit_length()) if constant >> k & 1)


class CartesianPE(wiring.Component):
    """A ``px × py`` multiplier array fed with compressed weight and activation vectors of one input
    channel at a time, scattering products into banked accumulators (docs/cscnn.md, golden.cartesian_pe).

    Input ``op`` (stream of ``op_layout``): bias, activation-vector, weight-vector and end ops. A weight
    vector is multiplied with each stored activation vector in turn (a *pair*: px·py products whose
    CCU coordinates are ``(f, x-r+R-1, y-s+S-1)`` and, with reuse off the centre tap, the dual's
    ``(f, x+r, y+s)``). The dispatch stage holds a pair while per-bank arbiters (lowest lane first)
    grant one product per bank per cycle; the grants are registered, then go into AB0 (and AB1)
    through a two-stage read-add-write.
    ``end`` drains: each bank row goes through the PPU (AB0 + AB1 + bias, optional ReLU) into an
    output word and is cleared. After reset the banks are cleared (``cfg.depth`` cycles).
    Output ``y``: ``cfg.depth`` words per tile of ``cfg.banks`` outputs, plus the tile's ``mults``
    and ``stalls`` counters.

    Throughput: one pair per cycle without bank conflicts (each conflict adds a stall cycle); one
    op per cycle otherwise. Latency: ops pass an input buffer of ``cfg.op_buffer`` entries (one cycle); the drain starts
    two cycles after the last pair's final dispatch (its grants pass the arbitration stage) and shows
    row k at k + 2 cycles (``cfg.depth + 1`` cycles to the last row).
    Composing into an array: ``op`` vectors may be broadcast to several PEs, a PE's filters are
    its output-channel group, and its full-mode tile includes the halo its neighbours add.

    Parameters
    ----------
    cfg : PeConfig
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.bank_module = f"{cfg.module}_bank"
        super().__init__({
            "op": In(stream.Signature(op_layout(cfg))),
            "y": Out(stream.Signature(result_layout(cfg))),
        })

    def leaves(self):
        """(module name, component) of each module instantiated as a black box, emitted once each."""
        return [(self.bank_module, Ram(signed(32), self.cfg.depth))]

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        lanes = cfg.px * cfg.py
        row_width = address_bits(cfg.depth)
        bank_bits = (cfg.banks - 1).bit_length()
        filter_bits = (cfg.filters - 1).bit_length()
        # Control state.
        clearing = Signal(init=1)            # zeroing every bank row after reset (no op is taken meanwhile)
        # Ops enter a buffer of cfg.op_buffer entries (one op per cycle, a cycle's latency): the PE takes them from
        # registers, and op.ready is the buffer's, so the dispatch stage's handshake stays inside the PE.
        m.submodules.op_buffer = op_buffer = fifo.SyncFIFO(width=len(self.op.payload.as_value()), depth=cfg.op_buffer)
        m.d.comb += [op_buffer.w_data.eq(self.op.payload), op_buffer.w_en.eq(self.op.valid & self.op.ready),
                     self.op.ready.eq(op_buffer.w_rdy & ~clearing)]
        op = data.View(op_layout(cfg), op_buffer.r_data)
        take = Signal()                      # the PE takes the buffer's head op
        clear_row = Signal(row_width)
        end_pending = Signal()               # an end op was taken: drain once the dispatch stage empties
        drain_row = Signal(row_width)
        fresh = Signal(init=1)               # the next op starts a tile: counters restart
        mults = Signal(32)
        stalls = Signal(32)
        # The counters add a cycle late (from registers, off the load and handshake paths); the drain is later still.
        loaded_mults = Signal(range(cfg.px * cfg.py + 1))
        stalled = Signal()
        m.d.sync += [mults.eq(mults + loaded_mults), stalls.eq(stalls + stalled), loaded_mults.eq(0)]

        # Activation vectors of the current channel, and the weight vector being paired with them.
        # The read port always reads the vector of the next pair to load: act_index, or act_following (the one after
        # it, 0 after the last) in a cycle that loads a pair. last_pair and act_following are registered, so neither
        # n_act's compare nor the op handshake is on the path to the read address; act_index is 0 between weights.
        # Each slot also keeps its lanes' plane offsets x·full_w + y, so a pair's bank addresses are one add away
        # from the read port.
        act_bits = act_vector_layout(cfg).size
        offset_shape = unsigned((cfg.full_h * cfg.full_w - 1).bit_length())
        m.submodules.acts = acts = memory.Memory(shape=act_bits + cfg.py * offset_shape.width,
                                                 depth=max(2, cfg.act_slots), init=[])
        act_wr = acts.write_port()
        act_rd = acts.read_port(transparent_for=(act_wr,))
        n_act = Signal(range(cfg.act_slots + 1))
        act_index = Signal(range(max(2, cfg.act_slots)))
        act_following = Signal.like(act_index)
        wgt = Signal(wgt_vector_layout(cfg))
        wgt_busy = Signal()
        biases = [Signal(signed(32), name=f"bias_{f}") for f in range(cfg.filters)]
        act = data.View(act_vector_layout(cfg), act_rd.data[:act_bits])
        act_offset = [act_rd.data[act_bits + j * offset_shape.width:][:offset_shape.width] for j in range(cfg.py)]
        # The weight lanes' offsets (R-1-r)·full_w + (S-1-s) (and r·full_w + s for the dual), set as the vector loads.
        wgt_offset = [[Signal(offset_shape, name=f"wgt_offset{q}_{i}") for i in range(cfg.px)]
                      for q in range(cfg.buffers)]

        # The pair at the dispatch stage's input: products, valid lanes and bank addresses.
        buffers = range(cfg.buffers)
        product = [Signal(signed(16), name=f"product_{k}") for k in range(lanes)]
        lane_valid = [[Signal(name=f"valid{q}_{k}") for k in range(lanes)] for q in buffers]
        address = [[Signal(range(cfg.filters * cfg.full_h * cfg.full_w), name=f"address{q}_{k}")
                     for k in range(lanes)] for q in buffers]
        for i in range(cfg.px):
            for j in range(cfg.py):
                k = i * cfg.py + j
                r, s, f = wgt.r[i], wgt.s[i], wgt.f[i]
                m.d.comb += [product[k].eq(wgt.value[i] * act.value[j]),
                             lane_valid[0][k].eq(wgt.valid[i] & act.valid[j])]
                if cfg.reuse:
                    centre = Const(0) if cfg.r % 2 == 0 or cfg.s % 2 == 0 else \
                        (r == (cfg.r - 1) // 2) & (s == (cfg.s - 1) // 2)
                    m.d.comb += lane_valid[1][k].eq(lane_valid[0][k] & ~centre)
                # Output (x + R-1-r, y + S-1-s), and (x + r, y + s) for the dual, row-major in the full plane.
                for q in buffers:
                    linear = Signal(offset_shape, name=f"linear{q}_{k}")
                    m.d.comb += [linear.eq(act_offset[j] + wgt_offset[q][i]),
                                 address[q][k].eq(Cat(f[:filter_bits], linear) if filter_bits else linear)]

        # Dispatch stage: one pair, its pending lanes per buffer, per-bank lowest-lane arbiters.
        d_valid = Signal()
        d_product = [Signal(signed(16), name=f"d_product_{k}") for k in range(lanes)]
        d_bank = [[Signal(bank_bits or 1, name=f"d_bank{q}_{k}") for k in range(lanes)] for q in buffers]
        d_row = [[Signal(row_width, name=f"d_row{q}_{k}") for k in range(lanes)] for q in buffers]
        pending = [Signal(lanes, name=f"pending{q}") for q in buffers]
        granted = [Signal(lanes, name=f"granted{q}") for q in buffers]
        bank_hit = [[Signal(name=f"hit{q}_{b}") for b in range(cfg.banks)] for q in buffers]
        bank_row = [[Signal(row_width, name=f"row{q}_{b}") for b in range(cfg.banks)] for q in buffers]
        bank_value = [[Signal(signed(16), name=f"value{q}_{b}") for b in range(cfg.banks)] for q in buffers]
        for q in buffers:
            grants = []
            for b in range(cfg.banks):
                want, grant = Signal(lanes, name=f"want{q}_{b}"), Signal(lanes, name=f"grant{q}_{b}")
                m.d.comb += [
                    want.eq(Cat(*(pending[q][k] & (d_bank[q][k] == b) for k in range(lanes)))),
                    grant.eq(want & (~want + 1)),  # the lowest wanting lane
                    bank_hit[q][b].eq(want.any()),
                    bank_row[q][b].eq(select((grant[k], row) for k, row in enumerate(d_row[q]))),
                    bank_value[q][b].eq(select((grant[k], product) for k, product in enumerate(d_product))),
                ]
                grants.append(grant)
            m.d.comb += granted[q].eq(reduce(operator.or_, grants))
        # d_done: every pending lane gets its bank this cycle, i.e. no two pending lanes share a bank: the pair's
        # lane-by-lane "same bank" bits are registered as it loads, so neither the arbiters nor a comparator is on
        # the path to the loads and the op handshake.
        lane_pairs = [(q, k, j) for q in buffers for k in range(lanes) for j in range(k + 1, lanes)]
        same_bank = Signal(max(1, len(lane_pairs)))
        conflicts = [pending[q][k] & pending[q][j] & same_bank[i] for i, (q, k, j) in enumerate(lane_pairs)]
        d_done = Signal()
        d_load = Signal()
        last_pair = Signal()   # act_index == n_act - 1
        m.d.comb += [
            d_done.eq(d_valid & ~Cat(*conflicts).any()),
            d_load.eq(wgt_busy & (~d_valid | d_done)),
            act_rd.addr.eq(Mux(d_load, act_following, act_index)),
        ]
        with m.If(d_load):
            m.d.sync += [d_valid.eq(1), loaded_mults.eq(sum(lane_valid[0])),
                         same_bank.eq(Cat(*(address[q][k][:bank_bits] == address[q][j][:bank_bits]
                                            for q, k, j in lane_pairs)))]
            for k in range(lanes):
                m.d.sync += d_product[k].eq(product[k])
            for q in buffers:
                m.d.sync += pending[q].eq(Cat(*lane_valid[q]))
                for k in range(lanes):
                    m.d.sync += [d_bank[q][k].eq(address[q][k][:bank_bits]), d_row[q][k].eq(address[q][k][bank_bits:])]
            following_last = act_following == n_act - 1
            m.d.sync += [act_index.eq(act_following), last_pair.eq(following_last),
                         act_following.eq(Mux(following_last, 0, act_following + 1))]
            with m.If(last_pair):
                m.d.sync += wgt_busy.eq(0)
        with m.Elif(d_done):
            m.d.sync += [d_valid.eq(0), *(pending[q].eq(0) for q in buffers)]
        with m.Else():
            for q in buffers:
                m.d.sync += pending[q].eq(pending[q] & ~granted[q])
        m.d.sync += stalled.eq(d_valid & ~d_done)

        # Drain through the PPU: read a row of every bank, add the buffers and the bias, clear the row.
        ppu_valid = Signal()
        ppu_row = Signal(row_width)
        ppu_stall = Signal()
        drain_read = Signal()
        d_flush = Signal()     # the dispatch stage was busy last cycle: its last grants are in the arbitration stage
        draining = Signal()    # the banks' read ports are the drain's
        m.d.sync += d_flush.eq(d_valid)
        m.d.comb += [
            ppu_stall.eq(self.y.valid & ~self.y.ready),
            draining.eq(end_pending & ~d_valid & ~d_flush),
            drain_read.eq(draining & ~(ppu_valid & ppu_stall)),
        ]
        with m.If(drain_read):
            m.d.sync += [ppu_valid.eq(1), ppu_row.eq(drain_row), drain_row.eq(drain_row + 1)]
            with m.If(drain_row == cfg.depth - 1):
                m.d.sync += [end_pending.eq(0), fresh.eq(1)]
        with m.Elif(~ppu_stall):
            m.d.sync += ppu_valid.eq(0)
        ppu_move = Signal()
        m.d.comb += ppu_move.eq(ppu_valid & ~ppu_stall)
        with m.If(ppu_move):
            m.d.sync += [self.y.valid.eq(1), self.y.payload.mults.eq(mults), self.y.payload.stalls.eq(stalls)]
        with m.Elif(self.y.ready):
            m.d.sync += self.y.valid.eq(0)

        # Banks: granted products are registered (arbitration stage), then read-add-write (read the cycle after the
        # grant, write the sum the next; a read sees a write to its row in the same cycle).
        rdata = [[] for q in buffers]
        for q in buffers:
            for b in range(cfg.banks):
                ren = Signal(name=f"ren{q}_{b}")
                bank = ram_instance(m, self.bank_module, signed(32), cfg.depth, f"bank{q}_{b}", ren=ren)
                raddr, out, waddr, wdata, we = (bank[port] for port in ("raddr", "rdata", "waddr", "wdata", "we"))
                arb_valid, arb_row = Signal(name=f"arb_valid{q}_{b}"), Signal(row_width, name=f"arb_row{q}_{b}")
                arb_value = Signal(signed(16), name=f"arb_value{q}_{b}")
                add_valid, add_row = Signal(name=f"add_valid{q}_{b}"), Signal(row_width, name=f"add_row{q}_{b}")
                add_value = Signal(signed(16), name=f"add_value{q}_{b}")
                m.d.sync += [arb_valid.eq(bank_hit[q][b]), arb_row.eq(bank_row[q][b]), arb_value.eq(bank_value[q][b]),
                             add_valid.eq(arb_valid), add_row.eq(arb_row), add_value.eq(arb_value)]
                m.d.comb += [raddr.eq(Mux(draining, drain_row, arb_row)),
                             ren.eq(~(ppu_valid & ppu_stall))]
                with m.If(add_valid):
                    m.d.comb += [waddr.eq(add_row), wdata.eq(out + add_value), we.eq(1)]
                with m.Elif(ppu_move):
                    m.d.comb += [waddr.eq(ppu_row), wdata.eq(0), we.eq(1)]
                with m.Elif(clearing):
                    m.d.comb += [waddr.eq(clear_row), wdata.eq(0), we.eq(1)]
                rdata[q].append(out)
        for lane in range(cfg.banks):
            total = Signal(signed(32), name=f"ppu_{lane}")
            m.d.comb += total.eq(sum(rdata[q][lane] for q in buffers) + biases[lane % cfg.filters])
            with m.If(ppu_move):
                m.d.sync += self.y.payload.y[lane].eq(Mux(total[-1], 0, total) if cfg.relu else total)
        with m.If(clearing):
            m.d.sync += clear_row.eq(clear_row + 1)
            with m.If(clear_row == cfg.depth - 1):
                m.d.sync += clearing.eq(0)

        act_offset_in = [Signal(offset_shape, name=f"act_offset_in{j}") for j in range(cfg.py)]
        m.d.comb += [act_offset_in[j].eq(_times(op.act.x[j], cfg.full_w) + op.act.y[j]) for j in range(cfg.py)]

        # Taking ops: while no drain is pending or in the PPU, and the weight vector's last pair is loading.
        m.d.comb += [take.eq(op_buffer.r_rdy & ~clearing & ~end_pending & ~ppu_valid &
                             (~wgt_busy | (d_load & last_pair))),
                     op_buffer.r_en.eq(take)]
        with m.If(take):
            with m.If(fresh):
                m.d.sync += [fresh.eq(0), mults.eq(0), stalls.eq(0)]
            with m.If(op.kind == KINDS["act"]):
                slot = Mux(op.first, 0, n_act)
                m.d.comb += [act_wr.addr.eq(slot), act_wr.data.eq(Cat(op.act.as_value(), *act_offset_in)),
                             act_wr.en.eq(1)]
                m.d.sync += [n_act.eq(slot + 1), last_pair.eq(slot == 0), act_following.eq(slot != 0)]
            with m.Elif(op.kind == KINDS["wgt"]):
                m.d.sync += [wgt.eq(op.wgt), wgt_busy.eq(n_act != 0)]
                for i in range(cfg.px):
                    tap_r, tap_s = op.wgt.r[i], op.wgt.s[i]
                    m.d.sync += wgt_offset[0][i].eq(_times(cfg.r - 1 - tap_r, cfg.full_w) + (cfg.s - 1 - tap_s))
                    if cfg.reuse:
                        m.d.sync += wgt_offset[1][i].eq(_times(tap_r, cfg.full_w) + tap_s)
            with m.Elif(op.kind == KINDS["bias"]):
                for f in range(cfg.filters):
                    with m.If(op.bias_f == f):
                        m.d.sync += biases[f].eq(op.bias)
            with m.Else():
                m.d.sync += [end_pending.eq(1), drain_row.eq(0)]
        return m


# the blocks (CATALOG keys) this module's component builds
COMPONENTS = {block: CartesianPE for block in PE_BLOCKS}
