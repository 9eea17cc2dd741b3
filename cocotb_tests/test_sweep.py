"""`zeroskip sweep` on Dask: a real scheduler and two worker processes on loopback, the local cluster, resuming
after a kill (through the result cache), one-line refusals of invalid specs."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flow.cli import main
from flow.harness.result_cache import RESULTS
from flow.report.sweep import pareto, read_spec, sweep
from flow.synth.system import SYSTEM_PARTS

BIN = Path(sys.executable).parent
VOLATILE = ("cached", "seconds", "log")
SPEC = """block = "sa"
preset = "small"
network = "digits"
layers = ["conv2"]
images = 1
measure = ["cycles", "area", "energy"]
[grid]
rows = [2, 3]
cols = {cols}
"""


def _spec(tmp_path, name, **fields):
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(**fields))
    return path


def _forget(modules):
    """Drop the cached results of these points (so this test computes them, whatever ran before on the machine)."""
    for module in modules:
        for path in RESULTS.glob(f"sweep-{module}-*.json"):
            path.unlink()


def _finished(module):
    return any(True for _ in RESULTS.glob(f"sweep-{module}-*.json"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster():
    """A real `dask scheduler` and two single-threaded `dask worker` processes on loopback."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":")[-1],
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    procs += [subprocess.Popen([BIN / "dask", "worker", address, "--nthreads", "1", "--no-dashboard",
                                "--name", f"w{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for i in range(2)]
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:   # the workers, then the scheduler (workers that lose their scheduler first retry for 8 s)
        for proc in (*procs[1:], procs[0]):
            proc.terminate()
            proc.wait(timeout=60)


@pytest.mark.xdist_group("sweep")
def test_a_sweep_on_a_dask_cluster_equals_the_local_cluster_row_for_row(tmp_path, dask_cluster):
    spec = _spec(tmp_path, "grid", cols="[2]")
    remote = sweep(spec, scheduler=dask_cluster, out_dir=tmp_path / "remote", fresh=True, log=lambda *_: None)
    local = sweep(spec, out_dir=tmp_path / "local", fresh=True, log=lambda *_: None)
    assert [r["module"] for r in remote] == ["sa_small_rows2_cols2", "sa_small_rows3_cols2"]
    for a, b in zip(remote, local):
        assert {k: v for k, v in a.items() if k not in VOLATILE} == {k: v for k, v in b.items() if k not in VOLATILE}
        assert a["rtl_bit_exact"] and a["error"] is None and a["cycles"] == a["golden_cycles"] > 0
        assert a["logic_cells"] > 0 and a["energy_pj"] > 0 and not a["cached"]
        assert a["energy_pj"] == pytest.approx(sum(a[f"energy_{part}_pj"] for part in SYSTEM_PARTS))
        assert a["energy_buffer_pj"] > 0 and a["energy_dram_pj"] > 0
    assert remote[1]["cycles"] < remote[0]["cycles"] and remote[1]["logic_cells"] > remote[0]["logic_cells"]
    for out in ("remote", "local"):
        assert (tmp_path / out / "results.csv").read_text().count("\n") == 3
        assert (tmp_path / out / "pareto_logic_cells.png").stat().st_size > 10_000
    again = sweep(spec, out_dir=tmp_path / "again", log=lambda *_: None)
    assert all(r["cached"] for r in again)


@pytest.mark.xdist_group("sweep")
def test_a_killed_sweep_resumes_without_recomputing_finished_points(tmp_path):
    spec = tmp_path / "killed.toml"  # resuming is about the result cache: cycles alone (area, energy: the test above)
    spec.write_text(SPEC.format(cols="[2, 3]").replace('"cycles", "area", "energy"', '"cycles"'))
    modules = [f"sa_small_rows{r}_cols{c}" for r in (2, 3) for c in (2, 3)]   # half of them built by the test above
    _forget(modules)
    proc = subprocess.Popen([BIN / "zeroskip", "sweep", str(spec), "--out", str(tmp_path / "first")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while not any(_finished(m) for m in modules):
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before finishing a point"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)   # the sweep, its local cluster's workers and their simulators
    proc.wait()
    finished = {m for m in modules if _finished(m)}
    assert 0 < len(finished) < len(modules)
    rows = sweep(spec, out_dir=tmp_path / "second", log=lambda *_: None)
    assert [r["module"] for r in rows] == modules and all(r["rtl_bit_exact"] for r in rows)
    assert {r["module"] for r in rows if r["cached"]} == finished   # finished points reused, the rest computed


def test_a_failing_point_is_a_row_with_its_reason_and_log_never_fatal(tmp_path, monkeypatch):
    """A tool failure in one point (a stand-in raising where the technique's RTL run would) and an RTL mismatch in
    another: each is its row's error, with the traceback in its log; the real point beside them is unaffected."""
    import dataclasses

    from flow.harness.toolchain import ToolError
    from flow.report import sweep as sweep_module

    spec = read_spec(_spec(tmp_path, "failing", cols="[2]"))
    owner = sweep_module._owner("sa")
    real_rows = owner.rows

    def rows(net, cfg, sim, images, **kwargs):
        if cfg.rows == 3:
            raise ToolError("verilator failed (log sim_build/x/build.log)")
        return real_rows(net, cfg, sim, images, **kwargs)

    monkeypatch.setattr(owner, "rows", rows)
    spec_dict = dataclasses.asdict(spec)
    _forget(["sa_small_rows3_cols2"])
    good, bad = (sweep_module.run_point(spec_dict, {"rows": r, "cols": 2}, log_dir=tmp_path / "logs") for r in (2, 3))
    assert good["error"] is None and good["rtl_bit_exact"] and good["cycles"] > 0
    assert bad["error"] == "ToolError: verilator failed (log sim_build/x/build.log)" and bad["cycles"] is None
    log = Path(bad["log"].split(":", 1)[1]).read_text()
    assert "Traceback" in log and "ToolError" in log and not bad["cached"]

    def mismatching(net, cfg, sim, images, **kwargs):
        return [{**r, "mismatches": 1, "first_mismatch": "image 0: y[0, 1, 2]: rtl=1 golden=2"}
                for r in real_rows(net, cfg, sim, images, **kwargs)]

    monkeypatch.setattr(owner, "rows", mismatching)
    row = sweep_module.run_point(spec_dict, {"rows": 2, "cols": 2}, fresh=True, log_dir=tmp_path / "logs")
    assert row["error"] == "RTL differs from golden: image 0: y[0, 1, 2]: rtl=1 golden=2" and not row["rtl_bit_exact"]


def test_pareto_front_minimises_both_measures():
    rows = [{"cycles": 10, "a": 5}, {"cycles": 8, "a": 7}, {"cycles": 12, "a": 5}, {"cycles": 9, "a": 9},
            {"cycles": None, "a": 1}]
    assert pareto(rows, "cycles", "a") == [0, 1]


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("rows = [2, 3]", "rows = [2, 0]"), "grid point rows = 0, cols = 2: rows must be between"),
    (lambda s: s.replace("rows = [2, 3]", "depth = [2]"), "unknown key 'depth' in the grid of sa; it takes "),
    (lambda s: s.replace("rows = [2, 3]", "row = [2]"), "unknown key 'row' in the grid of sa (did you mean 'rows'?)"),
    (lambda s: s.replace("images = 1", "imagse = 1"), "unknown key 'imagse' in"),
    (lambda s: s.replace("images = 1", "imagse = 1"), "(did you mean 'images'?)"),
    (lambda s: s.replace("rows = [2, 3]", f"rows = {[2] * 1000}").replace("cols = [2]", f"cols = {[2] * 1000}"),
     "the grid has 1000000 points, more than the 256 a sweep runs"),
    (lambda s: s.replace("images = 1", "images = 361"), "images must be between 1 and the 360 test images, not 361"),
    (lambda s: s.replace('block = "sa"', 'block = "dap"'), "block 'dap' runs no network; sweepable blocks are"),
    (lambda s: s.replace('block = "sa"', 'block = "tpu"'), "unknown block 'tpu'"),
    (lambda s: s.replace('"energy"]', '"power"]'), "measure must be a list of cycles, area, fmax, energy"),
    (lambda s: s.replace("images = 1", "images = 0"), "images must be a positive integer, not 0"),
    (lambda s: s.replace("images = 1", "images = 1\nbatch = 0"), "batch must be a positive integer, not 0"),
    (lambda s: s.replace("images = 1", "images = 1\nbatch = 2.5"), "batch must be a positive integer, not 2.5"),
    (lambda s: s.replace("[grid]", "colour = 1\n[grid]"), "unknown key 'colour'"),
    (lambda s: s.replace("[grid]", "[grid"), "is not valid TOML"),
    (lambda s: s.replace('["conv2"]', '["conv9"]'), "the network has no compute layer 'conv9'; its layers are conv1,"),
])
def test_invalid_specs_are_refused_in_one_line_with_nothing_written(edit, message, tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text(edit(SPEC.format(cols="[2]")))
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_a_sweep_refuses_devices_files_as_out_and_unreachable_schedulers_in_one_line(tmp_path, capsys):
    spec = _spec(tmp_path, "good", cols="[2]")
    (tmp_path / "file").write_text("keep")
    os.mkfifo(tmp_path / "fifo")
    for argv, message in [(["/dev/zero"], "/dev/zero is not a regular file"),
                          ([str(tmp_path / "fifo")], "is not a regular file (a device, FIFO or socket)"),
                          ([str(spec), "--out", str(tmp_path / "file")], "is a file; name a folder"),
                          ([str(spec), "--scheduler", "tcp://127.0.0.1:1"],
                           "cannot reach the Dask scheduler at tcp://127.0.0.1:1"),
                          ([str(spec), "--scheduler", "tcp://127.0.0.1"], "needs a port, e.g. tcp://host:8786")]:
        assert main(["sweep", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert (tmp_path / "file").read_text() == "keep"


def _survive(x, marker):
    """A point's work: 0 kills its worker every time, 1 only the first time (``marker`` records that), 2 raises."""
    if x == 0 or (x == 1 and not os.path.exists(marker)):
        Path(marker).touch()
        os._exit(1)
    if x == 2:
        raise ValueError("no figures")
    return {"x": x}


def test_a_point_whose_worker_dies_is_retried_then_a_row_and_every_point_gets_its_entry(tmp_path):
    """Real worker deaths on a real local cluster: a point that kills every worker it runs on ends as an entry
    naming the lost worker after the allowed re-runs (one here, RETRIES on the sweep's local cluster); one that killed
    one worker is re-run and counts it; an exception is an entry; a good point beside them is unaffected."""
    import dask
    from distributed import Client, LocalCluster

    from flow.report.sweep import LOCAL_CLUSTER, run_all

    retries = 1
    with dask.config.set({**LOCAL_CLUSTER, "distributed.scheduler.allowed-failures": retries}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        def calls(*xs):
            return [((x, str(tmp_path / f"died{x}")), {}) for x in xs]

        flaky, = run_all(client, _survive, calls(1))
        (poison, poison_error, poison_retries), failing, good = run_all(client, _survive, calls(0, 2, 3))
    assert flaky == ({"x": 1}, None, 1)
    assert poison is None and poison_error.startswith(f"lost worker: {retries + 1} workers died running this point")
    assert poison_retries == retries + 1
    assert failing[:2] == (None, "ValueError: no figures") and good[:2] == ({"x": 3}, None)


def test_every_example_sweep_is_valid():
    examples = sorted((Path(__file__).parents[1] / "sweeps").glob("*.toml"))
    assert len(examples) >= 5
    for path in examples:
        assert read_spec(path).grid
