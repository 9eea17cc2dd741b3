"""Co-simulation driver of the DAP cascade: validate, golden, RTL, compare (SPEC §9 block `dap`)."""

import numpy as np

from generators.dap import dap_input_layout, dap_output_layout
from golden.checks import InputError, require_array, require_int8
from golden.dbb import dap, dap_cycles

from ..pack import pack, unpack
from .stream import DEPTH, Job, StreamTarget

__all__ = ["DapDriver"]


class DapDriver:
    """Runs DAP blocks through the RTL of one preset on one simulator.

    Throughput: one block per clock in the RTL; a job of up to DEPTH blocks per harness run.
    """

    block = "dap"
    inputs = ("blocks", "nnz")
    outputs = ("values", "mask")

    def __init__(self, cfg, sim, *, waves=False):
        self.cfg = cfg
        self.sim = sim
        self.in_layout = dap_input_layout(cfg)
        self.out_layout = dap_output_layout(cfg)
        self.target = StreamTarget(cfg, in_port="act", out_port="dbb", in_width=self.in_layout.size,
                                   out_width=self.out_layout.size, sim=sim, waves=waves)

    @staticmethod
    def validate(cfg, inputs):
        """(blocks int8 [n, bz], nnz int64 [n]) from an IN.npz mapping; InputError if invalid."""
        for key in DapDriver.inputs:
            if key not in inputs:
                raise InputError(f"missing input {key!r} (dap needs blocks, nnz)")
        blocks = require_int8("blocks", inputs["blocks"], ndim=2)
        if blocks.shape[1] != cfg.bz or blocks.shape[0] == 0:
            raise InputError(f"blocks must have shape [n >= 1, {cfg.bz}], not {list(blocks.shape)}")
        nnz = require_array("nnz", np.asarray(inputs["nnz"]))
        if not np.issubdtype(nnz.dtype, np.integer):
            raise InputError(f"nnz must be an integer array, not {nnz.dtype}")
        if nnz.ndim == 0:
            nnz = np.full(blocks.shape[0], nnz, dtype=np.int64)
        require_array("nnz", nnz, ndim=1, shape=(blocks.shape[0],))
        golden = dap(cfg, blocks, nnz)  # also range-checks nnz against nnz_max
        return blocks, nnz.astype(np.int64), golden

    def words(self, blocks, nnz):
        return pack(self.in_layout, {"values": blocks, "nnz": nnz})

    def outputs_of(self, words):
        fields = unpack(self.out_layout, words)
        return fields["values"].astype(np.int8), fields["mask"].astype(np.uint32)

    def run(self, blocks, nnz):
        """RTL (values, mask, cycles) for any number of blocks, in jobs of at most DEPTH."""
        words = self.words(blocks, nnz)
        jobs = [Job(words[i:i + DEPTH]) for i in range(0, len(words), DEPTH)]
        results = self.target.run(jobs)
        values, mask = self.outputs_of([w for r in results for w in r.words])
        return values, mask, sum(r.cycles for r in results)

    def expected_cycles(self, n_blocks):
        return sum(dap_cycles(self.cfg, min(DEPTH, n_blocks - i)) for i in range(0, n_blocks, DEPTH))
