"""cocotb runner helper: one cached build per design x simulator x options, shared by every process."""

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cocotb_tools.runner import Icarus, Verilator, get_runner

from generators.emit import emitted

from . import toolchain

__all__ = ["REPO", "SIM_BUILD", "SIMULATORS", "CXX_OPTS", "Build", "Run", "SimulationError", "cxx_opt", "locked",
           "verilog", "build", "run"]

REPO = Path(__file__).resolve().parents[2]
SIM_BUILD = Path(os.environ.get("ZS_SIM_BUILD", REPO / "sim_build"))
SIMULATORS = ("verilator", "icarus")
_BUILD_ARGS = {
    # Emitted modules are linted separately with -Wall (make lint); the harness need not be.
    "verilator": ["-Wno-fatal", "-Wno-WIDTH", "-O2"],
    "icarus": [],
}
# The C++ optimisation of Verilator models (OPT_FAST/OPT_SLOW/OPT_GLOBAL of Verilator's make): -O1 unless
# ZS_VERILATOR_OPT names another. Build time against run time per level: `python -m flow.bench.throughput`
# (build_options -> reports/bench/throughput.json; the table in docs/flow.md). -O1 simulates 3-6x faster than
# -O0 and as fast as -Os, and builds faster than -Os: the demo, evaluate and the benches use it; the tests, whose
# runs are short, -O0 (cocotb_tests/conftest.py). Part of the build's key and of its folder's name.
CXX_OPTS = ("-O0", "-O1", "-O2", "-O3", "-Os")


def cxx_opt():
    """The C++ optimisation flag Verilator models are compiled with (ZS_VERILATOR_OPT, default -O1)."""
    value = os.environ.get("ZS_VERILATOR_OPT", "-O1")
    if value not in CXX_OPTS:
        raise ValueError(f"ZS_VERILATOR_OPT must be one of {', '.join(CXX_OPTS)}, not {value!r}")
    return value


class SelectiveVerilator(Verilator):
    """cocotb's Verilator runner without ``--public-flat-rw``.

    That flag makes every signal VPI-visible, which stops Verilator from optimizing the model
    (about 7x slower); the benches need only the harness's own signals (its ports and the
    ``stim``/``resp`` memories), which a control file (``PUBLIC_VLT``) marks public, leaving
    the design under test free to be optimized.
    """

    def _build_command(self):
        commands = super()._build_command()
        commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
        commands[1] = [*commands[1], *(f"{var}={cxx_opt()}" for var in ("OPT_FAST", "OPT_SLOW", "OPT_GLOBAL"))]
        return commands


class DumpingIcarus(Icarus):
    """cocotb's Icarus runner that lets the design's own ``$dumpvars`` write a VCD (cocotb passes ``-none``
    without waves, which silences every dump): for the gate-level toggle dumps of energy calibration."""

    def _test_command(self):
        commands = super()._test_command()
        commands[0] = ["-vcd" if arg == "-none" else arg for arg in commands[0]]
        return commands


PUBLIC_VLT = """`verilator_config
public_flat_rw -module "{top}" -var "*"
"""


def verilog(cfg):
    """The path of ``cfg``'s emitted Verilog (and its ``.json`` sidecar beside it) in ``sim_build/hdl``, converted
    once per machine (``generators.emit.emitted``)."""
    return emitted(cfg, SIM_BUILD / "hdl")


def _runner(sim, *, dumping=False):
    if sim == "verilator":
        return SelectiveVerilator()
    return DumpingIcarus() if dumping else get_runner(sim)


class SimulationError(RuntimeError):
    """The simulator failed to build or a cocotb test failed."""


@dataclass(frozen=True)
class Build:
    """A finished build: ``build_dir`` never changes once built (its name holds the digest)."""

    sim: str
    toplevel: str
    build_dir: Path
    waves: bool

    @property
    def lock(self):
        return SIM_BUILD / ".locks" / f"{self.build_dir.name}.lock"


@dataclass(frozen=True)
class Run:
    """One simulator process on a Build, in its own folder (kept when it failed or recorded waves)."""

    build: Build
    run_dir: Path

    @property
    def waves_path(self):
        name = "dump.vcd" if self.build.sim == "verilator" else f"{self.build.toplevel}.fst"
        return self.run_dir / name


@contextmanager
def locked(path, mode):
    """Hold ``flock(mode)`` on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune(stem, keep):
    """Remove the other builds of ``stem`` (older sources) that no process is using."""
    for old in SIM_BUILD.glob(f"{stem}-*"):
        if old == keep or not old.is_dir() or not old.name[len(stem) + 1:].isalnum():
            continue
        lock = SIM_BUILD / ".locks" / f"{old.name}.lock"
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(old, ignore_errors=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(sources, toplevel, sim, *, waves=False, roots=()):
    """Compile ``sources`` for ``sim`` unless the identical build exists; return its Build.

    One build per (sources, toplevel, simulator, options), shared by every process that needs it
    (pytest-xdist workers, the demo's pool): the folder is named by the digest of all of these and
    built under an exclusive lock from copies of the hashed sources, so no process ever sees a
    half-built or rebuilt model. ``roots``: more top-level modules in the sources (Icarus only), e.g. a
    toggle dumper beside the harness.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    toolchain.prepare(sim)
    texts = {Path(source).name: Path(source).read_bytes() for source in sources}
    if roots and sim != "icarus":
        raise ValueError("extra top-level modules are for Icarus builds only")
    build_args = _BUILD_ARGS[sim] + [arg for root in roots for arg in ("-s", root)]
    options = [*build_args, *([cxx_opt()] if sim == "verilator" else [])]
    digest = hashlib.sha256(json.dumps([toplevel, sim, waves, options, PUBLIC_VLT]).encode())
    for name, text in texts.items():
        digest.update(name.encode() + b"\0" + text + b"\0")
    # one build kept per optimisation level: the tests' -O0 and the demo's -O1 do not replace each other's
    stem = f"{toplevel}-{sim}{'-waves' if waves else ''}{cxx_opt() if sim == 'verilator' else ''}"
    result = Build(sim, toplevel, SIM_BUILD / f"{stem}-{digest.hexdigest()[:16]}", waves)
    stamp = result.build_dir / "zeroskip.stamp"
    with locked(result.lock, fcntl.LOCK_EX):
        if stamp.exists():
            return result
        shutil.rmtree(result.build_dir, ignore_errors=True)
        source_dir = result.build_dir / "src"
        source_dir.mkdir(parents=True)
        paths = []
        for name, text in texts.items():
            (source_dir / name).write_bytes(text)
            paths.append(str(source_dir / name))
        if sim == "verilator":
            control = source_dir / "public.vlt"
            control.write_text(PUBLIC_VLT.format(top=toplevel))
            paths.append(str(control))
        try:
            _runner(sim).build(
                sources=paths, hdl_toplevel=toplevel, build_dir=result.build_dir,
                timescale=("1ns", "1ps"), waves=waves, always=True, build_args=build_args,
                log_file=result.build_dir / "build.log",
            )
        except (SystemExit, Exception) as error:
            raise SimulationError(f"{sim} build of {toplevel} failed; see {result.build_dir / 'build.log'}") from error
        stamp.write_text(digest.hexdigest())
    _prune(stem, result.build_dir)
    return result


def run(build, test_module, env, *, testcase=None, plusargs=()):
    """Run cocotb ``test_module`` on ``build`` with ``env`` in a folder of its own; return the Run.

    Raise SimulationError on a failed test (its folder and log are kept). A passing run's folder is
    removed unless it recorded waves.
    """
    runner = _runner(build.sim, dumping=bool(plusargs))
    with locked(build.lock, fcntl.LOCK_SH):
        result = Run(build, Path(tempfile.mkdtemp(prefix="run-", dir=build.build_dir)))
        results = result.run_dir / "results.xml"
        log = result.run_dir / "test.log"
        plusargs = [*plusargs, *([f"+dumpfile_path={result.waves_path}"] if build.waves and build.sim == "icarus"
                                 else [])]
        try:
            runner.test(
                hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog", test_module=test_module,
                testcase=testcase, build_dir=build.build_dir, test_dir=result.run_dir, plusargs=plusargs,
                extra_env={k: str(v) for k, v in env.items()}, waves=build.waves, results_xml=str(results),
                log_file=log,
            )
        except SystemExit:  # cocotb's runner exits on a failed test under pytest; the results say which
            pass
    if not results.exists():
        raise SimulationError(f"{build.sim} produced no results; see {log}")
    failures = []
    for case in ET.parse(results).iter("testcase"):
        for failure in list(case.iter("failure")) + list(case.iter("error")):
            failures.append(f"{case.get('name')}: {failure.get('message') or failure.text or 'failed'}")
    if failures:
        raise SimulationError(f"{build.sim}: " + "; ".join(failures) + f" (log: {log})")
    if not build.waves:
        shutil.rmtree(result.run_dir, ignore_errors=True)
    return result
