"""The digits CNN: data set, training, INT8 export through golden's integer rules."""

import numpy as np
import pytest
import torch

from flow.harness.activations import conv_inputs
from flow.harness.network import count_test_images, load_network
from models import cnn, datasets
from models.quantize import multiplier

# One worker's, scheduled early (conftest.GROUP_ORDER)
pytestmark = pytest.mark.xdist_group("training")


def test_dataset_split_is_fixed_and_quantized():
    a, b = datasets.load_digits(), datasets.load_digits()
    assert (a.x_test == b.x_test).all() and len(a.y_train) + len(a.y_test) == 1797
    assert len(a.y_test) == datasets.TEST_IMAGES["digits"] == count_test_images("digits")
    assert a.x_train.dtype == np.int8 and a.x_train.min() == 0 and a.x_train.max() == 127


def test_trained_network_float_and_int8_accuracy():
    net = load_network(log=lambda *_: None)
    assert net.float_accuracy >= 0.95 and net.int8_accuracy >= 0.95
    for layer in net.qnet.computes:
        assert layer.w.dtype == np.int8 and np.abs(layer.w).max() <= 127 and layer.bias.dtype == np.int32
    acts = conv_inputs(net.qnet, net.data.x_test[:3])
    assert [a.shape[1] for a in acts.values()] == [1, 16, 32]
    assert all(a.dtype == np.int8 and a.min() >= 0 for a in acts.values())


def test_int8_network_tracks_float_network():
    """The integer-only forward pass agrees with the float model on most test images."""
    net = load_network(log=lambda *_: None)
    model_pred = net.qnet.predict(net.data.x_test[:100])
    model = net.model
    with torch.no_grad():
        ref = model(torch.from_numpy(net.data.x_test[:100].astype(np.float32) / 127)).argmax(1).numpy()
    assert (model_pred == ref).mean() >= 0.97


def test_multiplier_is_accurate():
    for scale in [1e-6, 0.0123, 0.5, 0.999]:
        mult, shift = multiplier(scale)
        assert 2**30 <= mult < 2**31 and 1 <= shift <= 62
        assert abs(mult / 2**shift - scale) / scale < 1e-9


def test_topk_mask_torch_equals_golden(rng):
    from golden.dbb import topk_mask
    from models.dbb_training import topk_mask_torch

    blocks = np.concatenate([rng.integers(-128, 128, (300, 8)), rng.integers(-2, 3, (300, 8))]).astype(np.int8)
    for nnz in range(0, 9):
        ours = topk_mask_torch(torch.from_numpy(blocks.astype(np.float32)), nnz).numpy()
        assert np.array_equal(ours, topk_mask(blocks, nnz)), f"nnz={nnz}"


def test_s2ta_fine_tuning_meets_the_bounds_within_a_point_of_dense():
    """S2TA Table 3 on the digits CNN: W-DBB 4/8 (every conv after the first and the fc layer, blocked as the array
    blocks them) and DAP per layer, INT8, within 1 point of dense."""
    from flow.techniques.s2ta import s2ta_models
    from golden.dbb import filter_blocks
    from golden.systolic import weight_blocks

    net = load_network(log=lambda *_: None)
    models = s2ta_models(net, log=lambda *_: None)
    dense = models["dense"].accuracy
    for name in ("w_dbb", "a_dbb", "aw_dbb"):
        assert models[name].accuracy >= dense - 0.01, f"{name}: {models[name].accuracy:.2%} vs dense {dense:.2%}"
    aw = models["aw_dbb"]
    assert set(aw.nnz_a) == {layer.name for layer in aw.qnet.convs}
    for layer in aw.qnet.convs[1:]:
        assert (np.count_nonzero(filter_blocks(layer.w, 8), axis=1) <= 4).all()
    fcs = [layer for layer in aw.qnet.computes if layer.kind == "fc"]
    assert fcs and all((np.count_nonzero(weight_blocks(layer.w.T, 8), axis=1) <= 4).all() for layer in fcs)


def test_global_pruning_removes_the_smallest_weights_across_layers():
    """Exactly the target fraction of all conv weights is removed, and every kept weight is at least as
    large as every removed one, whichever layer it is in."""
    from models.pruning import global_magnitude_masks

    torch.manual_seed(0)
    model = cnn.build(cnn.CnnConfig())
    total = sum(conv.weight.numel() for conv in model.convs)
    for sparsity in (0.0, 0.25, 0.5, 0.75):
        masks = global_magnitude_masks(model, sparsity)
        removed = torch.cat([conv.weight.detach().abs()[m == 0] for conv, m in zip(model.convs, masks)])
        kept = torch.cat([conv.weight.detach().abs()[m == 1] for conv, m in zip(model.convs, masks)])
        assert len(removed) == round(sparsity * total)
        assert not len(removed) or removed.max() <= kept.min()


def test_pruned_models_hold_their_sparsity_and_accuracy():
    """The report's four settings: zero INT8 conv weights at least the target, within a point of dense."""
    from flow.techniques.snapea import pruned_models

    net = load_network()
    for sparsity, model in pruned_models(net).items():
        assert model.zero_weights >= sparsity
        assert model.accuracy >= net.int8_accuracy - 0.01


def test_residual_and_depthwise_blocks_quantize_to_an_integer_dag_that_tracks_the_float_network(dag_net):
    """A small network with an identity and a projection residual block and a depthwise-separable block (ReLU6),
    trained on the digits (``conftest.dag_net``): its INT8 network is a DAG (each Add names its branches; the
    projection shortcut takes the block's input), runs grouped convs, and agrees with the float network on the test
    images."""
    from models.cnn import Residual

    data, model, qnet = dag_net
    assert sum(isinstance(m, Residual) for m in model.layers) == 2
    kinds = [(layer.name, layer.kind, layer.inputs) for layer in qnet.layers if layer.kind == "add" or layer.inputs]
    # block 1: conv2, conv3 (body) + identity; block 2: conv4, conv5 (body), conv6 (projection of add1's output)
    assert kinds == [("add1", "add", ("conv3", "conv1")), ("conv6", "conv", ("add1",)),
                     ("add2", "add", ("conv5", "conv6"))]
    assert [layer.relu for layer in qnet.computes][:6] == [True, True, False, True, False, False]
    assert [layer.groups for layer in qnet.convs][-2:] == [16, 1] and qnet.convs[-2].w.shape == (16, 1, 3, 3)
    depthwise = qnet.convs[-2]   # per-filter weight scales: each filter spans ±127, each channel its (mult, shift)
    assert (np.abs(depthwise.w).reshape(16, -1).max(axis=1) == 127).all() and depthwise.mult.shape == (16,)
    with torch.no_grad():
        ref = model(torch.from_numpy(data.x_test.astype(np.float32) / 127)).argmax(1).numpy()
    float_accuracy = float((ref == data.y_test).mean())
    assert float_accuracy > 0.9
    assert (qnet.predict(data.x_test) == ref).mean() >= 0.95
    assert abs(qnet.accuracy(data.x_test, data.y_test) - float_accuracy) <= 0.02
