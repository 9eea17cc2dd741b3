"""`zeroskip compare`: golden vs RTL on the trained network's real layers, for every block each technique checks."""

from ..harness.cosim import rows_bit_exact
from ..harness.network import check_images, count_test_images, load_network
from ..techniques import TECHNIQUES

__all__ = ["compare"]

NETWORK = "digits"  # the network whose real layers are compared


def compare(*, sims=("verilator", "icarus"), images=16, array_images=1, log=print):
    """Print a per-layer table of items checked and mismatches; return 0 when all match.

    Every technique of ``TECHNIQUES`` says what it compares (``Technique.comparisons``): the DAP runs ``images``
    test images at every nnz; the arrays, PEs and engines ``array_images`` through each technique's model (Icarus
    simulates s2ta_aw at a few hundred cycles/s, so keep it small).
    """
    available = count_test_images(NETWORK)
    check_images(images, available)
    check_images(array_images, available, "array_images")
    net = load_network(NETWORK, log=log)
    table = [(block, sim, row, items) for sim in sims for technique in TECHNIQUES.values()
             for block, row, items in technique.comparisons(net, sim, images=images, array_images=array_images,
                                                            log=log)]
    print("\n| block | sim | layer | items checked | mismatches | cycles (RTL = golden) |")
    print("|---|---|---|---|---|---|")
    for block, sim, r, items in table:
        same = "yes" if r["cycles"] == r["golden_cycles"] else f"NO ({r['golden_cycles']})"
        print(f"| {block} | {sim} | {r['layer']} | {items} | {r['mismatches']} | {r['cycles']} {same} |")
    failed = [r for _, _, r, _ in table if not rows_bit_exact([r])]
    for r in failed:
        print(f"compare: {r['layer']}: first mismatch {r['first_mismatch']}; waveform {r['waveform']}")
    return 1 if failed else 0
