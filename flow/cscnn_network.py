"""The digits CNN trained for CSCNN (Table II style): dense, centrosymmetric, centrosymmetric + dual pruning."""

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from golden.cscnn import canonical_mask, cartesian_products, is_centrosymmetric
from models import cnn
from models.centrosymmetric import load_or_fine_tune_centrosymmetric
from models.quantize import QuantizedNet, quantize

from .network import CACHE, conv_inputs

__all__ = ["CscnnModel", "cscnn_models", "table_ii", "PRUNING"]

PRUNING = 0.5  # fraction of dual pairs the pruned model removes


@dataclass(frozen=True)
class CscnnModel:
    name: str
    qnet: QuantizedNet
    accuracy: float
    reused: bool


def cscnn_models(net, *, log=print):
    """{"dense", "centrosymmetric", "cs_pruned"}: retrained from ``net``'s model (cached), quantized, evaluated.

    Every conv layer of the digits CNN has unit stride, so all are centrosymmetric; the classifier is not.
    """
    base, _ = cnn.load_or_train(net.cnn, net.data, CACHE)
    models = {"dense": CscnnModel("dense", net.qnet, net.int8_accuracy, True)}
    for name, sparsity in (("centrosymmetric", 0.0), ("cs_pruned", PRUNING)):
        start = time.perf_counter()
        model, reused = load_or_fine_tune_centrosymmetric(
            base, net.cnn.key(), net.data, CACHE, sparsity=sparsity,
            progress=lambda it, n=name: tqdm(it, desc=f"retrain {n}", leave=False))
        qnet = quantize(model, net.data.x_train)
        for layer in qnet.convs:
            assert is_centrosymmetric(layer.w).all(), f"{name} {layer.name} lost centrosymmetry in quantization"
        accuracy = qnet.accuracy(net.data.x_test, net.data.y_test)
        models[name] = CscnnModel(name, qnet, accuracy, reused)
        log(f"  {name}: {'reused' if reused else 'retrained'} in {time.perf_counter() - start:.1f} s, "
            f"INT8 test accuracy {accuracy:.2%}")
    return models


def table_ii(models, images):
    """Per model: test accuracy, conv weights stored and products per image on each PE (golden counts).

    Weights stored: non-zero conv weights, the canonical half only where a filter is centrosymmetric
    (the CSCNN PE's compressed format). Products: Cartesian products of non-zero operands on the
    SCNN PE (all non-zero weights) and, for centrosymmetric models, the CSCNN PE (canonical half).
    """
    rows = []
    dense_weights = dense_products = None
    for name, model in models.items():
        symmetric = all(is_centrosymmetric(layer.w).all() for layer in model.qnet.convs)
        weights = sum(int(np.count_nonzero(layer.w[..., canonical_mask(*layer.w.shape[2:])] if symmetric else layer.w))
                      for layer in model.qnet.convs)
        acts = conv_inputs(model.qnet, images)
        per_pe = {}
        for pe, reuse in (("scnn", False), ("cscnn", True)):
            if reuse and not symmetric:
                continue
            per_pe[pe] = sum(cartesian_products(x, layer.w, reuse=reuse)
                             for layer in model.qnet.convs for x in acts[layer.name]) / len(images)
        products = per_pe.get("cscnn", per_pe["scnn"])
        dense_weights = dense_weights or weights
        dense_products = dense_products or products
        rows.append({"model": name, "accuracy": model.accuracy, "conv_weights": weights,
                     "weight_reduction": round(dense_weights / weights, 3),
                     "scnn_products_per_image": per_pe["scnn"], "cscnn_products_per_image": per_pe.get("cscnn"),
                     "product_reduction": round(dense_products / products, 3)})
    return rows
