"""Techniques: one module each, behind one protocol; ``evaluate``, ``demo``, ``compare`` and the report iterate over
``TECHNIQUES`` and name none of them.

A technique module defines ``TECHNIQUE``, an instance of a ``Technique`` subclass. Its ``run`` derives the
technique's model from the network (fine-tuning, pruning, tables; cached), runs every conv layer of the given
images on its RTL through ``Run.check`` (checked against golden, cached by inputs and sources) and returns a
``Result``; ``areas`` names the presets it wants synthesized and ``area`` reads its figure from their results;
``section`` writes its part of report.md. Modules are found in this package and ordered by ``ORDER``.

A technique whose blocks' cycles respond to activation density lists them in ``targets`` ({block: ``Target``}),
which the holistic cost model and training (``flow.report.holistic``) take from ``TARGETS``.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field

__all__ = ["Technique", "Target", "Result", "Run", "TECHNIQUES", "TARGETS"]


@dataclass
class Result:
    """What a technique's run gives the report: its model's name and test accuracy, its RTL rows (one per
    conv layer, from ``harness.check.check_layers``) and its own figures (``extra``, into summary.json)."""

    model: str
    accuracy: float
    rows: list
    extra: dict = field(default_factory=dict)


@dataclass
class Run:
    """One evaluation: the network, the images whose layers run on RTL, the simulator, the RTL check
    (``check(technique, role, step, cfg, *args)`` → rows, cached), progress logging, and the dense
    baselines at each MAC count (rows, filled by the dense technique, which runs first)."""

    net: object
    images: object
    sim: str
    check: object
    log: object
    baselines: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A block whose cycles fall with its input activations' density, for the holistic flow.

    ``driver``: its StreamDriver class. ``jobs(cfg, qnet, acts, layers)``: {layer: (the preset or variant that
    runs it, [validated driver args, one per image], row fields for ``check_layers``)} for the named compute
    layers of ``qnet`` with inputs ``acts`` ({layer: int8 [n_images, ...]}). ``centrosymmetric``: it takes
    centrosymmetric filters only. ``accepts(cfg)``: None, or why a preset does not respond to input density.
    """

    driver: type
    jobs: object
    centrosymmetric: bool = False
    accepts: object = lambda cfg: None


class Technique:
    """The protocol. ``name``: the summary key; ``title``: its display name; ``color``: its plot colour;
    ``block``: (block, preset) that runs it; ``stage``: what its run does, for progress; ``targets``: its blocks
    for the holistic flow; ``blocks``: the blocks whose presets ``rows`` runs its model on (``zeroskip sweep``)."""

    name = title = color = stage = ""
    block = ("", "default")
    targets = {}
    blocks = ()

    @property
    def cfg(self):
        from generators.config import preset

        return preset(*self.block)

    def run(self, run):
        """The technique on ``run.net``: a ``Result``."""
        raise NotImplementedError

    def rows(self, net, cfg, sim, images, *, layers=None, log=print):
        """The technique's model of ``net`` (derived, cached) on preset ``cfg`` of one of ``blocks``: one RTL check
        row per compute layer (``layers``: the names to run, default all) of ``images``
        (``harness.check.check_layers``)."""
        raise NotImplementedError

    def areas(self):
        """Configs whose area the technique reports (synthesized in the background)."""
        return [self.cfg]

    def area(self, results):
        """``{"area": ..., **more}`` for summary.json from {module: preset_area result}."""
        return {"area": results[self.cfg.module]}

    def section(self, entry, summary, out_dir, plt):
        """Lines of the technique's report.md section (with any plots written to ``out_dir``)."""
        return []


def _discover():
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "TECHNIQUE"):
            found.append((module.ORDER, module.TECHNIQUE))
    return {t.name: t for _, t in sorted(found, key=lambda pair: pair[0])}


TECHNIQUES = _discover()
TARGETS = {block: target for technique in TECHNIQUES.values() for block, target in technique.targets.items()}
