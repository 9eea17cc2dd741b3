"""`zeroskip compare`: golden vs RTL on the trained network's real layers, for every block that exists."""

from generators.config import default_preset

from .dap_check import check_layers
from .network import load_network

__all__ = ["compare"]


def compare(*, sims=("verilator", "icarus"), images=16, log=print):
    """Print a per-layer table of items checked and mismatches; return 0 when all match."""
    net = load_network(log=log)
    cfg = default_preset("dap")
    table = []
    for sim in sims:
        rows = check_layers(cfg, sim, net.qnet, net.data.x_test[:images], list(range(1, cfg.nnz_max + 1)), log=log)
        table += [(f"dap/{cfg.name}", sim, r) for r in rows]
    print("\n| block | sim | layer | items checked | mismatches | cycles (RTL = golden) |")
    print("|---|---|---|---|---|---|")
    for block, sim, r in table:
        same = "yes" if r["cycles"] == r["golden_cycles"] else f"NO ({r['golden_cycles']})"
        print(f"| {block} | {sim} | {r['layer']} | {r['blocks']} blocks (nnz 1..{cfg.nnz_max}) | "
              f"{r['mismatches']} | {r['cycles']} {same} |")
    failed = [r for _, _, r in table if r["mismatches"] or r["cycles"] != r["golden_cycles"]]
    for r in failed:
        print(f"compare: {r['layer']}: first mismatch {r['first_mismatch']}; waveform {r['waveform']}")
    return 1 if failed else 0
