"""`make checkpoints`: every built-in network trained and every technique's models derived from it, written to the
package's shipped checkpoints (``models.checkpoint.SHIPPED``), so a clean clone's demo and tests train nothing.

A checkpoint already shipped under the same recipe key is kept; a shipped file no recipe asks for any more is
removed. ``--fresh`` re-trains everything (what the ``slow`` re-training test compares with).
"""

import argparse
import time

from models.checkpoint import SHIPPED, shipping
from models.networks import NETWORKS

from ..harness.network import load_network
from ..techniques import TECHNIQUES

__all__ = ["make_checkpoints"]

ALL = tuple(NETWORKS)


def make_checkpoints(networks=ALL, *, fresh=False, log=print):
    """Train or reuse every checkpoint of ``networks`` into SHIPPED; return the names shipped."""
    start = time.perf_counter()
    if fresh:
        for path in SHIPPED.glob("*"):
            path.unlink()
    with shipping() as used:
        for name in networks:
            net = load_network(name, log=log)
            for technique in TECHNIQUES.values():
                log(f"{name}: {technique.name}")
                technique.derive(net, log=log)
    # a file no recipe asks for any more, once every network has been through (a subset keeps the others' files)
    stale = [p for p in SHIPPED.glob("*") if p.name not in used] if set(networks) >= set(ALL) else []
    for path in stale:
        path.unlink()
    log(f"checkpoints: {len(used)} in {SHIPPED} ({len(stale)} stale removed) in {time.perf_counter() - start:.0f} s")
    return sorted(used)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m flow.report.checkpoints", description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default=",".join(ALL), help="built-in networks (default: all)")
    parser.add_argument("--fresh", action="store_true", help="re-train every checkpoint")
    args = parser.parse_args(argv)
    names = [n for n in args.networks.split(",") if n]
    unknown = sorted(set(names) - set(ALL))
    if unknown or not names:
        parser.error(f"networks must be among {', '.join(ALL)}, not {args.networks!r}")
    make_checkpoints(names, fresh=args.fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
