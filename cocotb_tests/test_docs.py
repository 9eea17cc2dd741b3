"""The repository stands on its own: docs/ covers every block, and nothing points outside the repository."""

import re
import subprocess
from pathlib import Path

import pytest

from generators.config import CATALOG

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
# Built from pieces so that this file does not match itself.
OUTSIDE = [re.compile(p) for p in (r"\.\./", "SPEC" + r" ?§", "SPEC" + r"\.md", "DESIGN" + r"\.md", r"\bshared/")]


def _tracked_text_files():
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, names.split("\0")):
        path = REPO / name
        if path.suffix in (".py", ".md", ".toml", ".vlt", ".cfg", ".txt", "") and path.is_file():
            yield path


def test_nothing_refers_outside_the_repository():
    found = []
    for path in _tracked_text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if any(p.search(line) for p in OUTSIDE):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "references outside the repository:\n" + "\n".join(found)


def _pages():
    return sorted(DOCS.glob("*.md"))


def test_every_link_in_the_docs_resolves():
    broken = []
    for page in _pages() + [REPO / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if not re.match(r"[a-z]+://", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken


def test_every_page_is_in_the_index():
    index = (DOCS / "README.md").read_text()
    assert [p.name for p in _pages() if p.name != "README.md" and f"({p.name})" not in index] == []


def _page_of(block):
    """The page whose title names the block in backticks."""
    pages = [p for p in _pages() if f"`{block}`" in p.read_text().splitlines()[0]]
    assert len(pages) == 1, f"block {block!r} is the title of {len(pages)} docs pages, not 1"
    return pages[0].read_text()


@pytest.mark.parametrize("block", list(CATALOG))
def test_docs_cover_every_block_its_parameters_and_presets(block):
    text = _page_of(block)
    cfg = next(iter(CATALOG[block].values()))
    for name in cfg.params():
        assert f"`{name}`" in text, f"the {block} page does not document parameter {name!r}"
    for name in CATALOG[block]:
        assert f"`{name}`" in text, f"the {block} page does not list preset {name!r}"
    for topic in ("Latency", "Throughput", "Handshake", "| port |"):
        assert topic.lower() in text.lower(), f"the {block} page says nothing of {topic}"


def test_cosim_page_lists_every_cosim_block():
    from flow.harness.drivers import DRIVERS

    text = (DOCS / "cosim.md").read_text()
    assert [b for b in DRIVERS if f"`{b}`" not in text] == []


def test_the_readme_examples_create_their_inputs_and_run_as_written(tmp_path, monkeypatch):
    """The README's own-data examples, as written: the DAP cosim (its OUT.npz keys as the comment lists them) and
    the ONNX export + data it shows, evaluated (dense only here; the README runs every technique) as a
    post-training network: no training images counted, the report says so."""
    import json
    import sys
    import textwrap

    import numpy as np

    from flow.cli import main

    readme = (REPO / "README.md").read_text()
    monkeypatch.chdir(tmp_path)
    make_in = re.search(r'python -c "(import numpy as np; np\.savez\(\'in\.npz\'.*?)"\n', readme).group(1)
    cosim, keys = re.search(r"\.venv/bin/zeroskip (cosim dap [^#\n]*?)\s+# out\.npz: ([\w, ]+)", readme).groups()
    subprocess.run([sys.executable, "-c", make_in], check=True)
    assert main(cosim.split()) == 0
    assert sorted(np.load(tmp_path / "out.npz")) == sorted(keys.split(", "))
    export = textwrap.dedent(re.search(r'\.venv/bin/python -c "\n(.*?)"\n', readme, re.S).group(1))
    evaluate = re.search(r"\.venv/bin/zeroskip (evaluate --model my_cnn\.onnx [^#\n]*?)\s+#", readme).group(1)
    subprocess.run([sys.executable, "-c", export], check=True, capture_output=True)
    assert main([*evaluate.split(), "--techniques", "dense", "--no-synth", "--out", str(tmp_path / "report")]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["dataset"]["post_training"] and summary["dataset"]["train"] == 0
    assert summary["accuracy_warnings"] == [] and summary["dense"]["rtl_bit_exact"]
    assert "no training images (post-training" in (tmp_path / "report" / "report.md").read_text()
