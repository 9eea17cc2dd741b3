"""Which Amaranth component each block's config builds."""

from .dap import DapCascade

__all__ = ["COMPONENTS", "build"]

COMPONENTS = {
    "dap": DapCascade,
}


def build(cfg):
    """The component that ``cfg`` describes."""
    return COMPONENTS[cfg.block](cfg)
