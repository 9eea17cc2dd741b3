"""The `zeroskip` command line: generate, presets, cosim, synth, compare, evaluate, train, holistic, demo."""

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from generators.config import CATALOG, default_preset, preset
from golden.cartesian_array import DEFAULT_TILING, TILING_CHOICES
from models.networks import NETWORKS

from .harness.activations import BATCH
from .harness.runner import REPO, SIMULATORS, SimulationError
from .harness.toolchain import ToolError

__all__ = ["main"]

HDL_DIR = REPO / "hdl"
RTL_COMPARISONS = ("run each technique's comparisons (SA-ZVCG, the SCNN array, MoR without its predictor, one-sided "
                   "SnaPEA) on the RTL too and synthesize the SCNN array (default: from the golden models; the "
                   "techniques and dense always on RTL)")


def _generate(args):
    """Each config converted once per machine (``runner.verilog``'s emission cache), copied to ``--out``."""
    from generators.emit import write_if_changed

    from .harness.runner import verilog

    out = Path(args.out)
    if args.preset and not args.block:
        raise ValueError(f"--preset {args.preset} needs a block (zeroskip generate BLOCK --preset NAME)")
    configs = [preset(args.block, args.preset)] if args.block else [default_preset(b) for b in CATALOG]
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a folder for the Verilog and JSON sidecars")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: its parent folder {out.parent} does not exist")
    for cfg in configs:
        source = verilog(cfg)
        for path in (source, source.with_suffix(".json")):
            write_if_changed(out / path.name, path.read_text())
        print(out / source.name)
    return 0


def _presets(args):
    blocks = [args.block] if args.block else list(CATALOG)
    for block in blocks:
        preset(block)  # validates the block name
    table = {b: {name: {**cfg.params(), "default": name == "default"} for name, cfg in CATALOG[b].items()}
             for b in blocks}
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        for block, presets in table.items():
            for name, params in presets.items():
                mark = " (default)" if params.pop("default") else ""
                print(f"{block}/{name}{mark}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    return 0


def _cosim(args):
    from .harness.cosim import cosim
    from .synth.calibration import run_energy_pj

    return cosim(args.block, args.preset, args.sim, args.inputs, args.out, waves=args.waves, energy=run_energy_pj)


def _synth(args):
    from .synth.timing import asic_timing
    from .synth.yosys import SYNTH_DIR, markdown_table, synthesize

    blocks = [args.block] if args.block else list(CATALOG)
    configs = [preset(b, args.preset) for b in blocks] if args.preset else \
        [cfg for b in blocks for cfg in (CATALOG[b].values() if args.all else [default_preset(b)])]
    results = []
    for cfg in configs:
        print(f"synthesizing {cfg.module} ...", flush=True)
        results.append(synthesize(cfg, pnr=not args.no_pnr, force=args.force))
        if not args.no_asic:
            results[-1]["asic"] = asic_timing(cfg, force=args.force)
    SYNTH_DIR.mkdir(parents=True, exist_ok=True)
    (SYNTH_DIR / "synth.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown_table(results)
    (SYNTH_DIR / "synth.md").write_text(table)
    print(table + f"\nwritten to {SYNTH_DIR / 'synth.json'} and synth.md")
    return 0


def _given(args, *names):
    """The options of ``names`` given on the command line (the called function's defaults apply to the others)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _compare(args):
    from .report.compare import compare

    return compare(sims=args.sim or SIMULATORS, **_given(args, "images", "array_images"))


def _evaluate(args):
    from .report.evaluate import EVALUATE_DIR, evaluate

    techniques = None if args.techniques is None else args.techniques.split(",")
    if techniques is not None and not all(techniques):
        raise ValueError(f"--techniques {args.techniques!r} names an empty technique; give names separated by commas")
    if args.model and args.network:
        raise ValueError("give --network or --model/--data, not both")
    name = Path(args.model).stem if args.model else args.network or "digits"
    out = Path(args.out) if args.out else EVALUATE_DIR / name
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a folder for summary.json, report.md and the plots")
    if args.out and not out.parent.is_dir():
        raise ValueError(f"--out {out}: its parent folder {out.parent} does not exist")
    return evaluate(args.network or "digits", model=args.model, data=args.data, techniques=techniques, sim=args.sim,
                    synth=not args.no_synth, out_dir=out, title=f"zeroskip evaluation: {name}",
                    options=_given(args, "tiling"), rtl_comparisons=args.rtl_comparisons,
                    **_given(args, "images", "batch"))


def _train(args):
    from .report.holistic import train

    return train(args.network, args.target, args.method, sim=args.sim, out_dir=_out_dir(args.out),
                 **_given(args, "budget", "images", "epochs", "steps"))


def _holistic(args):
    from .report.holistic import holistic

    lists = {name: [item for item in value.split(",") if item] for name, value in _given(args, "networks",
                                                                                          "targets").items()}
    return holistic(sim=args.sim, out_dir=_out_dir(args.out), **lists,
                    **_given(args, "budget", "images", "epochs", "steps"))


def _out_dir(out):
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a folder")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: its parent folder {out.parent} does not exist")
    return out


def _demo(args):
    from .report.evaluate import demo

    return demo(sim=args.sim, synth=not args.no_synth, fresh=args.fresh, options=_given(args, "tiling"),
                rtl_comparisons=args.rtl_comparisons, **_given(args, "images", "batch"))


def _sweep(args):
    from .report.sweep import sweep

    rows = sweep(args.spec, scheduler=args.scheduler, out_dir=_out_dir(args.out), fresh=args.fresh)
    return 1 if any(r["error"] for r in rows) else 0


class _Parser(argparse.ArgumentParser):
    """argparse with command-line errors in one line (the usage stays behind ``--help``)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parser():
    from .harness.drivers import DRIVERS

    p = _Parser(prog="zeroskip", description=(
        "Generators, golden models and co-simulation of computation-skipping CNN accelerator blocks."))
    sub = p.add_subparsers(dest="command", required=True)
    blocks = list(CATALOG)

    def batch_option(command):
        command.add_argument("--batch", type=int,
                             help=f"images an fc layer runs a job, on every technique and the dense baseline alike "
                                  f"(default {BATCH}; the last batch is filled with the next test images)")

    def tiling_option(command):
        command.add_argument("--tiling", choices=TILING_CHOICES,
                             help=f"the PE arrays' tiling (cscnn; default {DEFAULT_TILING}: each layer's fastest)")

    g = sub.add_parser("generate", help="emit Verilog + JSON sidecars (default: every block's default preset)")
    g.add_argument("block", nargs="?", choices=blocks, help="only this block")
    g.add_argument("--preset", help="preset name (default: the block's default)")
    g.add_argument("--out", default=str(HDL_DIR), help="output folder (default: hdl/)")
    g.set_defaults(func=_generate)

    s = sub.add_parser("presets", help="list presets and their parameters")
    s.add_argument("block", nargs="?", choices=blocks)
    s.add_argument("--json", action="store_true", help="print {block: {preset: {parameter: value, default}}}")
    s.set_defaults(func=_presets)

    c = sub.add_parser("cosim", help="run a block's RTL on IN.npz against golden, write OUT.npz", description=(
        "Exit 0 when RTL == golden, 1 when they differ (OUT.npz still written; first mismatch and "
        "waveform path printed), 2 for invalid input (nothing written), 3 when a simulator or tool "
        "failed (its log is named). dap: IN.npz has blocks int8 "
        "[n, bz] and nnz (int scalar or [n], 1..nnz_max); OUT.npz has values int8 [n, nnz_max], mask "
        "uint32 [n]. sa, sa_zvcg, s2ta_w, s2ta_aw: IN.npz has a int8 [M, K] and w int8 [K, N] (GEMM) or "
        "x int8 [C, H, W], w int8 [F, C, R, S], pad, stride (conv), plus nnz_a for s2ta_aw (1..nnz_max or "
        "bz) and optional dense_w (bool) for the s2ta variants; OUT.npz has y int32. scnn_pe, cscnn_pe, scnn, "
        "cscnn: x int8 [C, H, W], w int8 [F, C, R, S] (centrosymmetric for cscnn_pe, cscnn), bias int32 [F] "
        "(scnn, cscnn: optional tiling mixed, planar, channel or fastest, the default); OUT.npz has "
        "the full-mode y int32 [F, H+R-1, W+S-1], mults, stalls. mor: x int8 [n_in] or [P, n_in], w int8 "
        "[n_out, n_in], bias, m_q, b_q int32 [n_out], proxy int [n_out] (-1 for a proxy), enable bool "
        "[n_out]; OUT.npz has post-ReLU y int32, skipped, macs, run_cycles. snapea: x int8 [C, H, W] >= 0, "
        "w int8 [F, C, R, S], bias int32 [F], pad, optional stride; OUT.npz has post-ReLU y int32, mults, "
        "pixel_mults, pixel_cycles. Every OUT.npz also has cycles, hw_macs, golden_match. Refused with exit 2, "
        "besides wrong keys, dtypes and shapes: weights over the W-DBB bound without dense_w (s2ta); a "
        "filter that is not centrosymmetric (cscnn_pe, cscnn), an unknown tiling; a proxy pointing at a member or "
        "out of range, a possible "
        "32-bit overflow, n_in > max_in or n_out > max_out (mor); a negative activation, a possible overflow, a "
        "layer beyond the preset's memories, a pad or stride that is not an integer scalar (snapea). "
        "'zeroskip presets BLOCK' lists a block's presets and their limits; docs/cosim.md has the whole contract."))
    c.add_argument("block", choices=list(DRIVERS))
    c.add_argument("--preset", help="preset name (default: the block's default)")
    c.add_argument("--sim", choices=SIMULATORS, default="verilator")
    c.add_argument("--inputs", required=True, help="input .npz")
    c.add_argument("--out", required=True, help="output .npz")
    c.add_argument("--waves", action="store_true", help="record a waveform (VCD on Verilator, FST on Icarus)")
    c.set_defaults(func=_cosim)

    y = sub.add_parser("synth", help="Yosys generic cells, ECP5 LUT/FF, nextpnr Fmax and the OSU 0.18 µm clock "
                                     "(OpenSTA) -> reports/synth/")
    y.add_argument("block", nargs="?", choices=blocks)
    y.add_argument("--preset", help="one preset (default: each block's default)")
    y.add_argument("--all", action="store_true", help="every preset of the catalog")
    y.add_argument("--no-pnr", action="store_true", help="skip place-and-route (no Fmax)")
    y.add_argument("--no-asic", action="store_true",
                   help="skip the ASIC timing (OSU 0.18 µm netlist timed by OpenSTA: worst register-to-register path)")
    y.add_argument("--force", action="store_true", help="ignore the synthesis cache")
    y.set_defaults(func=_synth)

    m = sub.add_parser("compare", help="golden vs RTL on the trained network's real layers, per-layer table")
    m.add_argument("--sim", choices=SIMULATORS, action="append", help="simulator (repeatable; default both)")
    m.add_argument("--images", type=int, help="test images whose activations DAP checks (default 16)")
    m.add_argument("--array-images", type=int, help="test images run through every array (default 1)")
    m.set_defaults(func=_compare)

    e = sub.add_parser(
        "evaluate", help="a network through every technique's model and RTL (checked against golden), one report",
        description="Train or reuse a built-in network, or import yours from ONNX; derive each technique's model "
                    "and its test accuracy; run every layer (conv and fc) of the first IMAGES test images through "
                    "each technique's RTL and the dense systolic baseline at equal MACs, checked bit- and "
                    "cycle-exact against golden; synthesize the presets; write OUT/summary.json (energy with its "
                    "logic/clock/SRAM parts), papers.json (energy ratios next to each paper's claims), report.md "
                    "and plots. Exit 0 when everything matched, 1 on a mismatch, 2 for invalid input (nothing "
                    "written), 3 when a tool failed.")
    e.add_argument("--network", help=f"built-in network: {', '.join(NETWORKS)} (default digits)")
    e.add_argument("--model", help="your CNN as ONNX (torch.onnx.export, dynamo or legacy); needs --data")
    e.add_argument("--data", help="its DATA.npz: x float32 [N, C, H, W] (>= 0), optional y, x_train, y_train")
    e.add_argument("--techniques", help="comma-separated techniques (default all; dense always runs as the baseline)")
    e.add_argument("--sim", choices=SIMULATORS, default="verilator")
    e.add_argument("--images", type=int, help="test images whose layers run on the RTL (default 4)")
    batch_option(e)
    tiling_option(e)
    e.add_argument("--no-synth", action="store_true", help="skip synthesis of the presets used")
    e.add_argument("--rtl-comparisons", action="store_true", help=RTL_COMPARISONS)
    e.add_argument("--out", help="output folder (default reports/evaluate/NAME)")
    e.set_defaults(func=_evaluate)

    def training_options(t):
        t.add_argument("--budget", type=float,
                       help="INT8 test accuracy points the regularised network may lose against the "
                            "unregularised fine-tuning (default 1)")
        t.add_argument("--images", type=int, help="test images whose conv layers run on the RTL (default 2)")
        t.add_argument("--sim", choices=SIMULATORS, default="verilator")
        t.add_argument("--epochs", type=int, help="fine-tuning epochs per trained network (default 8)")
        t.add_argument("--steps", type=int,
                       help="bisection steps of the strength search after its bracket is found (default 4)")
        t.add_argument("--out", help="output folder")

    t = sub.add_parser("train", help="fine-tune a network with a sparsity regulariser for a target, measure on RTL",
                       description="Fine-tune a built-in network with METHOD (none, l1, targeting or holistic: "
                                   "cost-weighted L1 + Hoyer from the target's fitted cycle model), the global "
                                   "strength searched to the accuracy budget; run its conv layers on the target's "
                                   "RTL against golden; write OUT/train.json (default reports/train/). Exit 0, 1 "
                                   "on an RTL mismatch, 2 for invalid input (before any training).")
    t.add_argument("--network", required=True, help=f"built-in network: {', '.join(NETWORKS)}")
    t.add_argument("--target", required=True, help="BLOCK[/PRESET]: a block whose cycles fall with its input "
                   "density: the PE arrays cscnn, scnn, the PEs cscnn_pe, scnn_pe, or snapea (two-sided)")
    t.add_argument("--method", required=True, help="none, l1, targeting or holistic")
    training_options(t)
    t.set_defaults(func=_train)

    h = sub.add_parser("holistic", help="the holistic experiment: methods x targets x networks on RTL",
                       description="For each network and target: the per-layer cycle model (fitted on golden, "
                                   "confirmed on RTL), the four methods trained to the same budget and measured "
                                   "on RTL; writes OUT/summary.json, report.md and plots (default "
                                   "reports/holistic/). Exit 0, 1 on an RTL mismatch, 2 for invalid input.")
    h.add_argument("--networks", help="comma-separated built-in networks (default digits,lenet5)")
    h.add_argument("--targets", help="comma-separated BLOCK[/PRESET] of the train targets (default "
                   "cscnn_pe,scnn_pe,snapea)")
    training_options(h)
    h.set_defaults(func=_holistic)

    w = sub.add_parser(
        "sweep", help="a grid of a block's parameters on a network's layers: RTL, synthesis, energy, on Dask",
        description="Every grid point of SPEC.toml (docs/sweep.md) is validated, then run as one Dask task on a "
                    "local cluster (one worker per core) or the scheduler at ADDRESS: RTL co-simulation of the "
                    "block's technique model (checked bit- and cycle-exact against golden) and the measures asked "
                    "for. Points are cached by their inputs, so a re-run computes only what is missing. Writes "
                    "DIR/results.csv, results.json and Pareto plots (default reports/sweep/<spec name>/). A grid's "
                    "size is bounded (docs/sweep.md); a point whose worker dies runs again, then is a row naming the "
                    "lost worker (its retries counted). Exit 0, 1 when a point failed or differed from golden (its "
                    "row says why), 2 for an invalid spec or an unreachable scheduler.")
    w.add_argument("spec", help="SPEC.toml")
    w.add_argument("--scheduler", help="a Dask scheduler address, e.g. tcp://host:8786 (default: a local cluster)")
    w.add_argument("--out", help="output folder (default reports/sweep/<spec name>)")
    w.add_argument("--fresh", action="store_true", help="recompute every point instead of reusing cached results")
    w.set_defaults(func=_sweep)

    d = sub.add_parser(
        "demo", help="the main job: every technique's model, RTL (checked against golden) and synthesis, one report",
        description="Train or reuse the digits CNN; derive the dense, S2TA, CSCNN, MoR and SnaPEA models and "
                    "their test accuracy; run every layer (conv and fc) of the first IMAGES test images through each "
                    "technique's RTL and the dense systolic baseline at equal MACs, checked bit- and cycle-exact "
                    "against golden; synthesize the presets; write reports/demo/summary.json, papers.json, "
                    "report.md and plots. "
                    "Checkpoints, builds, synthesis and RTL results are cached by what produced them. "
                    "Exit 0 when everything matched, 1 on a mismatch (layer, technique, coordinates, waveform).")
    d.add_argument("--sim", choices=SIMULATORS, default="verilator")
    d.add_argument("--images", type=int, help="test images whose layers run on the RTL (default 4)")
    batch_option(d)
    tiling_option(d)
    d.add_argument("--no-synth", action="store_true", help="skip synthesis of the presets used")
    d.add_argument("--rtl-comparisons", action="store_true", help=RTL_COMPARISONS)
    d.add_argument("--fresh", action="store_true",
                   help="re-simulate every RTL check instead of reusing results cached for the same Verilog and inputs")
    d.set_defaults(func=_demo)
    return p


def main(argv=None):
    """Exit 0 done, 1 RTL differs from golden (only), 2 invalid input, 3 a tool failed or an internal
    error, 130 interrupted; every error is one line on stderr (``ZS_TRACEBACK=1`` adds the traceback)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help, or a command-line error already printed in one line
        return done.code
    except KeyboardInterrupt:
        return 130
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"zeroskip {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError) as error:
        print(f"zeroskip {args.command}: {error}", file=sys.stderr)
        return 2
    except (SimulationError, ToolError, RuntimeError) as error:
        print(f"zeroskip {args.command}: {error}", file=sys.stderr)
        return 3
    except Exception as error:  # a crash must not look like a mismatch (1) or a refusal (2)
        if os.environ.get("ZS_TRACEBACK"):
            traceback.print_exc()
        print(f"zeroskip {args.command}: internal error: {type(error).__name__}: {error} "
              "(set ZS_TRACEBACK=1 for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
