"""Co-simulation driver of the Mixture-of-Rookies engine (SPEC §9 block `mor`)."""

import numpy as np

from generators.mor_ports import KINDS, op_layout, result_layout
from golden.checks import InputError
from golden.mor import check_mor
from golden.mor_engine import dnn_order, engine_layer, job_cycles

from ..pack import blank, pack, unpack
from .stream import ALL_ONES, Job, StreamDriver, require_keys

__all__ = ["MorDriver"]

KEYS = ("x", "w", "bias", "proxy", "m_q", "b_q", "enable")


class MorDriver(StreamDriver):
    """Runs layers through the engine: each job loads the layer (header, tables, weights in DNN order)
    and then as many input vectors as the harness holds; vectors split across jobs, never a neuron.

    Throughput: n_cu·mac_width MACs per cycle while running; loading is one word per cycle.
    """

    in_port, out_port = "op", "y"
    depth = 4096
    input_layout, output_layout = staticmethod(op_layout), staticmethod(result_layout)

    @staticmethod
    def validate(cfg, inputs):
        """SPEC §9's `mor` inputs; InputError if a key, dtype, shape or range is wrong or the layer
        does not fit the preset (n_in ≤ max_in, n_out ≤ max_out)."""
        args = require_keys("mor", inputs, KEYS)
        check_mor(*(args[key] for key in KEYS))
        n_out, n_in = args["w"].shape
        if n_in > cfg.max_in:
            raise InputError(f"an input vector of {n_in} does not fit {cfg.module} (max_in {cfg.max_in})")
        if n_out > cfg.max_out:
            raise InputError(f"{n_out} neurons do not fit {cfg.module} (max_out {cfg.max_out})")
        return args

    @classmethod
    def vector_pieces(cls, cfg, n_vectors, n_in, n_out):
        """Slices of input vectors, one per job: the layer load plus each vector's words fit the harness."""
        words = -(-n_in // cfg.mac_width)
        per_job = min((cls.depth - 1 - n_out - n_out * words) // words, cls.depth // n_out)
        if per_job < 1:
            raise InputError(f"loading a layer of {n_out}×{n_in} takes more than the harness's {cls.depth} words")
        return [slice(p, min(p + per_job, n_vectors)) for p in range(0, n_vectors, per_job)]

    @classmethod
    def golden(cls, cfg, args):
        """``({"y", "skipped", "macs", "run_cycles"}, cycles)`` of the golden engine."""
        out = engine_layer(cfg, **args)
        n_out, n_in = args["w"].shape
        runs = out["run_cycles"].reshape(-1)
        cycles = sum(job_cycles(cfg, n_in, n_out, runs[piece])
                     for piece in cls.vector_pieces(cfg, len(runs), n_in, n_out))
        return out, cycles

    @staticmethod
    def piece(cfg, args, output, index):
        """The single input vector holding ``output[index]``."""
        x = args["x"] if args["x"].ndim == 1 else args["x"][index[0] if index else 0]
        return {**args, "x": x}

    def load_words(self, args):
        """Header, table and weight words of a layer, in DNN order."""
        cfg = self.cfg
        w = args["w"]
        n_out, n_in = w.shape
        order, sizes = dnn_order(args["proxy"])
        words = -(-n_in // cfg.mac_width)
        bin_words = -(-n_in // cfg.bits_per_cycle)
        fields = blank(self.in_layout, 1 + n_out + n_out * words)
        header = {"kind": KINDS["header"], "n_in": n_in, "n_out": n_out, "n_proxies": len(sizes), "words": words,
                  "bin_words": bin_words, "tail_bits": n_in - (bin_words - 1) * cfg.bits_per_cycle}
        for name, value in header.items():
            fields[name][0] = value
        table = slice(1, 1 + n_out)
        fields["kind"][table] = KINDS["neuron"]
        fields["table.idx"][table] = order
        for name, key in (("table.bias", "bias"), ("table.m_q", "m_q"), ("table.b_q", "b_q"), ("enable", "enable")):
            fields[name][table] = args[key][order]
        fields["size"][1:1 + len(sizes)] = sizes
        fields["kind"][1 + n_out:] = KINDS["weight"]
        fields["data"][1 + n_out:] = self.chunked(w[order], words).reshape(-1, cfg.mac_width)
        return pack(self.in_layout, fields)

    def chunked(self, rows, words):
        """int64 [n, words, mac_width]: rows zero-padded to whole words."""
        padded = np.zeros((len(rows), words * self.cfg.mac_width), np.int64)
        padded[:, :rows.shape[1]] = rows
        return padded.reshape(len(rows), words, self.cfg.mac_width)

    def input_words(self, vectors):
        """Input words of each vector, ``last`` on each vector's final word."""
        words = -(-vectors.shape[1] // self.cfg.mac_width)
        fields = blank(self.in_layout, len(vectors) * words)
        fields["kind"][:] = KINDS["input"]
        fields["last"][words - 1::words] = 1
        fields["data"] = self.chunked(vectors, words).reshape(-1, self.cfg.mac_width)
        return pack(self.in_layout, fields), fields["last"]

    def run(self, args, *, in_pattern=ALL_ONES, out_pattern=ALL_ONES):
        """RTL ``({"y", "skipped", "macs", "run_cycles"}, cycles)`` of one layer."""
        x = args["x"]
        x2 = x.reshape(-1, x.shape[-1])
        n_out, n_in = args["w"].shape
        load = self.load_words(args)
        jobs = []
        for piece in self.vector_pieces(self.cfg, len(x2), n_in, n_out):
            words, last = self.input_words(x2[piece])
            jobs.append(Job(load + words, in_pattern=in_pattern, out_pattern=out_pattern,
                            yields=[0] * len(load) + [n_out * int(flag) for flag in last]))
        results = self.target.run(jobs)
        fields = [unpack(self.out_layout, result.words) for result in results]
        y = np.concatenate([f["y"] for f in fields]).astype(np.int32)
        skipped = np.concatenate([f["skipped"] for f in fields]).astype(bool)
        per_vector = np.concatenate([f["run_cycles"][n_out - 1::n_out] for f in fields])
        macs = sum(int(f["macs"][n_out - 1::n_out].sum()) for f in fields)
        shape = x.shape[:-1] + (n_out,)
        return {"y": y.reshape(shape), "skipped": skipped.reshape(shape), "macs": np.int64(macs),
                "run_cycles": per_vector.astype(np.int64).reshape(x.shape[:-1])}, \
            sum(result.cycles for result in results)
