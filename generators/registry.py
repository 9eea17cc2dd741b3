"""Which Amaranth component each block's config builds: every generator module's ``COMPONENTS`` ({block:
component class}), gathered from the modules of the package that declare one (a new block's module declares its
own; the others, emission among them, are not imported)."""

import importlib
import pkgutil
import sys
from pathlib import Path

__all__ = ["COMPONENTS", "build"]


def _gather(package):
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if "\nCOMPONENTS = " not in (Path(package.__path__[0]) / f"{info.name}.py").read_text():
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for block, component in getattr(module, "COMPONENTS", {}).items():
            if block in found:
                raise ValueError(f"block {block!r} has two components ({found[block].__name__}, {component.__name__})")
            found[block] = component
    return found


COMPONENTS = _gather(sys.modules[__package__])


def build(cfg):
    """The component that ``cfg`` describes."""
    return COMPONENTS[cfg.block](cfg)
