"""cocotb runner helper: one cached build per design x simulator x worker, reused for many runs."""

import hashlib
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from cocotb_tools.runner import Verilator, get_runner

from . import toolchain

__all__ = ["REPO", "SIM_BUILD", "SIMULATORS", "Build", "SimulationError", "build", "run"]

REPO = Path(__file__).resolve().parent.parent
SIM_BUILD = Path(os.environ.get("ZS_SIM_BUILD", REPO / "sim_build"))
SIMULATORS = ("verilator", "icarus")
_BUILD_ARGS = {
    # Emitted modules are linted separately with -Wall (make lint); the harness need not be.
    "verilator": ["-Wno-fatal", "-Wno-WIDTH", "-O2"],
    "icarus": [],
}


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
        return commands


PUBLIC_VLT = """`verilator_config
public_flat_rw -module "{top}" -var "*"
"""


def _runner(sim):
    return SelectiveVerilator() if sim == "verilator" else get_runner(sim)


class SimulationError(RuntimeError):
    """The simulator failed to build or a cocotb test failed."""


@dataclass(frozen=True)
class Build:
    sim: str
    toplevel: str
    build_dir: Path
    waves: bool

    @property
    def waves_path(self):
        name = "dump.vcd" if self.sim == "verilator" else f"{self.toplevel}.fst"
        return self.build_dir / name


def _worker():
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def build(sources, toplevel, sim, *, waves=False):
    """Compile ``sources`` for ``sim`` unless the identical build exists; return its Build."""
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    toolchain.prepare(sim)
    build_dir = SIM_BUILD / f"{toplevel}-{sim}-{_worker()}{'-waves' if waves else ''}"
    digest = hashlib.sha256(json.dumps([toplevel, sim, waves, _BUILD_ARGS[sim], PUBLIC_VLT]).encode())
    for source in sources:
        digest.update(Path(source).read_bytes())
    stamp = build_dir / "zeroskip.stamp"
    result = Build(sim, toplevel, build_dir, waves)
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return result
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    runner = _runner(sim)
    sources = [str(s) for s in sources]
    if sim == "verilator":
        control = build_dir / "public.vlt"
        control.write_text(PUBLIC_VLT.format(top=toplevel))
        sources.append(str(control))
    try:
        runner.build(
            sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
            timescale=("1ns", "1ps"), waves=waves, always=True, build_args=_BUILD_ARGS[sim],
            log_file=build_dir / "build.log",
        )
    except (SystemExit, Exception) as error:
        raise SimulationError(f"{sim} build of {toplevel} failed; see {build_dir / 'build.log'}") from error
    stamp.write_text(digest.hexdigest())
    return result


def run(build, test_module, env, *, testcase=None):
    """Run cocotb ``test_module`` on ``build`` with ``env``; raise SimulationError on a failed test."""
    runner = _runner(build.sim)
    results = build.build_dir / "results.xml"
    results.unlink(missing_ok=True)
    runner.test(
        hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog", test_module=test_module, testcase=testcase,
        build_dir=build.build_dir, test_dir=build.build_dir, extra_env={k: str(v) for k, v in env.items()},
        waves=build.waves, results_xml=str(results), log_file=build.build_dir / "test.log",
    )
    if not results.exists():
        raise SimulationError(f"{build.sim} produced no results; see {build.build_dir / 'test.log'}")
    failures = []
    for case in ET.parse(results).iter("testcase"):
        for failure in list(case.iter("failure")) + list(case.iter("error")):
            failures.append(f"{case.get('name')}: {failure.get('message') or failure.text or 'failed'}")
    if failures:
        raise SimulationError(f"{build.sim}: " + "; ".join(failures) + f" (log: {build.build_dir / 'test.log'})")
    return results
