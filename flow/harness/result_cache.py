"""Results of deterministic flow steps (RTL checks, golden sweeps) cached on disk, keyed by what produced them.

A key digests the step's name, its inputs (arrays by dtype, shape and bytes; configs by their
fields) and the source of every package that could change the answer: the generators (so the
Verilog), the golden models, the models (which derive layer inputs), the co-simulation drivers
and runner, the techniques (which run a block on their models), the energy model (flow/synth: costing, SRAM
macros) and its calibration table, and the step's own module.
Change any of them and the step runs again; an interrupted run keeps every step it finished.
"""

import dataclasses
import hashlib
import inspect
import json
import os
from pathlib import Path

import numpy as np

from .runner import REPO

__all__ = ["RESULTS", "digest", "cached"]

RESULTS = REPO / "reports" / "cache" / "results"
_SOURCES = ("generators", "golden", "models", "flow/harness", "flow/techniques", "flow/synth",
            "flow/synth/osu018_energy.json")


def _feed(h, obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("cannot digest an object array for a cache key (its bytes are addresses)")
        h.update(f"array{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, np.generic):
        _feed(h, np.asarray(obj))
    elif isinstance(obj, dict):
        h.update(b"dict")
        for key in sorted(obj, key=repr):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"seq{len(obj)}".encode())
        for item in obj:
            _feed(h, item)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(type(obj).__qualname__.encode())
        _feed(h, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    elif obj is None or isinstance(obj, (str, int, float, bool)):
        h.update(f"{type(obj).__name__}:{obj!r}".encode())
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__} for a cache key")


def _source_files(step):
    files = []
    for entry in _SOURCES:
        path = REPO / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files + [Path(inspect.getsourcefile(step))]


def digest(*parts):
    """Hex digest of ``parts`` (arrays, dataclasses, dicts, sequences, scalars)."""
    h = hashlib.sha256()
    _feed(h, parts)
    return h.hexdigest()


def cached(name, step, *args, fresh=False, keep=lambda result: True, **kwargs):
    """``(step(*args, **kwargs), reused)``: the JSON result stored under RESULTS for these inputs and sources,
    or a new run of ``step`` (always when ``fresh``), stored when ``keep(result)`` holds.

    ``kwargs`` named ``log`` are passed through and not part of the key.
    """
    key = {k: v for k, v in kwargs.items() if k != "log"}
    sources = b"".join(path.read_bytes() for path in _source_files(step))
    path = RESULTS / f"{name}-{digest(step.__qualname__, args, key, hashlib.sha256(sources).hexdigest())[:16]}.json"
    if path.exists() and not fresh:
        return json.loads(path.read_text()), True
    result = step(*args, **kwargs)
    if keep(result):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(result, indent=1) + "\n")
        partial.replace(path)
    return result, False
