"""Co-simulation drivers, one per block: validate inputs, compute golden, run the RTL, compare."""

from generators.config import PE_BLOCKS, VARIANTS

from .array import ArrayDriver
from .cartesian import PeDriver
from .dap import DapDriver
from .mor import MorDriver
from .snapea import SnapeaDriver

__all__ = ["DRIVERS"]

DRIVERS = {
    "dap": DapDriver,
    **{variant: ArrayDriver for variant in VARIANTS},
    **{block: PeDriver for block in PE_BLOCKS},
    "mor": MorDriver,
    "snapea": SnapeaDriver,
}
