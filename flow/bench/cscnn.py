"""Benchmark of the Cartesian-product PEs and PE arrays, CSCNN vs SCNN: Table II, products, cycles, tilings, area
-> reports/bench/cscnn.json.

Real layers and the 3x3 synthetic sweep run on the RTL (Verilator, each run checked bit-exact and
cycle-exact against golden); the 5x5 sweep, which no preset holds, comes from the golden PE model
and its cycle model, which the tests hold equal to the RTL. The arrays (`cscnn`, `scnn` default: 2x2 PEs, 64
MACs) run every compute layer of the digits CNN and LeNet-5 on the RTL under each tiling, beside one PE and the
dense `sa_mac64` (the paper's Fig. 11a and its speedups over a dense accelerator and SCNN).
"""

import argparse
import dataclasses
import json

import matplotlib
import numpy as np
from tqdm import tqdm

from generators.config import CATALOG, PE_BLOCKS, preset
from golden.cartesian_array import TILINGS
from golden.cartesian_pe import pe_conv
from golden.cscnn import canonical_mask, mirror_canonical

from ..harness.activations import conv_inputs, layer_inputs
from ..harness.cosim import first_mismatch
from ..harness.drivers import DRIVERS
from ..harness.network import load_network
from ..synth.area import preset_area
from ..synth.yosys import synthesize
from ..techniques.cscnn import cscnn_models, layer_convs, table_ii
from ..techniques.dense import check_array_layers, dense_at
from . import BENCH_DIR

__all__ = ["run_checked", "real_layer_table", "density_sweep", "pe_area", "array_table", "array_area"]

DENSITIES = (0.1, 0.25, 0.5, 0.75, 1.0)
_drivers = {}


def run_checked(cfg, inputs, sim="verilator"):
    """RTL ``{"mults", "stalls", "cycles"}`` of one layer on a PE or PE array, refusing to report a run that differs
    from golden."""
    driver = DRIVERS[cfg.block]
    args = driver.validate(cfg, inputs)
    golden, golden_cycles = driver.golden(cfg, args)
    if (cfg, sim) not in _drivers:
        _drivers[cfg, sim] = driver(cfg, sim)
    rtl, cycles = _drivers[cfg, sim].run(args)
    if first_mismatch(rtl, golden) is not None or cycles != golden_cycles:
        raise RuntimeError(f"{cfg.module}: RTL differs from golden ({first_mismatch(rtl, golden)}, "
                           f"{cycles} vs {golden_cycles} cycles)")
    return {"mults": int(rtl["mults"]), "stalls": int(rtl["stalls"]), "cycles": cycles}


def _pair(scnn, cscnn):
    return {**{f"scnn_{k}": v for k, v in scnn.items()}, **{f"cscnn_{k}": v for k, v in cscnn.items()},
            "mults_ratio": round(cscnn["mults"] / max(1, scnn["mults"]), 4),
            "cycles_ratio": round(cscnn["cycles"] / scnn["cycles"], 4)}


def _sum(runs):
    return {key: sum(run[key] for run in runs) for key in runs[0]}


def real_layer_table(models, images, *, log=print):
    """Per centrosymmetric model and conv layer: both PEs' RTL products/stalls/cycles over ``images``."""
    rows = []
    for name in ("centrosymmetric", "cs_pruned"):
        qnet = models[name].qnet
        acts = conv_inputs(qnet, images)
        for layer in tqdm(qnet.convs, desc=f"{name} layers", leave=False):
            runs = {block: _sum([run_checked(CATALOG[block]["default"], {"x": x, "w": layer.w, "bias": layer.bias})
                                 for x in acts[layer.name]]) for block in PE_BLOCKS}
            rows.append({"model": name, "layer": layer.name, "images": len(images),
                         **_pair(runs["scnn_pe"], runs["cscnn_pe"])})
            log(f"  {name} {layer.name}: CSCNN forms {rows[-1]['mults_ratio']:.3f} of SCNN's products in "
                f"{rows[-1]['cycles_ratio']:.3f} of its cycles")
    return rows


def _synthetic(rng, r, s, w_density, a_density, channels=8, filters=8, size=8):
    """Post-ReLU activations and centrosymmetric weights pruned by dual pair, at the given densities."""
    x = np.where(rng.random((channels, size, size)) < a_density, rng.integers(1, 128, (channels, size, size)), 0)
    w = rng.integers(-127, 128, (filters, channels, r, s))
    w[w == 0] = 1
    kept = rng.random(w.shape) < w_density
    return {"x": x.astype(np.int8), "w": mirror_canonical(np.where(kept & canonical_mask(r, s), w, 0)).astype(np.int8),
            "bias": np.zeros(filters, np.int32)}


def density_sweep(*, seed=0, log=print):
    """Products and cycles of both PEs over weight x activation density, 3x3 (RTL) and 5x5 (golden model)."""
    rng = np.random.default_rng(seed)
    rows = []
    points = [(r, wd, ad) for r in (3, 5) for wd in DENSITIES for ad in DENSITIES]
    for r, wd, ad in tqdm(points, desc="density sweep", leave=False):
        inputs = _synthetic(rng, r, r, wd, ad)
        runs = {}
        for block in PE_BLOCKS:
            cfg = CATALOG[block]["default"]
            if r == cfg.r:
                runs[block] = run_checked(cfg, inputs)
            else:
                out = pe_conv(dataclasses.replace(cfg, r=r, s=r), **inputs)
                runs[block] = {k: out[k] for k in ("mults", "stalls", "cycles")}
        rows.append({"filter": f"{r}x{r}", "source": "rtl" if r == 3 else "golden model",
                     "weight_density": wd, "activation_density": ad, **_pair(runs["scnn_pe"], runs["cscnn_pe"])})
    dense = [row for row in rows if row["weight_density"] == 1.0]
    for size in ("3x3", "5x5"):
        ratios = [row["mults_ratio"] for row in dense if row["filter"] == size]
        log(f"  {size}, dense weights: CSCNN forms {min(ratios):.3f}..{max(ratios):.3f} of SCNN's products")
    return rows


def pe_area(*, ecp5=True, log=print):
    """Yosys figures of both PEs: logic (generic cells without the accumulator banks) and ECP5 LUT4/FF of the
    default (4x4) presets; Fmax from nextpnr-ecp5 on the small (2x2) presets, the defaults' crossbars being
    too congested to route in reasonable time."""
    rows = []
    for block in PE_BLOCKS:
        for name in ("default", "small"):
            cfg = CATALOG[block][name]
            pnr = ecp5 and name == "small"
            log(f"  synthesizing {cfg.module}" + (" (ECP5, nextpnr)" if pnr else " (ECP5)" if ecp5 else " (generic)"))
            r = synthesize(cfg, ecp5=ecp5, pnr=pnr)
            bank_cells = r["cells_per_module"][f"{cfg.module}_bank"] * cfg.banks * cfg.buffers
            rows.append({"block": block, "preset": name, "module": cfg.module, "multipliers": cfg.macs,
                         "accumulator_bits": cfg.banks * cfg.buffers * cfg.depth * 32,
                         "generic_cells": r["generic_cells"], "bank_cells": bank_cells,
                         "logic_cells": r["generic_cells"] - bank_cells, "ecp5_lut4": r["ecp5_lut4"],
                         "ecp5_ff": r["ecp5_ff"], "fmax_mhz": r["fmax_mhz"]})
    overhead = {}
    for name in ("default", "small"):
        scnn, cscnn = (next(r for r in rows if r["block"] == b and r["preset"] == name) for b in PE_BLOCKS)
        overhead[name] = {key: round(cscnn[key] / scnn[key] - 1, 4)
                          for key in ("logic_cells", "ecp5_lut4", "ecp5_ff", "accumulator_bits") if scnn[key]}
    log(f"  CSCNN PE overhead over SCNN (default): {overhead['default']} (paper: 17.7% of PE area, SRAM included)")
    return {"pes": rows, "cscnn_overhead": overhead, "paper_overhead": 0.177}


def array_table(networks=("digits", "lenet5"), images=2, *, log=print):
    """Per network and compute layer of its cs_pruned model: RTL cycles (summed over ``images``) of the cscnn array
    under each tiling, of one cscnn PE, of the scnn array under SCNN's planar tiling, and of the dense ``sa`` array
    at the array's MACs on the dense network (as the demo's baseline)."""
    rows = []
    array = preset("cscnn", "default")
    dense_cfg = dense_at(array.macs)
    for name in networks:
        net = load_network(name, log=log)
        qnet = cscnn_models(net, log=log)["cs_pruned"].qnet
        xs = net.data.x_test[:images]
        dense = {r["layer"]: r["cycles"] for r in check_array_layers(dense_cfg, "verilator", net.qnet, xs, log=log)}
        acts = layer_inputs(qnet, xs)
        for layer in tqdm(qnet.computes, desc=f"{name} layers", leave=False):
            convs = layer_convs(array, layer, acts[layer.name])
            variant = convs[0][0]
            scnn = dataclasses.replace(variant, reuse=False)

            def cycles(cfg, convs=convs, **extra):
                return sum(run_checked(cfg, {"x": x, "w": w, "bias": bias, **extra})["cycles"]
                           for _, x, w, bias in convs)

            row = {"network": name, "layer": layer.name, "filters": int(layer.w.shape[0]), "images": len(xs),
                   **{t: cycles(variant, tiling=t) for t in TILINGS}, "one_pe": cycles(variant.pe),
                   "scnn_planar": cycles(scnn, tiling="planar"),
                   "dense": dense[layer.name]}
            best = min(TILINGS, key=row.get)
            row.update({"best": best, "mixed_vs_planar": row["planar"] / row["mixed"],
                        "mixed_vs_channel": row["channel"] / row["mixed"],
                        "array_vs_one_pe": row["one_pe"] / row["mixed"],
                        "best_vs_one_pe": row["one_pe"] / row[best], "vs_dense": row["dense"] / row[best],
                        "vs_scnn": row["scnn_planar"] / row[best]})
            rows.append(row)
            log(f"  {name} {layer.name}: mixed {row['mixed']}, planar {row['planar']}, channel {row['channel']}, "
                f"one PE {row['one_pe']} cycles; mixed {row['array_vs_one_pe']:.2f}x one PE, best ({best}) "
                f"{row['vs_dense']:.2f}x {dense_cfg.module}, {row['vs_scnn']:.2f}x SCNN")
    return rows


def array_area(log=print):
    """Yosys generic logic cells and RAM bits of the default arrays (RAM leaves as SRAM macros, as the demo)."""
    out = {}
    for block in ("scnn", "cscnn"):
        cfg = preset(block, "default")
        log(f"  synthesizing {cfg.module}")
        r = preset_area(cfg)
        out[block] = {"module": cfg.module, "logic_cells": r["logic_cells"], "ram_bits": r["ram_bits"]}
    out["cscnn_over_scnn"] = round(out["cscnn"]["logic_cells"] / out["scnn"]["logic_cells"] - 1, 4)
    log(f"  CSCNN array over SCNN array: {out['cscnn_over_scnn']:+.1%} logic cells (paper: +17.7% area)")
    return out


def _plot(report, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for size, style in (("3x3", "o-"), ("5x5", "s--")):
        for ad in (0.25, 1.0):
            sel = [r for r in report["sweep"] if r["filter"] == size and r["activation_density"] == ad]
            left.plot([r["weight_density"] for r in sel], [r["mults_ratio"] for r in sel], style,
                      label=f"{size}, activation density {ad}")
    left.axhline(5 / 9, color="k", lw=1, ls=":", label="5/9")
    left.axhline(13 / 25, color="grey", lw=1, ls=":", label="13/25")
    left.set_xlabel("weight density (dual pairs kept)")
    left.set_ylabel("CSCNN / SCNN products")
    left.set_title("products formed, synthetic layers")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    rows = report["real_layers"]
    labels = [f"{r['model']} {r['layer']}" for r in rows]
    xs = np.arange(len(rows))
    right.bar(xs - 0.2, [r["mults_ratio"] for r in rows], 0.4, label="products")
    right.bar(xs + 0.2, [r["cycles_ratio"] for r in rows], 0.4, label="cycles")
    right.set_xticks(xs, labels, fontsize=7, rotation=30, ha="right")
    right.set_ylabel("CSCNN PE / SCNN PE (RTL)")
    right.set_title("digits CNN layers, Verilator, bit-exact")
    right.legend()
    right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=5, help="test images per real layer (default 5)")
    p.add_argument("--no-synth", action="store_true", help="skip the area table")
    p.add_argument("--no-ecp5", action="store_true", help="generic cells only (no ECP5 LUTs / Fmax)")
    p.add_argument("--arrays-only", action="store_true", help="only the PE-array tables (tilings, area)")
    args = p.parse_args(argv)

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / "cscnn.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    print("PE arrays: tilings, one PE, SCNN and dense (RTL, Verilator)")
    report["arrays"] = array_table(images=args.images, log=tqdm.write)
    if not args.no_synth:
        report["array_area"] = array_area(log=tqdm.write)
    if args.arrays_only:
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written {path}")
        return
    network = load_network()
    models = cscnn_models(network)
    report["table_ii"] = table_ii(models, network.data.x_test)
    for row in report["table_ii"]:
        print(f"  Table II {row['model']}: accuracy {row['accuracy']:.2%}, {row['conv_weights']} conv weights "
              f"({row['weight_reduction']}x fewer), {row['product_reduction']}x fewer products")
    print("real layers (RTL, Verilator)")
    report["real_layers"] = real_layer_table(models, network.data.x_test[:args.images], log=tqdm.write)
    print("density sweep")
    report["sweep"] = density_sweep()
    _plot(report, BENCH_DIR / "cscnn_products.png")
    if not args.no_synth:
        print("area (Yosys)")
        report["area"] = pe_area(ecp5=not args.no_ecp5)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {path} and cscnn_products.png")


if __name__ == "__main__":
    main()
