"""Which Amaranth component each block's config builds."""

from .config import VARIANTS
from .dap import DapCascade
from .systolic import SystolicArray

__all__ = ["COMPONENTS", "build"]

COMPONENTS = {
    "dap": DapCascade,
    **{variant: SystolicArray for variant in VARIANTS},
}


def build(cfg):
    """The component that ``cfg`` describes."""
    return COMPONENTS[cfg.block](cfg)
