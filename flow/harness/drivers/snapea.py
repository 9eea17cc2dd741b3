"""Co-simulation driver of the SnaPEA PE array (docs/cosim.md block `snapea`)."""

import numpy as np

from generators.snapea_ports import KINDS, X_PER_WORD, op_layout, result_layout
from golden.checks import InputError
from golden.conv import conv_output_size
from golden.snapea import check_snapea, weight_order
from golden.snapea_pe import array_job_cycles, pe_layer

from ..activations import first_input, thin
from ..block import Block
from ..pack import blank, pack, unpack
from .stream import Job, StreamDriver, require_keys, scalar_input

__all__ = ["SnapeaDriver"]


class SnapeaDriver(StreamDriver):
    """Runs a conv layer through the array, ``n_pe`` filters a job; the first job of a layer loads x, the others
    keep it.

    Throughput: ``lanes`` MACs per PE per cycle; loading is one word per cycle (8 activations or one
    sorted weight); one output word per pixel holds the job's ``n_pe`` filters.
    """

    in_port, out_port = "op", "y"
    input_keys = ("x", "w", "bias", "pad", "stride")
    depth = 4096
    input_layout, output_layout = staticmethod(op_layout), staticmethod(result_layout)

    def __init__(self, cfg, sim, *, waves=False, gates=None):
        self.depth = self.harness_depth(cfg)
        super().__init__(cfg, sim, waves=waves, gates=gates)

    @classmethod
    def harness_depth(cls, cfg):
        """Words of the harness memories: 4096, or the next power of two holding one job of the largest layer the
        preset takes (header, x, ``n_pe`` filters of ``max_entries`` weights, go)."""
        words = 2 + -(-cfg.max_x // X_PER_WORD) + cfg.n_pe * (1 + cfg.max_entries)
        return max(cls.depth, 1 << (words - 1).bit_length())

    @staticmethod
    def validate(cfg, inputs):
        """``x`` int8 [C, H, W] ≥ 0, ``w`` int8 [F, C, R, S], ``bias`` int32 [F], ``pad``, optional
        ``stride``; InputError if invalid or beyond the preset."""
        args = require_keys("snapea", inputs, ("x", "w", "bias", "pad"))
        args["pad"] = scalar_input(inputs, "pad", int)
        args["stride"] = scalar_input(inputs, "stride", int, 1)
        x, w = args["x"], args["w"]
        check_snapea(x, w, args["bias"], args["pad"], args["stride"])
        _, h_out, w_out = pe_shape(x, w, args["pad"], args["stride"])
        limits = [(x.size, cfg.max_x, "input activations C·H·W"), (h_out * w_out, cfg.max_pixels, "output pixels"),
                  (int((w != 0).reshape(len(w), -1).sum(axis=1).max()), cfg.max_entries, "non-zero weights a filter"),
                  (max(x.shape[1:]), 255, "input rows or columns"), (max(h_out, w_out), 255, "output rows or columns"),
                  (max(w.shape[2:]), 8, "filter rows or columns"),
                  (args["pad"], 7, "pad"), (args["stride"], 7, "stride")]
        for value, limit, what in limits:
            if value > limit:
                raise InputError(f"{value} {what} exceed snapea_{cfg.name}'s {limit}")
        return args

    @classmethod
    def golden(cls, cfg, args):
        """``({"y", "mults", "pixel_mults", "pixel_cycles"}, cycles)`` of the golden PE schedule, job by job."""
        out = pe_layer(args["x"], args["w"], args["bias"], pad=args["pad"], stride=args["stride"], lanes=cfg.lanes,
                       window=cfg.window, two_sided=cfg.two_sided)
        cycles = 0
        for group in cls.groups(cfg, len(args["w"])):
            n_words = cls.job_words(cfg, args, group)
            cycles += array_job_cycles(n_words, out["cycles"][group].reshape(len(args["w"][group]), -1))
        return {"y": out["y"], "mults": np.int64(out["mults"].sum()), "pixel_mults": out["mults"],
                "pixel_cycles": out["cycles"]}, cycles

    @staticmethod
    def events(cfg, args, golden):
        """``mult``: multiplications performed (a terminated pixel's remaining ones are not)."""
        return {"mult": int(golden["mults"])}

    @staticmethod
    def groups(cfg, n_filters):
        return [slice(f, min(f + cfg.n_pe, n_filters)) for f in range(0, n_filters, cfg.n_pe)]

    @staticmethod
    def job_words(cfg, args, group):
        """Input words of one job: header, x (the layer's first job only), each filter's word and non-zero
        weights, go."""
        x_words = -(-args["x"].size // X_PER_WORD) if group.start == 0 else 0
        return 2 + x_words + sum(1 + int((wf != 0).sum()) for wf in args["w"][group])

    @staticmethod
    def piece(cfg, args, output, index):
        """The filter group holding ``output[index]``."""
        f = index[0] if output != "mults" and index else 0
        group = slice(f // cfg.n_pe * cfg.n_pe, f // cfg.n_pe * cfg.n_pe + cfg.n_pe)
        return {**args, "w": args["w"][group], "bias": args["bias"][group]}

    def words(self, args, group):
        """Input words of one job (``job_words`` of them)."""
        x, w, bias = args["x"], args["w"][group], args["bias"][group]
        c, h, wd = x.shape
        _, h_out, w_out = pe_shape(x, args["w"], args["pad"], args["stride"])
        x_words = -(-x.size // X_PER_WORD) if group.start == 0 else 0
        rows = [("header", dict(h=h, w=wd, ho=h_out, wo=w_out, stride=args["stride"], pad=args["pad"],
                                row_step=args["stride"] * wd, row_origin=-args["pad"] * wd, n_filters=len(w),
                                n_pixels=h_out * w_out))]
        flat = np.zeros(-(-x.size // X_PER_WORD) * X_PER_WORD, np.int64)
        flat[:x.size] = x.reshape(-1)
        rows += [("x", {"x": flat[i * X_PER_WORD:(i + 1) * X_PER_WORD]}) for i in range(x_words)]
        for f in range(len(w)):
            taps, n_first = weight_order(w[f])
            rows.append(("filter", dict(n_entries=len(taps), n_first=n_first, bias=int(bias[f]))))
            cs, rs, ss = np.unravel_index(taps, w.shape[1:])
            for tap, ci, ri, si in zip(taps, cs, rs, ss):
                rows.append(("entry", {"entry.w": int(w[f].reshape(-1)[tap]), "entry.r": ri, "entry.s": si,
                                       "entry.offset": ci * h * wd + ri * wd + si}))
        rows.append(("go", {}))
        fields = blank(self.in_layout, len(rows))
        for i, (kind, values) in enumerate(rows):
            fields["kind"][i] = KINDS[kind]
            for name, value in values.items():
                fields[name][i] = value
        return pack(self.in_layout, fields)

    def layer_jobs(self, args, **job_options):
        """One job per filter group; its go word yields one output word per pixel."""
        _, h_out, w_out = pe_shape(args["x"], args["w"], args["pad"], args["stride"])
        jobs = []
        for group in self.groups(self.cfg, len(args["w"])):
            words = self.words(args, group)
            jobs.append(Job(words, yields=[0] * (len(words) - 1) + [h_out * w_out], **job_options))
        return jobs

    def layer_outputs(self, args, results):
        """RTL ``({"y", "mults", "pixel_mults", "pixel_cycles"}, cycles)`` of one layer from its jobs' results."""
        shape = pe_shape(args["x"], args["w"], args["pad"], args["stride"])
        groups = self.groups(self.cfg, len(args["w"]))
        fields = [unpack(self.out_layout, result.words) for result in results]

        def filters(name, dtype):  # [pixels, n_pe] per job -> [F, H', W']
            return np.concatenate([f[name][:, :g.stop - g.start].T for f, g in zip(fields, groups)]).astype(
                dtype).reshape(shape)

        y, pixel_mults, pixel_cycles = filters("y", np.int32), filters("mults", np.int64), filters("cycles", np.int64)
        return {"y": y, "mults": np.int64(pixel_mults.sum()), "pixel_mults": pixel_mults,
                "pixel_cycles": pixel_cycles}, sum(result.cycles for result in results)

def pe_shape(x, w, pad, stride):
    """(F, H', W') of the layer's output."""
    return len(w), conv_output_size(x.shape[1], w.shape[2], pad, stride), conv_output_size(x.shape[2], w.shape[3],
                                                                                            pad, stride)


def calibration_workload(cfg, net):
    """conv1 whole and conv2 on its first 2 input channels, ``n_pe`` filters each (one job; real weights, biases
    and pads)."""
    out, f = {}, cfg.n_pe
    for name, c in (("conv1", 1), ("conv2", 2)):
        layer, x = first_input(net, name)
        out[name] = lambda keep, layer=layer, x=x[:c]: {
            "x": thin(x, keep), "w": layer.w[:f, :x.shape[0]], "bias": layer.bias[:f].astype(np.int32),
            "pad": np.int64(layer.pad), "stride": np.int64(layer.stride)}
    return out


BLOCKS = (Block(name="snapea", driver=SnapeaDriver, leaves=(), workload=calibration_workload, calibrated=("small",),
                placed="pe", docs="snapea.md"),)
