"""Frozen, validated block configurations and the preset CATALOG (no amaranth here)."""

from dataclasses import asdict, dataclass, fields

__all__ = ["DapConfig", "CATALOG", "preset", "default_preset", "BLOCKS"]


def _require_int(name, value, low, high=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if high is None and value < low:
        raise ValueError(f"{name} must be at least {low}, not {value}")
    if high is not None and not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")


@dataclass(frozen=True, kw_only=True)
class DapConfig:
    """Dynamic activation pruning cascade (SPEC §3).

    Parameters
    ----------
    name : str
        Preset name; the emitted module is ``dap_<name>``.
    bz : int
        Block size, a power of two from 2 to 32.
    nnz_max : int
        Number of maxpool stages (slots of the compressed block), 1..bz.
    stage_regs : bool
        Register after every stage (latency ``nnz_max``) or only after the
        last one (latency 1, all stages combinational).
    """

    name: str
    bz: int = 8
    nnz_max: int = 5
    stage_regs: bool = True

    block = "dap"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Python identifier, not {self.name!r}")
        _require_int("bz", self.bz, 2, 32)
        if self.bz & (self.bz - 1):
            raise ValueError(f"bz must be a power of two, not {self.bz}")
        _require_int("nnz_max", self.nnz_max, 1, self.bz)
        if not isinstance(self.stage_regs, bool):
            raise TypeError(f"stage_regs must be a bool, not {self.stage_regs!r}")

    @property
    def module(self):
        return f"{self.block}_{self.name}"

    @property
    def latency(self):
        """Cycles from an accepted input block to its output being valid."""
        return self.nnz_max if self.stage_regs else 1

    @property
    def nnz_width(self):
        return self.nnz_max.bit_length()

    def params(self):
        """Parameters under SPEC's names (everything but ``name``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}

    def to_dict(self):
        return {"block": self.block, **asdict(self)}


CATALOG = {
    "dap": {
        "default": DapConfig(name="default", bz=8, nnz_max=5, stage_regs=True),
        "comb": DapConfig(name="comb", bz=8, nnz_max=5, stage_regs=False),
        "small": DapConfig(name="small", bz=4, nnz_max=2, stage_regs=True),
        "wide": DapConfig(name="wide", bz=16, nnz_max=8, stage_regs=True),
    },
}

BLOCKS = tuple(CATALOG)


def preset(block, name=None):
    """The preset ``name`` of ``block`` (its default when ``name`` is None)."""
    if block not in CATALOG:
        raise ValueError(f"unknown block {block!r}; blocks are {', '.join(BLOCKS)}")
    if name is None:
        return default_preset(block)
    if name not in CATALOG[block]:
        raise ValueError(f"unknown preset {name!r} for {block}; presets are {', '.join(CATALOG[block])}")
    return CATALOG[block][name]


def default_preset(block):
    return CATALOG[block]["default"]
