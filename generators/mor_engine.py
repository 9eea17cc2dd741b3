"""Mixture-of-Rookies layer engine (docs/mor.md, MoR §4): CUs, binCUs and the neurons controller."""

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .binary_predictor import BinaryPredictor, bincu_input_layout, bincu_output_layout
from .delay import delay
from .mor_ports import (
    KINDS,
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
    """{kind: (word shape, depth, instances)} of the engine's RAM leaves (one replica per reader). Inputs and
    results have two buffers (the top address bit), so a run loads and streams while its neighbours compute."""
    pos, word, bword = position_bits(cfg), word_bits(cfg), bin_word_bits(cfg)
    runs = (1 << vector_bits(cfg)) + cfg.max_vectors  # buffer 1 starts at 2**vector_bits
    return {
        "weights": (unsigned(8 * cfg.mac_width), cfg.max_out << word, cfg.n_cu),
        "inputs": (unsigned(8 * cfg.mac_width), runs << word, cfg.n_cu),
        "bin_weights": (unsigned(cfg.bits_per_cycle), cfg.max_out << bword, cfg.n_bincu),
        "bin_inputs": (unsigned(cfg.bits_per_cycle), runs << bword, cfg.n_bincu),
        "table": (table_layout(cfg), 1 << pos, cfg.n_cu + cfg.n_bincu),
        "results": (unsigned(32), runs << pos, 1),
    }


class MorEngine(wiring.Component):
    """One layer at a time: load its tables and weights once, then per run of up to ``max_vectors``
    input vectors compute every neuron under the skip rule and stream the results (the schedule of
    ``golden.mor_engine``).

    Input ``op`` (``op_layout``): a header, the n_out table entries and the weights in DNN order
    (proxies, then members by cluster), then per run its vectors' words (``last`` ends a vector,
    ``run`` the run). Sign bits of weights (w ≥ 0) and inputs (x > 0) are packed into the binCUs'
    binary memories as they load. Each CU and binCU reads its own replica of the memories it uses.

    In a run the controller issues one neuron per cycle to the lowest free CU (the binCUs' rejected
    members first, then members whose proxy is done, then the next proxy, vector by vector) and one
    member per cycle to the lowest free binCU (members whose proxy decided zero and that are
    enabled). A CU takes ``words`` cycles per neuron and completes ``cfg.cu_stages`` cycles after its last
    one (y = ReLU(bias + acc); its words pass RAM data, operand, product and sum stages); a binCU takes
    ``bin_words`` cycles and predicts ``cfg.bin_stages + cfg.bincu.latency`` cycles after its last one (its
    chunks pass RAM data and chunk stages before the binCU): zero skips the
    member (y = 0), otherwise it queues for a CU.

    Output ``y`` (``result_layout``): after the run, vector by vector, one word per neuron in original
    index order, with the run's cycles and MACs.

    Runs overlap through two input and two result buffers: run r + 1's vectors load while run r computes
    and run r - 1's outputs stream; a run starts (one cycle) once its vectors are in, the CUs are free and
    its result buffer is out. Throughput: n_cu·mac_width MACs per cycle while running, one issue per cycle.
    Latency: a loaded word per cycle; the start cycle, the run; one output word per cycle. Layer words
    (header, tables, weights) are taken only when no run is loaded, running or streaming.

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

    def _ram(self, m, kind, name):
        """An instance of RAM leaf ``kind``; returns its port signals."""
        shape, depth, _ = ram_specs(self.cfg)[kind]
        return ram_instance(m, f"{self.cfg.module}_{kind}", shape, depth, name)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        op = self.op.payload
        mw, group = cfg.mac_width, cfg.words_per_binary
        pos_w, vec_w = position_bits(cfg), vector_bits(cfg)
        neurons_w = pos_w + vec_w + 1  # counts up to max_vectors·max_out

        # Layer registers (from the header) and per-position controller tables.
        # The last cluster, word and binary word (n_proxies - 1, words - 1, bin_words - 1) are registered too, so
        # the walker's and the units' "last" compares are off the adders.
        n_in = Signal.like(op.n_in, name="n_in")
        n_out, n_proxies = Signal.like(op.n_out, name="n_out"), Signal.like(op.n_proxies, name="n_proxies")
        last_k = Signal.like(op.n_proxies, name="last_k")
        last_word = Signal.like(op.words, name="last_word")
        last_bin_word = Signal.like(op.bin_words, name="last_bin_word")
        tail_bits = Signal.like(op.tail_bits, name="tail_bits")
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
        w_pos, w_word, w_sub, w_bin = Signal(pos_w), Signal(word_bits(cfg)), Signal(range(group)), \
            Signal(bin_word_bits(cfg))
        x_word, x_sub, x_bin = Signal(word_bits(cfg)), Signal(range(group)), Signal(bin_word_bits(cfg))
        x_vec = Signal(vec_w + 1)              # vectors loaded for the next run
        x_target = Signal(neurons_w)           # their neurons: x_vec · n_out
        w_bits_acc, x_bits_acc = Signal(cfg.bits_per_cycle), Signal(cfg.bits_per_cycle)
        take = Signal()
        m.d.comb += [self.op.ready.eq(Mux(op.kind == KINDS["input"], ~in_full.bit_select(in_buf, 1), idle)),
                     take.eq(self.op.valid & self.op.ready)]
        is_kind = {kind: take & (op.kind == code) for kind, code in KINDS.items()}
        row_end = w_word == last_word

        def packed(acc, sub, signs):
            """The binary word so far with this word's sign bits at slot ``sub``."""
            return Cat(*(Mux(sub == s, signs, acc[s * mw:(s + 1) * mw]) for s in range(group)))

        w_signs = Cat(*(~op.data[i][7] for i in range(mw)))
        x_signs = Cat(*((op.data[i] > 0) for i in range(mw)))
        w_binary, x_binary = packed(w_bits_acc, w_sub, w_signs), packed(x_bits_acc, x_sub, x_signs)
        w_flush = (w_sub == group - 1) | row_end
        x_flush = (x_sub == group - 1) | (x_word == last_word)

        with m.If(is_kind["header"]):
            m.d.sync += [n_in.eq(op.n_in), n_out.eq(op.n_out), n_proxies.eq(op.n_proxies),
                         last_k.eq(op.n_proxies - 1), last_word.eq(op.words - 1),
                         last_bin_word.eq(op.bin_words - 1),
                         tail_bits.eq(op.tail_bits), table_pos.eq(0),
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

        # Run state. A run's neurons are (vector v, position); proxies go v-major, and the walker visits
        # proxy q = v·n_proxies + k's members (cluster k of vector v) in the order proxies complete.
        run_vectors, run_target = Signal(vec_w + 1), Signal(neurons_w)
        proxy_k, proxy_v = Signal(pos_w + 1), Signal(vec_w + 1)
        walk_q, walk_k, walk_v, member = Signal(neurons_w), Signal(pos_w + 1), Signal(vec_w + 1), Signal(pos_w + 1)
        left = Signal.like(op.size, name="left")
        decided, done = Signal(neurons_w, name="decided"), Signal(neurons_w, name="done")
        neurons = cfg.max_vectors * cfg.max_out
        proxy_zero = Signal(neurons)  # by completion order
        skipped = [Signal(neurons, name=f"skipped{b}") for b in range(2)]  # per result buffer, by Cat(idx, v)
        run_cycles, macs = Signal(32), Signal(32)
        out_vectors = [Signal(vec_w + 1, name=f"out{b}_vectors") for b in range(2)]
        out_cycles = [Signal(32, name=f"out{b}_run_cycles") for b in range(2)]
        out_macs = [Signal(32, name=f"out{b}_macs") for b in range(2)]
        m.submodules.rejected = rejected = fifo.SyncFIFO(width=pos_w + vec_w, depth=neurons)

        # Walker over the members of decided clusters.
        can_walk = running & (walk_q < decided)
        advance = can_walk & (left == 0)
        walker = can_walk & (left != 0)
        # zero_here is proxy_zero's bit of walk_q, kept in a register (the next cluster's bit is looked up ahead, and a
        # completion writing the bit it needs is bypassed), so the wide bit-select is off the issue path.
        zero_here = Signal()
        to_bincu = zero_here & enable.bit_select(member[:pos_w], 1)
        walker_taken = Signal()

        # CU issue.
        cu_free = [Signal(name=f"cu{i}_free") for i in range(cfg.n_cu)]
        any_cu, cu_pick = _lowest(cu_free)
        issue_pos, issue_v = Signal(pos_w), Signal(vec_w)
        cu_issue = Signal()
        last_proxy_k = proxy_k == last_k
        with m.If(running & any_cu):
            with m.If(rejected.r_rdy):
                m.d.comb += [cu_issue.eq(1), Cat(issue_pos, issue_v).eq(rejected.r_data), rejected.r_en.eq(1)]
            with m.Elif(walker & ~to_bincu):
                m.d.comb += [cu_issue.eq(1), issue_pos.eq(member), issue_v.eq(walk_v), walker_taken.eq(1)]
            with m.Elif(proxy_v < run_vectors):
                m.d.comb += [cu_issue.eq(1), issue_pos.eq(proxy_k), issue_v.eq(proxy_v)]
                m.d.sync += [proxy_k.eq(Mux(last_proxy_k, 0, proxy_k + 1)), proxy_v.eq(proxy_v + last_proxy_k)]

        # binCU issue.
        lane_free = [Signal(name=f"bincu{j}_free") for j in range(cfg.n_bincu)]
        any_lane, lane_pick = _lowest(lane_free)
        lane_issue = Signal()
        m.d.comb += lane_issue.eq(walker & to_bincu & any_lane)
        with m.If(lane_issue):
            m.d.comb += walker_taken.eq(1)
        last_cluster = walk_k == last_k
        next_k = Mux(last_cluster, 0, walk_k + 1)
        with m.If(walker_taken):
            m.d.sync += [member.eq(member + 1), left.eq(left - 1)]
        walk_step = Signal()
        m.d.comb += walk_step.eq(advance | (walker_taken & (left == 1)))  # an empty cluster, or its last member taken
        with m.If(walk_step):
            m.d.sync += [walk_q.eq(walk_q + 1), walk_k.eq(next_k), walk_v.eq(walk_v + last_cluster),
                         left.eq(sizes[next_k[:pos_w]])]
            with m.If(last_cluster):
                m.d.sync += member.eq(n_proxies)

        # Compute units: address stage A, data stage B (the RAMs' words), operands O, products P, their sum S (into
        # acc, which starts at the bias), completion C (cfg.cu_stages after A's last word).
        completion = []  # (valid, acc, idx, v, pos) per CU
        meta_w = 3 + pos_w + vec_w
        for i in range(cfg.n_cu):
            wram = self._ram(m, "weights", f"cu{i}_weights")
            xram = self._ram(m, "inputs", f"cu{i}_inputs")
            tram = self._ram(m, "table", f"cu{i}_table")
            load(wram, "weight", Cat(w_word, w_pos), op.data.as_value())
            load(xram, "input", Cat(x_word, x_vec[:vec_w], in_buf), op.data.as_value())
            load(tram, "neuron", table_pos, op.table.as_value())
            a_valid, a_pos, a_word = Signal(name=f"cu{i}_a_valid"), Signal(pos_w, name=f"cu{i}_a_pos"), \
                Signal(word_bits(cfg), name=f"cu{i}_a_word")
            a_v = Signal(vec_w, name=f"cu{i}_a_v")
            a_last = a_word == last_word
            m.d.comb += [cu_free[i].eq(~a_valid | a_last), wram["raddr"].eq(Cat(a_word, a_pos)),
                         xram["raddr"].eq(Cat(a_word, a_v, comp_buf))]
            with m.If(cu_issue & (cu_pick == i)):
                m.d.sync += [a_valid.eq(1), a_pos.eq(issue_pos), a_v.eq(issue_v), a_word.eq(0)]
            with m.Elif(a_valid):
                m.d.sync += [a_valid.eq(~a_last), a_word.eq(a_word + 1)]
            # (valid, first word, last word, position, vector) riding along the stages.
            b_meta = delay(m, Cat(a_valid, a_word == 0, a_last, a_pos, a_v), 1, Const(1), f"cu{i}_b", reset_less=False)
            o_meta = delay(m, b_meta, 1, Const(1), f"cu{i}_o", reset_less=False)
            p_meta = delay(m, o_meta, 1, Const(1), f"cu{i}_p", reset_less=False)
            s_meta = delay(m, p_meta, 1, Const(1), f"cu{i}_s", reset_less=False)
            s_valid, s_first, s_last, s_pos, s_v = (s_meta[0], s_meta[1], s_meta[2], s_meta[3:3 + pos_w],
                                                    s_meta[3 + pos_w:meta_w])
            row_shape = op_layout(cfg)["data"].shape
            w_row, x_row = Signal(row_shape, name=f"cu{i}_o_w"), Signal(row_shape, name=f"cu{i}_o_x")
            m.d.sync += [w_row.eq(wram["rdata"]), x_row.eq(xram["rdata"])]
            products = [Signal(signed(16), name=f"cu{i}_p_product{lane}") for lane in range(mw)]
            m.d.sync += [products[lane].eq(w_row[lane] * x_row[lane]) for lane in range(mw)]
            dot = Signal(signed(16 + mw.bit_length()), name=f"cu{i}_s_dot")
            m.d.sync += dot.eq(sum(products))
            m.d.comb += tram["raddr"].eq(p_meta[3:3 + pos_w])  # the neuron's bias and index, read for stage S
            entry = data.View(table_layout(cfg), tram["rdata"])
            psum = Signal(signed(32), name=f"cu{i}_psum")
            acc = Signal(signed(32), name=f"cu{i}_acc")
            m.d.comb += acc.eq(Mux(s_first, entry.bias, psum) + dot)
            with m.If(s_valid):
                m.d.sync += psum.eq(acc)
            c_valid, c_acc = Signal(name=f"cu{i}_c_valid"), Signal(signed(32), name=f"cu{i}_c_acc")
            c_idx, c_pos = Signal(pos_w, name=f"cu{i}_c_idx"), Signal(pos_w, name=f"cu{i}_c_pos")
            c_v = Signal(vec_w, name=f"cu{i}_c_v")
            m.d.sync += [c_valid.eq(s_valid & s_last), c_acc.eq(acc), c_idx.eq(entry.idx), c_pos.eq(s_pos),
                         c_v.eq(s_v)]
            completion.append((c_valid, c_acc, c_idx, c_v, c_pos))

        # Binary CUs: address stage, chunk into the binCU, prediction its latency after the last chunk.
        prediction = []  # (valid, zero, idx, v, pos) per binCU
        for j in range(cfg.n_bincu):
            bw = self._ram(m, "bin_weights", f"bincu{j}_weights")
            bx = self._ram(m, "bin_inputs", f"bincu{j}_inputs")
            bt = self._ram(m, "table", f"bincu{j}_table")
            load(bw, "weight", Cat(w_bin, w_pos), w_binary, w_flush)
            load(bx, "input", Cat(x_bin, x_vec[:vec_w], in_buf), x_binary, x_flush)
            load(bt, "neuron", table_pos, op.table.as_value())
            a_valid, a_pos = Signal(name=f"bincu{j}_a_valid"), Signal(pos_w, name=f"bincu{j}_a_pos")
            a_word, a_v = Signal(bin_word_bits(cfg), name=f"bincu{j}_a_word"), Signal(vec_w, name=f"bincu{j}_a_v")
            a_last = a_word == last_bin_word
            m.d.comb += [lane_free[j].eq(~a_valid | a_last), bw["raddr"].eq(Cat(a_word, a_pos)),
                         bx["raddr"].eq(Cat(a_word, a_v, comp_buf)), bt["raddr"].eq(a_pos)]
            with m.If(lane_issue & (lane_pick == j)):
                m.d.sync += [a_valid.eq(1), a_pos.eq(member[:pos_w]), a_v.eq(walk_v), a_word.eq(0)]
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
            tag = delay(m, Cat(entry.idx, b_v, b_pos), cfg.bin_stages - 1 + cfg.bincu.latency, Const(1),
                        f"bincu{j}_tag")
            prediction.append((pred_valid, pred.zero, tag[:pos_w], tag[pos_w:pos_w + vec_w], tag[pos_w + vec_w:]))

        # Completions: at most one CU and one binCU per cycle (one issue of each kind per cycle,
        # each with a fixed latency); proxies complete in issue order.
        yram = self._ram(m, "results", "results")
        # The completing neuron is selected first, so each wide flag vector has one indexed write.
        cu_done, skip_done = Signal(), Signal()
        proxy_done, proxy_is_zero = Signal(), Signal()
        skip_at = Signal(pos_w + vec_w)
        for c_valid, c_acc, c_idx, c_v, c_pos in completion:
            with m.If(c_valid):
                m.d.comb += [cu_done.eq(1), yram["we"].eq(1), yram["waddr"].eq(Cat(c_idx, c_v, comp_buf)),
                             yram["wdata"].eq(Mux(c_acc[-1], 0, c_acc)), proxy_done.eq(c_pos < n_proxies),
                             proxy_is_zero.eq(c_acc <= 0)]
        with m.If(proxy_done):
            m.d.sync += [proxy_zero.bit_select(decided[:pos_w + vec_w], 1).eq(proxy_is_zero),
                         decided.eq(decided + 1)]
        next_q = walk_q + 1
        with m.If(walk_step):
            m.d.sync += zero_here.eq(Mux(proxy_done & (decided == next_q), proxy_is_zero,
                                         proxy_zero.bit_select(next_q[:pos_w + vec_w], 1)))
        with m.Elif(proxy_done & (decided == walk_q)):
            m.d.sync += zero_here.eq(proxy_is_zero)
        for pred_valid, zero, d_idx, d_v, d_pos in prediction:
            with m.If(pred_valid):
                with m.If(zero):
                    m.d.comb += [skip_done.eq(1), skip_at.eq(Cat(d_idx, d_v))]
                with m.Else():
                    m.d.comb += [rejected.w_en.eq(1), rejected.w_data.eq(Cat(d_pos, d_v))]
        with m.If(skip_done):
            for b in range(2):
                with m.If(comp_buf == b):
                    m.d.sync += skipped[b].bit_select(skip_at, 1).eq(1)
        finished = Signal.like(done)
        m.d.comb += finished.eq(done + cu_done + skip_done)
        with m.If(running):
            m.d.sync += [done.eq(finished), run_cycles.eq(run_cycles + 1), macs.eq(macs + Mux(cu_done, n_in, 0))]
            with m.If(finished == run_target):  # the run's last completion: hand its results to the output
                m.d.sync += [running.eq(0), in_full.bit_select(comp_buf, 1).eq(0),
                             out_full.bit_select(comp_buf, 1).eq(1), comp_buf.eq(~comp_buf)]
                for b in range(2):
                    with m.If(comp_buf == b):
                        m.d.sync += [out_vectors[b].eq(run_vectors), out_cycles[b].eq(run_cycles + 1),
                                     out_macs[b].eq(macs + Mux(cu_done, n_in, 0))]

        # Starting a run: its vectors are in, the CUs are free and its result buffer is out.
        with m.If(~running & in_full.bit_select(comp_buf, 1) & ~out_full.bit_select(comp_buf, 1)):
            m.d.sync += [running.eq(1), proxy_k.eq(0), proxy_v.eq(0), walk_q.eq(0), walk_k.eq(0), walk_v.eq(0),
                         left.eq(sizes[0]), member.eq(n_proxies), decided.eq(0), done.eq(0), proxy_zero.eq(0),
                         zero_here.eq(0),
                         run_cycles.eq(0), macs.eq(0)]
            for b in range(2):
                with m.If(comp_buf == b):
                    m.d.sync += [run_vectors.eq(in_vectors[b]), run_target.eq(in_target[b]), skipped[b].eq(0)]

        # Output: vector by vector, one word per neuron in index order, read ahead from the results RAM.
        out_idx, out_v = Signal(pos_w), Signal(vec_w)
        fire = self.y.valid & self.y.ready
        last_idx = out_idx == n_out - 1
        last_word = last_idx & (out_v == Mux(out_buf, out_vectors[1], out_vectors[0]) - 1)
        next_idx, next_v = Mux(last_idx, 0, out_idx + 1), Mux(last_word, 0, Mux(last_idx, out_v + 1, out_v))
        m.d.comb += [yram["raddr"].eq(Mux(fire, Cat(next_idx[:pos_w], next_v[:vec_w], out_buf ^ last_word),
                                          Cat(out_idx, out_v, out_buf))),
                     self.y.valid.eq(out_full.bit_select(out_buf, 1)),
                     self.y.payload.skipped.eq(Mux(out_buf, skipped[1], skipped[0]).bit_select(Cat(out_idx, out_v),
                                                                                               1)),
                     self.y.payload.y.eq(Mux(self.y.payload.skipped, 0, yram["rdata"])),
                     self.y.payload.run_cycles.eq(Mux(out_buf, out_cycles[1], out_cycles[0])),
                     self.y.payload.macs.eq(Mux(out_buf, out_macs[1], out_macs[0]))]
        with m.If(fire):
            m.d.sync += [out_idx.eq(next_idx), out_v.eq(next_v)]
            with m.If(last_word):
                m.d.sync += [out_full.bit_select(out_buf, 1).eq(0), out_buf.eq(~out_buf)]
        return m


# the blocks (CATALOG keys) this module's component builds
COMPONENTS = {"mor": MorEngine}
