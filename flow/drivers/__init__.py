"""Co-simulation drivers, one per block: validate inputs, compute golden, run the RTL, compare."""

from .dap import DapDriver

__all__ = ["DRIVERS"]

DRIVERS = {
    "dap": DapDriver,
}
