"""SnaPEA exact-mode early-termination PE array (docs/snapea.md): one filter per PE, all PEs in parallel."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .muxes import select
from .ram import Ram, ram_instance
from .snapea_ports import KINDS, X_PER_WORD, entry_layout, op_layout, result_layout

__all__ = ["SnapeaArray", "ram_specs"]


def ram_specs(cfg):
    """{kind: (word shape, depth)} of the array's RAM leaves: per PE a copy of x and a bank of entries for each of
    the ``window`` slots of a row (a row's reads in one cycle), and the PE's results."""
    pe_result = data.StructLayout({name: field.shape.elem_shape for name, field in result_layout(cfg)})
    return {"x": (unsigned(8 * X_PER_WORD), cfg.max_x // X_PER_WORD), "entries": (entry_layout(cfg), cfg.rows),
            "results": (pe_result, cfg.max_pixels)}


class SnapeaArray(wiring.Component):
    """``n_pe`` PEs; PE k walks filter k's sorted entries for every output pixel in raster order (the schedule of
    ``golden.snapea_pe``), a row of ``window`` entries at a time: a row stage issues the row's eligible entries
    (two-sided: non-zero activation) ``lanes`` a group into its multipliers; the accumulator ends the pixel after
    its last group, or once past the positive entries with acc < 0 (output 0), and the next cycle kills the
    pixel's rows still in flight.

    Pipeline of a row (``cfg.fetch_stages``): entry-bank read (one bank per slot), activation read (one copy of x
    per slot, addressed by the entry's offset from the pixel's window origin; padding reads as zero), activation
    register, eligibility and ranks; then the row stage (holding the fetch pipeline while its row issues more
    groups). A group (``cfg.group_stages``): operands, products, their sum, then the accumulator and the result
    write. Fetching runs ahead pixel after pixel; a kill drops the ended pixel's rows and, if fetching had not got
    past it, restarts fetching at the next pixel.

    Input ``op`` (``op_layout``): a header, x [C, H, W] 8 values a word (none: keep the last job's), per PE
    its filter word and sorted entries, then go. Output ``y`` (``result_layout``): one word per output pixel
    in raster order holding every PE's result, read from the PEs' result memories while they run.

    Throughput: ``lanes`` MACs per PE per cycle, one group a cycle. Latency: go to the first result write
    ``cfg.latency`` cycles at the fastest; pixel p's word is read the cycle after its slowest PE wrote it (and
    after pixel p - 1's) and valid the cycle after. Input is not taken from go until the job's last output word is
    taken.

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

    def leaves(self):
        """(module name, component) of each RAM leaf, emitted once each."""
        return [(f"{self.cfg.module}_{kind}", Ram(shape, depth))
                for kind, (shape, depth) in ram_specs(self.cfg).items()]

    def _ram(self, m, kind, name, ren):
        shape, depth = ram_specs(self.cfg)[kind]
        return ram_instance(m, f"{self.cfg.module}_{kind}", shape, depth, name, ren=ren)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        op = self.op.payload
        win = cfg.window
        x_words = cfg.max_x // X_PER_WORD

        h, w, wo = Signal.like(op.h), Signal.like(op.w), Signal.like(op.wo)
        stride, pad, row_step, row_origin = Signal.like(op.stride), Signal.like(op.pad), Signal.like(op.row_step), \
            Signal.like(op.row_origin)
        n_filters, n_pixels = Signal.like(op.n_filters), Signal.like(op.n_pixels)

        loading, running = Signal(init=1), Signal()
        take = Signal()
        m.d.comb += [self.op.ready.eq(loading), take.eq(self.op.valid & loading)]
        is_kind = {kind: take & (op.kind == code) for kind, code in KINDS.items()}

        # Loading: x words into every PE's copies, a filter's entries slot by slot into its PE's banks.
        x_ptr = Signal(range(x_words + 1))
        load_pe = Signal(range(cfg.n_pe + 1))
        e_slot, e_row = Signal(range(win)), Signal(range(cfg.rows + 1))
        with m.If(is_kind["header"]):
            m.d.sync += [h.eq(op.h), w.eq(op.w), wo.eq(op.wo), stride.eq(op.stride), pad.eq(op.pad),
                         row_step.eq(op.row_step), row_origin.eq(op.row_origin), n_filters.eq(op.n_filters),
                         n_pixels.eq(op.n_pixels), x_ptr.eq(0), load_pe.eq(0)]
        with m.If(is_kind["x"]):
            m.d.sync += x_ptr.eq(x_ptr + 1)
        with m.If(is_kind["filter"]):
            m.d.sync += [load_pe.eq(load_pe + 1), e_slot.eq(0), e_row.eq(0)]
        with m.If(is_kind["entry"]):
            m.d.sync += [e_slot.eq(Mux(e_slot == win - 1, 0, e_slot + 1)), e_row.eq(e_row + (e_slot == win - 1))]
        start = is_kind["go"]
        with m.If(start):
            m.d.sync += [loading.eq(0), running.eq(1)]

        rd_p = Signal.like(op.n_pixels)  # the next pixel to read from the result memories
        read = Signal()                  # read it this cycle
        top = SimpleNamespace(op=op, is_kind=is_kind, start=start, x_ptr=x_ptr, load_pe=load_pe, e_slot=e_slot,
                              e_row=e_row, rd_p=rd_p, read=read, h=h, w=w, wo=wo, stride=stride, pad=pad,
                              row_step=row_step, row_origin=row_origin, n_filters=n_filters, n_pixels=n_pixels)
        ready, results = zip(*(self._pe(m, k, top) for k in range(cfg.n_pe)))

        # Output: pixel by pixel once every PE has written it, all PEs' results in one word.
        out_p, out_valid = Signal.like(op.n_pixels), Signal()
        fire = self.y.valid & self.y.ready
        m.d.comb += [read.eq(running & (rd_p < n_pixels) & Cat(*ready).all() & (~out_valid | self.y.ready)),
                     self.y.valid.eq(out_valid)]
        for k, r in enumerate(results):
            m.d.comb += r["raddr"].eq(rd_p)
            for name in ("y", "mults", "cycles"):
                m.d.comb += self.y.payload[name][k].eq(Mux(k < n_filters, r["rdata"][name], 0))
        with m.If(read):
            m.d.sync += [rd_p.eq(rd_p + 1), out_valid.eq(1)]
        with m.Elif(fire):
            m.d.sync += out_valid.eq(0)
        with m.If(fire):
            m.d.sync += out_p.eq(out_p + 1)
            with m.If(out_p == n_pixels - 1):
                m.d.sync += [running.eq(0), loading.eq(1)]
        with m.If(start):
            m.d.sync += [rd_p.eq(0), out_p.eq(0), out_valid.eq(0)]
        return m

    def _pe(self, m, k, top):
        """PE ``k``: its filter registers, row pipeline, group pipeline and accumulator, driven by the array's
        loading and header registers ``top``. Returns (its pixel ``top.rd_p`` is written or it has no filter, its
        result memory's ports, which read pixel ``top.rd_p`` on ``top.read``)."""
        cfg, op, is_kind = self.cfg, top.op, top.is_kind
        win, lanes = cfg.window, cfg.lanes
        pix_shape = unsigned(len(op.n_pixels))
        index_shape = unsigned((cfg.rows * win).bit_length())  # an entry's index in its filter

        def sig(shape, name, **kw):
            return Signal(shape, name=f"pe{k}_{name}", **kw)

        # Filter registers.
        n_entries, n_first = sig(len(op.n_entries), "n"), sig(len(op.n_first), "n_first")
        bias, dead = sig(signed(32), "bias"), sig(1, "dead")  # dead: no positive entry and bias < 0
        last_row = sig(range(cfg.rows), "last_row")
        with m.If(is_kind["filter"] & (top.load_pe == k)):
            m.d.sync += [n_entries.eq(op.n_entries), n_first.eq(op.n_first), bias.eq(op.bias), last_row.eq(0),
                         dead.eq((op.n_first == 0) & op.bias[-1])]
        loading_entry = is_kind["entry"] & (top.load_pe == k + 1)
        with m.If(loading_entry):
            m.d.sync += last_row.eq(top.e_row)

        advance = sig(1, "advance")     # the row pipeline moves
        kill, kill_pix = sig(1, "kill"), sig(pix_shape, "kill_pix")  # pixel kill_pix ended early last cycle
        kill_row = sig(1, "kill_row")   # kill, and the row stage holds that pixel (registered with kill)

        def same(pix, other):  # pixels in flight are fewer than 2**tag_bits apart: compare their low bits
            return pix[:cfg.tag_bits] == other[:cfg.tag_bits]

        def keep(valid, pix):
            return valid & ~(kill & same(pix, kill_pix))

        # F: the row being fetched, and the walk over output pixels.
        f_valid, f_pix, f_row, f_first = sig(1, "f_valid"), sig(pix_shape, "f_pix"), sig(range(cfg.rows), "f_row"), \
            sig(index_shape, "f_first")
        col = sig(range(256), "col")
        row0, col0 = sig(signed(10), "row0"), sig(signed(10), "col0")
        base_row = sig(signed(18), "base_row")  # memory offset of the pixel's window row
        # S1: entries out of the banks; S2: activations out of the copies; S3: activations registered.
        s1_valid, s1_pix, s1_first = sig(1, "s1_valid"), sig(pix_shape, "s1_pix"), sig(index_shape, "s1_first")
        s1_row0, s1_col0, s1_base = sig(signed(10), "s1_row0"), sig(signed(10), "s1_col0"), sig(signed(19), "s1_base")
        s1_last = sig(1, "s1_last")
        s2_valid, s2_pix, s2_first, s2_last = sig(1, "s2_valid"), sig(pix_shape, "s2_pix"), \
            sig(index_shape, "s2_first"), sig(1, "s2_last")
        s3_valid, s3_pix, s3_first, s3_last = sig(1, "s3_valid"), sig(pix_shape, "s3_pix"), \
            sig(index_shape, "s3_first"), sig(1, "s3_last")
        # R: the row stage.
        r_valid, r_pix, r_first, r_last = sig(1, "r_valid"), sig(pix_shape, "r_pix"), sig(1, "r_first"), \
            sig(1, "r_last")
        r_total, r_row_ge = sig(range(win + 1), "r_total"), sig(1, "r_row_ge")
        r_rank = sig(range(win + lanes + 1), "r_rank")  # rank of the row's next group's first entry

        r_w, r_x, r_elig, r_prefix, r_ge = [], [], [], [], []
        count = 0  # eligible entries of S3's row so far
        for i in range(win):
            entries = self._ram(m, "entries", f"pe{k}_entries{i}", advance)
            xcopy = self._ram(m, "x", f"pe{k}_x{i}", advance)
            m.d.comb += [entries["waddr"].eq(top.e_row), entries["wdata"].eq(op.entry),
                         entries["we"].eq(loading_entry & (top.e_slot == i)), entries["raddr"].eq(f_row),
                         xcopy["waddr"].eq(top.x_ptr), xcopy["wdata"].eq(op.x.as_value()), xcopy["we"].eq(is_kind["x"])]
            # S1: the slot's entry, its activation's address and whether it lies inside the input.
            entry = entries["rdata"]
            ok = sig(1, f"s1_ok{i}")
            r_pos, c_pos = sig(signed(11), f"s1_r{i}"), sig(signed(11), f"s1_c{i}")
            address = sig(signed(19), f"s1_addr{i}")
            m.d.comb += [ok.eq(s1_first + i < n_entries), r_pos.eq(s1_row0 + entry.r), c_pos.eq(s1_col0 + entry.s),
                         address.eq(s1_base + entry.offset), xcopy["raddr"].eq(address[3:])]
            inside = (r_pos >= 0) & (r_pos < top.h) & (c_pos >= 0) & (c_pos < top.w)
            s2_ok, s2_live, s2_w, s2_byte = sig(1, f"s2_ok{i}"), sig(1, f"s2_live{i}"), sig(signed(8), f"s2_w{i}"), \
                sig(3, f"s2_byte{i}")
            # S2: the activation (zero outside the input).
            act = sig(signed(8), f"s2_x{i}")
            m.d.comb += act.eq(Mux(s2_live, data.View(data.ArrayLayout(signed(8), X_PER_WORD),
                                                      xcopy["rdata"])[s2_byte], 0))
            s3_ok, s3_w, s3_x = sig(1, f"s3_ok{i}"), sig(signed(8), f"s3_w{i}"), sig(signed(8), f"s3_x{i}")
            # S3: eligibility, its rank among the row's eligible entries, and whether every positive entry is
            # behind it.
            elig = sig(1, f"s3_elig{i}")
            m.d.comb += elig.eq(s3_ok & ((s3_x != 0) if cfg.two_sided else 1))
            prefix = sig(range(win + 1), f"s3_rank{i}")
            m.d.comb += prefix.eq(count)
            count = count + elig
            behind = s3_first + i + 1 >= n_first
            # R registers.
            rw, rx, re, rp, rg = sig(signed(8), f"r_w{i}"), sig(signed(8), f"r_x{i}"), sig(1, f"r_elig{i}"), \
                sig(range(win + 1), f"r_rank{i}"), sig(1, f"r_ge{i}")
            with m.If(advance):
                m.d.sync += [s2_ok.eq(ok), s2_live.eq(ok & inside), s2_w.eq(entry.w), s2_byte.eq(address[:3]),
                             s3_ok.eq(s2_ok), s3_w.eq(s2_w), s3_x.eq(act),
                             rw.eq(s3_w), rx.eq(s3_x), re.eq(elig), rp.eq(prefix), rg.eq(behind)]
            r_w.append(rw)
            r_x.append(rx)
            r_elig.append(re)
            r_prefix.append(rp)
            r_ge.append(rg)

        # R: issue the row's next group (eligible entries ranked r_rank .. r_rank + lanes - 1).
        more = sig(1, "more")
        m.d.comb += more.eq(r_total > r_rank + lanes)
        m.d.comb += advance.eq(~(r_valid & more) | kill_row)
        pick = [[r_elig[i] & (r_prefix[i] == r_rank + j) for i in range(win)] for j in range(lanes)]
        m_valid, m_pix, m_first, m_last, m_check = sig(1, "m_valid"), sig(pix_shape, "m_pix"), sig(1, "m_first"), \
            sig(1, "m_last"), sig(1, "m_check")
        m_count = sig(range(lanes + 1), "m_count")
        m_w = [sig(signed(8), f"m_w{j}") for j in range(lanes)]
        m_x = [sig(signed(8), f"m_x{j}") for j in range(lanes)]
        past_positives = Cat(*(pick[lanes - 1][i] & r_ge[i] for i in range(win))).any()
        m.d.sync += [m_valid.eq(r_valid), m_pix.eq(r_pix), m_first.eq(r_first & (r_rank == 0)),
                     m_last.eq(r_last & ~more), m_check.eq(Mux(more, past_positives, r_row_ge)),
                     m_count.eq(Mux(more, lanes, r_total - r_rank))]
        for j in range(lanes):
            m.d.sync += [m_w[j].eq(select((pick[j][i], r_w[i]) for i in range(win))),
                         m_x[j].eq(select((pick[j][i], r_x[i]) for i in range(win)))]
        # P: products; S: their sum.
        p_valid, p_pix, p_first, p_last, p_check = sig(1, "p_valid"), sig(pix_shape, "p_pix"), sig(1, "p_first"), \
            sig(1, "p_last"), sig(1, "p_check")
        p_count = sig(range(lanes + 1), "p_count")
        products = [sig(signed(16), f"p_product{j}") for j in range(lanes)]
        m.d.sync += [p_valid.eq(m_valid), p_pix.eq(m_pix), p_first.eq(m_first), p_last.eq(m_last),
                     p_check.eq(m_check), p_count.eq(m_count)]
        m.d.sync += [products[j].eq(m_w[j] * m_x[j]) for j in range(lanes)]
        s_valid, s_pix, s_first, s_last, s_check = sig(1, "s_valid"), sig(pix_shape, "s_pix"), sig(1, "s_first"), \
            sig(1, "s_last"), sig(1, "s_check")
        s_count = sig(range(lanes + 1), "s_count")
        s_sum = sig(signed(16 + lanes.bit_length()), "s_sum")
        m.d.sync += [s_valid.eq(p_valid), s_pix.eq(p_pix), s_first.eq(p_first), s_last.eq(p_last),
                     s_check.eq(p_check), s_count.eq(p_count), s_sum.eq(sum(products))]

        # Accumulator (bias and no products when a pixel's first group arrives): a group of a live pixel adds its
        # sum; the pixel ends after its last group, or early.
        acc, mults, alive = sig(signed(32), "acc"), sig(len(op.n_entries), "mults"), sig(1, "alive")
        since = sig(cfg.max_pixel_cycles.bit_length(), "since")  # cycles since the last result, minus one
        written = sig(pix_shape, "written")
        new_acc = sig(signed(32), "new_acc")
        new_mults = sig(len(op.n_entries), "new_mults")
        live, pre, end = sig(1, "live"), sig(1, "pre"), sig(1, "end")
        m.d.comb += [new_acc.eq(acc + s_sum), live.eq(s_valid & (s_first | alive)), pre.eq(s_first & dead),
                     new_mults.eq(Mux(pre, 0, mults + s_count)),
                     end.eq(live & (pre | s_last | (s_check & new_acc[-1])))]
        m.d.sync += [kill.eq(end & ~s_last), kill_pix.eq(s_pix),
                     kill_row.eq(end & ~s_last & same(Mux(advance, s3_pix, r_pix), s_pix))]
        results = self._ram(m, "results", f"pe{k}_results", top.read)
        m.d.comb += [results["waddr"].eq(s_pix), results["we"].eq(end),
                     results["wdata"].y.eq(Mux(pre | new_acc[-1], 0, new_acc)), results["wdata"].mults.eq(new_mults),
                     results["wdata"].cycles.eq(since + 1)]
        m.d.sync += since.eq(Mux(end, 0, since + 1))
        with m.If(live):
            m.d.sync += [acc.eq(new_acc), mults.eq(new_mults), alive.eq(~end)]
        with m.If(p_valid & p_first):  # the next group starts a pixel: acc and mults are ready for it
            m.d.sync += [acc.eq(bias), mults.eq(0)]
        with m.If(end):
            m.d.sync += written.eq(written + 1)

        # The row pipeline: every stage moves on advance, dropping a killed pixel's rows.
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(keep(f_valid, f_pix)), s1_pix.eq(f_pix), s1_first.eq(f_first),
                s1_last.eq(f_row == last_row), s1_row0.eq(row0), s1_col0.eq(col0), s1_base.eq(base_row + col0),
                s2_valid.eq(keep(s1_valid, s1_pix)), s2_pix.eq(s1_pix), s2_first.eq(s1_first), s2_last.eq(s1_last),
                s3_valid.eq(keep(s2_valid, s2_pix)), s3_pix.eq(s2_pix), s3_first.eq(s2_first), s3_last.eq(s2_last),
                r_valid.eq(keep(s3_valid, s3_pix)), r_pix.eq(s3_pix), r_first.eq(s3_first == 0), r_last.eq(s3_last),
                r_total.eq(count), r_row_ge.eq(s3_first + win >= n_first), r_rank.eq(0)]
            with m.If(f_valid):
                with m.If((f_row == last_row) | (kill & same(f_pix, kill_pix))):
                    m.d.sync += [f_row.eq(0), f_first.eq(0), f_pix.eq(f_pix + 1)]
                    with m.If(f_pix == top.n_pixels - 1):
                        m.d.sync += f_valid.eq(0)
                    with m.If(col == top.wo - 1):
                        m.d.sync += [col.eq(0), col0.eq(-top.pad), row0.eq(row0 + top.stride),
                                     base_row.eq(base_row + top.row_step)]
                    with m.Else():
                        m.d.sync += [col.eq(col + 1), col0.eq(col0 + top.stride)]
                with m.Else():
                    m.d.sync += [f_row.eq(f_row + 1), f_first.eq(f_first + win)]
        with m.Else():
            m.d.sync += r_rank.eq(r_rank + lanes)

        done = sig(1, "done")  # no filter in this job
        with m.If(top.start):
            m.d.sync += [f_valid.eq(k < top.n_filters), f_pix.eq(0), f_row.eq(0), f_first.eq(0), col.eq(0),
                         row0.eq(-top.pad), col0.eq(-top.pad), base_row.eq(top.row_origin),
                         s1_valid.eq(0), s2_valid.eq(0), s3_valid.eq(0), r_valid.eq(0), r_rank.eq(0),
                         m_valid.eq(0), p_valid.eq(0), s_valid.eq(0), kill.eq(0), kill_row.eq(0), alive.eq(0),
                         since.eq(0),
                         written.eq(0), done.eq(k >= top.n_filters)]
        return done | (written > top.rd_p), results


# the blocks (CATALOG keys) this module's component builds
COMPONENTS = {"snapea": SnapeaArray}
