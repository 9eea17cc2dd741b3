"""The digits CNN trained for S2TA (Table 3 style): dense, W-DBB, A-DBB and A/W-DBB, INT8, with accuracies."""

import time
from dataclasses import dataclass

from tqdm import tqdm

from generators.config import default_preset
from golden.dbb import dbb_bound_ok, filter_blocks
from models import cnn
from models.dbb_training import DbbConfig, choose_nnz_a, load_or_fine_tune
from models.quantize import QuantizedNet, quantize

from .network import CACHE, conv_inputs

__all__ = ["S2taModel", "s2ta_models"]

CALIBRATION_IMAGES = 200  # training images whose activations set each layer's nnz_a


@dataclass(frozen=True)
class S2taModel:
    name: str
    qnet: QuantizedNet
    nnz_a: dict | None  # conv layer name -> nnz_a (DAP in front of it), None for dense activations
    nnz_w: int | None
    accuracy: float
    reused: bool


def s2ta_models(net, *, log=print):
    """{"dense", "w_dbb", "a_dbb", "aw_dbb"}: each fine-tuned from ``net``'s model (cached), quantized, evaluated.

    nnz_w is the s2ta_aw default preset's b (4/8); nnz_a per layer comes from the mean
    non-zeros per block of the dense INT8 network's real activations on training images.
    """
    cfg = default_preset("s2ta_aw")
    base, _ = cnn.load_or_train(net.cnn, net.data, CACHE)
    acts = conv_inputs(net.qnet, net.data.x_train[:CALIBRATION_IMAGES])
    nnz_a = choose_nnz_a(acts, cfg.bz, cfg.nnz_max)
    log(f"S2TA models: nnz_a from measured activation density {nnz_a}, nnz_w {cfg.b}/{cfg.bz}")
    models = {"dense": S2taModel("dense", net.qnet, None, None, net.int8_accuracy, True)}
    for name, dbb in [("w_dbb", DbbConfig(nnz_w=cfg.b, bz=cfg.bz)),
                      ("a_dbb", DbbConfig(nnz_w=None, nnz_a=tuple(nnz_a.values()), bz=cfg.bz)),
                      ("aw_dbb", DbbConfig(nnz_w=cfg.b, nnz_a=tuple(nnz_a.values()), bz=cfg.bz))]:
        start = time.perf_counter()
        model, reused = load_or_fine_tune(base, net.cnn.key(), net.data, dbb, CACHE,
                                          progress=lambda it, n=name: tqdm(it, desc=f"fine-tune {n}", leave=False))
        qnet = quantize(model, net.data.x_train)
        layer_nnz = nnz_a if dbb.nnz_a is not None else None
        if dbb.nnz_w is not None:
            for layer in qnet.convs[1:]:
                assert dbb_bound_ok(filter_blocks(layer.w, cfg.bz), dbb.nnz_w).all(), f"{layer.name} breaks W-DBB"
        accuracy = qnet.accuracy(net.data.x_test, net.data.y_test, nnz_a=layer_nnz)
        models[name] = S2taModel(name, qnet, layer_nnz, dbb.nnz_w, accuracy, reused)
        log(f"  {name}: {'reused' if reused else 'fine-tuned'} in {time.perf_counter() - start:.1f} s, "
            f"INT8 test accuracy {accuracy:.2%}")
    return models
