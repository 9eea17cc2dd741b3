"""Deterministic Verilog emission with a JSON sidecar, written only when the content changed."""

import hashlib
import inspect
import json
import os
import re
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from .registry import COMPONENTS, build

__all__ = ["convert", "emit", "emitted", "port_table", "write_if_changed"]

# Yosys writes a memory's initial contents as one assignment per word, even when every word is
# zero (Amaranth's default). A 16,384-word memory becomes 16,384 lines that Verilator compiles
# into megabytes of start-up code. No block reads a word it has not written (a real SRAM holds
# no reset value either), so all-zero initialisers are dropped; other contents are kept.
_ZERO_INIT = re.compile(r"^  initial begin\n(?:    (?:\\\S+ |\w+)\[\d+\] = \d+'s?[bdh]0+;\n)+  end\n", re.MULTILINE)


def convert(component, name):
    """Verilog of ``component`` as module ``name``, without all-zero memory initialisers."""
    return _ZERO_INIT.sub("", verilog.convert(component, name=name, emit_src=False))


def write_if_changed(path, text):
    """Write ``text`` to ``path`` unless it already holds exactly that; return True if written.

    The file is replaced atomically, so a concurrent reader (another test worker) sees the old
    or the new text, never a partial one.
    """
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(path)
    return True


def port_table(component):
    """Emitted port name -> (direction, width) of a component's signature, plus clk and rst."""
    ports = {"clk": ["in", 1], "rst": ["in", 1]}
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        ports[name] = ["in" if member.flow == wiring.In else "out", Shape.cast(member.shape).width]
    return ports


def emit(cfg, out_dir):
    """Emit ``<out_dir>/<module>.v`` (with its leaf modules) and ``<module>.json``; return the Verilog path."""
    component = build(cfg)
    # Repeated leaves (a grid's PEs) are emitted once and instantiated, keeping emission linear.
    leaves = component.leaves() if hasattr(component, "leaves") else []
    text = "".join(convert(leaf, name) for name, leaf in leaves)
    text += convert(component, cfg.module)
    out_dir = Path(out_dir)
    v_path = out_dir / f"{cfg.module}.v"
    write_if_changed(v_path, text)
    sidecar = {
        "module": cfg.module,
        "config": cfg.to_dict(),
        "latency": cfg.latency,
        "ports": port_table(component),
        "leaves": {name: port_table(leaf) for name, leaf in leaves},
    }
    write_if_changed(out_dir / f"{cfg.module}.json", json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return v_path


_SOURCES = []


def _key(cfg):
    """What ``emit(cfg)`` writes depends on: the config, the generators' sources (and the component's own, wherever
    it lives) and Amaranth's version."""
    if not _SOURCES:
        _SOURCES.extend(path.read_bytes() for path in sorted(Path(__file__).parent.rglob("*.py")))
    h = hashlib.sha256(json.dumps([cfg.module, cfg.to_dict(), amaranth.__version__], sort_keys=True).encode())
    for source in [*_SOURCES, Path(inspect.getsourcefile(COMPONENTS[cfg.block])).read_bytes()]:
        h.update(source)
    return h.hexdigest()


def emitted(cfg, out_dir):
    """``emit(cfg, out_dir)`` unless ``out_dir`` already holds what it would write, told by a ``<module>.key`` file
    beside the Verilog (written after it, so a concurrent reader never pairs a new key with old text): a large block
    takes seconds to convert, so a cache folder converts each config once per machine, not once per process.
    Returns the Verilog path."""
    out_dir = Path(out_dir)
    v_path, key_path, key = out_dir / f"{cfg.module}.v", out_dir / f"{cfg.module}.key", _key(cfg)
    if not (v_path.exists() and (out_dir / f"{cfg.module}.json").exists() and key_path.exists()
            and key_path.read_text() == key):
        emit(cfg, out_dir)
        write_if_changed(key_path, key)
    return v_path
