"""The first answer's wall time: `zeroskip demo` on a fresh clone of HEAD with empty caches (builds, results,
ccache and Yosys' WASM compile all cold; the shipped checkpoints and this machine's installed packages as after
`make setup`), then again warm; per stage from each run's summary.json (``python -m flow.bench.demo`` ->
reports/bench/demo.json; in `make bench`). Issue 35's goals: cold <= 5 min, warm <= 1 min.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..harness.runner import REPO
from . import BENCH_DIR

__all__ = ["demo_timeline"]

def _run(clone, env, argv):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flow.cli", "demo", *argv], cwd=clone, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"zeroskip demo exited {done.returncode} in {clone}: {done.stderr.strip()[-500:]}")
    summary = json.loads((clone / "reports" / "demo" / "summary.json").read_text())
    return {"wall_seconds": round(seconds, 1), "stages_seconds": summary["stages_seconds"],
            "bit_exact": summary["bit_exact"]}


def demo_timeline(argv=(), *, log=print):
    """``{"commit", "argv", "cold", "warm"}``: ``zeroskip demo argv`` twice in a clone of HEAD (a process each,
    this interpreter; its own XDG_CACHE_HOME and build folder, empty at first)."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, check=True, capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        clone, cache = Path(tmp) / "clone", Path(tmp) / "cache"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", commit], cwd=clone, check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZS_")}
        env.update(XDG_CACHE_HOME=str(cache), PYTHONPATH=str(clone))
        result = {"commit": commit, "argv": list(argv)}
        for run in ("cold", "warm"):
            result[run] = _run(clone, env, list(argv))
            log(f"{run}: {json.dumps(result[run])}")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("demo_args", nargs=argparse.REMAINDER, help="arguments for zeroskip demo (default none)")
    args = p.parse_args(argv)
    result = demo_timeline(args.demo_args)
    out = BENCH_DIR / "demo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"zeroskip demo on a fresh clone: cold {result['cold']['wall_seconds']} s, warm "
          f"{result['warm']['wall_seconds']} s -> {out}")
    return 0 if result["cold"]["bit_exact"] and result["warm"]["bit_exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
