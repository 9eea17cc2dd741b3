"""Co-simulation drivers, one per block: validate inputs, compute golden, run the RTL, compare."""

from generators.config import VARIANTS

from .array import ArrayDriver
from .dap import DapDriver

__all__ = ["DRIVERS"]

DRIVERS = {
    "dap": DapDriver,
    **{variant: ArrayDriver for variant in VARIANTS},
}
