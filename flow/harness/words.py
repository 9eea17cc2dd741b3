"""Packed words as they cross between a driver and its cocotb bench: hex strings in an .npz (ints of any width).

Kept apart from ``pack`` (whose layouts need Amaranth) so that every simulator process imports only this.
"""

import numpy as np

__all__ = ["to_hex", "from_hex", "memh_words"]


def to_hex(words):
    """``words`` (Python ints of any width) as a numpy array of hex strings."""
    return np.array([format(w, "x") for w in words], dtype=str)


def from_hex(strings):
    """The Python ints of hex ``strings`` (as ``to_hex`` wrote them)."""
    return [int(s, 16) for s in np.asarray(strings).tolist()]


def memh_words(text):
    """The hex words of a file ``$writememh`` wrote (Icarus adds ``//`` comments and ``@`` address lines)."""
    lines = (line.strip() for line in text.splitlines())
    return np.array([line for line in lines if line and not line.startswith(("//", "@"))], dtype=str)
