"""Deterministic Verilog emission with a JSON sidecar, written only when the content changed."""

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from .registry import build

__all__ = ["emit", "port_table", "write_if_changed"]


def write_if_changed(path, text):
    """Write ``text`` to ``path`` unless it already holds exactly that; return True if written."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
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
    text = "".join(verilog.convert(leaf, name=name, emit_src=False) for name, leaf in leaves)
    text += verilog.convert(component, name=cfg.module, emit_src=False)
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
