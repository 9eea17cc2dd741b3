"""Runs jobs of packed words through a streaming block inside its stream harness (generators.harness) on a
simulator."""

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators.emit import write_if_changed
from generators.harness import stream_harness
from golden.checks import InputError

from .. import runner
from ..words import from_hex, to_hex

__all__ = ["Job", "JobResult", "StreamTarget", "StreamDriver", "DEPTH", "require_keys", "scalar_input"]

DEPTH = 16384  # words per harness memory: a job holds at most this many items
TOGGLES = "zs_toggles"
_DUMPER = """module {root};
  reg [8*1024-1:0] path;
  initial if ($value$plusargs("{root}=%s", path)) begin
    $dumpfile(path);
    $dumpvars(1, {top});
    $dumpvars(0, {top}.dut);
  end
endmodule
"""
ALL_ONES = 0xFFFF_FFFF


@dataclass(frozen=True)
class Job:
    """Words to stream, the valid/ready patterns (bit 0 first, rotating) and an optional reset cycle.

    ``yields[i]`` is how many output words input word i produces (default one each); the
    harness waits for their sum, or after a reset for the outputs of the words not yet sent.
    """

    words: list
    in_pattern: int = ALL_ONES
    out_pattern: int = ALL_ONES
    reset_at: int = -1
    yields: list | None = None


@dataclass(frozen=True)
class JobResult:
    words: list
    cycles: int  # first input transfer to last output transfer, both included
    first_in: int
    n_in: int  # input words the block accepted (all of the job's unless a reset dropped some)
    n_in_at_reset: int
    n_out_at_reset: int


class StreamTarget:
    """A block config's emitted Verilog wrapped in its stream harness, built once for ``sim``.

    Parameters
    ----------
    cfg : a block config from ``generators.config``
    in_port, out_port : str
        Stream members of the block's component.
    in_width, out_width : int
        Payload widths of those streams.
    cycles_per_word : int
        A job's simulation is stopped as hung after this many cycles per input word (and 64 more words).
    """

    def __init__(self, cfg, *, in_port, out_port, in_width, out_width, sim, waves=False, depth=DEPTH,
                 out_depth=None, gates=None, cycles_per_word=64):
        self.cfg = cfg
        self.cycles_per_word = cycles_per_word
        self.depth = depth
        self.out_depth = out_depth or depth
        self.toplevel = f"harness_{cfg.module}"
        dut_path = runner.verilog(cfg)
        hdl_dir = dut_path.parent
        harness_path = hdl_dir / f"{self.toplevel}.v"
        write_if_changed(harness_path, stream_harness(self.toplevel, module=cfg.module, in_port=in_port,
                                                      out_port=out_port, in_width=in_width, out_width=out_width,
                                                      depth=depth, out_depth=self.out_depth))
        if gates is None:
            self.build = runner.build([dut_path, harness_path], self.toplevel, sim, waves=waves)
        else:  # the module's gate-level netlist in place of its RTL, and a dumper of its toggles
            if sim != "icarus":
                raise ValueError("gate-level simulation runs on Icarus (the cell models use UDPs)")
            dumper = hdl_dir / f"{TOGGLES}_{cfg.module}.v"
            write_if_changed(dumper, _DUMPER.format(root=TOGGLES, top=self.toplevel))
            self.build = runner.build([*gates, dumper, harness_path], self.toplevel, sim, waves=waves,
                                      roots=(TOGGLES,))
        self.last_run = None  # the latest runner.Run (its folder holds the waveform when waves are on)

    def run(self, jobs, *, timeout_cycles=None, toggles=None):
        """Run ``jobs`` in one simulator process; return a JobResult per job. ``toggles``: a path where a
        gate-level build writes the VCD of the harness's ports and every net of the design under test."""
        for job in jobs:
            if len(job.words) > self.depth:
                raise ValueError(f"a job holds at most {self.depth} items, not {len(job.words)}")
            if job.yields is not None and len(job.yields) != len(job.words):
                raise ValueError(f"a job needs one yield per word, not {len(job.yields)} for {len(job.words)}")
            if job.yields is not None and sum(job.yields) > self.out_depth:
                raise ValueError(f"a job produces at most {self.out_depth} words, not {sum(job.yields)}")
        longest = max(len(job.words) for job in jobs)
        budget = timeout_cycles or self.cycles_per_word * (longest + 64)
        stim = {"n_jobs": len(jobs), "timeout_cycles": budget}
        for j, job in enumerate(jobs):
            stim[f"job{j}_words"] = to_hex(job.words)
            stim[f"job{j}_in_pattern"] = np.uint32(job.in_pattern)
            stim[f"job{j}_out_pattern"] = np.uint32(job.out_pattern)
            stim[f"job{j}_reset_at"] = job.reset_at
            stim[f"job{j}_yields"] = np.ones(len(job.words), np.int64) if job.yields is None else \
                np.asarray(job.yields, np.int64)
        with tempfile.TemporaryDirectory(dir=self.build.build_dir) as tmp:
            stim_path = Path(tmp) / "stim.npz"
            resp_path = Path(tmp) / "resp.npz"
            np.savez(stim_path, **stim)
            # No pytest assertion rewriting of the bench (it asserts nothing): a process starts in 0.23 s, not 0.65
            env = {"ZS_STIM": stim_path, "ZS_RESP": resp_path, "COCOTB_RANDOM_SEED": os.environ.get("SEED", "1"),
                   "COCOTB_REWRITE_ASSERTION_FILES": ""}
            plusargs = [f"+{TOGGLES}={toggles}"] if toggles else []
            self.last_run = runner.run(self.build, "flow.harness.benches.stream", env, plusargs=plusargs)
            resp = dict(np.load(resp_path))
        self.sim_seconds = float(resp["sim_seconds"])
        # per phase, summed over jobs: loading stimulus (a file the harness reads), running to done, reading results
        self.phase_seconds = sum(resp[f"job{j}_seconds"] for j in range(len(jobs)))
        return [JobResult(words=from_hex(resp[f"job{j}_words"]), cycles=int(resp[f"job{j}_cycles"]),
                          first_in=int(resp[f"job{j}_first_in"]), n_in=int(resp[f"job{j}_n_in"]),
                          n_in_at_reset=int(resp[f"job{j}_n_in_at_reset"]),
                          n_out_at_reset=int(resp[f"job{j}_n_out_at_reset"]))
                for j in range(len(jobs))]


def require_keys(block, inputs, keys):
    """``{key: inputs[key]}`` for ``keys``; InputError naming the first one missing."""
    missing = [key for key in keys if key not in inputs]
    if missing:
        raise InputError(f"missing input {missing[0]!r} ({block} needs {', '.join(keys)})")
    return {key: inputs[key] for key in keys}


def scalar_input(inputs, key, kind, default=None):
    """``inputs[key]`` as a Python int or bool (``kind``), or ``default`` when absent; InputError for an
    array, a float or a string (``pad`` = 1.5 is refused, never truncated)."""
    what = "a bool scalar" if kind is bool else "an integer scalar"
    if key not in inputs:
        if default is None:
            raise InputError(f"missing input {key!r} ({what})")
        return default
    value = np.asarray(inputs[key])
    if value.ndim != 0:
        raise InputError(f"{key} must be {what}, not an array of shape {list(value.shape)}")
    if not (value.dtype == np.bool_ if kind is bool else np.issubdtype(value.dtype, np.integer)):
        raise InputError(f"{key} must be {what}, not {value.dtype} {value.item()!r}")
    return kind(value.item())


class StreamDriver:
    """Base of the co-simulation drivers: a block with one input and one output stream on ``sim``.

    Subclasses set ``in_port``/``out_port``, the ``input_keys`` they validate, and the payload layouts
    ``input_layout(cfg)`` and ``output_layout(cfg)``; ``depth`` is the words the harness's input memory holds,
    ``out_depth`` its output memory's (``depth`` when None; a function of the config when callable).
    """

    in_port = out_port = None
    input_keys = ()  # every key an IN.npz of the block may hold (docs/cosim.md); others are refused
    depth = DEPTH
    out_depth = None

    @staticmethod
    def cycles_per_word(cfg):
        """The hang detector's budget per input word (``StreamTarget``): more than a word's work can take."""
        return 64

    @staticmethod
    def hw_macs(cfg):
        """Multipliers of the preset (docs/cosim.md ``hw_macs``)."""
        return cfg.macs

    @classmethod
    def clock_units(cls, cfg):
        """What the energy model's per-cycle cost scales with across presets of the block: its multipliers."""
        return cls.hw_macs(cfg)

    @staticmethod
    def events(cfg, args, golden):
        """{event: count} of one run that the energy model charges besides clocked cycles, from the validated
        ``args`` and the golden outputs."""
        raise NotImplementedError

    @classmethod
    def actions(cls, cfg, args, golden, cycles):
        """{action: count} of one run: ``clock`` (cycles × clock units) and the ``events`` (what an energy model
        charges)."""
        return {"clock": int(cycles) * cls.clock_units(cfg), **cls.events(cfg, args, golden)}

    def run(self, args, **patterns):
        """RTL ``(outputs, cycles)`` of one validated input."""
        return self.run_batch([args], **patterns)[0]

    def run_batch(self, batch, *, in_pattern=ALL_ONES, out_pattern=ALL_ONES, plans=None):
        """RTL ``(outputs, cycles)`` of each validated input of ``batch``, all in one simulator process.

        ``in_pattern``/``out_pattern`` add input bubbles and output back-pressure (see Job). Subclasses
        give ``layer_jobs(args, **job_options)`` (the harness jobs of one input) and
        ``layer_outputs(args, results)`` (its outputs and cycles from those jobs' results). ``plans``: each
        input's ``layer_jobs`` already made (default patterns), so that they are packed once.
        """
        per_input = plans or [self.layer_jobs(args, in_pattern=in_pattern, out_pattern=out_pattern) for args in batch]
        results = iter(self.target.run([job for jobs in per_input for job in jobs]))
        out = []
        for args, jobs in zip(batch, per_input):
            done = [next(results) for _ in jobs]
            outputs, cycles = self.layer_outputs(args, done)
            out.append(({**outputs, **self._moved(sum(r.n_in for r in done), sum(len(r.words) for r in done))},
                        cycles))
        return out

    def _moved(self, words_in, words_out):
        """{"buffer_read_bits", "buffer_write_bits"}: the bits of ``words_in`` input and ``words_out`` output
        stream words (each as wide as its payload layout)."""
        return {"buffer_read_bits": np.int64(words_in * self.in_layout.size),
                "buffer_write_bits": np.int64(words_out * self.out_layout.size)}

    def traffic(self, args, jobs=None):
        """What one validated input moves between the global buffer and the block, by the job plan (``jobs``, its
        ``layer_jobs`` when made already): its input stream's words (read) and its results (written), in bits:
        {"buffer_read_bits", "buffer_write_bits"}. The RTL reports the same counters, from the words it accepted
        and produced (``run_batch``)."""
        jobs = jobs or self.layer_jobs(args)
        return {k: int(v) for k, v in self._moved(sum(len(j.words) for j in jobs),
                                                  sum(len(j.words) if j.yields is None else int(sum(j.yields))
                                                      for j in jobs)).items()}

    def __init__(self, cfg, sim, *, waves=False, gates=None):
        self.cfg = cfg
        self.sim = sim
        self.in_layout = self.input_layout(cfg)
        self.out_layout = self.output_layout(cfg)
        self._target_options = {"waves": waves, "gates": gates}

    @functools.cached_property
    def target(self):
        """The block in its stream harness, built for ``sim`` on first use: after ``run_batch`` has cut the inputs
        into jobs, so an input the harness cannot hold is refused before any conversion or build."""
        out_depth = self.out_depth(self.cfg) if callable(self.out_depth) else self.out_depth
        return StreamTarget(self.cfg, in_port=self.in_port, out_port=self.out_port, in_width=self.in_layout.size,
                            out_width=self.out_layout.size, sim=self.sim, depth=self.depth, out_depth=out_depth,
                            cycles_per_word=self.cycles_per_word(self.cfg), **self._target_options)
