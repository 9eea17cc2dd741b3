"""Input validation shared by every golden model: refuse, never wrap silently."""

import difflib

import numpy as np

__all__ = ["InputError", "refuse_unknown", "require_array", "require_int8", "require_range"]


class InputError(ValueError):
    """Invalid input to a golden model or a co-simulation (wrong key, dtype, shape or range)."""


def refuse_unknown(where, keys, known):
    """InputError naming the first of ``keys`` not in ``known`` (with the nearest known key, if one is close) and
    every key ``where`` takes: a misspelled optional input is never silently left at its default."""
    unknown = [key for key in keys if key not in known]
    if unknown:
        near = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise InputError(f"unknown key {unknown[0]!r} in {where}{hint}; it takes {', '.join(known)}")


def require_array(name, value, *, dtype=None, ndim=None, shape=None):
    """``value`` as an ndarray of ``dtype`` kind; ``shape`` entries of None match anything."""
    if not isinstance(value, np.ndarray):
        raise InputError(f"{name} must be a numpy array, not {type(value).__name__}")
    if dtype is not None and value.dtype != np.dtype(dtype):
        raise InputError(f"{name} must have dtype {np.dtype(dtype)}, not {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, not {value.ndim} (shape {value.shape})")
    if shape is not None:
        if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise InputError(f"{name} must have shape {want}, not {list(value.shape)}")
    return value


def require_int8(name, value, *, ndim=None, shape=None):
    return require_array(name, value, dtype=np.int8, ndim=ndim, shape=shape)


def require_range(name, value, low, high):
    """Every element of integer ``value`` lies in [low, high]."""
    value = np.asarray(value)
    if not np.issubdtype(value.dtype, np.integer):
        raise InputError(f"{name} must be integers, not {value.dtype}")
    if value.size and (value.min() < low or value.max() > high):
        bad = value.min() if value.min() < low else value.max()
        raise InputError(f"{name} must be between {low} and {high}, not {int(bad)}")
    return value
