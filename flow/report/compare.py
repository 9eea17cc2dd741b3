"""`zeroskip compare`: golden vs RTL on the trained network's real layers, for every block that exists."""

from generators.config import default_preset, preset

from ..harness.cosim import rows_bit_exact
from ..harness.network import load_network
from ..techniques.cscnn import check_cartesian_layers, cscnn_models
from ..techniques.dense import check_array_layers
from ..techniques.mor import check_mor_layers, engine_inputs, layer_notes, mor_tables
from ..techniques.s2ta import check_dap_layers, s2ta_models
from ..techniques.snapea import RTL_SPARSITY, check_snapea_layers, pruned_models

__all__ = ["compare"]


def compare(*, sims=("verilator", "icarus"), images=16, array_images=1, log=print):
    """Print a per-layer table of items checked and mismatches; return 0 when all match.

    DAP runs ``images`` test images at every nnz; the arrays run ``array_images`` through the
    A/W-DBB network (Icarus simulates s2ta_aw at a few hundred cycles/s, so keep it small), the PEs
    as many through the centrosymmetric + dual-pruned network, the MoR engine as many through the
    skipping network, and both SnaPEA arrays as many through the pruned network.
    """
    net = load_network(log=log)
    cfg = default_preset("dap")
    aw_dbb = s2ta_models(net, log=log)["aw_dbb"]
    cs_pruned = cscnn_models(net, log=log)["cs_pruned"]
    layer_tables, threshold, _ = mor_tables(net, log=log)
    mor_layers = engine_inputs(net.qnet, layer_tables, threshold, net.data.x_test[:array_images])
    pruned = pruned_models(net, log=log)[RTL_SPARSITY]
    table = []
    for sim in sims:
        rows = check_dap_layers(cfg, sim, net.qnet, net.data.x_test[:images], list(range(1, cfg.nnz_max + 1)), log=log)
        table += [(f"dap/{cfg.name}", sim, r, f"{r['blocks']} blocks (nnz 1..{cfg.nnz_max})") for r in rows]
        for variant in ("sa", "sa_zvcg", "s2ta_w", "s2ta_aw"):
            array = default_preset(variant)
            rows = check_array_layers(array, sim, aw_dbb.qnet, net.data.x_test[:array_images], nnz_a=aw_dbb.nnz_a,
                                      log=log)
            table += [(f"{variant}/{array.name}", sim, r,
                       f"{r['images']} image(s)" + (f", nnz_a {r['nnz_a']}" if variant == "s2ta_aw" else ""))
                      for r in rows]
        for block in ("scnn_pe", "cscnn_pe", "scnn", "cscnn"):
            pe = default_preset(block)
            rows = check_cartesian_layers(pe, sim, cs_pruned.qnet, net.data.x_test[:array_images], log=log)
            table += [(f"{block}/{pe.name}", sim, r, f"{r['images']} image(s), cs_pruned"
                       + (f", {r['tiling']} tiling" if "tiling" in r else "")) for r in rows]
        mor = default_preset("mor")
        rows = check_mor_layers(mor, sim, mor_layers, images=array_images, notes=layer_notes(net.qnet), log=log)
        table += [(f"mor/{mor.name}", sim, r, f"{r['images']} image(s), T = {threshold}, {r['skipped']} skipped")
                  for r in rows]
        for name in ("default", "one_sided"):
            array = preset("snapea", name)
            rows = check_snapea_layers(array, sim, pruned.qnet, net.data.x_test[:array_images], log=log)
            table += [(f"snapea/{name}", sim, r, f"{r['images']} image(s), {RTL_SPARSITY:.0%} pruned") for r in rows]
    print("\n| block | sim | layer | items checked | mismatches | cycles (RTL = golden) |")
    print("|---|---|---|---|---|---|")
    for block, sim, r, items in table:
        same = "yes" if r["cycles"] == r["golden_cycles"] else f"NO ({r['golden_cycles']})"
        print(f"| {block} | {sim} | {r['layer']} | {items} | {r['mismatches']} | {r['cycles']} {same} |")
    failed = [r for _, _, r, _ in table if not rows_bit_exact([r])]
    for r in failed:
        print(f"compare: {r['layer']}: first mismatch {r['first_mismatch']}; waveform {r['waveform']}")
    return 1 if failed else 0
