"""Benchmark of the systolic arrays (S2TA Fig. 9d trend, area per MAC, ZVCG, simulation throughput) -> reports/bench.

Speedups are RTL cycles on Verilator (each run checked bit-exact against golden and against the
cycle model) of each variant's default preset over `sa`'s at the same MAC count; the paper-scale
presets' speedups come from the cycle model, which the tests hold equal to the RTL.
"""

import argparse
import json

import matplotlib
import numpy as np
from tqdm import tqdm

from generators.config import CATALOG, VARIANTS
from golden.conv import conv_as_gemm
from golden.dbb import wdbb_prune
from golden.systolic import array_cycles, fold_steps, folds, zvcg_updates

from ..bench.throughput import throughput_ratio
from ..harness.activations import conv_inputs
from ..harness.cosim import first_mismatch
from ..harness.drivers.array import ArrayDriver
from ..harness.network import load_network
from ..synth.yosys import synthesize
from ..techniques.s2ta import s2ta_models
from . import BENCH_DIR

__all__ = ["speedup_sweep", "zvcg_fraction", "area_table"]

DENSITIES = (1, 2, 3, 4, 5, 8)  # nnz_a of 8: 1/8 .. 5/8 and dense


def _activations(rng, m, k, nnz, bz):
    """Activations with exactly ``nnz`` non-zeros (0..127, post-ReLU) in every K-block."""
    a = np.zeros((m, -(-k // bz) * bz), np.int8)
    for block in range(a.shape[1] // bz):
        for row in range(m):
            keep = rng.choice(bz, nnz, replace=False) + block * bz
            a[row, keep] = rng.integers(1, 128, nnz)
    return a[:, :k]


_drivers = {}


def _run(cfg, args, sim):
    """RTL cycles of ``args``, refusing to report a run that is not bit-exact and cycle-exact."""
    golden, golden_cycles = ArrayDriver.golden(cfg, args)
    if (cfg, sim) not in _drivers:
        _drivers[cfg, sim] = ArrayDriver(cfg, sim)
    rtl, cycles = _drivers[cfg, sim].run(args)
    if first_mismatch(rtl, golden) is not None or cycles != golden_cycles:
        raise RuntimeError(f"{cfg.module}: RTL differs from golden ({first_mismatch(rtl, golden)}, "
                           f"{cycles} vs {golden_cycles} cycles)")
    return cycles


def speedup_sweep(ks=(512, 4096), *, sim="verilator", seed=0, log=print):
    """RTL speedup over `sa` at equal MACs vs activation density, per K; plus the paper-scale cycle model."""
    rng = np.random.default_rng(seed)
    sa, w_cfg, aw = (CATALOG[v]["default"] for v in ("sa", "s2ta_w", "s2ta_aw"))
    assert sa.macs == w_cfg.macs == aw.macs
    rows = []
    for k in ks:
        m, n = 2 * max(c.pixels for c in (sa, w_cfg, aw)), 2 * max(c.channels for c in (sa, w_cfg, aw))
        w = wdbb_prune(rng.integers(-127, 128, (k, n)).astype(np.int8), aw.b, aw.bz, axis=0)
        for nnz in tqdm(DENSITIES, desc=f"K={k}", leave=False):
            a = _activations(rng, m, k, nnz, aw.bz)
            base = _run(sa, ArrayDriver.validate(sa, {"a": a, "w": w}), sim)
            row = {"k": k, "m": m, "n": n, "nnz_a": nnz, "density": nnz / aw.bz, "macs": sa.macs, "sa_cycles": base}
            row["s2ta_aw_cycles"] = _run(aw, ArrayDriver.validate(aw, {"a": a, "w": w, "nnz_a": np.int64(nnz)}), sim)
            row["s2ta_w_cycles"] = _run(w_cfg, ArrayDriver.validate(w_cfg, {"a": a, "w": w}), sim)
            for v in ("s2ta_aw", "s2ta_w"):
                row[f"{v}_speedup"] = round(base / row[f"{v}_cycles"], 3)
            row["s2ta_aw_speedup_over_ideal"] = round(row["s2ta_aw_speedup"] / (aw.bz / nnz), 3)
            row["paper_scale_model"] = _paper_model(k, nnz)
            rows.append(row)
            log(f"  K={k} nnz_a={nnz}/{aw.bz}: sa {base} cycles, s2ta_aw {row['s2ta_aw_cycles']} "
                f"({row['s2ta_aw_speedup']}x, {row['s2ta_aw_speedup_over_ideal']} of bz/nnz_a), "
                f"s2ta_w {row['s2ta_w_cycles']} ({row['s2ta_w_speedup']}x)")
    return rows


def _paper_model(k, nnz):
    """Cycle-model speedups of the 2048-MAC paper presets on a GEMM of 4 folds of `sa` (M=64, N=128)."""
    out = {}
    sa = CATALOG["sa"]["paper"]
    m, n = 2 * sa.rows, 2 * sa.cols

    def cycles(cfg, **kw):
        return array_cycles(cfg, [fold_steps(cfg, k, **kw)] * len(folds(cfg, m, n)))

    base = cycles(sa)
    out["s2ta_aw"] = round(base / cycles(CATALOG["s2ta_aw"]["paper"], nnz_a=nnz), 3)
    out["s2ta_w"] = round(base / cycles(CATALOG["s2ta_w"]["paper"]), 3)
    return out


def zvcg_fraction(network, layer_index=1):
    """Fraction of accumulator-register updates ZVCG suppresses on a real conv layer of the digits CNN."""
    cfg = CATALOG["sa_zvcg"]["default"]
    layer = network.qnet.convs[layer_index]
    x = conv_inputs(network.qnet, network.data.x_test[:1])[layer.name][0]
    a, w, _ = conv_as_gemm(x, layer.w, pad=layer.pad, stride=layer.stride)
    gated, total = zvcg_updates(cfg, a, w)
    return {"layer": layer.name, "preset": cfg.name, "activation_density": float(np.count_nonzero(a) / a.size),
            "weight_density": float(np.count_nonzero(w) / w.size), "suppressed_updates": gated,
            "updates": total, "fraction_suppressed": round(gated / total, 4)}


def area_table(*, ecp5=True, log=print):
    """Generic cells per MAC of every preset; ECP5 LUT4/FF/Fmax of each small preset and each default TPE."""
    rows = []
    for variant in VARIANTS:
        for name, cfg in CATALOG[variant].items():
            log(f"  synthesizing {cfg.module} (generic)")
            r = synthesize(cfg, ecp5=False, pnr=False)
            rows.append({"variant": variant, "preset": name, "top": cfg.module, "notation": cfg.notation(),
                         "macs": cfg.macs, "generic_cells": r["generic_cells"],
                         "generic_cells_per_mac": round(r["generic_cells"] / cfg.macs, 1),
                         "cells_per_module": r["cells_per_module"]})
        if ecp5:
            for cfg, top, macs in [(CATALOG[variant]["small"], None, CATALOG[variant]["small"].macs),
                                   (CATALOG[variant]["default"], f"{CATALOG[variant]['default'].module}_tpe",
                                    CATALOG[variant]["default"].macs_per_tpe)]:
                log(f"  synthesizing {top or cfg.module} (ECP5, nextpnr)")
                r = synthesize(cfg, top=top)
                rows.append({"variant": variant, "preset": cfg.name, "top": r["module"], "notation": cfg.notation(),
                             "macs": macs, "generic_cells": r["generic_cells"],
                             "generic_cells_per_mac": round(r["generic_cells"] / macs, 1),
                             "ecp5_lut4": r["ecp5_lut4"], "ecp5_ff": r["ecp5_ff"],
                             "ecp5_lut4_per_mac": round(r["ecp5_lut4"] / macs, 1), "fmax_mhz": r["fmax_mhz"]})
    return rows


def _plot(rows, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k in sorted({r["k"] for r in rows}):
        sel = [r for r in rows if r["k"] == k]
        ax.plot([r["density"] for r in sel], [r["s2ta_aw_speedup"] for r in sel], "o-", label=f"s2ta_aw RTL, K={k}")
    dens = np.array(DENSITIES) / 8
    ax.plot(dens, 1 / dens, "k--", lw=1, label="ideal bz/nnz_a")
    w_rows = [r for r in rows if r["k"] == max(r["k"] for r in rows)]
    ax.axhline(w_rows[0]["s2ta_w_speedup"], color="tab:red", ls=":", label="s2ta_w RTL (4/8 weights)")
    ax.set_xlabel("activation density (nnz_a / 8)")
    ax.set_ylabel("speedup over sa at equal MACs (RTL cycles)")
    ax.set_title("S2TA Fig. 9d trend on our RTL (16-MAC default presets)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, action="append", help="reduction lengths (default 512 and 4096)")
    p.add_argument("--no-speedup", action="store_true", help="skip the RTL speedup sweep")
    p.add_argument("--no-synth", action="store_true", help="skip the area table")
    p.add_argument("--no-ecp5", action="store_true", help="generic cells only (no ECP5 LUTs / Fmax)")
    args = p.parse_args(argv)

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / "s2ta.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    if not args.no_speedup:
        print("speedup vs activation density (RTL, Verilator)")
        report["speedup"] = speedup_sweep(tuple(args.k or (512, 4096)))
        _plot(report["speedup"], BENCH_DIR / "s2ta_speedup.png")
    network = load_network()
    report["zvcg"] = zvcg_fraction(network)
    print(f"ZVCG on {report['zvcg']['layer']}: {report['zvcg']['fraction_suppressed']:.1%} of updates suppressed")
    aw_dbb = s2ta_models(network)["aw_dbb"]
    report["throughput"] = throughput_ratio(aw_dbb.qnet, network.data.x_test, aw_dbb.nnz_a)
    print(f"simulation throughput: cocotb+Verilator / plain Verilator = {report['throughput']['ratio']}")
    if not args.no_synth:
        print("area (Yosys)")
        report["area"] = area_table(ecp5=not args.no_ecp5)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {path} (sections kept from earlier runs unless re-run) and s2ta_speedup.png")


if __name__ == "__main__":
    main()
