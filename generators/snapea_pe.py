"""SnaPEA exact-mode early-termination PE array (docs/snapea.md): one filter per PE, all PEs in parallel."""


from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .muxes import select
from .snapea_ports import KINDS, X_PER_WORD, entry_layout, op_layout, result_layout

__all__ = ["SnapeaArray"]


class SnapeaArray(wiring.Component):
    """``n_pe`` PEs; PE k walks filter k's weights in docs/snapea.md's order for every output pixel in raster
    order (the schedule of ``golden.snapea_pe``): per cycle it looks at the next ``window`` entries, takes
    the first ``lanes`` eligible ones (two-sided: non-zero activation) into its ``lanes`` multipliers and
    accumulates; once past the positive entries a negative accumulator ends the pixel (output 0).
    Activations come from one shared input memory (padding reads as zero), kept across jobs.

    Input ``op`` (``op_layout``): a header, x [C, H, W] 8 values a word (none: keep the last job's), per PE
    its filter word and sorted entries, then go. Output ``y`` (``result_layout``): one word per output pixel
    in raster order holding every PE's result, streamed while the PEs run.

    Throughput: ``lanes`` MACs per PE per cycle. Latency: a pixel takes exactly its groups; its output word
    is valid the cycle after its slowest PE ends it (at most one word a cycle). Input is not taken from go
    until the job's last output word is taken.

    Parameters
    ----------
    cfg : SnapeaConfig
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "op": In(stream.Signature(op_layout(cfg))),
            "y": Out(stream.Signature(result_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        op = self.op.payload
        x_words = cfg.max_x // X_PER_WORD
        entry_bits = max(1, (cfg.max_entries - 1).bit_length())
        pe_result = data.StructLayout({name: field.shape.elem_shape for name, field in result_layout(cfg)})

        h, w, wo = Signal.like(op.h), Signal.like(op.w), Signal.like(op.wo)
        stride, pad, row_step, row_origin = Signal.like(op.stride), Signal.like(op.pad), Signal.like(op.row_step), \
            Signal.like(op.row_origin)
        n_filters, n_pixels = Signal.like(op.n_filters), Signal.like(op.n_pixels)

        loading, running = Signal(init=1), Signal()
        take = Signal()
        m.d.comb += [self.op.ready.eq(loading), take.eq(self.op.valid & loading)]
        is_kind = {kind: take & (op.kind == code) for kind, code in KINDS.items()}

        # Shared input memory: one comb read port per PE lane of the window.
        m.submodules.xmem = xmem = memory.Memory(shape=unsigned(8 * X_PER_WORD), depth=x_words, init=[])
        x_wr = xmem.write_port()
        x_ptr = Signal(range(x_words + 1))
        m.d.comb += [x_wr.addr.eq(x_ptr), x_wr.data.eq(op.x.as_value()), x_wr.en.eq(is_kind["x"])]
        with m.If(is_kind["x"]):
            m.d.sync += x_ptr.eq(x_ptr + 1)

        load_pe = Signal(range(cfg.n_pe + 1))
        entry_ptr = Signal(entry_bits + 1)
        with m.If(is_kind["header"]):
            m.d.sync += [h.eq(op.h), w.eq(op.w), wo.eq(op.wo), stride.eq(op.stride), pad.eq(op.pad),
                         row_step.eq(op.row_step), row_origin.eq(op.row_origin), n_filters.eq(op.n_filters),
                         n_pixels.eq(op.n_pixels), x_ptr.eq(0), load_pe.eq(0)]
        with m.If(is_kind["filter"]):
            m.d.sync += [load_pe.eq(load_pe + 1), entry_ptr.eq(0)]
        with m.If(is_kind["entry"]):
            m.d.sync += entry_ptr.eq(entry_ptr + 1)
        start = is_kind["go"]
        with m.If(start):
            m.d.sync += [loading.eq(0), running.eq(1)]

        out_p = Signal.like(op.n_pixels)  # the next output pixel
        ready, results = [], []
        for k in range(cfg.n_pe):
            n_entries = Signal.like(op.n_entries, name=f"pe{k}_n")
            n_first = Signal.like(op.n_first, name=f"pe{k}_n_first")
            bias = Signal(signed(32), name=f"pe{k}_bias")
            with m.If(is_kind["filter"] & (load_pe == k)):
                m.d.sync += [n_entries.eq(op.n_entries), n_first.eq(op.n_first), bias.eq(op.bias)]
            emem = memory.Memory(shape=entry_layout(cfg), depth=cfg.max_entries, init=[])
            m.submodules[f"pe{k}_entries"] = emem
            e_wr = emem.write_port()
            m.d.comb += [e_wr.addr.eq(entry_ptr), e_wr.data.eq(op.entry),
                         e_wr.en.eq(is_kind["entry"] & (load_pe == k + 1))]
            rmem = memory.Memory(shape=pe_result, depth=cfg.max_pixels, init=[])
            m.submodules[f"pe{k}_results"] = rmem
            r_wr = rmem.write_port()
            r_rd = rmem.read_port(domain="comb")
            results.append(r_rd)

            # Walk state of the current pixel.
            done = Signal(name=f"pe{k}_done")
            ptr = Signal(entry_bits + 1, name=f"pe{k}_ptr")
            acc = Signal(signed(32), name=f"pe{k}_acc")
            mults = Signal.like(op.n_entries, name=f"pe{k}_mults")
            spent = Signal((cfg.max_entries + 1).bit_length(), name=f"pe{k}_cycles")  # cycles of this pixel so far
            pixel = Signal.like(op.n_pixels, name=f"pe{k}_pixel")
            col = Signal(range(256), name=f"pe{k}_col")          # output column q
            row0, col0 = Signal(signed(10), name=f"pe{k}_row0"), Signal(signed(10), name=f"pe{k}_col0")
            base_row = Signal(signed(18), name=f"pe{k}_base_row")  # origin of the current output row

            valid, elig, x_val, w_val = [], [], [], []
            for i in range(cfg.window):
                e_rd = emem.read_port(domain="comb")
                index = ptr + i
                entry = e_rd.data
                m.d.comb += e_rd.addr.eq(index)
                ok = Signal(name=f"pe{k}_valid{i}")
                m.d.comb += ok.eq(index < n_entries)
                r_pos, c_pos = Signal(signed(11), name=f"pe{k}_r{i}"), Signal(signed(11), name=f"pe{k}_c{i}")
                m.d.comb += [r_pos.eq(row0 + entry.r), c_pos.eq(col0 + entry.s)]
                inside = (r_pos >= 0) & (r_pos < h) & (c_pos >= 0) & (c_pos < w)
                address = Signal(signed(19), name=f"pe{k}_addr{i}")
                m.d.comb += address.eq(base_row + col0 + entry.offset)
                x_rd = xmem.read_port(domain="comb")
                m.d.comb += x_rd.addr.eq(address[3:])
                byte = data.View(data.ArrayLayout(signed(8), X_PER_WORD), x_rd.data)[address[:3]]
                act = Signal(signed(8), name=f"pe{k}_x{i}")
                m.d.comb += act.eq(Mux(inside, byte, 0))
                eligible = Signal(name=f"pe{k}_elig{i}")
                m.d.comb += eligible.eq(ok & ((act != 0) if cfg.two_sided else 1))
                valid.append(ok)
                elig.append(eligible)
                x_val.append(act)
                w_val.append(entry.w)

            # Compaction: eligible entry i goes to lane prefix_i while prefix_i < lanes.
            prefix = []
            count = Signal(range(cfg.window + 1), name=f"pe{k}_prefix0")
            m.d.comb += count.eq(0)
            for i in range(cfg.window):
                prefix.append(count)
                nxt = Signal(range(cfg.window + 1), name=f"pe{k}_prefix{i + 1}")
                m.d.comb += nxt.eq(count + elig[i])
                count = nxt
            eligible_total = count
            terminate = Signal(name=f"pe{k}_terminate")
            m.d.comb += terminate.eq((ptr >= n_first) & (ptr < n_entries) & acc[-1])  # ptr = 0 only: see pixel_done
            taken = [Signal(name=f"pe{k}_take{i}") for i in range(cfg.window)]
            for i in range(cfg.window):
                m.d.comb += taken[i].eq(elig[i] & (prefix[i] < cfg.lanes) & ~terminate)
            group = []
            for j in range(cfg.lanes):
                lane_w = select((taken[i] & (prefix[i] == j), w_val[i]) for i in range(cfg.window))
                lane_x = select((taken[i] & (prefix[i] == j), x_val[i]) for i in range(cfg.window))
                product = Signal(signed(16), name=f"pe{k}_product{j}")
                m.d.comb += product.eq(lane_w.as_signed() * lane_x.as_signed())
                group.append(product)
            n_taken = Signal(range(cfg.lanes + 1), name=f"pe{k}_taken")
            m.d.comb += n_taken.eq(Mux(terminate, 0, Mux(eligible_total > cfg.lanes, cfg.lanes, eligible_total)))
            last_taken = select((taken[i] & (prefix[i] == cfg.lanes - 1), i + 1) for i in range(cfg.window))
            in_window = sum(valid)
            next_ptr = Signal.like(ptr, name=f"pe{k}_next_ptr")
            m.d.comb += next_ptr.eq(ptr + Mux(eligible_total > cfg.lanes, last_taken, in_window))
            new_acc = Signal(signed(32), name=f"pe{k}_new_acc")
            m.d.comb += new_acc.eq(acc + sum(group))
            pixel_done = Signal(name=f"pe{k}_pixel_done")
            m.d.comb += pixel_done.eq(running & ~done & (terminate | (next_ptr >= n_entries) |
                                                         ((next_ptr >= n_first) & new_acc[-1])))
            last_pixel = pixel == n_pixels - 1
            ready.append(done | (pixel > out_p))

            m.d.comb += [r_wr.addr.eq(pixel), r_wr.en.eq(pixel_done),
                         r_wr.data.y.eq(Mux(terminate | new_acc[-1], 0, new_acc)),
                         r_wr.data.mults.eq(mults + n_taken), r_wr.data.cycles.eq(spent + 1)]
            with m.If(start):
                m.d.sync += [done.eq(k >= n_filters), ptr.eq(0), acc.eq(bias), mults.eq(0), spent.eq(0), pixel.eq(0),
                             col.eq(0), row0.eq(-pad), col0.eq(-pad), base_row.eq(row_origin)]
            with m.Elif(running & ~done):
                with m.If(pixel_done):
                    m.d.sync += [ptr.eq(0), acc.eq(bias), mults.eq(0), spent.eq(0), pixel.eq(pixel + 1)]
                    with m.If(last_pixel):
                        m.d.sync += done.eq(1)
                    with m.If(col == wo - 1):
                        m.d.sync += [col.eq(0), col0.eq(-pad), row0.eq(row0 + stride),
                                     base_row.eq(base_row + row_step)]
                    with m.Else():
                        m.d.sync += [col.eq(col + 1), col0.eq(col0 + stride)]
                with m.Else():
                    m.d.sync += [ptr.eq(next_ptr), acc.eq(new_acc), mults.eq(mults + n_taken), spent.eq(spent + 1)]

        # Output: pixel by pixel as every PE has written it, all PEs' results in one word.
        fire = self.y.valid & self.y.ready
        m.d.comb += self.y.valid.eq(running & Cat(*ready).all())
        for k, r_rd in enumerate(results):
            m.d.comb += r_rd.addr.eq(out_p)
            for name in ("y", "mults", "cycles"):
                m.d.comb += self.y.payload[name][k].eq(Mux(k < n_filters, r_rd.data[name], 0))
        with m.If(start):
            m.d.sync += out_p.eq(0)
        with m.If(fire):
            m.d.sync += out_p.eq(out_p + 1)
            with m.If(out_p == n_pixels - 1):
                m.d.sync += [running.eq(0), loading.eq(1)]
        return m
