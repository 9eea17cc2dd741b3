"""The hardware table: what every block costs and how fast each technique runs -> reports/bench/hardware.json, .md.

Per block, its catalog default: Yosys generic logic cells and RAM bits (RAM leaves as SRAM macros) with the
synthesis wall time, the clock it allows at OSU 0.18 µm and its worst path (``synth.timing``: OpenSTA), ECP5
LUT4/FF, nextpnr-ecp5 Fmax and critical path on the smallest ECP5 part it fits (``synth.yosys.ECP5_DEVICES``),
and the Fmax of the block's smallest placeable preset (one PE for SnaPEA: comparable with earlier tables); per
technique and layer of the digits network and LeNet-5, and over the whole network per image: RTL cycles against
the dense ``sa`` array with the same MAC count (``zeroskip evaluate``, fc layers in batches of its default
``BATCH`` on both sides, bit-exact, cached). Every future change to the hardware shows here what it cost.
`python -m flow.bench.hardware [--force]`.
"""

import argparse
import json
import time

from tqdm import tqdm

from generators.config import CATALOG, preset

from ..harness.drivers import BLOCKS
from ..report.evaluate import evaluate
from ..report.markdown import table
from ..synth.area import preset_area
from ..synth.timing import asic_timing
from ..synth.yosys import TARGET_MHZ, synthesize
from ..techniques import TECHNIQUES
from . import BENCH_DIR

__all__ = ["BENCH_DIR", "PLACED", "NETWORKS", "hardware"]

PLACED = {name: block.placed for name, block in BLOCKS.items()}  # the smallest placeable preset of each block
NETWORKS = {"digits": 8, "lenet5": 2}   # network: test images whose layers run on RTL


def _blocks(force, log):
    rows = []
    for block in tqdm(CATALOG, desc="synthesis", leave=False):
        cfg = preset(block, "default")
        start = time.perf_counter()
        area = preset_area(cfg, force=force)
        seconds = area["yosys_seconds"] or time.perf_counter() - start  # this call's if cached without its time
        asic = asic_timing(cfg, force=force)
        fpga = synthesize(cfg, force=force)
        placed = synthesize(preset(block, PLACED[block]), force=force)
        rows.append({"block": block, "default": area["module"], "logic_cells": area["logic_cells"],
                     "ram_bits": area["ram_bits"], "synth_seconds": round(seconds, 1),
                     "asic_mhz": asic["fmax_mhz"], "asic_period_ns": asic["period_ns"],
                     "asic_path": None if asic["from"] is None else
                     {"from": asic["from"], "to": asic["to"], "levels": asic["logic_levels"]},
                     "asic_cells": asic["cells"], "macro_access_ns": asic["macros"],
                     "device": fpga["device"], "lut4": fpga["ecp5_lut4"], "ff": fpga["ecp5_ff"],
                     "fmax_mhz": fpga["fmax_mhz"], "pnr_skipped": fpga["pnr_skipped"],
                     "critical_path": fpga["critical_path"], "placed": placed["module"],
                     "placed_fmax_mhz": placed["fmax_mhz"]})
        log(f"  {block}: {area['module']} {area['logic_cells']} cells + {area['ram_bits']} RAM bits in "
            f"{seconds:.0f} s; OSU 0.18 um {asic['fmax_mhz']} MHz; {fpga['device']} {fpga['fmax_mhz']} MHz; "
            f"{placed['module']} {placed['fmax_mhz']} MHz")
    return rows


def _speedups(log):
    out = {}
    for network, images in NETWORKS.items():
        out_dir = BENCH_DIR / f"hardware_{network}"
        status = evaluate(network, images=images, synth=False, out_dir=out_dir, log=lambda *a: None)
        summary = json.loads((out_dir / "summary.json").read_text())
        out[network] = {key: {"preset": summary[key]["preset"]["module"], "bit_exact": summary[key]["rtl_bit_exact"],
                              "fc_batch": summary["dataset"]["fc_batch"],
                              "network": round(summary[key]["speedup_vs_dense"], 3),
                              "layers": {r["layer"]: round(r["speedup_vs_dense"], 3) for r in summary[key]["layers"]},
                              "fallbacks": {r["layer"]: r["fallback"] for r in summary[key]["layers"]
                                            if r.get("fallback")}}
                        for key in TECHNIQUES if key in summary}
        if "mor" in summary:  # the engine without its predictor, and what the predictor's skips buy
            out[network]["mor"]["predictor"] = [
                {"layer": r["layer"], "no_predictor_vs_dense": round(r["dense_cycles"] / base["cycles"], 3),
                 "macs_skipped": round(1 - r["multiplications"] / base["multiplications"], 4),
                 "cycle_gain": round(1 - r["cycles"] / base["cycles"], 4)}
                for r, base in zip(summary["mor"]["layers"], summary["mor"]["no_predictor"])]
        log(f"  {network}: evaluate exit {status}")
    return out


def hardware(*, force=False, log=print):
    """The table's rows ({"blocks", "speedup_vs_dense"}), written to reports/bench/hardware.json and .md."""
    result = {"blocks": _blocks(force, log), "speedup_vs_dense": _speedups(log)}
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "hardware.json").write_text(json.dumps(result, indent=1) + "\n")

    def path(p, detail):
        return "-" if not p else f"{p['from']} → {p['to']} ({detail(p)})"

    lines = ["# Hardware table", "", "Every block's catalog default: its area, the clock it allows at OSU 0.18 µm "
             f"(OpenSTA, mapped for {TARGET_MHZ} MHz, SRAM macros at CACTI's access time) and on an ECP5 FPGA "
             "(nextpnr-ecp5 on the smallest part it fits).", "", table(result["blocks"], [
                 ("block", lambda r: r["block"]), ("default", lambda r: r["default"]),
                 ("logic cells (generic)", lambda r: str(r["logic_cells"])), ("RAM bits", lambda r: str(r["ram_bits"])),
                 ("synthesis s", lambda r: f"{r['synth_seconds']:.0f}"),
                 ("ASIC MHz (OSU 0.18 µm)", lambda r: f"{r['asic_mhz']:.0f}" if r["asic_mhz"] else "-"),
                 ("ASIC worst path", lambda r: path(r["asic_path"], lambda p: f"{p['levels']} levels")),
                 ("ECP5 part", lambda r: r["device"] or "-"), ("LUT4", lambda r: str(r["lut4"])),
                 ("FF", lambda r: str(r["ff"])),
                 ("FPGA Fmax MHz", lambda r: f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else f"not placed: "
                                                                                          f"{r['pnr_skipped']}"),
                 ("FPGA critical path", lambda r: path(r["critical_path"], lambda p: f"{p['delay_ns']:.1f} ns")),
                 ("smallest preset", lambda r: r["placed"]),
                 ("its Fmax MHz (LFE5U-25F)", lambda r: f"{r['placed_fmax_mhz']:.1f}")]), ""]
    for network, techniques in result["speedup_vs_dense"].items():
        layers = list(next(iter(techniques.values()))["layers"])
        batch = next(iter(techniques.values()))["fc_batch"]
        speedups = table(list(techniques.items()), [
            ("technique", lambda kv: kv[0]), ("preset", lambda kv: kv[1]["preset"]),
            *((layer, lambda kv, layer=layer: f"{kv[1]['layers'][layer]:.2f}x") for layer in layers),
            ("whole network (per image)", lambda kv: f"{kv[1]['network']:.2f}x"),
            ("bit-exact", lambda kv: "yes" if kv[1]["bit_exact"] else "NO")])
        lines += [f"## Cycles vs dense at equal MACs: {network} (fc layers in batches of {batch})", "", speedups, ""]
        lines += [f"- {key} {layer}: {why}" for key, t in techniques.items() for layer, why in t["fallbacks"].items()]
        if "predictor" in techniques.get("mor", {}):
            lines += ["", f"MoR's engine on {network}: without its predictor vs dense, and the predictor's cycle gain "
                      "against the fraction of MACs it skips:", "", table(techniques["mor"]["predictor"], [
                          ("layer", lambda r: r["layer"]),
                          ("no predictor vs dense", lambda r: f"{r['no_predictor_vs_dense']:.2f}x"),
                          ("MACs skipped", lambda r: f"{r['macs_skipped']:.1%}"),
                          ("cycle gain", lambda r: f"{r['cycle_gain']:.1%}"),
                          ("gain / skipped", lambda r: f"{r['cycle_gain'] / r['macs_skipped']:.2f}"
                           if r["macs_skipped"] else "-")])]
        lines.append("")
    (BENCH_DIR / "hardware.md").write_text("\n".join(lines))
    log(f"wrote {BENCH_DIR / 'hardware.json'} and hardware.md")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="re-run cached syntheses (true synthesis times)")
    hardware(force=parser.parse_args(argv).force)


if __name__ == "__main__":
    main()
