"""Co-simulation driver of the systolic arrays (docs/cosim.md blocks `sa`, `sa_zvcg`, `s2ta_w`, `s2ta_aw`)."""

import numpy as np
from amaranth.lib import data

from generators.array_ports import result_layout, step_layout
from generators.config import VARIANTS
from golden.checks import InputError
from golden.conv import conv_as_gemm
from golden.dbb import dbb_compress, dense_split, wdbb_prune
from golden.systolic import (
    array_cycles,
    array_gemm,
    check_gemm,
    dap_rows,
    fold_steps,
    folds,
    pad_reduction,
    weight_passes,
)

from ..activations import first_input, thin
from ..block import Block
from ..pack import pack, unpack
from .stream import DEPTH, Job, StreamDriver, scalar_input

__all__ = ["ArrayDriver"]


class ArrayDriver(StreamDriver):
    """Runs GEMMs and convolutions through the RTL of one array preset on one simulator.

    A GEMM is cut into folds (output tiles, the only split that composes exactly); each fold
    streams every reduction step, and folds are grouped into harness jobs of at most DEPTH
    steps. A convolution is lowered to a GEMM first (docs/conventions.md order; channels padded per tap to
    bz for the s2ta variants). Throughput: one PE step per clock once a job is loaded.
    """

    in_port, out_port = "step", "y"
    input_keys = ("a", "w", "x", "pad", "stride", "nnz_a", "dense_w")
    input_layout, output_layout = staticmethod(step_layout), staticmethod(result_layout)

    @staticmethod
    def validate(cfg, inputs):
        """GEMM ``{"a", "w"}`` or conv ``{"x", "w", "pad", "stride"}`` (+ ``nnz_a``, ``dense_w``) -> GEMM args."""
        if "w" not in inputs or ("a" in inputs) == ("x" in inputs):
            raise InputError(f"{cfg.variant} needs a and w (GEMM) or x and w (conv), not {sorted(inputs)}")
        dense_w = scalar_input(inputs, "dense_w", bool, False)
        nnz_a = scalar_input(inputs, "nnz_a", int) if cfg.variant == "s2ta_aw" or "nnz_a" in inputs else None
        out_shape = None
        if "x" in inputs:
            pad, stride = scalar_input(inputs, "pad", int, 0), scalar_input(inputs, "stride", int, 1)
            a, w, out_shape = conv_as_gemm(inputs["x"], inputs["w"], pad=pad, stride=stride,
                                           c_block=1 if cfg.scalar else cfg.bz)
        else:
            a, w = inputs["a"], inputs["w"]
        check_gemm(cfg, a, w, nnz_a=nnz_a, dense_w=dense_w)
        steps = fold_steps(cfg, a.shape[1], nnz_a=nnz_a, dense_w=dense_w)
        if steps > DEPTH:
            raise InputError(f"one fold of K={a.shape[1]} takes {steps} steps, more than the harness's {DEPTH}")
        return {"a": a, "w": w, "nnz_a": None if nnz_a is None else int(nnz_a), "dense_w": dense_w,
                "out_shape": out_shape}

    @staticmethod
    def golden(cfg, args):
        """``({"y": int32 [M, N] or [F, H', W']}, cycles)`` of the golden model and cycle model."""
        y = array_gemm(cfg, args["a"], args["w"], nnz_a=args["nnz_a"], dense_w=args["dense_w"])
        cycles = sum(array_cycles(cfg, [job_steps] * len(job)) for job, job_steps in ArrayDriver.jobs(cfg, args))
        return {"y": ArrayDriver._shape(cfg, y, args["out_shape"])}, cycles

    @staticmethod
    def events(cfg, args, golden):
        """``product``: multiplications with both operands non-zero; ``toggle``: bits that differ between consecutive
        activations of each row along the reduction (8-bit two's complement; the activity of the operand buses),
        once per fold of columns; both after the DAP on s2ta_aw."""
        a, nnz_a = args["a"], args["nnz_a"]
        if nnz_a is not None and nnz_a < cfg.bz:
            a = dap_rows(a, nnz_a, cfg.bz)
        flips = np.unpackbits((a[:, 1:] ^ a[:, :-1]).view(np.uint8)).sum(dtype=np.int64)
        column_folds = -(-args["w"].shape[1] // cfg.channels)
        return {"product": int(((a != 0).astype(np.int64) @ (args["w"] != 0).astype(np.int64)).sum()),
                "toggle": int(flips) * column_folds}

    @staticmethod
    def _shape(cfg, y, out_shape):
        y = y.astype(np.int32 if cfg.acc_width <= 32 else np.int64)
        return y if out_shape is None else np.ascontiguousarray(y.T.reshape(out_shape))

    @staticmethod
    def jobs(cfg, args):
        """Folds grouped into harness jobs: ([(m0, n0), ...], steps per fold)."""
        m, k = args["a"].shape
        steps = fold_steps(cfg, k, nnz_a=args["nnz_a"], dense_w=args["dense_w"])
        words_per_fold = steps if cfg.variant != "s2ta_aw" else steps // args["nnz_a"]
        per_job = max(1, min(DEPTH // words_per_fold, DEPTH // cfg.rows))
        tiles = folds(cfg, m, args["w"].shape[1])
        return [(tiles[i:i + per_job], steps) for i in range(0, len(tiles), per_job)]

    @staticmethod
    def piece(cfg, args, output, index):
        """The GEMM args of the fold holding ``output[index]``, same tile position (to re-run it with waves)."""
        if args["out_shape"] is None:
            m, n = index if index else (0, 0)
        else:
            f, p, q = index if index else (0, 0, 0)
            m, n = p * args["out_shape"][2] + q, f
        m0, n0 = m // cfg.pixels * cfg.pixels, n // cfg.channels * cfg.channels
        return {**args, "a": args["a"][m0:m0 + cfg.pixels], "w": args["w"][:, n0:n0 + cfg.channels],
                "out_shape": None}

    def steps(self, a, w, m0, n0, nnz_a, dense_w):
        """Step words of the fold whose outputs start at row ``m0``, column ``n0``."""
        cfg = self.cfg
        tile_a = np.zeros((cfg.pixels, a.shape[1]), dtype=np.int8)
        rows = a[m0:m0 + cfg.pixels]
        tile_a[:len(rows)] = rows
        tile_w = np.zeros((w.shape[0], cfg.channels), dtype=np.int8)
        cols = w[:, n0:n0 + cfg.channels]
        tile_w[:, :cols.shape[1]] = cols
        if cfg.scalar:
            k = a.shape[1]
            last = np.arange(k) == k - 1
            return pack(self.in_layout, {"act": tile_a.T, "wgt": tile_w, "last": last})
        passes = weight_passes(cfg, dense_w)
        blocks_a = pad_reduction(tile_a, cfg.bz, 1).reshape(cfg.pixels, -1, cfg.bz).transpose(1, 0, 2)
        blocks_w = pad_reduction(tile_w, cfg.bz, 0).T.reshape(cfg.channels, -1, cfg.bz).transpose(1, 0, 2)
        n_blocks = blocks_a.shape[0]
        if dense_w:
            blocks_w = dense_split(blocks_w.reshape(-1, cfg.bz), cfg.b).reshape(n_blocks, cfg.channels, passes,
                                                                                cfg.bz).transpose(0, 2, 1, 3)
        blocks_w = blocks_w.reshape(n_blocks * passes, cfg.channels, cfg.bz)
        values, mask = dbb_compress(blocks_w.reshape(-1, cfg.bz), cfg.b)
        n = n_blocks * passes
        fields = {
            "act": np.repeat(blocks_a, passes, axis=0).reshape(n, -1),
            "wgt_values": values.reshape(n, -1),
            "wgt_mask": mask.reshape(n, -1),
            "last": np.arange(n) == n - 1,
        }
        if cfg.variant == "s2ta_aw":
            fields["nnz"] = np.full(n, nnz_a)
        return pack(self.in_layout, fields)

    def decode(self, words, tiles, m, n):
        """Result words of ``tiles`` (cfg.rows words each, bottom TPE row first) -> int64 [m, n]."""
        cfg = self.cfg
        flat = unpack(data.StructLayout({"y": self.out_layout}), words)["y"]
        rows = flat.reshape(len(tiles), cfg.rows, cfg.a, cfg.channels)[:, ::-1]
        y = np.zeros((-(-m // cfg.pixels) * cfg.pixels, -(-n // cfg.channels) * cfg.channels), dtype=np.int64)
        for (m0, n0), tile in zip(tiles, rows):
            y[m0:m0 + cfg.pixels, n0:n0 + cfg.channels] = tile.reshape(cfg.pixels, cfg.channels)
        return y[:m, :n]

    def layer_jobs(self, args, **job_options):
        """The harness jobs of one GEMM or convolution (``jobs``' plan)."""
        return [self.job(args, tiles, **job_options) for tiles, _ in self.jobs(self.cfg, args)]

    def layer_outputs(self, args, results):
        """RTL ``({"y"}, cycles)`` of one GEMM or convolution from its jobs' results."""
        tiles = [tile for job_tiles, _ in self.jobs(self.cfg, args) for tile in job_tiles]
        y = self.decode([word for r in results for word in r.words], tiles, args["a"].shape[0], args["w"].shape[1])
        return {"y": self._shape(self.cfg, y, args["out_shape"])}, sum(r.cycles for r in results)

    def job(self, args, tiles, **job_options):
        """The harness job streaming the folds of ``tiles``; each fold's last word yields cfg.rows results."""
        words = [word for m0, n0 in tiles
                 for word in self.steps(args["a"], args["w"], m0, n0, args["nnz_a"], args["dense_w"])]
        per_fold = len(words) // len(tiles)
        yields = [self.cfg.rows if i % per_fold == per_fold - 1 else 0 for i in range(len(words))]
        return Job(words, yields=yields, **job_options)


def calibration_workload(cfg, net):
    """GEMMs of conv2: its 4 densest output pixels × ``cols`` filters × the first 36 or 72 reduction steps
    (W-DBB pruned weights and nnz_a = nnz_max on the s2ta variants)."""
    layer, x = first_input(net, "conv2")
    a, w, _ = conv_as_gemm(x, layer.w, pad=layer.pad, stride=layer.stride, c_block=1 if cfg.scalar else cfg.bz)
    a = a[np.sort(np.argsort(-(a[:, :72] != 0).sum(axis=1), kind="stable")[:4])]
    w = w[:, :cfg.cols] if cfg.scalar else wdbb_prune(w[:, :cfg.cols], cfg.b, cfg.bz, axis=0)
    extra = {} if cfg.scalar else {"dense_w": np.bool_(False)}
    if cfg.variant == "s2ta_aw":
        extra["nnz_a"] = np.int64(cfg.nnz_max)
    return {f"K={k}": lambda keep, k=k: {"a": thin(a[:, :k], keep), "w": w[:k], **extra} for k in (36, 72)}


BLOCKS = tuple(Block(name=variant, driver=ArrayDriver, leaves=("dap",) if variant == "s2ta_aw" else (),
                     workload=calibration_workload, calibrated=("small", "default"), placed="small", docs="arrays.md")
               for variant in VARIANTS)
