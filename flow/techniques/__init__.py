"""Techniques: one module each, behind one protocol; ``evaluate``, ``demo``, ``compare`` and the report iterate over
``TECHNIQUES`` and name none of them.

A technique module defines ``TECHNIQUE``, an instance of a ``Technique`` subclass. Its ``run`` derives the
technique's model from the network (fine-tuning, pruning, tables; cached), runs every conv layer of the given
images on its RTL through ``Run.check`` (checked against golden, cached by inputs and sources) and returns a
``Result``; ``areas`` names the presets it wants synthesized and ``area`` reads its figure from their results;
``section`` gives its part of report.md as data (lines, ``Table``, ``Bars``, ``Plot``), which ``flow.report`` renders.
Modules are found in this package and ordered by ``ORDER``.

A technique whose blocks' cycles respond to activation density lists them in ``targets`` ({block: ``Target``}),
which the holistic cost model and training (``flow.report.holistic``) take from ``TARGETS``.
"""

import importlib
import pkgutil
import sys
from dataclasses import dataclass, field

from generators.config import CATALOG, preset

from ..harness.check import check_layers
from ..synth.calibration import costed

__all__ = ["Technique", "Claim", "Target", "Result", "Run", "Table", "Bars", "Plot", "check_costed", "check_jobs",
           "check_options", "check_technique", "discover", "TECHNIQUES", "BASELINE", "TARGETS"]


def check_costed(driver_cls, cfg, sim, layers, *, fields=lambda name, batch, results, goldens: {}, log=print):
    """``harness.check.check_layers``' rows of preset ``cfg`` (``sim`` None: golden only), each with its
    ``energy_pj`` (``synth.calibration``)."""
    return costed(cfg, check_layers(driver_cls, cfg, sim, layers, fields=fields, log=log), log=log)


def check_jobs(driver_cls, sim, jobs, *, log=print):
    """``check_costed`` rows of ``jobs`` ({layer: (preset or variant, [validated driver args], fields)}: a
    ``Target.jobs``), in layer order; the layers that run on one preset share one simulator process."""
    groups = {}
    for name, (cfg, batch, fields) in jobs.items():
        groups.setdefault(cfg, {})[name] = (batch, fields)
    rows = {}
    for cfg, group in groups.items():
        def fields(name, *rest, group=group):
            return group[name][1](name, *rest)

        for row in check_costed(driver_cls, cfg, sim, {name: batch for name, (batch, _) in group.items()},
                                fields=fields, log=log):
            rows[row["layer"]] = row
    return [rows[name] for name in jobs]


@dataclass(frozen=True)
class Table:
    """A table of a report section: ``columns`` ((title, row -> text) pairs) over ``rows``."""

    rows: list
    columns: list


@dataclass(frozen=True)
class Bars:
    """A plot of a report section, written to ``name``: bars per layer, one per series ({label: values})."""

    name: str
    layers: list
    series: dict
    ylabel: str
    title: str
    log: bool = False


@dataclass(frozen=True)
class Plot:
    """A plot of a report section, written to ``name``: ``draw(plt)`` gives (fig, ax); ``legend``: its placement."""

    name: str
    draw: object
    legend: dict = field(default_factory=dict)


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
    (``check(technique, role, step, cfg, *args)`` → rows, cached), progress logging, the MAC counts of the
    techniques evaluated (``macs``) and the baselines at each (rows, filled by the ``BASELINE`` technique, which
    runs first), and how fc layers run (``batch``, a ``harness.activations.FcBatch``; None: image by image)."""

    net: object
    images: object
    sim: str
    check: object
    log: object
    macs: tuple = ()
    batch: object = None
    options: dict = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """An energy comparison a technique's paper makes, measured on our RTL: the technique's energy over
    ``baseline``'s — "dense" (the dense array at equal MACs) or a key of the technique's summary entry holding
    per-layer rows with ``energy_pj`` and ``energy_parts`` — next to the ``paper``'s ratio (None: the paper gives
    none) and its ``source``. ``own``: the key of the technique's rows ("layers": its RTL rows; another key of its
    entry, e.g. a PE's golden-costed rows)."""

    label: str
    baseline: str
    paper: float | None
    source: str
    own: str = "layers"


@dataclass(frozen=True)
class Target:
    """A block whose cycles fall with its input activations' density, for the holistic flow.

    ``driver``: its StreamDriver class. ``jobs(cfg, qnet, acts, layers, size=1)``: {layer: (the preset or variant
    that runs it, [validated driver args, one per image or fc batch of ``size``], row fields for ``check_layers``)}
    for the named compute layers of ``qnet`` with inputs ``acts`` ({layer: int8 [n_images, ...]}).
    ``centrosymmetric``: it takes centrosymmetric filters only. ``accepts(cfg)``: None, or why a preset does not
    respond to input density.
    """

    driver: type
    jobs: object
    centrosymmetric: bool = False
    accepts: object = lambda cfg: None


class Technique:
    """The protocol. ``name``: the summary key; ``title``: its display name; ``color``: its plot colour;
    ``block``: (block, preset) that runs it; ``stage``: what its run does, for progress; ``targets``: its blocks
    for the holistic flow; ``blocks``: the blocks whose presets ``rows`` runs its model on (``zeroskip sweep``);
    ``baseline``: whether it is the one every other is compared with (``BASELINE``: its ``at(macs)`` is the
    baseline's preset at a MAC count, and its ``run`` fills ``Run.baselines`` for every count of ``Run.macs``);
    ``options``: {option: (default, choices)} its runs take (``Run.options``, ``rows(options=)``), each default
    stated there once; ``claims``: the energy comparisons of its paper (``Claim``) for the papers table."""

    name = title = color = stage = ""
    baseline = False
    options = {}
    claims = ()
    block = ("", "default")
    targets = {}
    blocks = ()

    @property
    def cfg(self):
        return preset(*self.block)

    def derive(self, net, *, log=print):
        """The technique's models of ``net`` for its own preset (trained, fine-tuned or profiled; each reused from
        the shipped checkpoints or the cache when its recipe is unchanged)."""

    def run(self, run):
        """The technique on ``run.net``: a ``Result`` whose rows ran ``run.images``, fc layers as ``run.batch`` says
        (as the baseline's: ``evaluate`` refuses rows of other image counts)."""
        raise NotImplementedError

    def option(self, options, name):
        """The value of option ``name`` in ``options`` ({option: value}), else its default."""
        return (options or {}).get(name, self.options[name][0])

    def rows(self, net, cfg, sim, images, *, batch=None, layers=None, options=None, log=print):
        """The technique's model of ``net`` (derived, cached) on preset ``cfg`` of one of ``blocks``: one RTL check
        row per compute layer (``layers``: the names to run, default all) of ``images``, fc layers as ``batch`` says
        (``FcBatch``; None: image by image) (``harness.check.check_layers``), under ``options`` (of
        ``self.options``)."""
        raise NotImplementedError

    def comparisons(self, net, sim, *, images, array_images, log=print):
        """`zeroskip compare`'s rows of the technique: ``(block/preset, row, items checked)`` for each block it
        checks on ``sim`` against golden on its model of ``net`` (``images`` test images for a block as cheap as the
        DAP, ``array_images`` for the arrays and engines)."""
        return []

    def areas(self, comparisons=True):
        """Configs whose area the technique reports (synthesized in the background); ``comparisons``: also those
        of its comparisons (when they run on RTL)."""
        return [self.cfg]

    def area(self, results):
        """``{"area": ..., **more}`` for summary.json from {module: preset_area result}."""
        return {"area": results[self.cfg.module]}

    def section(self, entry, summary):
        """The technique's report.md section: lines (str), ``Table``, ``Bars`` and ``Plot`` items in order."""
        return []


def check_technique(technique, where=""):
    """Raise ValueError naming the technique (or ``where`` it was found) and the first facet of the protocol it
    lacks or gets wrong."""
    name = getattr(technique, "name", "") or where

    def fail(facet, why):
        raise ValueError(f"technique {name!r}: facet {facet!r} {why}")

    if not isinstance(technique, Technique):
        fail("TECHNIQUE", "is not a Technique instance")
    for facet in ("name", "title", "color", "stage"):
        if not isinstance(getattr(technique, facet), str) or not getattr(technique, facet):
            fail(facet, "is missing")
    block, preset_name = technique.block
    if block not in CATALOG or preset_name not in CATALOG[block]:
        fail("block", f"names {block}/{preset_name}, not a catalog preset")
    unknown = [b for b in technique.blocks if b not in CATALOG]
    if unknown:
        fail("blocks", f"names {unknown[0]!r}, not a block")
    if type(technique).run is Technique.run:
        fail("run", "is missing (it must give a Result)")
    if technique.blocks and type(technique).rows is Technique.rows:
        fail("rows", "is missing (its blocks are sweepable)")
    for option, spec in technique.options.items():
        if not (isinstance(spec, tuple) and len(spec) == 2 and spec[0] in spec[1]):
            fail("options", f"{option!r} must be (default, choices) with the default among the choices")


def discover(package):
    """{name: technique} of the modules of ``package`` (an imported package) defining ``TECHNIQUE``, in their
    ``ORDER``; each checked (``check_technique``)."""
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "TECHNIQUE"):
            check_technique(module.TECHNIQUE, module.__name__)
            if not isinstance(getattr(module, "ORDER", None), int):
                raise ValueError(f"technique {module.TECHNIQUE.name!r}: facet 'ORDER' is missing ({module.__name__})")
            found.append((module.ORDER, module.TECHNIQUE))
    return {t.name: t for _, t in sorted(found, key=lambda pair: pair[0])}


def check_options(techniques, options):
    """Raise ValueError (one line) unless every option of ``options`` ({option: value}) is taken by one of
    ``techniques`` with a value among its choices."""
    for name, value in (options or {}).items():
        takers = [t for t in techniques if name in t.options]
        if not takers:
            known = sorted({o for t in techniques for o in t.options})
            raise ValueError(f"no technique of {', '.join(t.name for t in techniques)} takes option {name!r}"
                             + (f"; options are {', '.join(known)}" if known else ""))
        choices = takers[0].options[name][1]
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")


TECHNIQUES = discover(sys.modules[__name__])
BASELINE = next(t for t in TECHNIQUES.values() if t.baseline)
TARGETS = {block: target for technique in TECHNIQUES.values() for block, target in technique.targets.items()}
