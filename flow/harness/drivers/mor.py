"""Co-simulation driver of the Mixture-of-Rookies engine (docs/cosim.md block `mor`)."""

import numpy as np

from generators.mor_ports import KINDS, op_layout, result_layout
from golden.checks import InputError
from golden.mor import check_mor
from golden.mor_engine import beats, dnn_order, engine_layer, job_cycles, runs, stream_for

from ..activations import thin
from ..block import Block
from ..mor_inputs import engine_inputs, mor_tables
from ..pack import blank, pack, unpack
from .stream import Job, StreamDriver, require_keys

__all__ = ["MorDriver"]

KEYS = ("x", "w", "bias", "proxy", "m_q", "b_q", "enable")


class MorDriver(StreamDriver):
    """Runs layers through the engine: each job loads the layer (header, tables, weights in DNN order)
    and then as many runs of up to ``max_vectors`` input vectors as the harness holds; vectors split
    across runs and jobs, never a neuron. A layer of more than ``max_out`` neurons runs in pieces of
    whole clusters (``parts``), one after another.

    Throughput: n_cu·mac_width MACs per cycle while running; loading is one beat (load_words words) per cycle.
    """

    in_port, out_port = "op", "y"
    input_keys = KEYS
    depth, max_depth = 4096, 32768
    input_layout, output_layout = staticmethod(op_layout), staticmethod(result_layout)

    def __init__(self, cfg, sim, *, waves=False, gates=None):
        self.depth = self.harness_depth(cfg)
        super().__init__(cfg, sim, waves=waves, gates=gates)

    @classmethod
    def harness_depth(cls, cfg):
        """Words of the harness memories: the next power of two holding the load of the largest layer the preset
        takes and 16 full runs of it, so the weights stay loaded across many runs of a batch; at least 4096, and
        at most 32768 unless the load and one run need more (deeper harnesses cost minutes of Verilog conversion
        and compilation; a layer then runs as more jobs, each loading its weights)."""
        def words(n_runs):
            n = 1 + cfg.max_out + cfg.max_out * cfg.beats + n_runs * cfg.max_vectors * cfg.beats
            return 1 << (n - 1).bit_length()
        return max(cls.depth, min(cls.max_depth, words(16)), words(1))

    @staticmethod
    def cycles_per_word(cfg):
        """An input beat of a vector can hold max_out·load_words / n_cu cycles of CU work (every neuron on it)."""
        return 64 * max(1, cfg.max_out * cfg.load_words // cfg.n_cu // 8)

    @staticmethod
    def validate(cfg, inputs):
        """docs/cosim.md's `mor` inputs; InputError if a key, dtype, shape or range is wrong or the layer
        does not fit the preset (n_in ≤ max_in, every cluster ≤ max_out neurons)."""
        args = require_keys("mor", inputs, KEYS)
        check_mor(*(args[key] for key in KEYS))
        n_out, n_in = args["w"].shape
        if n_in > cfg.max_in:
            raise InputError(f"an input vector of {n_in} does not fit {cfg.module} (max_in {cfg.max_in})")
        order, sizes = dnn_order(args["proxy"])
        if n_out > cfg.max_out and sizes.max(initial=0) + 1 > cfg.max_out:
            raise InputError(f"a cluster of {sizes.max() + 1} neurons does not fit {cfg.module} (max_out "
                             f"{cfg.max_out}); clusters are never split")
        return args

    @staticmethod
    def parts(cfg, args):
        """The layer's neurons in pieces of at most ``max_out``, each holding whole clusters (a proxy and its
        members, DNN order, packed first-fit in order): a list of (neuron indices, the piece's args with
        proxies renumbered). One piece when the layer fits."""
        n_out = len(args["w"])
        if n_out <= cfg.max_out:
            return [(np.arange(n_out), args)]
        proxy = np.asarray(args["proxy"])
        clusters = [np.concatenate([[k], np.flatnonzero(proxy == k)]) for k in np.flatnonzero(proxy == -1)]
        groups, current = [], []
        for cluster in clusters:
            if sum(map(len, current)) + len(cluster) > cfg.max_out:
                groups.append(current)
                current = []
            current.append(cluster)
        groups.append(current)
        out = []
        for group in groups:
            idx = np.sort(np.concatenate(group))
            local = np.full(n_out, -1, np.int64)
            local[idx] = np.arange(len(idx))
            piece_proxy = np.where(proxy[idx] == -1, -1, local[np.maximum(proxy[idx], 0)])
            out.append((idx, {**{k: args[k][idx] for k in ("w", "bias", "m_q", "b_q", "enable")},
                              "x": args["x"], "proxy": piece_proxy.astype(args["proxy"].dtype)}))
        return out

    @classmethod
    def combine(cls, cfg, args, outputs):
        """One layer's ``({"y", "skipped", "macs", "run_cycles"}, cycles)`` from its pieces' (in ``parts`` order)."""
        n_out = len(args["w"])
        shape = args["x"].shape[:-1] + (n_out,)
        y, skipped = np.zeros(shape, np.int32), np.zeros(shape, bool)
        for (idx, _), (out, _) in zip(cls.parts(cfg, args), outputs):
            y[..., idx], skipped[..., idx] = out["y"], out["skipped"]
        return {"y": y, "skipped": skipped, "macs": np.int64(sum(out["macs"] for out, _ in outputs)),
                "run_cycles": np.sum([out["run_cycles"] for out, _ in outputs], axis=0)}, sum(c for _, c in outputs)

    @classmethod
    def job_runs(cls, cfg, n_vectors, n_in, n_out):
        """Runs of input vectors (``golden.mor_engine.runs``) grouped into jobs: the layer load plus the
        runs' input words, and their outputs, fit the harness."""
        words, per_run = beats(cfg, n_in), min(cfg.max_vectors, n_vectors)
        depth = cls.harness_depth(cfg)
        per_job = min((depth - 1 - n_out - n_out * words) // (per_run * words),
                      depth // (per_run * -(-n_out // cfg.issue)))
        if per_job < 1:
            raise InputError(f"a layer of {n_out}×{n_in} with runs of {per_run} vectors does not fit the "
                             f"harness's {depth} words")
        all_runs = runs(cfg, n_vectors)
        return [all_runs[j:j + per_job] for j in range(0, len(all_runs), per_job)]

    @classmethod
    def golden(cls, cfg, args):
        """``({"y", "skipped", "macs", "run_cycles"}, cycles)`` of the golden engine, piece by piece (``parts``)."""
        return cls.combine(cfg, args, [cls.golden_piece(cfg, piece) for _, piece in cls.parts(cfg, args)])

    @staticmethod
    def events(cfg, args, golden):
        """``mac``: multiply-accumulates of the computed neurons; ``product``: those with both operands non-zero;
        ``skip``: neurons predicted zero and skipped."""
        x = (args["x"].reshape(-1, args["w"].shape[1]) != 0).astype(np.int64)
        both = x @ (args["w"] != 0).astype(np.int64).T          # [vectors, neurons]
        skipped = golden["skipped"].reshape(both.shape)
        return {"mac": int(golden["macs"]), "product": int(both[~skipped].sum()), "skip": int(skipped.sum())}

    @classmethod
    def golden_piece(cls, cfg, args):
        out, cycles, _ = cls.schedule(cfg, args)
        return {key: value for key, value in out.items() if key != "idle"}, cycles

    @classmethod
    def schedule(cls, cfg, args):
        """``(engine_layer's outputs, cycles, phases)`` of one piece, its jobs' cycles and phases summed."""
        n_out, n_in = args["w"].shape
        jobs = cls.job_runs(cfg, args["x"].size // n_in, n_in, n_out)
        starts = np.cumsum([0] + [len(job) for job in jobs[:-1]])
        out = engine_layer(cfg, **args, job_starts=set(starts.tolist()))
        cycles, phases = 0, {}
        for job, r in zip(jobs, starts):
            job_total, job_phases = job_cycles(cfg, n_in, n_out, [run.stop - run.start for run in job],
                                               out["run_cycles"][r:r + len(job)])
            cycles += job_total
            phases = {key: phases.get(key, 0) + value for key, value in job_phases.items()}
        return out, cycles, phases

    @classmethod
    def piece(cls, cfg, args, output, index):
        """The run (of the piece of neurons) holding ``output[index]``."""
        parts = cls.parts(cfg, args)
        neuron = index[-1] if output in ("y", "skipped") and index else 0
        args = next(piece for idx, piece in parts if neuron in idx)
        if args["x"].ndim == 1 or output == "macs":
            return args
        if output == "run_cycles":
            return {**args, "x": args["x"][runs(cfg, len(args["x"]))[index[0]]]}
        start = index[0] // cfg.max_vectors * cfg.max_vectors
        return {**args, "x": args["x"][start:start + cfg.max_vectors]}

    def load_words(self, args, vectors):
        """The header (for a job whose first run has ``vectors`` vectors) and the table words of a layer, and its
        weight words, in DNN order."""
        cfg = self.cfg
        w = args["w"]
        n_out, n_in = w.shape
        order, sizes = dnn_order(args["proxy"])
        words, n_beats = -(-n_in // cfg.mac_width), beats(cfg, n_in)
        bin_words = -(-n_in // cfg.bits_per_cycle)
        fields = blank(self.in_layout, 1 + n_out)
        header = {"kind": KINDS["header"], "n_in": n_in, "n_out": n_out, "n_proxies": len(sizes), "words": words,
                  "beats": n_beats, "bin_words": bin_words, "tail_bits": n_in - (bin_words - 1) * cfg.bits_per_cycle,
                  "vectors": vectors, "stream": int(stream_for(n_out, vectors) == "inputs")}
        for name, value in header.items():
            fields[name][0] = value
        table = slice(1, 1 + n_out)
        fields["kind"][table] = KINDS["neuron"]
        for name, key in (("table.bias", "bias"), ("table.m_q", "m_q"), ("table.b_q", "b_q"), ("enable", "enable")):
            fields[name][table] = args[key][order]
        fields["size"][1:1 + len(sizes)] = sizes
        weights = blank(self.in_layout, n_out * n_beats)
        weights["kind"][:] = KINDS["weight"]
        weights["data"][:] = self.chunked(w[order])
        return pack(self.in_layout, fields), pack(self.in_layout, weights)

    def chunked(self, rows):
        """int64 [n · beats, load_words · mac_width]: rows zero-padded to whole beats, one beat a row."""
        width = self.cfg.load_words * self.cfg.mac_width
        padded = np.zeros((len(rows), beats(self.cfg, rows.shape[1]) * width), np.int64)
        padded[:, :rows.shape[1]] = rows
        return padded.reshape(-1, width)

    def input_words(self, vectors, job, n_out):
        """Input words of the ``job``'s runs of ``vectors``: ``last`` on each vector's final word, ``run``
        also on each run's; and how many output words each input word yields."""
        words = beats(self.cfg, vectors.shape[1])
        first, stop = job[0].start, job[-1].stop
        fields = blank(self.in_layout, (stop - first) * words)
        fields["kind"][:] = KINDS["input"]
        fields["last"][words - 1::words] = 1
        fields["data"] = self.chunked(vectors[first:stop])
        yields = [0] * len(fields["run"])
        for run in job:
            end = (run.stop - first) * words - 1
            fields["run"][end], yields[end] = 1, (run.stop - run.start) * -(-n_out // self.cfg.issue)
        return pack(self.in_layout, fields), yields

    def layer_jobs(self, args, **job_options):
        """The jobs of every piece (``parts``) in turn."""
        return [job for _, piece in self.parts(self.cfg, args) for job in self.piece_jobs(piece, **job_options)]

    def layer_outputs(self, args, results):
        """RTL ``({"y", "skipped", "macs", "run_cycles"}, cycles)`` of one layer from its pieces' jobs' results."""
        outputs, results = [], list(results)
        for _, piece in self.parts(self.cfg, args):
            n_out, n_in = piece["w"].shape
            n_jobs = len(self.job_runs(self.cfg, piece["x"].size // n_in, n_in, n_out))
            outputs.append(self.piece_outputs(piece, results[:n_jobs]))
            results = results[n_jobs:]
        return self.combine(self.cfg, args, outputs)

    def piece_jobs(self, args, **job_options):
        """One job per group of runs: the header and tables, the first run's input words and the weights (the
        streamed kind second, ``stream_for``), then the other runs' input words."""
        x2 = args["x"].reshape(-1, args["x"].shape[-1])
        n_out, n_in = args["w"].shape
        words = beats(self.cfg, n_in)
        jobs = []
        for job in self.job_runs(self.cfg, len(x2), n_in, n_out):
            vectors = job[0].stop - job[0].start
            head, weights = self.load_words(args, vectors)
            inputs, yields = self.input_words(x2, job, n_out)
            first = vectors * words            # the first run's input beats
            if stream_for(n_out, vectors) == "weights":
                stream = head + inputs[:first] + weights + inputs[first:]
                out = [0] * len(head) + yields[:first] + [0] * len(weights) + yields[first:]
            else:
                stream = head + weights + inputs
                out = [0] * (len(head) + len(weights)) + yields
            jobs.append(Job(stream, yields=out, **job_options))
        return jobs

    def piece_outputs(self, args, results):
        """RTL outputs and cycles of one piece from its jobs' results: ``issue`` neurons per word, in DNN order."""
        n_out = args["w"].shape[0]
        x = args["x"]
        order, _ = dnn_order(args["proxy"])
        fields = [unpack(self.out_layout, result.words) for result in results]
        out_words = -(-n_out // self.cfg.issue)
        y = np.concatenate([f["y"] for f in fields]).reshape(-1, out_words * self.cfg.issue)[:, :n_out]
        skipped = np.concatenate([f["skipped"] for f in fields]).reshape(y.shape[0], -1)[:, :n_out]
        by_index = np.empty_like(order)
        by_index[order] = np.arange(n_out)
        ends = np.cumsum([(run.stop - run.start) * out_words for run in runs(self.cfg, x.size // x.shape[-1])]) - 1
        words = {key: np.concatenate([f[key] for f in fields]) for key in ("run_cycles", "macs")}
        shape = x.shape[:-1] + (n_out,)
        return {"y": y[:, by_index].astype(np.int32).reshape(shape),
                "skipped": skipped[:, by_index].astype(bool).reshape(shape),
                "macs": np.int64(words["macs"][ends].sum()),
                "run_cycles": words["run_cycles"][ends].astype(np.int64)}, sum(result.cycles for result in results)


def calibration_workload(cfg, net):
    """conv1 and conv2 with the MoR technique's real predictor tables: the 4 pixels with the most non-zero inputs,
    conv2's input vectors cut to their first 18 (gate-level simulation of the engine is slow)."""
    layer_tables, threshold, _ = mor_tables(net, log=lambda *a: None)
    image = net.data.x_test[:1]
    out = {}
    for name in ("conv1", "conv2"):
        args = engine_inputs(net.qnet, layer_tables, threshold, image)[name][0]
        x = args["x"][:, :18]
        densest = np.sort(np.argsort(-(x != 0).sum(axis=1), kind="stable")[:4])
        args = {**args, "x": x[densest], "w": np.ascontiguousarray(args["w"][:, :x.shape[1]])}
        out[name] = lambda keep, args=args: {**args, "x": thin(args["x"], keep)}
    return out


BLOCKS = (Block(name="mor", driver=MorDriver, leaves=("bincu",), workload=calibration_workload, calibrated=("small",),
                placed="small", docs="mor.md"),)
