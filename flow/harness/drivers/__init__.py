"""Co-simulation drivers, one per block family: validate inputs, compute golden, run the RTL, compare.

Each driver module lists the blocks it drives in ``BLOCKS`` (``harness.block.Block``: driver, leaves, energy
calibration workload and presets, placed preset, docs page). ``BLOCKS`` here gathers them and every registry of
the flow derives from it (``DRIVERS``; the calibration's presets and workloads; the hardware table's placement);
``check_blocks`` names the block and the facet that is missing or wrong.
"""

import importlib
import pkgutil
import sys
from dataclasses import fields

from generators.config import CATALOG
from generators.registry import COMPONENTS

from ..block import Block
from ..runner import REPO
from .stream import StreamDriver

__all__ = ["BLOCKS", "DRIVERS", "discover", "check_blocks"]


def discover(package):
    """{block name: Block} of every module of ``package`` (an imported package) that defines ``BLOCKS``."""
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for block in getattr(module, "BLOCKS", ()):
            if block.name in found:
                raise ValueError(f"block {block.name!r} is described twice ({module.__name__})")
            found[block.name] = block
    return found


def check_blocks(blocks, catalog=CATALOG, components=COMPONENTS):
    """Raise ValueError naming the first block and facet that is missing or inconsistent: every catalog block
    described, with a component, its presets and leaves known, a driver that streams, a workload where it is
    calibrated, and its docs page present."""
    for name in catalog:
        if name not in blocks:
            raise ValueError(f"block {name!r}: no description (a Block in a driver module's BLOCKS)")
    for name, block in blocks.items():
        def fail(facet, why, name=name):
            raise ValueError(f"block {name!r}: facet {facet!r} {why}")

        if name not in catalog:
            fail("name", "is not in generators.config.CATALOG (its config class and presets)")
        if name not in components:
            fail("component", "is missing (no generator module's COMPONENTS builds it)")
        for f in fields(Block):
            if getattr(block, f.name, None) is None and f.name not in ("driver", "workload"):
                fail(f.name, "is missing")
        if block.driver is not None and not issubclass(block.driver, StreamDriver):
            fail("driver", f"is {block.driver!r}, not a StreamDriver")
        if block.driver is not None and not block.driver.input_keys:
            fail("driver", f"{block.driver.__name__} declares no input_keys (the IN.npz keys it takes)")
        if block.calibrated and (block.driver is None or block.workload is None):
            fail("workload", "is missing: calibrated presets need a driver and a workload")
        for preset in (*block.calibrated, block.placed):
            if preset not in catalog[name]:
                fail("calibrated/placed", f"names preset {preset!r}, not one of {', '.join(catalog[name])}")
        for leaf in block.leaves:
            if leaf not in catalog:
                fail("leaves", f"names {leaf!r}, not a block")
        if not (REPO / "docs" / block.docs).is_file():
            fail("docs", f"names docs/{block.docs}, which does not exist")


BLOCKS = discover(sys.modules[__name__])
DRIVERS = {name: block.driver for name, block in BLOCKS.items() if block.driver is not None}
