"""Co-simulation drivers, one per block: validate inputs, compute golden, run the RTL, compare."""

from generators.config import PE_ARRAY_BLOCKS, PE_BLOCKS, VARIANTS

from .array import ArrayDriver
from .cartesian import PeArrayDriver, PeDriver
from .dap import DapDriver
from .mor import MorDriver
from .snapea import SnapeaDriver

__all__ = ["DRIVERS"]

DRIVERS = {
    "dap": DapDriver,
    **{variant: ArrayDriver for variant in VARIANTS},
    **{block: PeDriver for block in PE_BLOCKS},
    **{block: PeArrayDriver for block in PE_ARRAY_BLOCKS},
    "mor": MorDriver,
    "snapea": SnapeaDriver,
}
