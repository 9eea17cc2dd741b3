"""Hostile input over every command -> reports/bench/hostile.json: each case must exit 2 with one line on stderr,
write nothing (its folder and the repository's reports/ unchanged) and refuse within ``LIMIT_SECONDS``, measured
from a fresh ``zeroskip`` process as a user starts it (interpreter start-up and imports included).

The cases are generated: for every co-simulated block, unknown and misspelled keys, wrong dtypes, ranks and
empty arrays, every kind of bad input file (missing, a folder, a device, a FIFO, empty, text, a single .npy, a
truncated archive, a header that lies, pickled objects) and bad outputs; for evaluate, train, holistic, sweep,
generate, synth, compare, demo and presets, out-of-range counts, unknown names, bad files, bad ONNX models and
data, bad SPEC.toml files and unreachable schedulers. Each runs in a folder of its own, under a timeout that turns
a hang into a failed case; the test suite runs them in its own process (``run_case(..., process=False)``).
"""

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..cli import main as zeroskip
from ..harness.drivers import DRIVERS
from ..harness.drivers.array import ArrayDriver
from ..harness.drivers.cartesian import PeArrayDriver, PeDriver
from ..harness.drivers.dap import DapDriver
from ..harness.drivers.mor import MorDriver
from ..harness.drivers.snapea import SnapeaDriver
from ..harness.runner import REPO
from . import BENCH_DIR

__all__ = ["cases", "run_case", "refused", "lying_npz"]

LIMIT_SECONDS = 2  # every refusal answers within 2 s (issue 35)
HANG_SECONDS = 60
# One valid IN.npz per driver, so that each case breaks exactly one thing (every block a driver runs is covered).
_VALID = {
    DapDriver: dict(blocks=np.ones((4, 8), np.int8), nnz=np.int64(2)),
    ArrayDriver: dict(x=np.ones((4, 6, 6), np.int8), w=np.ones((2, 4, 3, 3), np.int8), pad=np.int64(1)),
    PeDriver: dict(x=np.ones((2, 6, 6), np.int8), w=np.ones((2, 2, 3, 3), np.int8), bias=np.zeros(2, np.int32)),
    MorDriver: dict(x=np.ones((2, 5), np.int8), w=np.ones((3, 5), np.int8), bias=np.zeros(3, np.int32),
                    proxy=-np.ones(3, np.int64), m_q=np.zeros(3, np.int32), b_q=np.zeros(3, np.int32),
                    enable=np.zeros(3, bool)),
    SnapeaDriver: dict(x=np.ones((1, 6, 6), np.int8), w=np.ones((2, 1, 3, 3), np.int8), bias=np.zeros(2, np.int32),
                       pad=np.int64(1)),
}
_VALID[PeArrayDriver] = _VALID[PeDriver]
_SPEC = """block = "sa"
preset = "small"
network = "digits"
layers = ["conv2"]
images = 1
[grid]
rows = [2, 3]
"""


def _valid(block):
    """A valid IN.npz of ``block``: its driver's, with the DAP bound ``nnz_a`` where the block requires it."""
    arrays = dict(_VALID[DRIVERS[block]])
    if block == "s2ta_aw":
        arrays["nnz_a"] = np.int64(4)
    return arrays


def _npz(name, **arrays):
    def make(d):
        np.savez(d / name, **arrays)
        return str(d / name)
    return make


def _file(name, data):
    def make(d):
        (d / name).write_bytes(data)
        return str(d / name)
    return make


def _fifo(d):
    os.mkfifo(d / "fifo")
    return str(d / "fifo")


def _folder(d):
    (d / "folder").mkdir()
    return str(d / "folder")


def lying_npz(path, shape):
    """An .npz at ``path`` whose x.npy header (magic included) claims ``shape`` (int8) but stores 16 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|i1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(16))
    return str(path)


def _truncated(d):
    np.savez(d / "good.npz", blocks=np.ones((4, 8), np.int8), nnz=np.int64(2))
    (d / "truncated.npz").write_bytes((d / "good.npz").read_bytes()[:-40])
    return str(d / "truncated.npz")


def _npy(d):
    np.save(d / "single.npy", np.ones((4, 8), np.int8))
    return str(d / "single.npy")


_BAD_FILES = {"missing": lambda d: str(d / "missing.npz"), "folder": _folder, "dev_zero": lambda d: "/dev/zero",
              "fifo": _fifo, "empty": _file("empty.npz", b""), "text": _file("text.npz", b"x = [1, 2]\n"),
              "single_npy": _npy, "truncated": _truncated,
              "huge_header": lambda d: lying_npz(d / "huge.npz", (2**37, 8)),
              "objects": _npz("objects.npz", x=np.array([1, None], dtype=object))}


def _onnx(name, layers):
    def make(d):
        import warnings

        import torch
        from torch import nn

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(nn.Sequential(*layers()).eval(), (torch.zeros(1, 1, 8, 8),), str(d / name),
                              dynamo=False)
        return str(d / name)
    return make


def _tanh_cnn():
    from torch import nn
    return [nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(72, 10)]


def _relu_cnn():
    from torch import nn
    return [nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 10)]


def _spec(edit):
    def make(d):
        (d / "spec.toml").write_text(edit(_SPEC))
        return str(d / "spec.toml")
    return make


def _cosim_cases():
    for block in DRIVERS:
        valid = _valid(block)
        first = next(iter(valid))
        variants = {
            "unknown_key": {**valid, "colour": np.int64(1)},
            "misspelled_key": {**{k: v for k, v in valid.items() if k != first}, first + "s": valid[first]},
            "missing_key": {k: v for k, v in valid.items() if k != first},
            "float_dtype": {**valid, first: valid[first].astype(np.float32)},
            "wrong_rank": {**valid, first: valid[first].reshape(-1)[None, None, None, None, :]},
            "empty_array": {**valid, first: valid[first].reshape(-1)[:0]},
        }
        for name, arrays in variants.items():
            yield f"cosim {block} {name}", ["cosim", block, "--inputs", _npz("in.npz", **arrays), "--out", "out.npz"]
        yield f"cosim {block} unknown preset", ["cosim", block, "--preset", "nosuch", "--inputs",
                                                _npz("in.npz", **valid), "--out", "out.npz"]
        yield f"cosim {block} out folder", ["cosim", block, "--inputs", _npz("in.npz", **valid), "--out", _folder]
        yield f"cosim {block} out device", ["cosim", block, "--inputs", _npz("in.npz", **valid), "--out", "/dev/null"]
        yield f"cosim {block} out is input", ["cosim", block, "--inputs", _npz("in.npz", **valid), "--out",
                                              lambda d: str(d / "in.npz")]
    for name, make in _BAD_FILES.items():
        yield f"cosim dap inputs {name}", ["cosim", "dap", "--inputs", make, "--out", "out.npz"]
    yield "cosim dap missing inputs, existing out", ["cosim", "dap", "--inputs", _BAD_FILES["missing"], "--out",
                                                     _file("out.npz", b"keep")]
    yield "cosim out in a missing folder", ["cosim", "dap", "--inputs", _npz("in.npz", **_valid("dap")), "--out",
                                            "nosuch/out.npz"]
    yield "cosim unknown simulator", ["cosim", "dap", "--sim", "xcelium", "--inputs", "in.npz", "--out", "o.npz"]
    yield "cosim unknown block", ["cosim", "tpu", "--inputs", "in.npz", "--out", "o.npz"]
    yield "cosim cscnn_pe 400 channels", ["cosim", "cscnn_pe", "--inputs", _npz(
        "in.npz", x=np.ones((400, 8, 8), np.int8), w=np.ones((4, 400, 3, 3), np.int8), bias=np.zeros(4, np.int32)),
        "--out", "out.npz"]
    for block in ("scnn_pe", "cscnn", "sa"):
        yield f"cosim {block} 8200x8200 plane", ["cosim", block, "--inputs", _npz(
            "in.npz", x=np.zeros((1, 8200, 8200), np.int8), w=np.zeros((1, 1, 3, 3), np.int8),
            bias=np.zeros(1, np.int32)) if block != "sa" else _npz(
            "in.npz", x=np.zeros((1, 8200, 8200), np.int8), w=np.zeros((1, 1, 3, 3), np.int8), pad=np.int64(1)),
            "--out", "out.npz"]


def _evaluate_cases():
    data = _npz("data.npz", x=np.ones((4, 1, 8, 8), np.float32))
    relu = _onnx("cnn.onnx", _relu_cnn)
    for images in ("0", "-1", "361", "2.5", "many"):
        yield f"evaluate --images {images}", ["evaluate", "--images", images]
        yield f"demo --images {images}", ["demo", "--images", images]
    yield "evaluate unknown network", ["evaluate", "--network", "resnet"]
    yield "evaluate model without data", ["evaluate", "--model", relu]
    yield "evaluate network and model", ["evaluate", "--network", "digits", "--model", relu, "--data", data]
    for techniques in ("", ",", "mor,", ",,", "nosuch", "dense,nosuch"):
        yield f"evaluate --techniques {techniques!r}", ["evaluate", "--techniques", techniques]
    yield "evaluate unknown tiling", ["evaluate", "--tiling", "diagonal"]
    yield "demo unknown tiling", ["demo", "--tiling", "diagonal"]
    yield "evaluate unknown simulator", ["evaluate", "--sim", "xcelium"]
    yield "evaluate out is a file", ["evaluate", "--out", _file("out", b"keep")]
    yield "evaluate out in a missing folder", ["evaluate", "--out", "nosuch/out"]
    for name, make in _BAD_FILES.items():
        if name != "objects":
            yield f"evaluate model {name}", ["evaluate", "--model", make, "--data", data]
        yield f"evaluate data {name}", ["evaluate", "--model", relu, "--data", make]
    yield "evaluate model unsupported op", ["evaluate", "--model", _onnx("tanh.onnx", _tanh_cnn), "--data", data]
    yield "evaluate model text", ["evaluate", "--model", _file("m.onnx", b"not a model"), "--data", data]
    for name, arrays in {
        "unknown key": dict(x=np.ones((4, 1, 8, 8), np.float32), labels=np.zeros(4, np.int64)),
        "no x": dict(y=np.zeros(4, np.int64)),
        "infinite x": dict(x=np.full((4, 1, 8, 8), np.inf, np.float32)),
        "float64 x": dict(x=np.ones((4, 1, 8, 8))),
        "wrong shape x": dict(x=np.ones((4, 1, 9, 9), np.float32)),
        "nan x": dict(x=np.full((4, 1, 8, 8), np.nan, np.float32)),
        "labels out of range": dict(x=np.ones((4, 1, 8, 8), np.float32), y=np.array([0, 1, 2, 10])),
        "int32 labels": dict(x=np.ones((4, 1, 8, 8), np.float32), y=np.zeros(4, np.int32)),
        "x_train without y_train": dict(x=np.ones((4, 1, 8, 8), np.float32),
                                        x_train=np.ones((4, 1, 8, 8), np.float32)),
    }.items():
        yield f"evaluate data {name}", ["evaluate", "--model", relu, "--data", _npz("bad.npz", **arrays)]


def _training_cases():
    base = ["train", "--network", "digits", "--target", "snapea", "--method", "l1"]
    yield "train unknown network", ["train", "--network", "resnet", "--target", "snapea", "--method", "l1"]
    yield "train unknown target", ["train", "--network", "digits", "--target", "tpu", "--method", "l1"]
    yield "train unknown preset", ["train", "--network", "digits", "--target", "snapea/nosuch", "--method", "l1"]
    yield "train target without density", ["train", "--network", "digits", "--target", "dap", "--method", "l1"]
    yield "train unknown method", ["train", "--network", "digits", "--target", "snapea", "--method", "l2"]
    for option, value in (("--images", "0"), ("--images", "1000000000"), ("--budget", "-1"), ("--budget", "nan"),
                          ("--epochs", "0"), ("--steps", "-1"), ("--sim", "xcelium")):
        yield f"train {option} {value}", [*base, option, value]
        yield f"holistic {option} {value}", ["holistic", option, value]
    yield "train out is a file", [*base, "--out", _file("out", b"keep")]
    yield "holistic no networks", ["holistic", "--networks", ""]
    yield "holistic unknown network", ["holistic", "--networks", "digits,resnet"]
    yield "holistic unknown target", ["holistic", "--targets", "tpu"]
    yield "holistic out in a missing folder", ["holistic", "--out", "nosuch/out"]


def _sweep_cases():
    for name, make in _BAD_FILES.items():
        if name not in ("objects", "single_npy", "huge_header"):
            yield f"sweep spec {name}", ["sweep", make]
    edits = {
        "invalid TOML": lambda s: s.replace("[grid]", "[grid"),
        "unknown key": lambda s: s.replace("[grid]", "colour = 1\n[grid]"),
        "misspelled key": lambda s: s.replace("images = 1", "imagse = 1"),
        "no grid": lambda s: s.split("[grid]")[0],
        "empty grid list": lambda s: s.replace("rows = [2, 3]", "rows = []"),
        "unknown parameter": lambda s: s.replace("rows = [2, 3]", "depth = [2]"),
        "misspelled parameter": lambda s: s.replace("rows = [2, 3]", "row = [2]"),
        "invalid value": lambda s: s.replace("rows = [2, 3]", "rows = [2, 0]"),
        "string value": lambda s: s.replace("rows = [2, 3]", 'rows = ["two"]'),
        "million points": lambda s: s.replace("rows = [2, 3]", f"rows = {[2] * 1000}\ncols = {[2] * 1000}"),
        "images 0": lambda s: s.replace("images = 1", "images = 0"),
        "images 361": lambda s: s.replace("images = 1", "images = 361"),
        "images string": lambda s: s.replace("images = 1", 'images = "1"'),
        "block without network": lambda s: s.replace('block = "sa"', 'block = "dap"'),
        "unknown block": lambda s: s.replace('block = "sa"', 'block = "tpu"'),
        "unknown preset": lambda s: s.replace('preset = "small"', 'preset = "huge"'),
        "unknown network": lambda s: s.replace('network = "digits"', 'network = "resnet"'),
        "unknown layer": lambda s: s.replace('["conv2"]', '["conv9"]'),
        "empty layers": lambda s: s.replace('["conv2"]', "[]"),
        "unknown measure": lambda s: s.replace("images = 1", 'images = 1\nmeasure = ["power"]'),
        "unknown simulator": lambda s: s.replace("images = 1", 'images = 1\nsim = "xcelium"'),
        "unknown option": lambda s: s.replace("images = 1", "images = 1\n[options]\ncolour = 1"),
        "model without data": lambda s: s.replace('network = "digits"', 'model = "m.onnx"'),
    }
    for name, edit in edits.items():
        yield f"sweep {name}", ["sweep", _spec(edit)]
    yield "sweep out is a file", ["sweep", _spec(lambda s: s), "--out", _file("out", b"keep")]
    yield "sweep unreachable scheduler", ["sweep", _spec(lambda s: s), "--scheduler", "tcp://127.0.0.1:1"]
    yield "sweep scheduler without port", ["sweep", _spec(lambda s: s), "--scheduler", "tcp://127.0.0.1"]


def _other_cases():
    yield "generate preset without block", ["generate", "--preset", "small", "--out", "hdl"]
    yield "generate unknown block", ["generate", "tpu", "--out", "hdl"]
    yield "generate unknown preset", ["generate", "dap", "--preset", "nosuch", "--out", "hdl"]
    yield "generate out is a file", ["generate", "dap", "--out", _file("out.v", b"keep")]
    yield "generate out in a missing folder", ["generate", "dap", "--out", "nosuch/hdl"]
    yield "synth unknown block", ["synth", "tpu"]
    yield "synth unknown preset", ["synth", "dap", "--preset", "nosuch"]
    for option, value in (("--images", "0"), ("--images", "361"), ("--array-images", "0"),
                          ("--array-images", "361"), ("--sim", "xcelium")):
        yield f"compare {option} {value}", ["compare", option, value]
    yield "presets unknown block", ["presets", "tpu"]
    yield "unknown command", ["simulate"]
    yield "no command", []


def cases():
    """``[(name, argv)]``: an argv item may be a function of the case's folder making the file it names."""
    return [case for group in (_cosim_cases, _evaluate_cases, _training_cases, _sweep_cases, _other_cases)
            for case in group()]


def _tree(root):
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")} if root.exists() else {}


def refused(result, limit=LIMIT_SECONDS):
    """Whether a case met the contract: exit 2, one line, no traceback, nothing written, within ``limit`` seconds
    (None: any time short of a hang)."""
    return (result["exit"] == 2 and len(result["stderr"].splitlines()) == 1 and "Traceback" not in result["stderr"]
            and not result["written"] and (limit is None or result["seconds"] <= limit))


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def _in_process(argv):
    err, out = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            return zeroskip(argv), err.getvalue()
    except _Hang:
        return "hang", err.getvalue()
    finally:
        signal.alarm(0)


def _fresh_process(argv):
    try:
        done = subprocess.run([sys.executable, "-m", "flow.cli", *argv],
                              capture_output=True, text=True, timeout=HANG_SECONDS,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        return done.returncode, done.stderr
    except subprocess.TimeoutExpired as hung:
        return "hang", hung.stderr.decode() if isinstance(hung.stderr, bytes) else hung.stderr or ""


def run_case(argv, folder, *, watch=(REPO / "reports",), process=True):
    """``{"exit", "stderr", "seconds", "written"}`` of ``zeroskip argv`` run in ``folder`` (files made first), in a
    fresh process (``process``) or in this one; ``written``: what changed in ``folder`` and the ``watch`` folders."""
    argv = [item(folder) if callable(item) else item for item in argv]
    before, watched = _tree(folder), [_tree(path) for path in watch]
    cwd = os.getcwd()
    os.chdir(folder)
    start = time.perf_counter()
    try:
        code, err = (_fresh_process if process else _in_process)(argv)
    finally:
        os.chdir(cwd)
    seconds = time.perf_counter() - start
    written = set(_tree(folder).items()) ^ set(before.items())
    for path, tree in zip(watch, watched):
        written |= {(str(path / name), stamp) for name, stamp in set(_tree(path).items()) ^ set(tree.items())}
    return {"exit": code, "stderr": err.strip(), "seconds": round(seconds, 2),
            "written": sorted({name for name, _ in written})}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", help="only cases whose name contains this")
    args = parser.parse_args(argv)
    rows = []
    for name, argv in tqdm([c for c in cases() if not args.k or args.k in c[0]], desc="hostile", unit="case"):
        with tempfile.TemporaryDirectory() as tmp:
            result = run_case(argv, Path(tmp))
        rows.append({"case": name, "ok": refused(result), **result})
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    failed = [r for r in rows if not r["ok"]]
    report = {"cases": len(rows), "passed": len(rows) - len(failed), "limit_seconds": LIMIT_SECONDS,
              "slowest": sorted(rows, key=lambda r: -r["seconds"])[:5], "failed": failed, "rows": rows}
    (BENCH_DIR / "hostile.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['passed']} of {len(rows)} hostile cases refused in one line with exit 2, nothing written, "
          f"each within {LIMIT_SECONDS} s of a fresh process (slowest {report['slowest'][0]['seconds']} s) -> "
          f"{BENCH_DIR / 'hostile.json'}")
    for r in failed:
        print(f"FAILED {r['case']}: exit {r['exit']}, {r['seconds']} s, written {r['written']}: {r['stderr'][:300]}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
