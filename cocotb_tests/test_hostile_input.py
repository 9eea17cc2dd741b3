"""Bad input to `zeroskip` as a hostile new user gives it: exit 2 with one line and nothing written,
refused before any simulation or large allocation; a crash or an interrupt never exits 1."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from flow.bench.hostile import lying_npz
from flow.cli import main
from flow.harness.drivers import DRIVERS
from flow.harness.drivers.stream import StreamTarget


def _write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if anything tries to build or run a simulator (refusals must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a simulation was started for an input that must be refused")

    monkeypatch.setattr(StreamTarget, "__init__", refuse)


def _refused(argv, capsys, out, *messages):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for message in messages:
        assert message in err
    assert "Traceback" not in err and "array(" not in err
    assert not os.path.exists(out)
    return err


def _mor(n_out, n_in=5):
    return dict(x=np.ones((2, n_in), np.int8), w=np.ones((n_out, n_in), np.int8), bias=np.zeros(n_out, np.int32),
                proxy=-np.ones(n_out, np.int64), m_q=np.zeros(n_out, np.int32), b_q=np.zeros(n_out, np.int32),
                enable=np.zeros(n_out, bool))


_CONV = dict(x=np.ones((1, 6, 6), np.int8), w=np.ones((2, 1, 3, 3), np.int8))
_SNAPEA = dict(x=np.ones((1, 6, 6), np.int8), w=np.ones((2, 1, 3, 3), np.int8), bias=np.zeros(2, np.int32),
               pad=np.int64(1))


@pytest.mark.parametrize("block, arrays, messages", [
    # golden's im2col would allocate 112 GiB: bounded from the shapes first
    ("sa", {**_CONV, "pad": np.int64(100000)}, ["padded by 100000", "more than"]),
    # no neurons at all (every table empty): refused as empty, not a ZeroDivisionError
    ("mor", _mor(0), ["is empty (shape [0, 5])"]),
    ("mor", {**_mor(3), "x": np.ones((0, 5), np.int8)}, ["'x' is empty"]),
    ("snapea", {**_SNAPEA, "w": np.ones((0, 1, 3, 3), np.int8), "bias": np.zeros(0, np.int32)}, ["'w' is empty"]),
    ("s2ta_aw", dict(a=np.ones((4, 16), np.int8), w=np.ones((16, 3), np.int8)), ["missing input 'nnz_a'"]),
    ("sa", {**_CONV, "pad": np.array(1.0)}, ["pad must be an integer scalar, not float64 1.0"]),
    ("sa", {**_CONV, "stride": np.array([1, 2])}, ["stride must be an integer scalar, not an array of shape [2]"]),
    ("snapea", {**_SNAPEA, "pad": np.array("1")}, ["pad must be an integer scalar, not <U1 '1'"]),
    ("sa", {**_CONV, "pad": np.array([1], dtype=object)}, ["holds Python objects"]),
])
def test_bad_arrays_are_refused_in_one_line(block, arrays, messages, tmp_path, capsys, no_simulation):
    out = tmp_path / "out.npz"
    argv = ["cosim", block, "--inputs", _write(tmp_path / "in.npz", **arrays), "--out", str(out)]
    _refused(argv, capsys, out, *messages)


def test_bad_files_are_refused_in_one_line(tmp_path, capsys, no_simulation):
    out = tmp_path / "out.npz"
    cases = []
    (tmp_path / "empty.npz").write_bytes(b"")
    cases.append(("empty.npz", ["is empty, not an .npz archive"]))
    (tmp_path / "text.npz").write_text("x = [1, 2, 3]\n")
    cases.append(("text.npz", ["is not an .npz archive"]))
    np.save(tmp_path / "single.npy", np.ones((4, 8), np.int8))
    cases.append(("single.npy", ["is a single .npy array", "numpy.savez"]))
    lying_npz(tmp_path / "huge.npz", (2**37, 8))
    cases.append(("huge.npz", ["claims shape [137438953472, 8]", "stores 16 bytes"]))
    good = _write(tmp_path / "good.npz", blocks=np.ones((4, 8), np.int8), nnz=np.int64(2))
    (tmp_path / "truncated.npz").write_bytes(open(good, "rb").read()[:-40])
    cases.append(("truncated.npz", ["truncated.npz"]))
    cases.append(("missing.npz", ["does not exist"]))
    cases.append((".", ["is a folder, not an .npz file"]))
    for name, messages in cases:
        _refused(["cosim", "dap", "--inputs", str(tmp_path / name), "--out", str(out)], capsys, out, *messages)


def test_non_regular_files_are_refused_before_they_are_opened(tmp_path, capsys, no_simulation):
    """/dev/zero never ends and a FIFO blocks its reader forever: both refused from their file type; a device as
    --out is refused too, and a missing input beside an existing output is invalid input (2), not a crash."""
    out = tmp_path / "out.npz"
    os.mkfifo(tmp_path / "fifo")
    _refused(["cosim", "dap", "--inputs", "/dev/zero", "--out", str(out)], capsys, out,
             "/dev/zero is not a regular file")
    _refused(["cosim", "dap", "--inputs", str(tmp_path / "fifo"), "--out", str(out)], capsys, out,
             "is not a regular file (a device, FIFO or socket)")
    inputs = _write(tmp_path / "in.npz", blocks=np.ones((4, 8), np.int8), nnz=np.int64(2))
    assert main(["cosim", "dap", "--inputs", inputs, "--out", "/dev/null"]) == 2
    assert "output /dev/null is not a regular file" in capsys.readouterr().err
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    out.write_bytes(b"keep")
    assert main(["cosim", "dap", "--inputs", str(tmp_path / "missing.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.npz does not exist" in err and len(err.splitlines()) == 1 and out.read_bytes() == b"keep"


def _any_inputs(block):
    """Arrays of the keys ``block`` takes (their values do not matter: unknown keys are refused first)."""
    return {key: np.ones(2, np.int8) for key in DRIVERS[block].input_keys}


@pytest.mark.parametrize("block", list(DRIVERS))
def test_an_unknown_input_key_is_refused_naming_the_keys_the_block_takes(block, tmp_path, capsys, no_simulation):
    out = tmp_path / "out.npz"
    inputs = _write(tmp_path / "in.npz", **_any_inputs(block), colour=np.int64(1))
    _refused(["cosim", block, "--inputs", inputs, "--out", str(out)], capsys, out, "unknown key 'colour' in",
             f"it takes {', '.join(DRIVERS[block].input_keys)}")


def test_a_misspelled_optional_key_is_refused_not_left_at_its_default(tmp_path, capsys, no_simulation):
    """`strid=2` once ran stride 1 and exited 0."""
    out = tmp_path / "out.npz"
    inputs = _write(tmp_path / "in.npz", **_CONV, strid=np.int64(2))
    _refused(["cosim", "sa", "--inputs", inputs, "--out", str(out)], capsys, out,
             "unknown key 'strid'", "(did you mean 'stride'?)")


def test_layers_beyond_a_pe_harness_or_the_element_bound_are_refused_before_any_build(tmp_path, capsys,
                                                                                      no_simulation):
    from golden.cscnn import mirror_canonical

    rng = np.random.default_rng(0)
    out = tmp_path / "out.npz"
    w = mirror_canonical(rng.integers(-128, 128, (4, 400, 3, 3)).astype(np.int8))  # 400 channels of one 8x8 tile
    inputs = _write(tmp_path / "wide.npz", x=rng.integers(1, 128, (400, 8, 8)).astype(np.int8), w=w,
                    bias=np.zeros(4, np.int32))
    for block in ("cscnn_pe", "cscnn"):
        start = time.monotonic()
        _refused(["cosim", block, "--inputs", inputs, "--out", str(out)], capsys, out, "ops, more than the harness's")
        assert time.monotonic() - start < 15
    inputs = _write(tmp_path / "plane.npz", x=np.zeros((1, 8200, 8200), np.int8), w=np.zeros((1, 1, 3, 3), np.int8),
                    bias=np.zeros(1, np.int32))
    for block in ("scnn_pe", "cscnn_pe", "scnn", "cscnn"):
        start = time.monotonic()
        _refused(["cosim", block, "--inputs", inputs, "--out", str(out)], capsys, out,
                 "more than the 67108864 a layer may take")
        assert time.monotonic() - start < 15


@pytest.mark.parametrize("argv, message", [
    (["compare", "--images", "0"], "images must be between 1 and the 360 test images, not 0"),
    (["compare", "--array-images", "361"], "array_images must be between 1 and the 360 test images, not 361"),
    (["train", "--network", "digits", "--target", "snapea", "--method", "l1", "--images", "1000000000"],
     "images must be between 1 and the 360 test images, not 1000000000"),
    (["holistic", "--networks", "lenet5", "--images", "0"], "images must be between 1 and the"),
    (["evaluate", "--techniques", ""], "--techniques '' names an empty technique"),
    (["evaluate", "--techniques", "mor,"], "--techniques 'mor,' names an empty technique"),
    (["demo", "--images", "0"], "images must be between 1 and the 360 test images, not 0"),
])
def test_image_counts_and_empty_lists_are_refused_before_any_work(argv, message, tmp_path, capsys, monkeypatch,
                                                                   no_simulation):
    from flow.harness import result_cache

    monkeypatch.chdir(tmp_path)
    before = sorted(result_cache.RESULTS.glob("*")) if result_cache.RESULTS.exists() else []
    start = time.monotonic()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert time.monotonic() - start < 15 and list(tmp_path.iterdir()) == []
    assert (sorted(result_cache.RESULTS.glob("*")) if result_cache.RESULTS.exists() else []) == before


def test_bad_outputs_are_refused_before_simulating(tmp_path, capsys, no_simulation):
    inputs = _write(tmp_path / "in.npz", blocks=np.ones((4, 8), np.int8), nnz=np.int64(2))
    before = open(inputs, "rb").read()
    (tmp_path / "folder").mkdir()
    _refused(["cosim", "dap", "--inputs", inputs, "--out", str(tmp_path / "folder")], capsys, tmp_path / "none",
             "is a folder; name a file in it")
    _refused(["cosim", "dap", "--inputs", inputs, "--out", str(tmp_path / "nosuch" / "o.npz")], capsys,
             tmp_path / "nosuch", "output folder", "does not exist")
    assert main(["cosim", "dap", "--inputs", inputs, "--out", inputs]) == 2
    assert "is the input file" in capsys.readouterr().err
    os.symlink(inputs, tmp_path / "alias.npz")
    assert main(["cosim", "dap", "--inputs", str(tmp_path / "alias.npz"), "--out", inputs]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert open(inputs, "rb").read() == before


@pytest.mark.parametrize("argv, message", [
    (["cosim", "nosuch", "--inputs", "i.npz", "--out", "o.npz"], "invalid choice: 'nosuch'"),
    (["cosim", "bincu", "--inputs", "i.npz", "--out", "o.npz"], "invalid choice: 'bincu'"),
    (["cosim", "dap", "--sim", "foo", "--inputs", "i.npz", "--out", "o.npz"], "invalid choice: 'foo'"),
    (["cosim", "dap", "--out", "o.npz"], "the following arguments are required: --inputs"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["demo", "--images", "many"], "invalid int value: 'many'"),
])
def test_command_line_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "--help" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_a_file_or_a_missing_parent_as_out(tmp_path, capsys):
    (tmp_path / "file.v").write_text("keep")
    assert main(["generate", "dap", "--out", str(tmp_path / "file.v")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a file; name a folder" in err and len(err.splitlines()) == 1
    assert (tmp_path / "file.v").read_text() == "keep"
    assert main(["generate", "dap", "--out", str(tmp_path / "no" / "such")]) == 2
    assert "parent folder" in capsys.readouterr().err and not (tmp_path / "no").exists()
    assert main(["generate", "--preset", "small", "--out", str(tmp_path / "hdl")]) == 2  # not every default preset
    assert "--preset small needs a block" in capsys.readouterr().err and not (tmp_path / "hdl").exists()


def test_cosim_help_offers_only_blocks_it_runs(capsys):
    assert main(["cosim", "--help"]) == 0
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert "{" + ",".join(DRIVERS) + "}" in usage.replace("\n", "").replace(" ", "")
    assert "bincu" not in usage


def test_out_is_written_exactly_where_named(tmp_path, capsys):
    """`--out result` writes `result` (numpy.savez alone would write result.npz) and says so."""
    blocks = np.tile(np.arange(-2, 2, dtype=np.int8), (5, 1))  # dap_small: bz 4
    inputs = _write(tmp_path / "in.npz", blocks=blocks, nnz=np.int64(2))
    out = tmp_path / "result"
    assert main(["cosim", "dap", "--preset", "small", "--inputs", inputs, "--out", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "result.npz").exists()
    assert f"-> {out}" in capsys.readouterr().out
    assert np.load(out)["golden_match"]


def test_a_crash_is_exit_3_in_one_line_never_1(tmp_path, capsys, monkeypatch):
    """An internal error (here a golden model that divides by zero) is not a mismatch."""
    from flow.harness.drivers.dap import DapDriver

    def broken(cfg, args):
        return 1 // 0

    monkeypatch.setattr(DapDriver, "golden", staticmethod(broken))
    out = tmp_path / "out.npz"
    inputs = _write(tmp_path / "in.npz", blocks=np.ones((4, 8), np.int8), nnz=np.int64(2))
    assert main(["cosim", "dap", "--inputs", inputs, "--out", str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert "internal error: ZeroDivisionError" in err and len(err.splitlines()) == 1 and not out.exists()


def test_ctrl_c_is_one_line_and_not_exit_1(tmp_path):
    """A real SIGINT in the middle of a co-simulation: exit 130, one line, no traceback, no OUT.npz."""
    rng = np.random.default_rng(0)
    inputs = _write(tmp_path / "in.npz", blocks=rng.integers(-128, 128, (200000, 8)).astype(np.int8),
                    nnz=np.int64(3))
    out = tmp_path / "out.npz"
    # SIGINT as at a terminal, even when this suite runs where it is ignored (a background job inherits SIG_IGN,
    # and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen([sys.executable, "-m", "flow.cli", "cosim", "dap", "--sim", "icarus", "--inputs",
                             inputs, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    children = f"/proc/{proc.pid}/task/{proc.pid}/children"
    deadline = time.monotonic() + 120
    while not open(children).read().strip() and time.monotonic() < deadline:  # wait for the simulator
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "zeroskip cosim: interrupted" and "Traceback" not in err
    assert not out.exists()


def test_every_generated_hostile_case_is_refused_in_one_line_writing_nothing(tmp_path):
    """The whole class of bad inputs over every command (flow.bench.hostile, a few hundred cases): exit 2, one line,
    nothing written in the case's folder, none hanging (run here in-process; the bench times each from a fresh
    process)."""
    from flow.bench.hostile import cases, refused, run_case

    failed = []
    for i, (name, argv) in enumerate(cases()):
        folder = tmp_path / str(i)
        folder.mkdir()
        result = run_case(argv, folder, watch=(), process=False)  # reports/ is shared with the other test workers
        if not refused(result, limit=None):
            failed.append((name, result))
    assert len(cases()) > 200 and failed == []
