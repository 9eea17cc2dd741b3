"""Co-simulation driver of the MoR binCU (BinaryPredictor) on its own; the `mor` engine will contain it."""

import numpy as np

from generators.binary_predictor import bincu_input_layout, bincu_output_layout
from golden.mor import binary_predict, bincu_chunks, bincu_cycles, check_bincu

from ..block import Block
from ..pack import pack, unpack
from .stream import ALL_ONES, Job, StreamDriver, require_keys

__all__ = ["BinCuDriver"]


class BinCuDriver(StreamDriver):
    """Streams neurons (input vector, weight vector, m_q, b_q) through one binCU and reads its predictions.

    Throughput: bits_per_cycle sign bits per cycle; all neurons of a call in one harness job.
    """

    in_port, out_port = "chunk", "pred"
    input_keys = ("x", "w", "m_q", "b_q")
    input_layout, output_layout = staticmethod(bincu_input_layout), staticmethod(bincu_output_layout)

    @staticmethod
    def validate(cfg, inputs):
        """``{"x": int8 [N, n], "w": int8 [N, n], "m_q", "b_q": int32 [N]}``; InputError if invalid."""
        require_keys("bincu", inputs, BinCuDriver.input_keys)
        check_bincu(cfg, inputs["x"], inputs["w"], inputs["m_q"], inputs["b_q"])
        return inputs

    @staticmethod
    def golden(cfg, args):
        """``({"p_bin", "zero"}, cycles)``: neuron i is input vector i with weight vector i."""
        p, zero = binary_predict(args["x"], args["w"], args["m_q"], args["b_q"])
        return {"p_bin": np.diag(p).copy(), "zero": np.diag(zero).copy()}, \
            bincu_cycles(cfg, args["x"].shape[1], len(args["x"]))

    def words(self, args):
        """Chunk words of every neuron in turn, and which of them end a neuron."""
        parts = [bincu_chunks(self.cfg, x, w) for x, w in zip(args["x"], args["w"])]
        n = [len(count) for _, _, count in parts]
        last = np.concatenate([np.arange(k) == k - 1 for k in n])
        fields = {"x_bits": np.concatenate([p[0] for p in parts]), "w_bits": np.concatenate([p[1] for p in parts]),
                  "count": np.concatenate([p[2] for p in parts]), "last": last,
                  "m_q": np.repeat(args["m_q"], n), "b_q": np.repeat(args["b_q"], n)}
        return pack(self.in_layout, fields), last

    def run(self, args, *, in_pattern=ALL_ONES, out_pattern=ALL_ONES):
        """RTL ``({"p_bin", "zero"}, cycles)``."""
        words, last = self.words(args)
        result, = self.target.run([Job(words, in_pattern=in_pattern, out_pattern=out_pattern,
                                       yields=[int(v) for v in last])])
        fields = unpack(self.out_layout, result.words)
        return {"p_bin": fields["p_bin"], "zero": fields["zero"].astype(bool)}, result.cycles


# Not a `zeroskip cosim` block: the MoR engine holds it, and its RTL is checked on its own by test_bincu_rtl.
BLOCKS = (Block(name="bincu", driver=None, leaves=(), workload=None, calibrated=(), placed="small", docs="mor.md"),)
