"""Which Amaranth component each block's config builds."""

from .binary_predictor import BinaryPredictor
from .cartesian_array import CartesianArray
from .cartesian_pe import CartesianPE
from .config import PE_ARRAY_BLOCKS, PE_BLOCKS, VARIANTS
from .dap import DapCascade
from .mor_engine import MorEngine
from .snapea_pe import SnapeaArray
from .systolic import SystolicArray

__all__ = ["COMPONENTS", "build"]

COMPONENTS = {
    "dap": DapCascade,
    "bincu": BinaryPredictor,
    "mor": MorEngine,
    "snapea": SnapeaArray,
    **{variant: SystolicArray for variant in VARIANTS},
    **{block: CartesianPE for block in PE_BLOCKS},
    **{block: CartesianArray for block in PE_ARRAY_BLOCKS},
}


def build(cfg):
    """The component that ``cfg`` describes."""
    return COMPONENTS[cfg.block](cfg)
