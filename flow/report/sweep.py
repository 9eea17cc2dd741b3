"""`zeroskip sweep SPEC.toml`: a grid of one block's parameters on a network's layers, one Dask task per point.

Each point is the base preset with the grid's values (``dataclasses.replace``, validated by the block's config
before anything runs), run on RTL by the technique that owns the block (``Technique.rows``: its model of the
network, every output and cycle checked against golden) and, as asked, synthesized (Yosys area, nextpnr Fmax) and
costed (the energy model). A point's result is cached by its inputs and the sources (``harness.result_cache``),
so a re-run — after an interruption, on any cluster — computes only what is missing. A failing point (a tool
error, a mismatch, a worker that died ``RETRIES`` + 1 times running it) is a row with its reason and log, never
dropped; every row counts the worker deaths it survived (``retries``). At most ``MAX_POINTS`` points a sweep.
Points run on a local Dask cluster (one single-threaded worker process per core) or on the scheduler at
``--scheduler``; results come back as data.
"""

import csv
import dataclasses
import itertools
import json
import math
import os
import re
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import tomllib
from tqdm import tqdm

from generators.config import CATALOG
from golden.checks import InputError, refuse_unknown
from models.networks import CnnConfig, check_network

from ..harness.activations import BATCH, check_batch, fc_batch
from ..harness.check import per_image
from ..harness.cosim import rows_bit_exact
from ..harness.network import check_images, count_test_images, load_network, load_onnx_network, onnx_key
from ..harness.npz import input_file
from ..harness.result_cache import cached
from ..harness.runner import REPO, SIMULATORS
from ..synth.area import preset_area
from ..synth.system import SYSTEM_PARTS, with_dram
from ..synth.yosys import synthesize
from ..techniques import TECHNIQUES, check_options

__all__ = ["MEASURES", "SweepSpec", "read_spec", "grid_points", "run_point", "run_all", "pareto", "sweep"]

MEASURES = ("cycles", "area", "fmax", "energy")
SWEEP_DIR = REPO / "reports" / "sweep"
_KEYS = ("block", "preset", "network", "model", "data", "layers", "images", "batch", "measure", "sim", "options",
         "grid")
MAX_POINTS = 256  # grid points of one sweep: each is a Verilator build and a network's layers on RTL
MAX_SPEC_BYTES = 1 << 20
RETRIES = 2  # runs more of a point whose worker died (the local cluster's allowed-failures), then it is a row
CONNECT_SECONDS = 30
# The local cluster's scheduler: a point whose worker died runs RETRIES more times, and a worker holds only the point
# it runs (none queued behind it), so a point that kills its worker takes no other point with it.
LOCAL_CLUSTER = {"distributed.scheduler.allowed-failures": RETRIES, "distributed.scheduler.worker-saturation": 1.0}


@dataclass(frozen=True)
class SweepSpec:
    """A parsed SPEC.toml (docs/sweep.md)."""

    block: str
    preset: str
    network: str
    model: str | None
    data: str | None
    layers: tuple | None
    images: int
    measure: tuple
    sim: str
    grid: tuple   # ((parameter, (values...)), ...) in the file's order
    options: tuple = ()  # ((option, value), ...): the owning technique's run options (Technique.options)
    batch: int = BATCH   # images an fc layer runs a job (harness.activations.fc_batch)


def _owner(block):
    owners = [t for t in TECHNIQUES.values() if block in t.blocks]
    if not owners:
        sweepable = [b for t in TECHNIQUES.values() for b in t.blocks]
        raise InputError(f"block {block!r} runs no network; sweepable blocks are {', '.join(sweepable)}")
    return owners[0]


def read_spec(path):
    """The SweepSpec of SPEC.toml at ``path``; InputError (one line) for anything invalid, every grid point checked."""
    path = input_file(path, "a SPEC.toml")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise InputError(f"{path} has {path.stat().st_size} bytes; a SPEC.toml holds at most {MAX_SPEC_BYTES}")
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path} is not valid TOML: {error}") from None
    refuse_unknown(path, raw, _KEYS)
    for key in ("block", "grid"):
        if key not in raw:
            raise InputError(f"{path} needs {key!r}")
    block = raw["block"]
    if block not in CATALOG:
        raise InputError(f"unknown block {block!r}; blocks are {', '.join(CATALOG)}")
    _owner(block)
    name = raw.get("preset", "default")
    if name not in CATALOG[block]:
        raise InputError(f"unknown preset {name!r} for {block}; presets are {', '.join(CATALOG[block])}")
    model, data = raw.get("model"), raw.get("data")
    if (model is None) != (data is None):
        raise InputError("an ONNX model needs its data: give both model and data")
    network = raw.get("network", "digits")
    if model is None:
        check_network(network)
    images = raw.get("images", 1)
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise InputError(f"images must be a positive integer, not {images!r}")
    batch = raw.get("batch", BATCH)
    try:
        check_batch(batch)
    except ValueError:
        raise InputError(f"batch must be a positive integer, not {batch!r}") from None
    layers = raw.get("layers")
    if layers is not None and (not isinstance(layers, list) or not layers or
                               not all(isinstance(x, str) for x in layers)):
        raise InputError(f"layers must be a non-empty list of layer names, not {layers!r}")
    measure = raw.get("measure", ["cycles"])
    if not isinstance(measure, list) or any(m not in MEASURES for m in measure):
        raise InputError(f"measure must be a list of {', '.join(MEASURES)}, not {measure!r}")
    sim = raw.get("sim", "verilator")
    if sim not in SIMULATORS:
        raise InputError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise InputError(f"options must be a table of option = value, not {options!r}")
    try:
        check_options([_owner(block)], options)
    except ValueError as error:
        raise InputError(str(error)) from None
    grid = raw["grid"]
    if not isinstance(grid, dict) or not grid:
        raise InputError("grid must be a table of parameter = [values]")
    base = CATALOG[block][name]
    fields = {f.name for f in dataclasses.fields(base)} - {"name"}
    refuse_unknown(f"the grid of {block}", grid, sorted(fields))
    for param, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"grid {param} must be a non-empty list of values, not {values!r}")
    count = math.prod(len(values) for values in grid.values())
    if count > MAX_POINTS:
        raise InputError(f"the grid has {count} points, more than the {MAX_POINTS} a sweep runs; split it")
    spec = SweepSpec(block, name, network, model, data, tuple(layers) if layers else None, images,
                     tuple(dict.fromkeys(["cycles", *measure])), sim,
                     tuple((param, tuple(values)) for param, values in grid.items()), tuple(options.items()), batch)
    grid_points(spec)  # every point validated before anything runs
    return spec


def _point_name(base, params):
    name = "_".join([base, *(f"{k}{v}" for k, v in params.items())])
    return re.sub(r"\W", "_", name)


def grid_points(spec):
    """[(params, cfg)] of every grid point; InputError naming the parameter and value the config refuses."""
    base = CATALOG[spec.block][spec.preset]
    names = [param for param, _ in spec.grid]
    points = []
    for values in itertools.product(*(v for _, v in spec.grid)):
        params = dict(zip(names, values))
        try:
            cfg = dataclasses.replace(base, name=_point_name(spec.preset, params), **params)
        except (ValueError, TypeError) as error:
            where = ", ".join(f"{k} = {v!r}" for k, v in params.items())
            raise InputError(f"grid point {where}: {error}") from None
        points.append((params, cfg))
    return points


def _network(spec, log):
    if spec.model:
        return load_onnx_network(spec.model, spec.data, log=log)
    return load_network(spec.network, log=log)


def _source_key(spec):
    """What identifies the network: its name, or the ONNX model's (with its external data) and data's bytes."""
    return onnx_key(spec.model, spec.data) if spec.model else spec.network


def _workload(spec):
    """What a point's figures depend on besides its config (the grid and base preset do not)."""
    return {k: getattr(spec, k)
            for k in ("network", "model", "data", "layers", "images", "batch", "measure", "sim", "options")}


def _measure(cfg, workload, network_key, *, log=print):
    """One point's figures (the cached step): RTL rows of the chosen layers and each measure asked for."""
    spec = SweepSpec(block=cfg.block, preset=cfg.name, grid=(), **workload)
    net = _network(spec, log)
    rows = _owner(cfg.block).rows(net, cfg, spec.sim, net.data.x_test[:spec.images],
                                  batch=fc_batch(net.data.x_test, spec.images, spec.batch), layers=spec.layers,
                                  options=dict(spec.options), log=log)
    out = {"cycles": sum(per_image(r, "cycles") for r in rows),
           "golden_cycles": sum(per_image(r, "golden_cycles") for r in rows),
           "rtl_bit_exact": rows_bit_exact(rows),
           "layers": {r["layer"]: per_image(r, "cycles") for r in rows},
           "first_mismatch": next((r["first_mismatch"] for r in rows if r["first_mismatch"]), None)}
    if "energy" in spec.measure:
        rows = with_dram(rows, cfg.macs, net.qnet, net.data.x_test[0])
        out["energy_pj"] = sum(per_image(r, "energy_pj") for r in rows)
        parts = [per_image(r, "energy_parts") for r in rows]
        out.update({f"energy_{part}_pj": sum(p[part] for p in parts) for part in SYSTEM_PARTS})
    if "area" in spec.measure:
        area = preset_area(cfg)
        out.update(logic_cells=area["logic_cells"], ram_bits=area["ram_bits"])
    if "fmax" in spec.measure:
        placed = synthesize(cfg, ecp5=True, pnr=True)
        out.update(fmax_mhz=placed["fmax_mhz"], ecp5_part=placed["device"])
    return out


def run_point(spec_dict, params, *, fresh=False, log_dir=None):
    """One grid point on whichever worker runs it: ``{**params, "module", ..., "error", "log", "cached"}``.
    Never raises: a failure is the row's ``error`` (and the traceback in its ``log``)."""
    spec = SweepSpec(**spec_dict)
    cfg = dataclasses.replace(CATALOG[spec.block][spec.preset], name=_point_name(spec.preset, params), **params)
    log_path = Path(log_dir or SWEEP_DIR / "logs") / f"{cfg.module}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    row = {**params, "module": cfg.module}
    start = time.perf_counter()
    with open(log_path, "a") as log_file:
        def log(*args):
            print(*args, file=log_file, flush=True)

        try:
            result, reused = cached(f"sweep-{cfg.module}", _measure, cfg, _workload(spec), _source_key(spec),
                                    fresh=fresh, keep=lambda r: r["rtl_bit_exact"], log=log)
            row.update(result, error=None if result["rtl_bit_exact"] else f"RTL differs from golden: "
                       f"{result['first_mismatch'] or 'cycles'}", cached=reused)
        except Exception as error:  # noqa: BLE001 — a point's failure is data, never fatal to the sweep
            traceback.print_exc(file=log_file)
            row.update(_failed(f"{type(error).__name__}: {error}"))
    row.update(log=f"{socket.gethostname()}:{log_path}", seconds=round(time.perf_counter() - start, 2))
    return row


def _failed(error):
    """The fields of a point that produced no figures."""
    return {"cycles": None, "rtl_bit_exact": False, "error": error, "cached": False}


def run_all(client, fn, calls, *, progress=None):
    """``fn(*args, **kwargs)`` of each of ``calls`` as one Dask task on ``client``; ``[(result, error, retries)]`` in
    the calls' order. A task whose worker dies is run again on another worker (the scheduler's ``allowed-failures``
    times; ``RETRIES`` on the local cluster), then its ``error`` names the lost worker; ``retries`` is how many
    workers died while it was running or queued on them (each time it was run again). Any other exception of a task
    is its ``error`` too: every call gets its entry."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    def worker_deaths(key, dask_scheduler=None):
        """Workers that died running task ``key``; runs on the scheduler, which need not have zeroskip installed
        (a nested function is sent by value)."""
        task = dask_scheduler.tasks.get(key)
        return 0 if task is None else task.suspicious

    futures = {client.submit(fn, *args, pure=False, **kwargs): i for i, (args, kwargs) in enumerate(calls)}
    out = [None] * len(calls)
    for future in as_completed(futures):
        try:
            result, error = future.result(), None
        except KilledWorker as lost:
            result, error = None, (f"lost worker: {lost.allowed_failures + 1} workers died running this point "
                                   f"(the last {lost.last_worker.address})")
        except Exception as failure:  # noqa: BLE001 — a task's failure is its entry, never fatal to the others
            result, error = None, f"{type(failure).__name__}: {failure}"
        deaths = client.run_on_scheduler(worker_deaths, key=future.key)
        out[futures[future]] = (result, error, deaths)
        if progress is not None:
            progress()
    return out


def pareto(rows, x, y):
    """Indices of the rows on the front minimising both ``x`` and ``y`` (rows without both left out)."""
    points = [(i, r[x], r[y]) for i, r in enumerate(rows) if r.get(x) is not None and r.get(y) is not None]
    return [i for i, a, b in points if not any((c <= a and d <= b) and (c < a or d < b) for _, c, d in points)]


def _plots(rows, out_dir, spec):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for measure, label in (("logic_cells", "Yosys logic cells"), ("energy_pj", "energy (pJ, OSU 0.18 µm)")):
        if not any(r.get(measure) is not None for r in rows):
            continue
        front = set(pareto(rows, "cycles", measure))
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for i, r in enumerate(rows):
            if r.get(measure) is None or r.get("cycles") is None:
                continue
            on = i in front
            ax.scatter(r["cycles"], r[measure], color="tab:red" if on else "tab:blue", zorder=3 if on else 2)
            ax.annotate(", ".join(f"{k}={r[k]}" for k, _ in spec.grid), (r["cycles"], r[measure]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        line = sorted((rows[i]["cycles"], rows[i][measure]) for i in front)
        ax.plot(*zip(*line), color="tab:red", lw=1, label="Pareto front")
        ax.set_xlabel(f"cycles ({spec.sim} RTL, bit-exact points)")
        ax.set_ylabel(label)
        ax.set_title(f"{spec.block} sweep from {spec.preset}")
        ax.legend()
        ax.grid(alpha=0.3)
        path = out_dir / f"pareto_{measure}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path.name)
    return written


def _check_network(spec, test_images, layers):
    check_images(spec.images, test_images)
    missing = [name for name in spec.layers or () if name not in layers]
    if missing:
        raise InputError(f"the network has no compute layer {missing[0]!r}; its layers are {', '.join(layers)}")


def _check_scheduler(scheduler):
    """InputError naming a scheduler address without a port or that refuses a connection (None: a local cluster)."""
    if scheduler and scheduler.startswith("tcp://"):  # a refused or unroutable address fails now, not after retries
        host, _, port = scheduler.removeprefix("tcp://").rpartition(":")
        if not host or not port.isdigit():
            raise InputError(f"the scheduler address {scheduler} needs a port, e.g. tcp://host:8786")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
        except (OSError, TimeoutError, ValueError) as error:
            raise _unreachable(scheduler, error) from None


def _unreachable(scheduler, error):
    why = getattr(error, "strerror", None) or type(error).__name__
    return InputError(f"cannot reach the Dask scheduler at {scheduler} ({why}; is `dask scheduler` running there?)")


def _executor(scheduler):
    """A Dask client: the scheduler at ``scheduler`` (checked by ``_check_scheduler``), or a local cluster of one
    single-threaded worker per core (a point whose worker dies is retried ``RETRIES`` times)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=CONNECT_SECONDS), None
        except (OSError, TimeoutError, ValueError) as error:
            raise _unreachable(scheduler, error) from None
    with dask.config.set(LOCAL_CLUSTER):
        cluster = LocalCluster(n_workers=os.cpu_count(), threads_per_worker=1, processes=True,
                               dashboard_address=None, worker_dashboard_address=None)
    return Client(cluster), cluster


def sweep(spec_path, *, scheduler=None, out_dir=None, fresh=False, log=print):
    """Run the sweep of SPEC.toml; write ``out_dir``/results.csv, results.json and Pareto plots. Returns the
    rows (one per grid point, in grid order). ``fresh`` recomputes points instead of reusing cached results."""
    spec = read_spec(spec_path)
    points = grid_points(spec)
    if spec.model is None:  # a built-in network's images and layers are checked before it loads
        _check_network(spec, count_test_images(spec.network), CnnConfig.of(spec.network).compute_layers())
    _check_scheduler(scheduler)
    # The network loads (or is refused) and is checked before any point runs.
    net = _network(spec, lambda *_: None)
    _check_network(spec, len(net.data.y_test), [layer.name for layer in net.qnet.computes])
    out_dir = Path(out_dir or SWEEP_DIR / Path(spec_path).stem)
    spec_dict = dataclasses.asdict(spec)
    client, cluster = _executor(scheduler)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        log(f"sweep of {len(points)} {spec.block} points on {scheduler or 'a local cluster'} "
            f"({len(client.scheduler_info()['workers'])} workers)")
        calls = [((spec_dict, params), {"fresh": fresh, "log_dir": str(out_dir / "logs")}) for params, _ in points]
        with tqdm(total=len(points), desc=f"sweep {spec.block}", unit="point") as bar:
            done = run_all(client, run_point, calls, progress=bar.update)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    rows = [{**(row or {**params, "module": cfg.module, **_failed(error), "log": None, "seconds": None}),
             "retries": retries} for (params, cfg), (row, error, retries) in zip(points, done)]
    _write(rows, out_dir, spec)
    plots = _plots(rows, out_dir, spec)
    failed = [r for r in rows if r["error"]]
    log(f"wrote {out_dir / 'results.csv'}, results.json" + (f", {', '.join(plots)}" if plots else "")
        + f"; {len(rows) - len(failed)} of {len(rows)} points bit-exact, {sum(r['cached'] for r in rows)} reused")
    for r in failed:
        log(f"sweep: point {r['module']} failed: {r['error']} (log {r['log']})")
    for r in rows:
        if r["retries"] and not r["error"]:
            log(f"sweep: point {r['module']} was run again after {r['retries']} worker death(s)")
    return rows


def _write(rows, out_dir, spec):
    (out_dir / "results.json").write_text(json.dumps({"spec": dataclasses.asdict(spec), "rows": rows}, indent=1)
                                          + "\n")
    columns = list(dict.fromkeys(k for r in rows for k in r if k != "layers"))
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
