"""The OSU 0.18 µm standard-cell library (Liberty), read into what energy needs: per cell its area, leakage, pin
capacitances and internal energy per output transition."""

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["OSU018", "Cell", "Library", "parse_liberty", "osu018"]

OSU018 = Path(sys.prefix) / "share" / "osu018"  # unpacked there by `make setup`
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}();:,]|[^\s{}();:,"]+')


def _tokens(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S).replace("\\\n", " ")
    return _TOKEN.findall(text)


def _group(tokens, i):
    """Parse a group body from ``tokens[i]`` (after its "{") → (list of (kind, name, args, value/body), next i)."""
    items = []
    while tokens[i] != "}":
        name = tokens[i]
        i += 1
        if tokens[i] == ":":                                  # attr : value ;
            items.append(("attr", name, None, tokens[i + 1].strip('"')))
            i += 2
            i += tokens[i] == ";"
            continue
        if tokens[i] != "(":
            raise ValueError(f"Liberty: expected ':' or '(' after {name!r}, not {tokens[i]!r}")
        j = tokens.index(")", i)
        args = [t.strip('"') for t in tokens[i + 1:j] if t != ","]
        i = j + 1
        if i < len(tokens) and tokens[i] == "{":              # name (args) { ... }
            body, i = _group(tokens, i + 1)
            items.append(("group", name, args, body))
            i += 1
        else:                                                 # complex attribute: name (args) ;
            items.append(("attr", name, args, None))
            i += i < len(tokens) and tokens[i] == ";"
    return items, i


def _attrs(body):
    return {name: (value if value is not None else args) for kind, name, args, value in body if kind == "attr"}


def _numbers(args):
    return np.array([float(v) for arg in args for v in arg.split(",") if v.strip()])


@dataclass(frozen=True)
class Cell:
    """``area`` (µm²), ``leakage`` (nW), ``inputs`` {pin: capacitance pF}, ``outputs`` (pin names) and
    ``energy`` {(pin, related pin): (load index pF, slew index ns, rise table pJ, fall table pJ)}: an output's
    internal energy per transition caused by a related input, or an input pin's own (load index [0])."""

    name: str
    area: float
    leakage: float
    inputs: dict
    outputs: tuple
    energy: dict

    def transition_energy(self, pin, load, slew):
        """pJ of one transition of ``pin`` (the mean of rise and fall, and of its related pins' tables) at ``load``
        pF and input ``slew`` ns, interpolated bilinearly and clamped to the tables; 0 for a pin without one."""
        values = []
        for (name, _), (loads, slews, rise, fall) in self.energy.items():
            if name == pin:
                for table in (rise, fall):
                    per_load = [np.interp(slew, slews, row) for row in table]
                    values.append(float(np.interp(load, loads, per_load)))
        return float(np.mean(values)) if values else 0.0


@dataclass(frozen=True)
class Library:
    name: str
    voltage: float          # V, nominal
    cells: dict             # {name: Cell}


def parse_liberty(text):
    """A ``Library`` from Liberty ``text`` (the subset standard-cell libraries use)."""
    tokens = _tokens(text)
    if tokens[0] != "library":
        raise ValueError("Liberty: the file does not start with a library group")
    j = tokens.index("{")
    body, _ = _group(tokens, j + 1)
    top = _attrs(body)
    cells = {}
    for kind, name, args, cell_body in body:
        if kind != "group" or name != "cell":
            continue
        attrs = _attrs(cell_body)
        inputs, outputs, energy = {}, [], {}
        for k, group_name, pin_args, pin_body in cell_body:
            if k != "group" or group_name not in ("pin", "bus"):
                continue
            pin = pin_args[0]
            pin_attrs = _attrs(pin_body)
            if pin_attrs.get("direction") == "input":
                inputs[pin] = float(pin_attrs.get("capacitance", 0.0))
            elif pin_attrs.get("direction") == "output":
                outputs.append(pin)
            for gk, gname, _, power_body in pin_body:
                if gk != "group" or gname != "internal_power":
                    continue
                related = _attrs(power_body).get("related_pin", "")
                tables = {}
                for tk, tname, _, table in power_body:
                    if tk == "group" and tname in ("rise_power", "fall_power"):
                        t = _attrs(table)
                        if "index_2" in t:     # (output load, input slew)
                            loads, slews = _numbers(t["index_1"]), _numbers(t["index_2"])
                        else:                  # an input pin's own (passive) energy: input slew only
                            loads, slews = np.zeros(1), _numbers(t["index_1"])
                        tables[tname] = (loads, slews, _numbers(t["values"]).reshape(len(loads), len(slews)))
                if len(tables) == 2:
                    loads, slews, rise = tables["rise_power"]
                    energy[pin, related] = (loads, slews, rise, tables["fall_power"][2])
        cells[args[0]] = Cell(args[0], float(attrs.get("area", 0.0)), float(attrs.get("cell_leakage_power", 0.0)),
                              inputs, tuple(outputs), energy)
    return Library(tokens[2], float(top.get("nom_voltage", 0.0)), cells)


@cache
def osu018():
    """The OSU 0.18 µm library ``make setup`` unpacked; a clear error when it is missing."""
    path = OSU018 / "osu018_stdcells.lib"
    if not path.exists():
        raise RuntimeError(f"the OSU 0.18 µm cell library is missing ({path}): run `make setup`")
    return parse_liberty(path.read_text())
