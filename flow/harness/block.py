"""A block as the flow sees it: one description per block, declared beside its driver (``flow.harness.drivers``)."""

from dataclasses import dataclass

__all__ = ["Block"]


@dataclass(frozen=True, kw_only=True)
class Block:
    """One block (a ``CATALOG`` key) as the flow sees it; every facet must be given (None or () where it has none).

    ``driver``: its ``StreamDriver`` class (None: tested by its own cocotb bench, no ``zeroskip cosim``).
    ``leaves``: the blocks it is built from. ``workload(cfg, net)``: {shape: keep -> raw driver args} of its gate-level
    energy calibration on real layers of the digits network ``net`` (None: not costed on its own).
    ``calibrated``: the presets calibrated at gate level, smallest first. ``placed``: the preset the hardware table
    places on the ECP5. ``docs``: its page under docs/.
    """

    name: str
    driver: type | None
    leaves: tuple
    workload: object
    calibrated: tuple
    placed: str
    docs: str
