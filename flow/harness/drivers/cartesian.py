"""Co-simulation driver of the Cartesian-product PEs (docs/cosim.md blocks `scnn_pe`, `cscnn_pe`)."""

import numpy as np

from generators.cartesian_ports import KINDS, array_op_layout, array_result_layout, op_layout, result_layout
from generators.config import PE_ARRAY_BLOCKS, PE_BLOCKS
from golden.cartesian_array import (
    DEFAULT_TILING,
    TILINGS,
    array_conv,
    assignments,
    check_array_layer,
    choose_tiling,
    plan,
    run_words,
    tile_of,
)
from golden.cartesian_pe import check_layer, overlap_add, pe_conv, pieces, tile_ops
from golden.checks import InputError
from golden.cscnn import mirror_canonical

from ..activations import first_input, thin
from ..block import Block
from ..pack import pack, unpack
from .stream import Job, StreamDriver, require_keys

__all__ = ["PeDriver", "PeArrayDriver"]


class PeDriver(StreamDriver):
    """Runs convolutions through the RTL of one PE preset on one simulator.

    A layer is cut into pieces: output-channel groups of ``cfg.filters`` times planar tiles of
    ``tile_h × tile_w`` (golden.cartesian_pe.planar_tiles). Each piece is one harness job: its op
    stream (golden.cartesian_pe.tile_ops) in, ``cfg.depth`` drained rows out; the full-mode tiles
    overlap-add. Throughput: one pair (px·py products) per cycle without bank conflicts.
    """

    in_port, out_port = "op", "y"
    input_keys = ("x", "w", "bias")
    depth = 4096  # ops per tile (bias, vectors, end): ~160 input channels of a dense 8x8 tile on the default
    input_layout, output_layout = staticmethod(op_layout), staticmethod(result_layout)

    @staticmethod
    def validate(cfg, inputs):
        """``{"x": int8 [C, H, W], "w": int8 [F, C, R, S], "bias": int32 [F]}``; InputError if invalid."""
        args = require_keys(cfg.block, inputs, PeDriver.input_keys)
        check_layer(cfg, **args)
        ops = PeDriver.longest_job(cfg, args)
        if ops > PeDriver.depth:
            raise InputError(f"a tile of this layer takes {ops} ops, more than the harness's {PeDriver.depth} "
                             "(fewer input channels or sparser activations fit)")
        return args

    @staticmethod
    def longest_job(cfg, args):
        """Ops of the layer's longest harness job (a tile: each is one), at most ``depth``."""
        return max(len(tile_ops(cfg, tile, w_group, tile_bias)) for *_, tile, w_group, tile_bias in pieces(cfg, **args))

    @staticmethod
    def golden(cfg, args):
        """``({"y", "mults", "stalls"}, cycles)`` of the golden PE model."""
        out = pe_conv(cfg, **args)
        return {"y": out["y"], "mults": np.int64(out["mults"]), "stalls": np.int64(out["stalls"])}, out["cycles"]

    @staticmethod
    def events(cfg, args, golden):
        """``product``: products formed (non-zero activation × non-zero weight; a dual pair's shared one once)."""
        return {"product": int(golden["mults"])}

    @staticmethod
    def piece(cfg, args, output, index):
        """The single-tile layer holding ``output[index]`` (its group and the first tile covering it)."""
        f, u, v = index if len(index) == 3 else (0, 0, 0)
        f0 = f // cfg.filters * cfg.filters
        h0 = max(0, u - cfg.r + 1) // cfg.tile_h * cfg.tile_h
        w0 = max(0, v - cfg.s + 1) // cfg.tile_w * cfg.tile_w
        group = slice(f0, f0 + cfg.filters)
        return {"x": args["x"][:, h0:h0 + cfg.tile_h, w0:w0 + cfg.tile_w], "w": args["w"][group],
                "bias": args["bias"][group]}

    def words(self, ops):
        """Input stream words of golden ops."""
        return pack(self.in_layout, self.op_fields(self.cfg, ops))

    @staticmethod
    def op_fields(cfg, ops, prefix=""):
        """Packable fields of golden ops (``prefix`` before each field name)."""
        n = len(ops)
        fields = {"kind": [KINDS[op.kind] for op in ops], "first": [op.first for op in ops],
                  "bias_f": [op.f for op in ops], "bias": [op.bias for op in ops]}
        for vector, names, width in (("act", ("value", "x", "y", "valid"), cfg.py),
                                     ("wgt", ("value", "f", "r", "s", "valid"), cfg.px)):
            for name in names:
                column = np.zeros((n, width), np.int64)
                for i, op in enumerate(ops):
                    if op.kind == vector:
                        column[i] = op.lanes[name]
                fields[f"{vector}.{name}"] = column
        return {prefix + name: column for name, column in fields.items()}

    def decode(self, words, n_filters, h, w):
        """Drained rows of one tile -> ``(y int64 [n_filters, h+R-1, w+S-1], mults, stalls)``."""
        return self.decode_fields(self.cfg, unpack(self.out_layout, words), n_filters, h, w)

    @staticmethod
    def decode_fields(cfg, fields, n_filters, h, w, prefix=""):
        """``decode`` of unpacked rows (``prefix`` before each field name)."""
        flat = fields[prefix + "y"].reshape(-1)[:cfg.filters * cfg.full_h * cfg.full_w]
        y = flat.reshape(cfg.full_h, cfg.full_w, cfg.filters).transpose(2, 0, 1)
        return (y[:n_filters, :h + cfg.r - 1, :w + cfg.s - 1], int(fields[prefix + "mults"][-1]),
                int(fields[prefix + "stalls"][-1]))

    def layer_jobs(self, args, **job_options):
        """One job per piece (filter group × planar tile): its op stream; ``end`` yields the drained rows."""
        cfg = self.cfg
        jobs = []
        for _, _, _, tile, w_group, tile_bias in pieces(cfg, **args):
            ops = tile_ops(cfg, tile, w_group, tile_bias)
            jobs.append(Job(self.words(ops), yields=[cfg.depth if op.kind == "end" else 0 for op in ops],
                            **job_options))
        return jobs

    def layer_outputs(self, args, results):
        """RTL ``({"y", "mults", "stalls"}, cycles)`` of one layer: its tiles overlap-added."""
        placed, mults, stalls = [], 0, 0
        for (group, h0, w0, tile, w_group, _), result in zip(pieces(self.cfg, **args), results):
            tile_y, tile_mults, tile_stalls = self.decode(result.words, w_group.shape[0], *tile.shape[1:])
            placed.append((group, h0, w0, tile_y))
            mults, stalls = mults + tile_mults, stalls + tile_stalls
        y = overlap_add(self.cfg, args["x"], args["w"], args["bias"], placed)
        return {"y": y, "mults": np.int64(mults), "stalls": np.int64(stalls)}, sum(r.cycles for r in results)


class PeArrayDriver(StreamDriver):
    """Runs convolutions through the RTL of one PE-array preset (docs/cosim.md blocks ``scnn``, ``cscnn``).

    A layer is planned into runs by its tiling (golden.cartesian_array.plan); each run is one harness job:
    its masked op stream in, ``depth`` lock-step output words (row k of every PE) out; the PEs' full-mode
    tiles overlap-add (the halo step). Throughput: up to n_pe pairs (n_pe·px·py products) per cycle.
    """

    in_port, out_port = "op", "y"
    input_keys = ("x", "w", "bias", "tiling")
    depth = 8192  # words per run: every tile's activation vectors and every set's weight vectors, per channel
    input_layout, output_layout = staticmethod(array_op_layout), staticmethod(array_result_layout)

    @staticmethod
    def out_depth(cfg):
        """Output words of a run (wide ones, a row of every PE): the PE's depth (a memory holds two at least)."""
        return max(2, cfg.depth)

    @staticmethod
    def validate(cfg, inputs):
        """``{"x": int8 [C, H, W], "w": int8 [F, C, R, S], "bias": int32 [F]}`` and an optional ``tiling``
        (one of TILINGS or ``fastest``, default DEFAULT_TILING; ``fastest`` becomes the layer's fastest tiling);
        InputError if invalid."""
        args = require_keys(cfg.block, inputs, ("x", "w", "bias"))
        tiling = inputs.get("tiling", DEFAULT_TILING)
        if not isinstance(tiling, str):
            value = np.asarray(tiling)
            if value.ndim != 0 or value.dtype.kind != "U":
                raise InputError(f"tiling must be a string scalar ({', '.join(TILINGS)} or {DEFAULT_TILING}), not "
                                 f"{value.dtype} of shape {list(value.shape)}")
            tiling = str(value)
        check_array_layer(cfg, **args, tiling=TILINGS[0])
        args["tiling"] = choose_tiling(cfg, **args, tiling=tiling)
        words = PeArrayDriver.longest_job(cfg, args)
        if words > PeArrayDriver.depth:
            raise InputError(f"a run of this layer takes {words} ops, more than the harness's "
                             f"{PeArrayDriver.depth} (fewer input channels or sparser activations fit)")
        return args

    @staticmethod
    def longest_job(cfg, args):
        """Op words of the layer's longest harness job (a run of its plan: each is one), at most ``depth``."""
        plan_ = plan(cfg, args["x"], args["w"], args["tiling"])
        return max(len(run_words(cfg, plan_, run, args["x"], args["w"], args["bias"])) for run in plan_.runs)

    @staticmethod
    def golden(cfg, args):
        """``({"y", "mults", "stalls"}, cycles)`` of the golden array model."""
        out = array_conv(cfg, **args)
        return {"y": out["y"], "mults": np.int64(out["mults"]), "stalls": np.int64(out["stalls"])}, out["cycles"]

    events = PeDriver.events

    @staticmethod
    def piece(cfg, args, output, index):
        """The layer cut to the filters of the run holding ``output[index]``'s filter (same plane, tiling)."""
        f = index[0] if len(index) == 3 else 0
        runs = plan(cfg, args["x"], args["w"], args["tiling"]).runs
        ids = np.sort(np.concatenate(next(sets for sets, _ in runs if any(f in s for s in sets))))
        return {**args, "w": args["w"][ids], "bias": args["bias"][ids]}

    def layer_jobs(self, args, **job_options):
        """One job per run of the layer's plan: its masked op stream; ``end`` yields ``depth`` words."""
        cfg = self.cfg
        plan_ = plan(cfg, args["x"], args["w"], args["tiling"])
        jobs = []
        for run in plan_.runs:
            words = run_words(cfg, plan_, run, args["x"], args["w"], args["bias"])
            fields = PeDriver.op_fields(cfg.pe, [op for op, _ in words], prefix="op.")
            fields["mask"] = [m for _, m in words]
            jobs.append(Job(pack(self.in_layout, fields),
                            yields=[cfg.depth if op.kind == "end" else 0 for op, _ in words], **job_options))
        return jobs

    def layer_outputs(self, args, results):
        """RTL ``({"y", "mults", "stalls"}, cycles)`` of one layer: every run's PE tiles overlap-added."""
        cfg = self.cfg
        x, w, bias = args["x"], args["w"], args["bias"]
        plan_ = plan(cfg, x, w, args["tiling"])
        placed, mults, stalls = [], 0, 0
        for run, result in zip(plan_.runs, results):
            fields = unpack(self.out_layout, result.words)
            for k, assigned in enumerate(assignments(cfg, plan_, run)):
                if assigned is None:
                    continue
                ids, origin = assigned
                y, tile_mults, tile_stalls = PeDriver.decode_fields(cfg.pe, fields, len(ids),
                                                                    *tile_of(plan_, x, origin).shape[1:],
                                                                    prefix=f"pe{k}.")
                placed.append((ids, *origin, y))
                mults, stalls = mults + tile_mults, stalls + tile_stalls
        y = overlap_add(cfg, x, w, bias, placed, tiled=plan_.tiled)
        return {"y": y, "mults": np.int64(mults), "stalls": np.int64(stalls)}, sum(r.cycles for r in results)


def pe_workload(cfg, net):
    """One tile of conv2: its first 4 or 8 input channels cropped to the tile, ``filters`` filters cut to the PE's
    R×S (mirrored to centrosymmetric on cscnn_pe)."""
    layer, x = first_input(net, "conv2")
    w = layer.w[:cfg.filters, :, :cfg.r, :cfg.s]
    w = mirror_canonical(w) if cfg.reuse else w
    bias = layer.bias[:cfg.filters].astype(np.int32)
    return {f"C={c}": lambda keep, c=c: {"x": thin(x[:c, :cfg.tile_h, :cfg.tile_w], keep), "w": w[:, :c],
                                         "bias": bias} for c in (4, 8)}


def array_workload(cfg, net):
    """conv2's first 4 or 8 input channels on a plane of one PE tile per PE of a sub-array, ``groups × filters``
    filters cut to the PE's R×S (mirrored to centrosymmetric on cscnn): every PE busy under mixed tiling."""
    layer, x = first_input(net, "conv2")
    f = cfg.groups * cfg.filters
    w = layer.w[:f, :, :cfg.r, :cfg.s]
    w = mirror_canonical(w) if cfg.reuse else w
    bias = layer.bias[:f].astype(np.int32)
    return {f"C={c}": lambda keep, c=c: {"x": thin(x[:c, :cfg.pes_per_group * cfg.tile_h, :cfg.tile_w], keep),
                                         "w": w[:, :c], "bias": bias} for c in (4, 8)}


BLOCKS = (*(Block(name=block, driver=PeDriver, leaves=(), workload=pe_workload, calibrated=("small",),
                  placed="small", docs="cscnn.md") for block in PE_BLOCKS),
          *(Block(name=block, driver=PeArrayDriver, leaves=(f"{block}_pe",), workload=array_workload,
                  calibrated=("small",), placed="small", docs="cscnn_array.md") for block in PE_ARRAY_BLOCKS))
