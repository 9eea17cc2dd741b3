"""The digits CNN globally magnitude-pruned at the seed report's sparsities (fine-tuned, cached), INT8."""

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from golden.snapea import ALGORITHMS, run_algorithm
from models import cnn
from models.pruning import SPARSITIES, load_or_fine_tune_pruned
from models.quantize import QuantizedNet, quantize

from .network import CACHE, conv_inputs

__all__ = ["PrunedModel", "pruned_models", "multiplications", "RTL_SPARSITY"]

RTL_SPARSITY = 0.5  # the pruned network the demo and compare run on the PE arrays (the report's middle setting)


@dataclass(frozen=True)
class PrunedModel:
    sparsity: float           # the global pruning target
    qnet: QuantizedNet
    accuracy: float           # INT8 test accuracy
    zero_weights: float       # measured fraction of zero INT8 conv weights
    reused: bool


def pruned_models(net, *, log=print):
    """{sparsity: PrunedModel} for SPARSITIES; 0 is ``net``'s own INT8 network (no fine-tuning)."""
    base, _ = cnn.load_or_train(net.cnn, net.data, CACHE)
    out = {}
    for sparsity in SPARSITIES:
        start = time.perf_counter()
        if sparsity == 0:
            qnet, reused, accuracy = net.qnet, True, net.int8_accuracy
        else:
            model, reused = load_or_fine_tune_pruned(
                base, net.cnn.key(), net.data, CACHE, sparsity,
                progress=lambda it, s=sparsity: tqdm(it, desc=f"fine-tune {s:.0%} pruned", leave=False))
            qnet = quantize(model, net.data.x_train)
            accuracy = qnet.accuracy(net.data.x_test, net.data.y_test)
        weights = np.concatenate([layer.w.reshape(-1) for layer in qnet.convs])
        out[sparsity] = PrunedModel(sparsity, qnet, accuracy, float((weights == 0).mean()), reused)
        log(f"  {sparsity:.0%} global pruning: {'reused' if reused else 'fine-tuned'} in "
            f"{time.perf_counter() - start:.1f} s, {out[sparsity].zero_weights:.1%} zero INT8 conv weights, "
            f"INT8 test accuracy {accuracy:.2%}")
    return out


def multiplications(qnet, images):
    """Per conv layer: multiplications of each algorithm summed over ``images``, and the activation sparsity."""
    acts = conv_inputs(qnet, images)
    rows = []
    for layer in qnet.convs:
        row = {"layer": layer.name, "activation_zeros": float((acts[layer.name] == 0).mean()),
               "weight_zeros": float((layer.w == 0).mean()), **{name: 0 for name in ALGORITHMS}}
        for x in acts[layer.name]:
            outputs = {name: run_algorithm(name, x, layer.w, layer.bias, pad=layer.pad, stride=layer.stride)
                       for name in ALGORITHMS}
            for name, out in outputs.items():
                if not np.array_equal(out["y"], outputs["conv2d"]["y"]):
                    raise AssertionError(f"{name} differs from ReLU(conv2d + bias) on {layer.name}")
                row[name] += out["mults"]
        rows.append(row)
    return rows
