"""The foundation: flow/'s import layers, blocks and techniques as descriptions found by discovery, shipped
checkpoints, one default per parameter."""

import ast
import dataclasses
import importlib
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import flow.report.compare as compare_module
import flow.techniques as techniques_module
from flow.bench import hardware
from flow.harness import drivers
from flow.harness.block import Block
from flow.harness.drivers import BLOCKS, DRIVERS, check_blocks, discover
from flow.harness.network import load_network
from flow.harness.runner import REPO
from flow.report.evaluate import evaluate
from flow.report.sweep import grid_points, read_spec
from flow.synth import calibration
from flow.techniques import TECHNIQUES, Technique, check_technique
from flow.techniques.dense import dense_at, needs_dense_w
from flow.techniques.s2ta import s2ta_models
from generators.config import CATALOG
from models import checkpoint, cnn
from models.datasets import DATASETS
from models.networks import NETWORKS

FORBIDDEN = {"flow/harness": ("flow.synth", "flow.report", "flow.techniques", "flow.bench", "flow.cli"),
             "flow/synth": ("flow.techniques", "flow.report", "flow.bench", "flow.cli"),
             "flow/techniques": ("flow.report", "flow.bench", "flow.cli")}


def _imports(path, root=REPO):
    """Every module a file under ``root`` imports, at any depth (inside functions too), relative imports resolved."""
    package = ".".join(path.relative_to(root).parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield from ([module] if node.module else [f"{module}.{alias.name}" for alias in node.names])


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_flow_layers_import_one_way(folder):
    """harness knows no costs, techniques or reports; synth no techniques; techniques no reports (docs/flow.md)."""
    bad = [(str(path.relative_to(REPO)), module) for path in sorted((REPO / folder).rglob("*.py"))
           for module in _imports(path) if module.startswith(FORBIDDEN[folder])]
    assert not bad, bad


def test_the_import_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "flow" / "harness" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from ..synth.calibration import energy_pj\n    from . import check\n")
    assert list(_imports(source, tmp_path)) == ["flow.synth.calibration", "flow.harness.check"]


def test_every_block_is_described_and_every_registry_derives_from_the_descriptions():
    check_blocks(BLOCKS)
    assert set(BLOCKS) == set(CATALOG)
    assert DRIVERS == {name: b.driver for name, b in BLOCKS.items() if b.driver}
    assert calibration.CALIBRATED == {name: b.calibrated for name, b in BLOCKS.items() if b.calibrated}
    assert hardware.PLACED == {name: b.placed for name, b in BLOCKS.items()}


def _package(tmp_path, name, files):
    """A throwaway package ``name`` in ``tmp_path`` with ``files`` ({module: source}), imported."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for module, source in files.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    return importlib.import_module(name)


TOY_BLOCK = """
    from flow.harness.block import Block
    from flow.harness.drivers.array import ArrayDriver, calibration_workload

    BLOCKS = (Block(name="toy", driver=ArrayDriver, leaves=("dap",), workload=calibration_workload,
                    calibrated=("small",), placed="small", docs="arrays.md"),)
    """


def test_a_throwaway_block_description_is_picked_up_or_refused_naming_block_and_facet(tmp_path, monkeypatch):
    package = _package(tmp_path, "toyblocks", {"toy": TOY_BLOCK})
    try:
        found = discover(package)
    finally:
        sys.path.remove(str(tmp_path))
    toy = found["toy"]
    catalog = {**CATALOG, "toy": CATALOG["sa"]}
    components = {**drivers.COMPONENTS, "toy": drivers.COMPONENTS["sa"]}
    check_blocks({**BLOCKS, **found}, catalog, components)
    # the registries derive from the descriptions: calibration and the hardware table pick it up
    monkeypatch.setitem(BLOCKS, "toy", toy)
    net = load_network("digits", log=lambda *_: None)
    runs = calibration.workloads("toy", CATALOG["sa"]["small"], net)
    assert len(runs) == 2 * len(calibration.KEEP) and all("a" in args and "w" in args for args in runs.values())
    assert {name: b.placed for name, b in BLOCKS.items()}["toy"] == "small"
    for change, message in [
            (dict(docs="toy.md"), "block 'toy': facet 'docs' names docs/toy.md, which does not exist"),
            (dict(placed="huge"), "block 'toy': facet 'calibrated/placed' names preset 'huge'"),
            (dict(workload=None), "block 'toy': facet 'workload' is missing"),
            (dict(leaves=("nope",)), "block 'toy': facet 'leaves' names 'nope', not a block"),
            (dict(leaves=None), "block 'toy': facet 'leaves' is missing")]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            check_blocks({**BLOCKS, "toy": dataclasses.replace(toy, **change)}, catalog, components)
    with pytest.raises(ValueError, match="block 'toy': facet 'component' is missing"):
        check_blocks({**BLOCKS, "toy": toy}, catalog, drivers.COMPONENTS)
    with pytest.raises(ValueError, match="block 'toy': no description"):
        check_blocks({k: v for k, v in BLOCKS.items() if k != "toy"}, catalog, components)
    with pytest.raises(TypeError):
        Block(name="toy", driver=None, leaves=(), workload=None, calibrated=(), placed="small")  # no docs


TOY_TECHNIQUE = """
    from flow.techniques import Result, Table, Technique
    from flow.techniques.dense import check_array_layers

    ORDER = 9


    class Toy(Technique):
        name, title, color, stage = "toy", "Toy", "tab:purple", "toy: the INT8 network on the 16-MAC sa"
        block = ("sa", "default")

        def run(self, run):
            rows = run.check(self.name, "technique", check_array_layers, self.cfg, run.net.qnet, run.images,
                             batch=run.batch)
            return Result("INT8, as dense", run.net.int8_accuracy, rows, {"toy": len(rows)})

        def comparisons(self, net, sim, *, images, array_images, log=print):
            return [("toy/golden", {"layer": layer.name, "mismatches": 0, "cycles": 1, "golden_cycles": 1,
                                    "first_mismatch": None, "waveform": None}, "one layer") for layer in net.qnet.convs]

        def section(self, entry, summary):
            return ["the toy section", Table([entry], [("layers", lambda e: str(e["toy"]))])]


    TECHNIQUE = Toy()
    """


def test_a_throwaway_technique_is_picked_up_by_evaluate_compare_and_the_report(tmp_path, monkeypatch, capsys):
    package = _package(tmp_path, "toytechniques", {"toy": TOY_TECHNIQUE})
    try:
        found = techniques_module.discover(package)
    finally:
        sys.path.remove(str(tmp_path))
    toy = found["toy"]
    monkeypatch.setattr(compare_module, "TECHNIQUES", {"toy": toy})  # only the toy: the others' RTL is tested
    assert compare_module.compare(sims=("verilator",), log=lambda *_: None) == 0
    out = capsys.readouterr().out
    assert "| toy/golden | verilator | conv1 | one layer | 0 | 1 yes |" in out
    monkeypatch.setitem(TECHNIQUES, "toy", toy)
    assert evaluate(techniques=["toy"], images=1, synth=False, out_dir=tmp_path / "out", log=lambda *_: None) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Toy" in report and "the toy section" in report and "| layers |\n|---|\n| 4 |" in report
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["toy"]["toy"] == 4 and summary["toy"]["speedup_vs_dense"] == 1


@pytest.mark.parametrize("change,message", [
    ("title", "technique 'toy': facet 'title' is missing"),
    ("block", "technique 'toy': facet 'block' names sa/huge, not a catalog preset"),
    ("run", "technique 'toy': facet 'run' is missing"),
    ("options", "technique 'toy': facet 'options' 'tiling' must be (default, choices)"),
])
def test_a_technique_missing_a_facet_is_refused_naming_it(change, message):
    class Toy(Technique):
        name, title, color, stage, block = "toy", "Toy", "k", "toy", ("sa", "default")

        def run(self, run):
            return None

    if change == "title":
        Toy.title = ""
    elif change == "block":
        Toy.block = ("sa", "huge")
    elif change == "run":
        del Toy.run
    else:
        Toy.options = {"tiling": ("rows", ("mixed",))}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_technique(Toy())


@pytest.mark.parametrize("macs", [1, 6, 12, 16, 64, 96, 2048])
def test_the_dense_baseline_exists_at_any_mac_count(macs):
    cfg = dense_at(macs)
    assert cfg.block == "sa" and cfg.macs == macs and cfg.rows <= cfg.cols
    assert cfg in CATALOG["sa"].values() or cfg.name == f"mac{macs}"


def test_the_dense_baseline_refuses_a_bad_mac_count():
    for macs in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="a dense baseline needs a positive whole number of MACs"):
            dense_at(macs)


def test_a_sweep_of_the_w_dbb_bound_measures_each_point_on_a_network_constrained_for_it(tmp_path):
    """Every point's model is fine-tuned for the point's own b (no conv layer falls back to dense-weight mode)."""
    spec_path = tmp_path / "b.toml"
    spec_path.write_text('block = "s2ta_aw"\nlayers = ["conv2"]\n[grid]\nb = [2, 4]\n')
    net = load_network("digits", log=lambda *_: None)
    for params, cfg in grid_points(read_spec(spec_path)):
        aw = s2ta_models(net, cfg, only=("aw_dbb",), log=lambda *_: None)["aw_dbb"]
        assert aw.nnz_w == params["b"]
        assert not any(needs_dense_w(cfg, layer) for layer in aw.qnet.convs), params
        assert aw.accuracy > 0.9


@pytest.mark.parametrize("network", ["digits", *(pytest.param(name, marks=pytest.mark.slow)
                                                  for name in NETWORKS if name != "digits")])
def test_the_built_in_networks_train_nothing_their_checkpoints_ship(network, monkeypatch):
    """Every checkpoint a built-in network and its techniques' models need is package data (the demo trains
    nothing on a clean clone; the other networks, each minutes of quantizing and measuring its models, in make
    test-all)."""
    made, unshipped = [], []
    real = checkpoint.load_or_make

    def watched(path, template, make):
        if not (checkpoint.SHIPPED / Path(path).name).exists():
            unshipped.append(Path(path).name)
        return real(path, template, lambda: made.append(Path(path).name) or make())

    for module in [m for name, m in sys.modules.items() if name.startswith("models.")]:
        if getattr(module, "load_or_make", None) is real:
            monkeypatch.setattr(module, "load_or_make", watched)
    net = load_network(network, log=lambda *_: None)
    assert net.reused
    lines = []
    for technique in TECHNIQUES.values():
        technique.derive(net, log=lines.append)
    assert made == [] and unshipped == []
    tables = [line for line in lines if line.startswith("  MoR tables reused")]
    assert tables and (checkpoint.SHIPPED / tables[0].split("(")[1].split(")")[0]).exists(), lines


def test_a_shipped_checkpoint_is_read_and_a_missing_one_made_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "SHIPPED", tmp_path / "shipped")
    checkpoint.SHIPPED.mkdir()
    torch.save(torch.nn.Linear(2, 1).state_dict(), checkpoint.SHIPPED / "a.pt")
    model, reused = checkpoint.load_or_make(tmp_path / "cache" / "a.pt", torch.nn.Linear(2, 1), lambda: None)
    assert reused and not (tmp_path / "cache").exists()
    made = torch.nn.Linear(2, 1)
    model, reused = checkpoint.load_or_make(tmp_path / "cache" / "b.pt", torch.nn.Linear(2, 1), lambda: made)
    assert not reused and model is made and (tmp_path / "cache" / "b.pt").exists()
    with checkpoint.shipping() as used:
        checkpoint.load_or_make(tmp_path / "cache" / "c.pt", torch.nn.Linear(2, 1), lambda: made)
    assert used == {"c.pt"} and (checkpoint.SHIPPED / "c.pt").exists()
    assert np.allclose(torch.load(checkpoint.SHIPPED / "c.pt")["weight"], made.weight.detach())


@pytest.mark.slow
def test_re_training_the_digits_network_reaches_the_shipped_checkpoints_accuracy(tmp_path):
    """The shipped checkpoint is what its recipe trains: re-trained here, within 0.5 points of test accuracy."""
    cfg = cnn.CnnConfig.of("digits")
    data = DATASETS[NETWORKS["digits"][0]]()
    shipped, reused = cnn.load_or_train(cfg, data, tmp_path)
    assert reused and not list(tmp_path.iterdir())
    retrained = cnn.train(cfg, data)
    shipped_accuracy = cnn.accuracy(shipped, data.x_test, data.y_test)
    assert abs(cnn.accuracy(retrained, data.x_test, data.y_test) - shipped_accuracy) <= 0.005
