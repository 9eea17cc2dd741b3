"""A built-in network's training recipe, chosen on a validation split: each candidate (settings over the
network's defaults) trained on the training images less a held-out validation part, quantized, and measured on
that part only (the test images are never looked at); ``python -m flow.bench.recipes NETWORK`` ->
reports/bench/recipes-NETWORK.json. The chosen settings go into ``models.networks``.
"""

import argparse
import dataclasses
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from models.networks import CnnConfig

from . import BENCH_DIR

__all__ = ["CANDIDATES", "validation_split", "try_recipes"]

VALIDATION = 0.1  # fraction of the training images held out
CANDIDATES = {  # network: [settings over its defaults]
    "lenet5_fashion": [{}, {"shift": 0}, {"shift": 1, "epochs": 15}],
    "resnet_fashion": [{}, {"shift": 1}],
    "mobilenet_fashion": [{}, {"shift": 1}],
}


def validation_split(data, fraction=VALIDATION):
    """``data``'s training images split again (``models.datasets.split``): a stratified ``fraction`` of them in
    place of the test images, which are never looked at."""
    from models.datasets import split

    return split(f"{data.name}, validation split", data.x_train, data.y_train, test_fraction=fraction)


def _trial(network, settings, seed):
    from models import cnn
    from models.datasets import DATASETS
    from models.quantize import quantize

    data = validation_split(DATASETS[CnnConfig.of(network).dataset]())
    cfg = dataclasses.replace(CnnConfig.of(network), seed=seed, **settings)
    start = time.perf_counter()
    model = cnn.train(cfg, data)
    qnet = quantize(model, data.x_train)
    return {"settings": settings, "seed": seed, "config": dataclasses.asdict(cfg),
            "float_validation": cnn.accuracy(model, data.x_test, data.y_test),
            "int8_validation": qnet.accuracy(data.x_test, data.y_test),
            "seconds": round(time.perf_counter() - start, 1)}


def try_recipes(network, candidates=None, *, seeds=(0,), jobs=None, log=print):
    """Rows of {settings, seed, float and INT8 validation accuracy, seconds} per candidate and seed, trained in
    ``jobs`` processes (default one per core; each training is single-threaded and deterministic)."""
    CnnConfig.of(network)  # refuses an unknown network in one line
    trials = [(settings, seed) for settings in (candidates if candidates is not None else CANDIDATES[network])
              for seed in seeds]
    rows = []
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count()) as pool:
        for row in pool.map(_trial, *zip(*[(network, settings, seed) for settings, seed in trials])):
            rows.append(row)
            log(json.dumps(row))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("network", choices=list(CANDIDATES))
    p.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    args = p.parse_args(argv)
    rows = try_recipes(args.network, seeds=[int(s) for s in args.seeds.split(",")])
    means = {}
    for r in rows:
        means.setdefault(json.dumps(r["settings"], sort_keys=True), []).append(r["int8_validation"])
    best = max(means, key=lambda k: np.mean(means[k]))
    out = BENCH_DIR / f"recipes-{args.network}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"network": args.network, "validation_fraction": VALIDATION, "rows": rows,
                               "best": json.loads(best), "best_int8_validation": float(np.mean(means[best]))},
                              indent=2) + "\n")
    print(f"{args.network}: best settings {best} (INT8 validation {np.mean(means[best]):.2%}) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
