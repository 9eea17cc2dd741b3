"""Co-simulation driver of the DAP cascade (docs/cosim.md block `dap`)."""

import numpy as np

from generators.dap import dap_input_layout, dap_output_layout
from golden.checks import InputError, require_array, require_int8, require_range
from golden.dbb import channel_blocks, dap, dap_cycles

from ..activations import first_input, thin
from ..block import Block
from ..pack import pack, unpack
from .stream import DEPTH, Job, StreamDriver, require_keys

__all__ = ["DapDriver"]


class DapDriver(StreamDriver):
    """Runs DAP blocks through the RTL of one preset on one simulator.

    Throughput: one block per clock in the RTL; jobs of up to DEPTH blocks per harness load,
    all jobs of a call in one simulator process.
    """

    block = "dap"
    in_port, out_port = "act", "dbb"
    input_keys = ("blocks", "nnz")
    input_layout, output_layout = staticmethod(dap_input_layout), staticmethod(dap_output_layout)

    @staticmethod
    def hw_macs(cfg):
        return 0  # a pruner: nnz_max * (bz - 1) magnitude comparators, no multipliers

    @staticmethod
    def clock_units(cfg):
        return cfg.bz * cfg.nnz_max   # a compare stage per kept value, each as wide as the block

    @staticmethod
    def events(cfg, args, golden):
        """``nonzero``: non-zero input activations."""
        return {"nonzero": int(np.count_nonzero(args["blocks"]))}

    @staticmethod
    def validate(cfg, inputs):
        """``{"blocks": int8 [n, bz], "nnz": int64 [n]}`` from an IN.npz mapping; InputError if invalid."""
        require_keys("dap", inputs, DapDriver.input_keys)
        blocks = require_int8("blocks", inputs["blocks"], ndim=2)
        if blocks.shape[1] != cfg.bz or blocks.shape[0] == 0:
            raise InputError(f"blocks must have shape [n >= 1, {cfg.bz}], not {list(blocks.shape)}")
        nnz = require_array("nnz", np.asarray(inputs["nnz"]))
        if not np.issubdtype(nnz.dtype, np.integer):
            raise InputError(f"nnz must be integers, not {nnz.dtype}")
        if nnz.ndim == 0:
            nnz = np.full(blocks.shape[0], nnz, dtype=np.int64)
        require_array("nnz", nnz, shape=(blocks.shape[0],))
        require_range("nnz", nnz, 1, cfg.nnz_max)
        return {"blocks": blocks, "nnz": nnz.astype(np.int64)}

    @staticmethod
    def golden(cfg, args):
        values, mask = dap(cfg, args["blocks"], args["nnz"])
        n = len(args["blocks"])
        cycles = sum(dap_cycles(cfg, min(DEPTH, n - i)) for i in range(0, n, DEPTH))
        return {"values": values, "mask": mask}, cycles

    @staticmethod
    def piece(cfg, args, output, index):
        """The inputs of the job holding ``output[index]`` (to re-run it with waves)."""
        start = (index[0] if index else 0) // DEPTH * DEPTH
        return {k: v[start:start + DEPTH] for k, v in args.items()}

    def words(self, blocks, nnz):
        """Input stream words of ``blocks`` int8 [n, bz] at ``nnz`` int [n]."""
        return pack(self.in_layout, {"values": blocks, "nnz": nnz})

    def decode(self, words):
        """``{"values": int8 [n, nnz_max], "mask": uint32 [n]}`` from output stream words."""
        fields = unpack(self.out_layout, words)
        return {"values": fields["values"].astype(np.int8), "mask": fields["mask"].astype(np.uint32)}

    def layer_jobs(self, args, **job_options):
        """Jobs of up to DEPTH blocks each."""
        words = self.words(args["blocks"], args["nnz"])
        return [Job(words[i:i + DEPTH], **job_options) for i in range(0, len(words), DEPTH)]

    def layer_outputs(self, args, results):
        """RTL ``({"values", "mask"}, cycles)`` of any number of blocks from their jobs' results."""
        return self.decode([w for r in results for w in r.words]), sum(r.cycles for r in results)


def calibration_workload(cfg, net):
    """conv2's input activation blocks (channel blocking), the first 48 or 96, pruned to nnz_max."""
    _, x = first_input(net, "conv2")
    return {f"{n} blocks": lambda keep, n=n: {"blocks": channel_blocks(thin(x, keep), cfg.bz)[:n],
                                              "nnz": np.int64(cfg.nnz_max)} for n in (48, 96)}


BLOCKS = (Block(name="dap", driver=DapDriver, leaves=(), workload=calibration_workload,
                calibrated=("small", "default"), placed="small", docs="dap.md"),)
