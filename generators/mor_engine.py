"""Mixture-of-Rookies layer engine (docs/mor.md, MoR §4): CUs, binCUs and the neurons controller."""

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .binary_predictor import BinaryPredictor, bincu_input_layout, bincu_output_layout
from .delay import delay
from .mor_ports import (
    KINDS,
    beat_bits,
    bin_word_bits,
    op_layout,
    position_bits,
    result_layout,
    table_layout,
    vector_bits,
    word_bits,
)
from .ram import Ram, ram_instance

__all__ = ["MorEngine", "ram_specs"]


def _lowest(flags):
    """(any, index of the lowest set flag)."""
    index = Signal(range(max(2, len(flags))))
    for i in reversed(range(len(flags))):
        index = Mux(flags[i], i, index)
    return Cat(*flags).any(), index


def ram_specs(cfg):
    """{kind: (word shape, depth, instances)} of the engine's RAM leaves (one replica per reader; weights and inputs
    in lines of ``load_words`` words; the results in ``issue`` banks). Inputs and results have two buffers (the top
    address bit), so a run loads and streams while its neighbours compute."""
    pos, beat, bword = position_bits(cfg), beat_bits(cfg), bin_word_bits(cfg)
    runs = (1 << vector_bits(cfg)) + cfg.max_vectors  # buffer 1 starts at 2**vector_bits
    line = unsigned(8 * cfg.mac_width * cfg.load_words)  # a loaded beat
    return {
        "weights": (line, cfg.max_out << beat, cfg.n_cu),
        "inputs": (line, runs << beat, cfg.n_cu),
        "bin_weights": (unsigned(cfg.bits_per_cycle), cfg.max_out << bword, cfg.n_bincu),
        "bin_inputs": (unsigned(cfg.bits_per_cycle), runs << bword, cfg.n_bincu),
        "table": (table_layout(cfg), 1 << pos, cfg.n_cu + cfg.n_bincu),
        "results": (unsigned(32), runs << (pos - _log2(cfg.issue)), cfg.issue),
    }


def _log2(n):
    return n.bit_length() - 1


def _count(flags, width):
    """How many of ``flags`` are set, as a ``width``-bit value."""
    total = Const(0, width)
    for flag in flags:
        total = (total + flag)[:width]
    return total


class MorEngine(wiring.Component):
    """One layer at a time: load its tables and weights once, then per run of up to ``max_vectors``
    input vectors compute every neuron under the skip rule and stream the results (the schedule of
    ``golden.mor_engine``).

    Input ``op`` (``op_layout``): a header, the n_out table entries, then the job's first run's vectors' words
    and the weights in DNN order (proxies, then members by cluster) — the header's ``stream`` says which comes
    second: the first run starts once the other is in and computes while it streams, each weight row or input
    vector used as soon as it is in — then the other runs' vectors (``last`` ends a vector, ``run`` the run).
    Sign bits of weights (w ≥ 0) and inputs (x > 0) are packed into the binCUs' binary memories as they load.
    Each CU and binCU reads its own replica of the memories it uses.

    In a run the controller issues, each cycle, up to ``issue`` neurons from one source to the lowest free
    CUs: the binCUs' rejected members (one), else consecutive members of the walker's cluster whose proxy is
    done, else the next proxy on consecutive vectors (the streamed-inputs first run: consecutive proxies of one
    vector). Members whose proxy decided zero and that are enabled go (one a cycle) into a queue of
    ``cfg.bin_queue`` for the binCUs, whose head the lowest free binCU takes. A CU takes ``words`` cycles per
    neuron and completes ``cfg.cu_stages`` cycles after its last one (y = ReLU(bias + acc); its words pass RAM
    data, operand, product and sum stages); a binCU takes ``bin_words`` cycles and predicts
    ``cfg.bin_stages + cfg.bincu.latency`` cycles after its last one (its chunks pass RAM data and chunk stages
    before the binCU): zero skips the member (y = 0), otherwise it queues for a CU. A group's results go to
    distinct banks (bank (position + vector) mod ``issue``).

    Output ``y`` (``result_layout``): after the run, vector by vector, ``issue`` neurons per word in DNN order,
    with the run's cycles and MACs.

    Runs overlap through two input and two result buffers: run r + 1's vectors load while run r computes
    and run r - 1's outputs stream; a run starts (one cycle) once its vectors are in, the CUs are free and
    its result buffer is out. Throughput: n_cu·mac_width MACs per cycle while running, ``issue`` neurons issued
    per cycle. Latency: a loaded beat (``load_words`` words) or table word per cycle; the start cycle, the run; one
    output word per cycle. The
    header and tables are taken only when no run is loaded, running or streaming.

    Parameters
    ----------
    cfg : MorConfig
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "op": In(stream.Signature(op_layout(cfg))),
            "y": Out(stream.Signature(result_layout(cfg))),
        })

    def leaves(self):
        """(module name, component) of each module instantiated as a black box, emitted once each."""
        rams = [(f"{self.cfg.module}_{kind}", Ram(shape, depth))
                for kind, (shape, depth, _) in ram_specs(self.cfg).items()]
        return rams + [(f"{self.cfg.module}_bincu", BinaryPredictor(self.cfg.bincu))]

    def _ram(self, m, kind, name, ren=1):
        """An instance of RAM leaf ``kind`` reading when ``ren``; returns its port signals."""
        shape, depth, _ = ram_specs(self.cfg)[kind]
        return ram_instance(m, f"{self.cfg.module}_{kind}", shape, depth, name, ren=ren)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        op = self.op.payload
        mw, width, beat = cfg.mac_width, cfg.issue, cfg.load_words
        group = cfg.words_per_binary // beat  # beats per binary word
        lb, lbeat = _log2(width), _log2(beat)
        pos_w, vec_w = position_bits(cfg), vector_bits(cfg)
        neurons_w = pos_w + vec_w + 1  # counts up to max_vectors·max_out
        slot_w = max(1, lb)
        count_w = width.bit_length()   # 0..issue

        # Layer registers (from the header) and per-position controller tables.
        # The last cluster, word, binary word and output word are registered too, so the "last" compares are off
        # the adders.
        n_in = Signal.like(op.n_in, name="n_in")
        n_out, n_proxies = Signal.like(op.n_out, name="n_out"), Signal.like(op.n_proxies, name="n_proxies")
        last_k = Signal.like(op.n_proxies, name="last_k")
        last_word = Signal.like(op.words, name="last_word")
        last_beat = Signal.like(op.beats, name="last_beat")
        last_bin_word = Signal.like(op.bin_words, name="last_bin_word")
        last_out_word = Signal(pos_w - lb, name="last_out_word")
        tail_bits = Signal.like(op.tail_bits, name="tail_bits")
        stream_inputs = Signal(name="stream_inputs")
        first_vectors, first_target = Signal(vec_w + 1, name="first_vectors"), Signal(neurons_w, name="first_target")
        first_pending = Signal(name="first_pending")  # the job's first run has not started
        enable = Signal(cfg.max_out)
        sizes = Array(Signal.like(op.size, name=f"size{k}") for k in range(cfg.max_out))

        # Buffers: input words go to in_buf, the run computes on comp_buf, outputs stream from out_buf.
        in_buf, comp_buf, out_buf = Signal(), Signal(), Signal()
        in_full, out_full = Signal(2), Signal(2)  # per buffer: a loaded run not yet computed; results not yet out
        running = Signal()
        in_vectors = [Signal(vec_w + 1, name=f"in{b}_vectors") for b in range(2)]
        in_target = [Signal(neurons_w, name=f"in{b}_target") for b in range(2)]
        idle = Signal()
        m.d.comb += idle.eq(~running & ~in_full.any() & ~out_full.any())
        table_pos = Signal(pos_w)
        w_pos = Signal(pos_w + 1)              # weight rows loaded
        # Beat counters within a row or vector, beats within a binary word, binary words.
        w_word, w_sub, w_bin = Signal(beat_bits(cfg)), Signal(range(max(2, group))), Signal(bin_word_bits(cfg))
        x_word, x_sub, x_bin = Signal(beat_bits(cfg)), Signal(range(max(2, group))), Signal(bin_word_bits(cfg))
        x_vec = Signal(vec_w + 1)              # vectors loaded for the next run
        x_target = Signal(neurons_w)           # their neurons: x_vec · n_out
        w_bits_acc, x_bits_acc = Signal(cfg.bits_per_cycle), Signal(cfg.bits_per_cycle)
        take = Signal()
        m.d.comb += [self.op.ready.eq(Mux(op.kind == KINDS["input"], ~in_full.bit_select(in_buf, 1),
                                          (op.kind == KINDS["weight"]) | idle)),
                     take.eq(self.op.valid & self.op.ready)]
        is_kind = {kind: take & (op.kind == code) for kind, code in KINDS.items()}
        row_end = w_word == last_beat
        slot = mw * beat  # sign bits a beat adds to a binary word

        def packed(acc, sub, signs):
            """The binary word so far with this beat's sign bits at slot ``sub``."""
            return Cat(*(Mux(sub == s, signs, acc[s * slot:(s + 1) * slot]) for s in range(group)))

        w_signs = Cat(*(~op.data[i][7] for i in range(slot)))
        x_signs = Cat(*((op.data[i] > 0) for i in range(slot)))
        w_binary, x_binary = packed(w_bits_acc, w_sub, w_signs), packed(x_bits_acc, x_sub, x_signs)
        w_flush = (w_sub == group - 1) | row_end
        x_flush = (x_sub == group - 1) | (x_word == last_beat)

        with m.If(is_kind["header"]):
            m.d.sync += [n_in.eq(op.n_in), n_out.eq(op.n_out), n_proxies.eq(op.n_proxies),
                         last_k.eq(op.n_proxies - 1), last_word.eq(op.words - 1), last_beat.eq(op.beats - 1),
                         last_bin_word.eq(op.bin_words - 1), last_out_word.eq((op.n_out - 1) >> lb),
                         tail_bits.eq(op.tail_bits), table_pos.eq(0), stream_inputs.eq(op.stream),
                         first_vectors.eq(op.vectors), first_target.eq(op.vectors * op.n_out), first_pending.eq(1),
                         w_pos.eq(0), w_word.eq(0), w_sub.eq(0), w_bin.eq(0), w_bits_acc.eq(0),
                         x_word.eq(0), x_sub.eq(0), x_bin.eq(0), x_bits_acc.eq(0), x_vec.eq(0), x_target.eq(0)]
        with m.If(is_kind["neuron"]):
            m.d.sync += table_pos.eq(table_pos + 1)
            for k in range(cfg.max_out):
                with m.If(table_pos == k):
                    m.d.sync += [enable[k].eq(op.enable), sizes[k].eq(op.size)]
        with m.If(is_kind["weight"]):
            m.d.sync += [w_word.eq(Mux(row_end, 0, w_word + 1)), w_pos.eq(w_pos + row_end),
                         w_sub.eq(Mux(w_flush, 0, w_sub + 1)), w_bits_acc.eq(Mux(w_flush, 0, w_binary)),
                         w_bin.eq(Mux(row_end, 0, w_bin + w_flush))]
        with m.If(is_kind["input"]):
            m.d.sync += [x_word.eq(Mux(op.last, 0, x_word + 1)), x_sub.eq(Mux(x_flush, 0, x_sub + 1)),
                         x_bits_acc.eq(Mux(x_flush, 0, x_binary)), x_bin.eq(Mux(op.last, 0, x_bin + x_flush))]
            with m.If(op.last):
                m.d.sync += [x_vec.eq(Mux(op.run, 0, x_vec + 1)), x_target.eq(Mux(op.run, 0, x_target + n_out))]
            with m.If(op.last & op.run):
                m.d.sync += [in_full.bit_select(in_buf, 1).eq(1), in_buf.eq(~in_buf)]
                for b in range(2):
                    with m.If(in_buf == b):
                        m.d.sync += [in_vectors[b].eq(x_vec + 1), in_target[b].eq(x_target + n_out)]

        def load(ports, kind, address, value, flush=1):
            m.d.comb += [ports["waddr"].eq(address), ports["wdata"].eq(value), ports["we"].eq(is_kind[kind] & flush)]

        # Run state. A run's neurons are (vector v, position); proxies go proxy-major (vector-major in a streamed-
        # inputs first run), and the walker visits cluster q's members in the order proxies complete.
        run_vectors, run_target = Signal(vec_w + 1), Signal(neurons_w)
        by_vector = Signal()                   # this run goes vector by vector
        proxy_k, proxy_v = Signal(pos_w + 1), Signal(vec_w + 1)
        walk_q, walk_k, walk_v = Signal(neurons_w), Signal(pos_w + 1), Signal(vec_w + 1)
        member, cluster_start = Signal(pos_w + 1), Signal(pos_w + 1)
        left = Signal.like(op.size, name="left")
        decided, done = Signal(neurons_w, name="decided"), Signal(neurons_w, name="done")
        neurons = cfg.max_vectors * cfg.max_out
        proxy_zero = Signal(neurons)  # by completion order
        skipped = [Signal(neurons, name=f"skipped{b}") for b in range(2)]  # per result buffer, by Cat(pos, v)
        run_cycles, macs = Signal(32), Signal(32)
        out_vectors = [Signal(vec_w + 1, name=f"out{b}_vectors") for b in range(2)]
        out_cycles = [Signal(32, name=f"out{b}_run_cycles") for b in range(2)]
        out_macs = [Signal(32, name=f"out{b}_macs") for b in range(2)]
        m.submodules.rejected = rejected = fifo.SyncFIFO(width=pos_w + vec_w, depth=neurons)
        # Vectors of the computing run that are in (all of them unless the first run streams its inputs).
        vectors_in = Signal(vec_w + 1)
        m.d.comb += vectors_in.eq(Mux(in_full.bit_select(comp_buf, 1), run_vectors, x_vec))

        # Walker over the members of decided clusters.
        can_walk = running & (walk_q < decided)
        advance = can_walk & (left == 0)
        walker = can_walk & (left != 0)
        # zero_here is proxy_zero's bit of walk_q, kept in a register (the next cluster's bit is looked up ahead, and a
        # completion writing the bit it needs is bypassed), so the wide bit-select is off the issue path.
        zero_here = Signal()
        ahead = enable.bit_select(member[:pos_w], width)   # the enable bits of the next ``issue`` members
        to_bincu = zero_here & ahead[0]

        # CU issue: each free CU's slot among the free ones (the lowest free CU takes slot 0).
        cu_free = [Signal(name=f"cu{i}_free") for i in range(cfg.n_cu)]
        slots = [_count(cu_free[:i], count_w + 1) for i in range(cfg.n_cu)]
        free_count = _count(cu_free, count_w + 1)

        def group_size(oks):
            """How many leading slots are ok (each ok implies the previous ones)."""
            return _count(oks, count_w)

        walker_ok, proxy_ok = [], []
        chain = walker
        for s in range(width):
            chain = chain & (s < free_count) & (s < left) & (member + s < w_pos) & ~(zero_here & ahead[s])
            walker_ok.append(chain)
        proxies_left = Mux(by_vector, proxy_v < run_vectors, proxy_k < n_proxies)
        for s in range(width):
            along_v = (proxy_v + s < vectors_in) & (proxy_k < w_pos)
            along_k = (proxy_k + s < n_proxies) & (proxy_k + s < w_pos) & (proxy_v < vectors_in)
            proxy_ok.append(running & proxies_left & (s < free_count) & Mux(by_vector, along_k, along_v))
        src_rejected = running & (free_count != 0) & rejected.r_rdy
        src_walker = ~src_rejected & walker_ok[0]
        src_proxy = ~src_rejected & ~src_walker & proxy_ok[0]
        size = Signal(count_w, name="issue_size")
        base_pos, base_v = Signal(pos_w, name="issue_pos"), Signal(vec_w, name="issue_v")
        step_pos, step_v = Signal(), Signal()
        r_pos, r_v = rejected.r_data[:pos_w], rejected.r_data[pos_w:]
        # Plain assignments, not If blocks: a block whose inputs never change is never evaluated by Icarus, and its
        # outputs would stay X.
        m.d.comb += [rejected.r_en.eq(src_rejected),
                     size.eq(Mux(src_rejected, 1, Mux(src_walker, group_size(walker_ok),
                                                      Mux(src_proxy, group_size(proxy_ok), 0)))),
                     base_pos.eq(Mux(src_rejected, r_pos, Mux(src_walker, member, proxy_k))),
                     base_v.eq(Mux(src_rejected, r_v, Mux(src_walker, walk_v, proxy_v))),
                     step_pos.eq(src_walker | (src_proxy & by_vector)), step_v.eq(src_proxy & ~by_vector)]
        with m.If(src_proxy):
            with m.If(by_vector):
                with m.If(proxy_k + size == n_proxies):
                    m.d.sync += [proxy_k.eq(0), proxy_v.eq(proxy_v + 1)]
                with m.Else():
                    m.d.sync += proxy_k.eq(proxy_k + size)
            with m.Else():
                with m.If(proxy_v + size == run_vectors):
                    m.d.sync += [proxy_v.eq(0), proxy_k.eq(proxy_k + 1)]
                with m.Else():
                    m.d.sync += proxy_v.eq(proxy_v + size)

        # binCU issue.
        lane_free = [Signal(name=f"bincu{j}_free") for j in range(cfg.n_bincu)]
        any_lane, lane_pick = _lowest(lane_free)
        # The walker queues members bound for the binCUs (one a cycle) and walks on; the lowest free lane takes the
        # queue's head.
        m.submodules.bin_queue = bin_queue = fifo.SyncFIFO(width=pos_w + vec_w, depth=cfg.bin_queue)
        push, lane_issue = Signal(), Signal()
        m.d.comb += [push.eq(walker & to_bincu & bin_queue.w_rdy & (member < w_pos)),
                     bin_queue.w_en.eq(push), bin_queue.w_data.eq(Cat(member[:pos_w], walk_v[:vec_w])),
                     lane_issue.eq(bin_queue.r_rdy & any_lane), bin_queue.r_en.eq(lane_issue)]
        taken = Signal(count_w, name="walker_taken")
        m.d.comb += taken.eq(Mux(src_walker, size, push))
        with m.If(taken != 0):
            m.d.sync += [member.eq(member + taken), left.eq(left - taken)]
        walk_step = Signal()
        m.d.comb += walk_step.eq(advance | ((taken != 0) & (left == taken)))  # an empty cluster, or its last member
        last_v = walk_v == run_vectors - 1
        last_cluster = walk_k == last_k
        next_k = Signal.like(walk_k, name="walk_next_k")
        m.d.comb += next_k.eq(Mux(by_vector, Mux(last_cluster, 0, walk_k + 1), Mux(last_v, walk_k + 1, walk_k)))
        member_next = member + taken   # the next cluster's first member, once this one is taken
        with m.If(walk_step):
            m.d.sync += [walk_q.eq(walk_q + 1), walk_k.eq(next_k), left.eq(sizes[next_k[:pos_w]])]
            with m.If(by_vector):
                m.d.sync += walk_v.eq(walk_v + last_cluster)
                with m.If(last_cluster):
                    m.d.sync += [member.eq(n_proxies), cluster_start.eq(n_proxies)]
                with m.Else():
                    m.d.sync += [member.eq(member_next), cluster_start.eq(member_next)]
            with m.Else():
                m.d.sync += walk_v.eq(Mux(last_v, 0, walk_v + 1))
                with m.If(last_v):
                    m.d.sync += [member.eq(member_next), cluster_start.eq(member_next)]
                with m.Else():
                    m.d.sync += member.eq(cluster_start)

        # Compute units: address stage A, data stage B (the RAMs' words), operands O, products P, their sum S (into
        # acc, which starts at the bias), completion C (cfg.cu_stages after A's last word).
        completion = []  # (valid, acc, pos, v, slot) per CU
        meta_w = 3 + pos_w + vec_w + slot_w
        for i in range(cfg.n_cu):
            # A line is read at a neuron's first word and at each later line's; the table entry (the bias) once per
            # neuron. The memories hold their last read in between.
            line_ren, table_ren = Signal(name=f"cu{i}_line_ren"), Signal(name=f"cu{i}_table_ren")
            wram = self._ram(m, "weights", f"cu{i}_weights", line_ren)
            xram = self._ram(m, "inputs", f"cu{i}_inputs", line_ren)
            tram = self._ram(m, "table", f"cu{i}_table", table_ren)
            load(wram, "weight", Cat(w_word, w_pos[:pos_w]), op.data.as_value())
            load(xram, "input", Cat(x_word, x_vec[:vec_w], in_buf), op.data.as_value())
            load(tram, "neuron", table_pos, op.table.as_value())
            a_valid, a_pos, a_word = Signal(name=f"cu{i}_a_valid"), Signal(pos_w, name=f"cu{i}_a_pos"), \
                Signal(word_bits(cfg), name=f"cu{i}_a_word")
            a_v, a_slot = Signal(vec_w, name=f"cu{i}_a_v"), Signal(slot_w, name=f"cu{i}_a_slot")
            a_last = a_word == last_word
            a_line = Signal(beat_bits(cfg), name=f"cu{i}_a_line")  # the beat (memory line) holding word a_word
            m.d.comb += [a_line.eq(a_word >> lbeat), cu_free[i].eq(~a_valid | a_last),
                         line_ren.eq(a_valid & (a_word[:lbeat] == 0) if lbeat else a_valid),
                         wram["raddr"].eq(Cat(a_line, a_pos)), xram["raddr"].eq(Cat(a_line, a_v, comp_buf))]
            slot = slots[i]
            with m.If(cu_free[i] & (slot < size)):
                m.d.sync += [a_valid.eq(1), a_pos.eq(base_pos + Mux(step_pos, slot, 0)),
                             a_v.eq(base_v + Mux(step_v, slot, 0)), a_slot.eq(slot), a_word.eq(0)]
            with m.Elif(a_valid):
                m.d.sync += [a_valid.eq(~a_last), a_word.eq(a_word + 1)]
            # (valid, first word, last word, position, vector, slot) riding along the stages.
            b_meta = delay(m, Cat(a_valid, a_word == 0, a_last, a_pos, a_v, a_slot), 1, Const(1), f"cu{i}_b",
                           reset_less=False)
            o_meta = delay(m, b_meta, 1, Const(1), f"cu{i}_o", reset_less=False)
            p_meta = delay(m, o_meta, 1, Const(1), f"cu{i}_p", reset_less=False)
            s_meta = delay(m, p_meta, 1, Const(1), f"cu{i}_s", reset_less=False)
            s_valid, s_first, s_last = s_meta[0], s_meta[1], s_meta[2]
            s_pos, s_v, s_slot = s_meta[3:3 + pos_w], s_meta[3 + pos_w:3 + pos_w + vec_w], s_meta[3 + pos_w + vec_w:]
            assert len(s_meta) == meta_w
            row_shape = data.ArrayLayout(signed(8), mw)
            w_row, x_row = Signal(row_shape, name=f"cu{i}_o_w"), Signal(row_shape, name=f"cu{i}_o_x")
            # The word within the line read.
            b_sel = delay(m, a_word[:lbeat], 1, Const(1), f"cu{i}_b_sel") if lbeat else Const(0, 1)
            m.d.sync += [w_row.eq(wram["rdata"].word_select(b_sel, 8 * mw)),
                         x_row.eq(xram["rdata"].word_select(b_sel, 8 * mw))]
            products = [Signal(signed(16), name=f"cu{i}_p_product{lane}") for lane in range(mw)]
            m.d.sync += [products[lane].eq(w_row[lane] * x_row[lane]) for lane in range(mw)]
            dot = Signal(signed(16 + mw.bit_length()), name=f"cu{i}_s_dot")
            m.d.sync += dot.eq(sum(products))
            m.d.comb += [tram["raddr"].eq(p_meta[3:3 + pos_w]),  # the neuron's bias, read for stage S
                         table_ren.eq(p_meta[0] & p_meta[1])]
            entry = data.View(table_layout(cfg), tram["rdata"])
            psum = Signal(signed(32), name=f"cu{i}_psum")
            acc = Signal(signed(32), name=f"cu{i}_acc")
            m.d.comb += acc.eq(Mux(s_first, entry.bias, psum) + dot)
            with m.If(s_valid):
                m.d.sync += psum.eq(acc)
            c_valid, c_acc = Signal(name=f"cu{i}_c_valid"), Signal(signed(32), name=f"cu{i}_c_acc")
            c_pos, c_v = Signal(pos_w, name=f"cu{i}_c_pos"), Signal(vec_w, name=f"cu{i}_c_v")
            c_slot = Signal(slot_w, name=f"cu{i}_c_slot")
            m.d.sync += [c_valid.eq(s_valid & s_last), c_acc.eq(acc), c_pos.eq(s_pos), c_v.eq(s_v), c_slot.eq(s_slot)]
            completion.append((c_valid, c_acc, c_pos, c_v, c_slot))

        # Binary CUs: address stage, chunk into the binCU, prediction its latency after the last chunk.
        prediction = []  # (valid, zero, v, pos) per binCU
        for j in range(cfg.n_bincu):
            lane_ren, fit_ren = Signal(name=f"bincu{j}_ren"), Signal(name=f"bincu{j}_fit_ren")
            bw = self._ram(m, "bin_weights", f"bincu{j}_weights", lane_ren)
            bx = self._ram(m, "bin_inputs", f"bincu{j}_inputs", lane_ren)
            bt = self._ram(m, "table", f"bincu{j}_table", fit_ren)  # the fit, read for the last chunk
            load(bw, "weight", Cat(w_bin, w_pos[:pos_w]), w_binary, w_flush)
            load(bx, "input", Cat(x_bin, x_vec[:vec_w], in_buf), x_binary, x_flush)
            load(bt, "neuron", table_pos, op.table.as_value())
            a_valid, a_pos = Signal(name=f"bincu{j}_a_valid"), Signal(pos_w, name=f"bincu{j}_a_pos")
            a_word, a_v = Signal(bin_word_bits(cfg), name=f"bincu{j}_a_word"), Signal(vec_w, name=f"bincu{j}_a_v")
            a_last = a_word == last_bin_word
            m.d.comb += [lane_ren.eq(a_valid), fit_ren.eq(a_valid & a_last),
                         lane_free[j].eq(~a_valid | a_last), bw["raddr"].eq(Cat(a_word, a_pos)),
                         bx["raddr"].eq(Cat(a_word, a_v, comp_buf)), bt["raddr"].eq(a_pos)]
            with m.If(lane_issue & (lane_pick == j)):
                m.d.sync += [a_valid.eq(1), a_pos.eq(bin_queue.r_data[:pos_w]), a_v.eq(bin_queue.r_data[pos_w:]),
                             a_word.eq(0)]
            with m.Elif(a_valid):
                m.d.sync += [a_valid.eq(~a_last), a_word.eq(a_word + 1)]
            b_valid, b_last = Signal(name=f"bincu{j}_b_valid"), Signal(name=f"bincu{j}_b_last")
            b_pos, b_v = Signal(pos_w, name=f"bincu{j}_b_pos"), Signal(vec_w, name=f"bincu{j}_b_v")
            m.d.sync += [b_valid.eq(a_valid), b_last.eq(a_last), b_pos.eq(a_pos), b_v.eq(a_v)]
            entry = data.View(table_layout(cfg), bt["rdata"])
            chunk = Signal(bincu_input_layout(cfg.bincu), name=f"bincu{j}_chunk")
            pred = Signal(bincu_output_layout(cfg.bincu), name=f"bincu{j}_pred")
            pred_valid = Signal(name=f"bincu{j}_pred_valid")
            m.d.comb += [chunk.x_bits.eq(bx["rdata"]), chunk.w_bits.eq(bw["rdata"]), chunk.last.eq(b_last),
                         chunk.count.eq(Mux(b_last, tail_bits, cfg.bits_per_cycle)), chunk.m_q.eq(entry.m_q),
                         chunk.b_q.eq(entry.b_q)]
            # The chunk stage registers the chunk (and its neuron), so the binCU's first stage starts at a register.
            chunk_valid = Signal(name=f"bincu{j}_chunk_valid")
            chunk_reg = Signal.like(chunk, name=f"bincu{j}_chunk_reg")
            m.d.sync += [chunk_valid.eq(b_valid), chunk_reg.eq(chunk)]
            m.submodules[f"bincu{j}"] = Instance(
                f"{cfg.module}_bincu", i_clk=ClockSignal(), i_rst=ResetSignal(),
                i_chunk__valid=chunk_valid, i_chunk__payload=chunk_reg,
                o_chunk__ready=Signal(name=f"bincu{j}_ready"), o_pred__valid=pred_valid, i_pred__ready=Const(1),
                o_pred__payload=pred)
            # The neuron a prediction belongs to: its last chunk's, the chunk stage and the binCU's latency on.
            tag = delay(m, Cat(b_v, b_pos), cfg.bin_stages - 1 + cfg.bincu.latency, Const(1), f"bincu{j}_tag")
            prediction.append((pred_valid, pred.zero, tag[:vec_w], tag[vec_w:]))

        # Completions: one group of CUs (issued together) and at most one binCU per cycle; proxies complete in
        # issue order, a group's slot s being cluster decided + s.
        banks = [self._ram(m, "results", f"results{b}") for b in range(width)]
        completing = _count([c[0] for c in completion], count_w)
        proxy_done = Signal()
        zero_bits = Signal(width, name="zero_bits")   # the completing proxies' decisions, by slot
        m.d.comb += [proxy_done.eq(Cat(*(valid & (c_pos < n_proxies) for valid, _, c_pos, _, _ in completion)).any()),
                     zero_bits.eq(Cat(*(Cat(*(c_valid & (c_slot == s) & (c_acc <= 0)
                                              for c_valid, c_acc, _, _, c_slot in completion)).any()
                                        for s in range(width))))]
        for b, ram in enumerate(banks):
            hits = [(c_valid & ((c_pos + c_v)[:lb] == b), c_acc, c_pos, c_v)
                    for c_valid, c_acc, c_pos, c_v, _ in completion]
            address, value = Const(0), Const(0)
            for hit, c_acc, c_pos, c_v in hits:
                address = Mux(hit, Cat(c_pos[lb:], c_v, comp_buf), address)
                value = Mux(hit, Mux(c_acc[-1], 0, c_acc), value)
            m.d.comb += [ram["we"].eq(Cat(*(hit for hit, *_ in hits)).any()), ram["waddr"].eq(address),
                         ram["wdata"].eq(value)]
        with m.If(proxy_done):
            # Decisions are written once each, in cluster order, into a vector cleared at the run's start: OR-ing them
            # in at ``decided`` (zero past the completing slots) costs a shifter, not a write per offset.
            m.d.sync += [proxy_zero.eq(proxy_zero | (zero_bits << decided[:pos_w + vec_w])),
                         decided.eq(decided + completing)]

        def decision(q, name):
            """(a completing proxy holds cluster q's decision, that decision)."""
            rel = Signal(neurons_w, name=name)
            m.d.comb += rel.eq(q - decided)
            return proxy_done & (rel < completing), zero_bits.bit_select(rel[:slot_w], 1)

        next_q = Signal(neurons_w, name="walk_next_q")
        m.d.comb += next_q.eq(walk_q + 1)
        next_hit, next_zero = decision(next_q, "next_q_rel")
        here_hit, here_zero = decision(walk_q, "walk_q_rel")
        with m.If(walk_step):
            m.d.sync += zero_here.eq(Mux(next_hit, next_zero, proxy_zero.bit_select(next_q[:pos_w + vec_w], 1)))
        with m.Elif(here_hit):
            m.d.sync += zero_here.eq(here_zero)
        skip_done, skip_at = Signal(), Signal(pos_w + vec_w)
        at = Const(0)
        for pred_valid, _, d_v, d_pos in prediction:
            at = Mux(pred_valid, Cat(d_pos, d_v), at)
        m.d.comb += [skip_done.eq(Cat(*(valid & zero for valid, zero, _, _ in prediction)).any()),
                     rejected.w_en.eq(Cat(*(valid & ~zero for valid, zero, _, _ in prediction)).any()),
                     skip_at.eq(at), rejected.w_data.eq(at)]
        with m.If(skip_done):
            for b in range(2):
                with m.If(comp_buf == b):
                    m.d.sync += skipped[b].eq(skipped[b] | (Const(1, 1) << skip_at))
        finished = Signal.like(done)
        m.d.comb += finished.eq(done + completing + skip_done)
        new_macs = macs + completing * n_in
        with m.If(running):
            m.d.sync += [done.eq(finished), run_cycles.eq(run_cycles + 1), macs.eq(new_macs)]
            with m.If(finished == run_target):  # the run's last completion: hand its results to the output
                m.d.sync += [running.eq(0), in_full.bit_select(comp_buf, 1).eq(0),
                             out_full.bit_select(comp_buf, 1).eq(1), comp_buf.eq(~comp_buf)]
                for b in range(2):
                    with m.If(comp_buf == b):
                        m.d.sync += [out_vectors[b].eq(run_vectors), out_cycles[b].eq(run_cycles + 1),
                                     out_macs[b].eq(new_macs)]

        # Starting a run: its vectors are in (or, for a job's first run streaming its inputs, the weights are), the
        # CUs are free and its result buffer is out.
        streamed = first_pending & stream_inputs & (w_pos == n_out)
        with m.If(~running & ~out_full.bit_select(comp_buf, 1) & (in_full.bit_select(comp_buf, 1) | streamed)):
            m.d.sync += [running.eq(1), first_pending.eq(0), by_vector.eq(streamed),
                         proxy_k.eq(0), proxy_v.eq(0), walk_q.eq(0), walk_k.eq(0), walk_v.eq(0),
                         left.eq(sizes[0]), member.eq(n_proxies), cluster_start.eq(n_proxies), decided.eq(0),
                         done.eq(0), proxy_zero.eq(0), zero_here.eq(0), run_cycles.eq(0), macs.eq(0)]
            with m.If(streamed):
                m.d.sync += [run_vectors.eq(first_vectors), run_target.eq(first_target)]
            for b in range(2):
                with m.If(comp_buf == b):
                    m.d.sync += skipped[b].eq(0)
                    with m.If(~streamed):
                        m.d.sync += [run_vectors.eq(in_vectors[b]), run_target.eq(in_target[b])]

        # Output: vector by vector, ``issue`` neurons per word in DNN order, read ahead from the result banks; lane l
        # of vector v's word is bank (l + v) mod issue.
        out_w, out_v = Signal(pos_w - lb), Signal(vec_w)
        fire = self.y.valid & self.y.ready
        last_w = out_w == last_out_word
        last_out = last_w & (out_v == Mux(out_buf, out_vectors[1], out_vectors[0]) - 1)
        next_w, next_v = Mux(last_w, 0, out_w + 1), Mux(last_out, 0, Mux(last_w, out_v + 1, out_v))
        for ram in banks:
            m.d.comb += ram["raddr"].eq(Mux(fire, Cat(next_w[:pos_w - lb], next_v[:vec_w], out_buf ^ last_out),
                                            Cat(out_w, out_v, out_buf)))
        lane_skipped = Mux(out_buf, skipped[1], skipped[0]).bit_select(Cat(Const(0, lb), out_w, out_v), width)
        m.d.comb += [self.y.valid.eq(out_full.bit_select(out_buf, 1)),
                     self.y.payload.run_cycles.eq(Mux(out_buf, out_cycles[1], out_cycles[0])),
                     self.y.payload.macs.eq(Mux(out_buf, out_macs[1], out_macs[0]))]
        for lane in range(width):
            real = Cat(Const(lane, lb), out_w) < n_out
            rdata = Array(ram["rdata"] for ram in banks)[(out_v + lane)[:lb]]
            m.d.comb += [self.y.payload.skipped[lane].eq(lane_skipped[lane] & real),
                         self.y.payload.y[lane].eq(Mux(lane_skipped[lane] | ~real, 0, rdata))]
        with m.If(fire):
            m.d.sync += [out_w.eq(next_w), out_v.eq(next_v)]
            with m.If(last_out):
                m.d.sync += [out_full.bit_select(out_buf, 1).eq(0), out_buf.eq(~out_buf)]
        return m


# the blocks (CATALOG keys) this module's component builds
COMPONENTS = {"mor": MorEngine}
