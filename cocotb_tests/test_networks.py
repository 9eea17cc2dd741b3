"""Networks as data: pooling and BatchNorm folding against torch, the generic INT8 network, deterministic training."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from flow.harness.network import count_test_images
from generators.config import preset
from golden.checks import InputError
from golden.conv import pool2d
from models import cnn
from models.datasets import TEST_IMAGES, load_digits, load_fashion_mnist, load_mnist
from models.networks import NETWORKS
from models.quantize import quantize


@pytest.mark.parametrize("kind,kernel,stride,pad", [("max", 2, 2, 0), ("max", 3, 2, 1), ("avg", 2, 2, 0),
                                                    ("avg", 3, 1, 1), ("avg", 3, 3, 0)])
def test_pool2d_matches_torch(kind, kernel, stride, pad):
    """Max pooling equals torch's; average pooling equals torch's mean (padding counted) rounded half up."""
    rng = np.random.default_rng(kernel * 10 + stride + pad)
    x = rng.integers(0, 128, (3, 9, 11)).astype(np.int8)
    t = torch.from_numpy(x.astype(np.float64))[None]
    got = pool2d(x, kind, kernel=(kernel, kernel), stride=stride, pad=pad)
    if kind == "max":
        want = nn.functional.max_pool2d(t, kernel, stride, pad)[0].numpy()
    else:
        want = np.floor(nn.functional.avg_pool2d(t, kernel, stride, pad)[0].numpy() + 0.5)
    assert got.dtype == np.int8 and np.array_equal(got, want.astype(np.int8))


def test_pool2d_refuses_negative_activations_and_unknown_kinds():
    with pytest.raises(InputError, match="post-ReLU"):
        pool2d(np.full((1, 2, 2), -1, np.int8), "max", kernel=(2, 2), stride=2)
    with pytest.raises(InputError, match="max or avg"):
        pool2d(np.zeros((1, 2, 2), np.int8), "min", kernel=(2, 2), stride=2)


def _odd_net():
    """5x5 and 3x3 convs, BatchNorm, max and average pooling, global average pooling, an FC of 40 neurons."""
    torch.manual_seed(1)
    net = cnn.Net([nn.Conv2d(1, 8, 5, padding=2), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                   nn.Conv2d(8, 12, 3, stride=1, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.AvgPool2d(2),
                   nn.Conv2d(12, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                   nn.Dropout(0.1), nn.Linear(16, 40), nn.ReLU(), nn.Linear(40, 10)])
    with torch.no_grad():  # non-trivial running statistics, so folding BatchNorm matters
        for bn in (m for m in net.layers if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    return net.eval()


def test_int8_network_follows_the_float_model_through_every_layer_kind():
    """The INT8 form of a net with BatchNorm, pooling of each kind and a 40-neuron FC: dequantized logits
    close to the float model's, and the same top-1 on most images."""
    net = _odd_net()
    data = load_digits()
    qnet = quantize(net, data.x_train[:400])
    assert [layer.kind for layer in qnet.layers] == ["conv", "maxpool", "conv", "avgpool", "conv", "avgpool",
                                                      "flatten", "fc", "fc"]
    x = data.x_test[:100]
    with torch.no_grad():
        want = net(cnn.float_images(x)).numpy()
    got = np.stack([qnet.forward(img)[0] for img in x]).astype(np.float64)
    scale = np.abs(want).max() / np.abs(got).max()
    assert np.corrcoef(want.ravel(), got.ravel() * scale)[0, 1] > 0.98
    assert (want.argmax(1) == got.argmax(1)).mean() >= 0.9


@pytest.mark.parametrize("layers,message", [
    ([nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(144, 10)], "unsupported layer Sigmoid"),
    ([nn.Conv2d(1, 4, 3, groups=1, dilation=2), nn.ReLU(), nn.Flatten(), nn.Linear(64, 10)], "dilation"),
    ([nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(144, 10)], "conv layer 1 is not followed by a ReLU"),
    ([nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(), nn.Linear(36, 10)], "ceil_mode"),
])
def test_unsupported_layers_are_refused_in_one_line(layers, message):
    with pytest.raises(ValueError, match=message):
        quantize(cnn.Net(layers), load_digits().x_train[:10])


def test_training_is_deterministic_whatever_the_thread_count():
    """The same seed gives the same weights bit for bit whether torch was set to 1 or 2 threads (LeNet-5's recipe:
    shifts, AdamW, one-cycle)."""
    data = load_digits()
    cfg = cnn.CnnConfig(epochs=1, shift=1, weight_decay=1e-2, schedule="onecycle")
    weights = []
    threads = torch.get_num_threads()
    try:
        for n in (2, 1):
            torch.set_num_threads(n)
            model = cnn.train(cfg, data)
            weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(weights[0], weights[1])


def test_the_catalog_names_each_networks_compute_layers_as_its_int8_network_does():
    """models.networks states a built-in network's layer names without torch (a sweep checks them before loading);
    they are those its INT8 network has."""
    shapes = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion": (1, 28, 28)}
    for network, (data_set, _, _) in NETWORKS.items():
        cfg = cnn.CnnConfig.of(network)
        images = np.random.default_rng(0).integers(0, 128, (4, *shapes[data_set])).astype(np.int8)
        assert [layer.name for layer in quantize(cnn.build(cfg), images).computes] == cfg.compute_layers()


def test_unknown_learning_rate_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown schedule 'cosine'; schedules are constant, onecycle"):
        cnn.train(cnn.CnnConfig(epochs=1, schedule="cosine"), load_digits())


def test_mnist_ships_inside_a_package_with_a_fixed_stratified_split():
    a, b = load_mnist(), load_mnist()
    assert a.x_train.shape == (4000, 1, 28, 28) and a.x_test.shape == (1000, 1, 28, 28)
    assert len(a.y_test) == TEST_IMAGES["mnist"] == count_test_images("lenet5")
    assert np.array_equal(a.x_test, b.x_test) and (np.bincount(a.y_test) == 100).all()
    assert a.x_train.dtype == np.int8 and a.x_train.min() == 0 and a.x_train.max() == 127


def test_fashion_mnist_loads_from_debian_with_the_standard_split(tmp_path):
    data = load_fashion_mnist()
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert len(data.y_test) == TEST_IMAGES["fashion"] == count_test_images("lenet5_fashion")
    assert (np.bincount(data.y_test) == 1000).all() and (np.bincount(data.y_train) == 6000).all()
    assert data.x_test.dtype == np.int8 and data.x_test.min() == 0 and data.x_test.max() == 127
    with pytest.raises(RuntimeError, match="Fashion-MNIST is not installed in .*apt-get install -y "
                                           "dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


@pytest.mark.parametrize("argv,message", [
    (["--network", "alexnet"],
     "zeroskip evaluate: unknown network 'alexnet'; networks are digits, lenet5, lenet5_fashion, resnet_fashion, "
     "mobilenet_fashion"),
    (["--techniques", "dense,scnn"], "zeroskip evaluate: techniques are dense, s2ta, cscnn, mor, snapea, not scnn"),
    (["--network", "lenet5", "--images", "1001"], "images must be between 1 and the 1000 test images, not 1001"),
])
def test_evaluate_refuses_bad_arguments_in_one_line_with_exit_2(argv, message, tmp_path, capsys):
    from flow.cli import main

    out = tmp_path / "out"
    assert main(["evaluate", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


class _UserCnn(nn.Module):
    """A user's CNN as people write it: BatchNorm, 5x5 and 3x3 convs, max-pooling, a 40-neuron FC."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn = nn.Conv2d(1, 8, 5, padding=2), nn.BatchNorm2d(8)
        self.c2, self.fc1, self.fc2 = nn.Conv2d(8, 12, 3, padding=1), nn.Linear(12 * 2 * 2, 40), nn.Linear(40, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.bn(self.c1(x))), 2)
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class _UserResNet(nn.Module):
    """A user's residual and depthwise-separable CNN as people write it: BatchNorm, an identity and a strided
    residual block with a 1x1 projection shortcut, a depthwise 3x3 + pointwise 1x1 block with ReLU6, global average
    pooling."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.a1, self.a2 = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.b1, self.b2 = nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.proj = nn.Conv2d(8, 16, 1, stride=2)
        self.dw, self.pw = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(self.a2(torch.relu(self.a1(x))) + x)
        x = torch.relu(self.b2(torch.relu(self.b1(x))) + self.proj(x))
        x = nn.functional.relu6(self.pw(nn.functional.relu6(self.dw(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.fixture(scope="module")
def user_resnet():
    """The user's residual/depthwise CNN trained briefly on the digits (deterministic), in eval mode."""
    data = load_digits()
    torch.manual_seed(0)
    return cnn.fit(_UserResNet(), data, epochs=10, lr=3e-3, batch=64, seed=0), data


@pytest.fixture(scope="module")
def user_cnn():
    """The user's CNN trained briefly on the digits (deterministic), in eval mode."""
    data = load_digits()
    torch.manual_seed(0)
    model = _UserCnn()
    return cnn.fit(model, data, epochs=8, lr=3e-3, batch=64, seed=0), data


def _imported_tracks_onnxruntime(net, path, data):
    """The INT8 network of ``net`` (imported from the ONNX file ``path``), after checking that the float ``net`` equals
    onnxruntime on the file over ``data``'s test images and the INT8 network's accuracy is within 2 points."""
    import onnxruntime

    x = cnn.float_images(data.x_test)
    session = onnxruntime.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    reference = np.concatenate([session.run(None, {name: x[i:i + 1].numpy()})[0] for i in range(len(x))])
    with torch.no_grad():
        np.testing.assert_allclose(net(x).numpy(), reference, rtol=1e-4, atol=1e-4)
    float_accuracy = float((reference.argmax(1) == data.y_test).mean())
    qnet = quantize(net, data.x_train)
    assert float_accuracy > 0.85 and qnet.accuracy(data.x_test, data.y_test) >= float_accuracy - 0.02
    return qnet


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_onnx_import_matches_onnxruntime_and_quantizes_within_2_points(dynamo, user_cnn, tmp_path):
    """Both exporters' graphs import to the same torch form: the imported float model equals onnxruntime on the
    file, and its INT8 form is within 2 points of the float model's accuracy."""
    import warnings

    from models.onnx_import import load_onnx

    model, data = user_cnn
    path = tmp_path / "user.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=dynamo,
                          **({"optimize": False} if dynamo else {}))
    net, shape = load_onnx(path)
    assert shape == (1, 8, 8)
    _imported_tracks_onnxruntime(net, path, data)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_onnx_import_takes_residual_adds_grouped_convs_and_relu6(dynamo, user_resnet, tmp_path):
    """Both exporters' graphs of a residual and depthwise-separable CNN import as residual blocks (the Add's two
    branches, the identity one empty), a depthwise conv and ReLU6: equal to onnxruntime on the file; its INT8 DAG
    within 2 points of the float model."""

    from models.cnn import Residual
    from models.onnx_import import load_onnx

    model, data = user_resnet
    path = tmp_path / "user.onnx"
    _export(model, path, dynamo=dynamo, **({"optimize": False} if dynamo else {}))
    net, _ = load_onnx(path)
    blocks = [m for m in net.layers if isinstance(m, Residual)]
    assert [(len(b.body), len(b.shortcut)) for b in blocks] == [(3, 0), (3, 1)]
    assert [m.groups for m in net.convs] == [1, 1, 1, 1, 1, 1, 16, 1]
    assert sum(isinstance(m, nn.ReLU6) for m in net.layers) == 2
    assert [layer.kind for layer in _imported_tracks_onnxruntime(net, path, data).layers].count("add") == 2


class _Branches(nn.Module):
    """Two branches of one input joined by ``join`` (a Concat, or an Add of mismatched widths)."""

    def __init__(self, join):
        super().__init__()
        self.a, self.b, self.join = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 2, 3, padding=1), join

    def forward(self, x):
        return torch.flatten(self.join(torch.relu(self.a(x)), torch.relu(self.b(x))), 1)


@pytest.mark.parametrize("module, message", [
    (_Branches(lambda a, b: torch.cat([a, b], 1)), "Concat on the activations at node"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Hardtanh(0, 1), nn.Flatten()), "Clip to [0.0, 1.0] at node"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid(), nn.Flatten()), "unsupported op Sigmoid at node"),
])
def test_onnx_import_refuses_other_joins_and_ranges_naming_the_node(module, message, tmp_path):
    from models.onnx_import import load_onnx

    path = tmp_path / "m.onnx"
    _export(module, path)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_onnx(path)


def test_onnx_import_refuses_an_unsupported_op_naming_it_and_its_node(tmp_path):
    import warnings

    from models.onnx_import import load_onnx

    class Sig(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 4, 3)

        def forward(self, x):
            return torch.sigmoid(self.c(x)).flatten(1)

    path = tmp_path / "sig.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Sig().eval(), (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False)
    with pytest.raises(ValueError, match=r"unsupported op Sigmoid at node '/Sigmoid'"):
        load_onnx(path)
    (tmp_path / "junk.onnx").write_text("not a model")
    with pytest.raises(ValueError, match="is not a valid ONNX model"):
        load_onnx(tmp_path / "junk.onnx")


@pytest.mark.parametrize("x_min", [0, -128])
def test_a_raised_bias_gives_a_layer_without_relu_in_one_pass(x_min):
    """A block with post-ReLU outputs computes a no-ReLU layer in one pass with each filter's bias raised by k: for
    any input in x_min..127 (the extremes and random ones) relu(w·x + bias + k) − k = w·x + bias; a ReLU layer
    keeps its bias; a bias that would leave int32 is refused."""
    from flow.harness.activations import raised_bias
    from models.quantize import QLayer

    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (10, 30)).astype(np.int8)
    w[0] = -127   # a filter of negative weights only, one of positive only
    w[1] = 127
    bias = rng.integers(-5000, 5000, 10).astype(np.int32)
    raised, k = raised_bias(QLayer("fc", "fc", w, bias, relu=False), w, bias, x_min=x_min)
    assert raised.dtype == np.int32 and (k >= 0).all() and k[0] > 0 and k[1] == max(0, -bias[1] - 127 * 30 * x_min)
    xs = [np.full(30, x_min), np.full(30, 127), np.where(w[2] < 0, 127, x_min),
          *rng.integers(x_min, 128, (50, 30))]
    for x in xs:
        z = w.astype(np.int64) @ np.asarray(x, np.int64) + bias
        assert np.array_equal(np.maximum(z + k, 0) - k, z)
    same, zero = raised_bias(QLayer("fc", "fc", w, bias, relu=True), w, bias)
    assert np.array_equal(same, bias) and not zero.any()
    big = np.full((1, 140_000), -127, np.int8)
    with pytest.raises(ValueError, match="leaves int32"):
        raised_bias(QLayer("fc", "fc", big, np.zeros(1, np.int32), relu=False), big, np.zeros(1, np.int32),
                    x_min=-128)


def _evaluate_user_onnx(user_cnn, tmp_path, techniques, *options, dynamo=True,
                        layers=("conv1", "conv2", "fc1", "fc2"), inputs=lambda x: x):
    """``zeroskip evaluate`` of the user's CNN (a (model, data) fixture) exported by torch's ``dynamo`` exporter (or
    the legacy one), with its data (float images 0..1 through ``inputs``, e.g. a normalisation): every technique's
    ``layers`` bit-exact on RTL; the summary."""
    import json
    import warnings

    import onnxruntime

    from flow.cli import main

    model, data = user_cnn
    path = tmp_path / "user.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=dynamo,
                          **({"optimize": False} if dynamo else {}))
    x = inputs(cnn.float_images(data.x_test).numpy())
    np.savez(tmp_path / "data.npz", x=x, y=data.y_test, x_train=inputs(cnn.float_images(data.x_train).numpy()),
             y_train=data.y_train)
    out = tmp_path / "out"
    assert main(["evaluate", "--model", str(path), "--data", str(tmp_path / "data.npz"), "--images", "1",
                 "--no-synth", "--techniques", ",".join(techniques), "--out", str(out), *options]) == 0
    summary = json.loads((out / "summary.json").read_text())
    session = onnxruntime.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    onnx_accuracy = float(np.mean([session.run(None, {name: x[i:i + 1]})[0].argmax() == data.y_test[i]
                                   for i in range(len(x))]))
    assert summary["bit_exact"] and summary["dense"]["accuracy"] >= onnx_accuracy - 0.02
    for technique in ("dense", *techniques):
        t = summary[technique]
        assert t["rtl_bit_exact"] and [r["layer"] for r in t["layers"]] == list(layers)
        assert 0 < t["accuracy"] <= 1
    return summary


@pytest.mark.xdist_group("onnx")
def test_evaluate_runs_a_users_onnx_cnn_bit_exact_on_the_mor_engine(user_cnn, tmp_path):
    """The user's CNN (BatchNorm, 5x5 and 3x3 convs, max-pooling, a 40-neuron FC) from ONNX: every conv and fc
    layer bit-exact on the dense arrays and the MoR engine (the 40-neuron layer in pieces of whole clusters of
    at most 32), INT8 accuracy within 2 points of the float model (onnxruntime)."""
    summary = _evaluate_user_onnx(user_cnn, tmp_path, ["mor"], "--rtl-comparisons")
    assert summary["mor"]["layers"][-1]["fallback"].startswith("no predictor")
    # the comparison (the same engine without its predictor) ran on the RTL too
    assert any("no predictor" in check for check in summary["mor"]["rtl_checks"])
    assert summary["mor"]["golden_comparisons"] == [] and summary["rtl_comparisons"] is True


@pytest.mark.slow
def test_evaluate_runs_a_users_onnx_cnn_bit_exact_on_every_technique(user_cnn, tmp_path):
    """The same on all five techniques (5x5 Cartesian-PE variants, SnaPEA's two-pass classifier); make test-all."""
    summary = _evaluate_user_onnx(user_cnn, tmp_path, ["s2ta", "cscnn", "mor", "snapea"])
    assert summary["cscnn"]["layers"][0]["preset"] == "cscnn_pe_default_5x5"
    assert summary["snapea"]["layers"][-1]["fallback"].startswith("no ReLU")


def _normalised(user_cnn):
    """The user's CNN for inputs normalised to -1..1 (torch's Normalize(0.5, 0.5)): its first conv's weights halved
    and bias shifted to match (conv(x, w) + b = conv(2x - 1, w / 2) + b + sum(w) / 2 away from the padding)."""
    import copy

    model, data = user_cnn
    normalised = copy.deepcopy(model)
    with torch.no_grad():
        normalised.c1.bias += normalised.c1.weight.sum(dim=(1, 2, 3)) / 2
        normalised.c1.weight /= 2
    return normalised, data


def test_a_signed_input_runs_on_snapea_as_non_negative_channels_bit_exact(user_cnn, tmp_path):
    """Inputs normalised to -1..1 import as signed INT8 (-127..127); SnaPEA's PEs, whose early termination needs
    x >= 0, run the first layer as the input's positive and negative parts in 2C non-negative channels (weights w,
    -w) bit-exact on Verilator, every other layer as it is, and the row says so."""
    from flow.harness.network import load_onnx_network
    from flow.techniques.snapea import check_snapea_layers

    model, data = _normalised(user_cnn)
    _export(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "data.npz", x=2 * cnn.float_images(data.x_test[:20]).numpy() - 1)
    net = load_onnx_network(tmp_path / "m.onnx", tmp_path / "data.npz", log=lambda *_: None)
    assert net.meta["signed_input"] and net.data.x_test.min() == -127
    rows = check_snapea_layers(preset("snapea", "default"), "verilator", net.qnet, net.data.x_test[:1],
                               log=lambda *_: None)
    assert all(r["mismatches"] == 0 and r["cycles"] == r["golden_cycles"] for r in rows)
    assert rows[0]["fallback"].startswith("signed input") and rows[1]["fallback"] is None


@pytest.mark.slow
def test_evaluate_takes_a_signed_input_bit_exact_on_every_technique(user_cnn, tmp_path):
    """The normalised CNN through ``zeroskip evaluate``: every layer bit-exact on every technique's RTL, SnaPEA's
    first layer as non-negative channels (make test-all)."""
    summary = _evaluate_user_onnx(_normalised(user_cnn), tmp_path, ["s2ta", "cscnn", "mor", "snapea"],
                                  inputs=lambda x: 2 * x - 1)
    assert summary["network"]["signed_input"] is True
    rows = summary["snapea"]["layers"]
    assert rows[0]["fallback"].startswith("signed input") and not (rows[1].get("fallback") or "").startswith("signed")


RESNET_LAYERS = tuple(f"conv{i}" for i in range(1, 9)) + ("fc1",)


@pytest.mark.xdist_group("onnx")
@pytest.mark.parametrize("dynamo", [pytest.param(False, marks=pytest.mark.slow), True], ids=["legacy", "dynamo"])
def test_evaluate_runs_a_users_residual_depthwise_onnx_cnn_bit_exact(dynamo, user_resnet, tmp_path):
    """The user's residual and depthwise-separable CNN from either exporter (both import alike: the import test above;
    the legacy one's evaluation in make test-all): every conv (the depthwise one in per-group jobs) and fc layer
    bit-exact on the dense array and the S2TA array, whose activation DBB is off on the depthwise layer and says
    so."""
    summary = _evaluate_user_onnx(user_resnet, tmp_path, ["s2ta"], dynamo=dynamo, layers=RESNET_LAYERS)
    rows = {r["layer"]: r for r in summary["s2ta"]["layers"]}
    assert "depthwise" in rows["conv7"]["fallback"]
    # the per-kind summary: each layer's kind, figures summed over its kind against dense at equal MACs
    roles = {r["layer"]: r["role"] for r in rows.values()}
    assert roles == {"conv1": "conv", "conv2": "conv", "conv3": "residual conv", "conv4": "conv",
                     "conv5": "residual conv", "conv6": "residual conv", "conv7": "depthwise", "conv8": "pointwise",
                     "fc1": "fc"}
    depthwise = summary["s2ta"]["by_role"]["depthwise"]
    assert depthwise["layers"] == ["conv7"] and depthwise["cycles"] == rows["conv7"]["cycles"]
    assert depthwise["speedup_vs_dense"] == rows["conv7"]["dense_cycles"] / rows["conv7"]["cycles"]
    assert summary["winners_by_role"]["depthwise"] == {"fastest": "s2ta", "least_energy": "s2ta"}
    assert "## By kind of layer" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.slow
def test_evaluate_runs_a_users_residual_depthwise_onnx_cnn_bit_exact_on_every_technique(user_resnet, tmp_path):
    """The same on all five techniques; the convs feeding an Add run with raised biases on SnaPEA and MoR; make
    test-all."""
    summary = _evaluate_user_onnx(user_resnet, tmp_path, ["s2ta", "cscnn", "mor", "snapea"], layers=RESNET_LAYERS)
    for technique in ("snapea", "mor"):
        assert "residual Add" in {r["layer"]: r for r in summary[technique]["layers"]}["conv5"]["fallback"]


def test_evaluate_refuses_an_onnx_model_with_an_unsupported_op(tmp_path, capsys):
    import warnings

    from flow.cli import main

    path = tmp_path / "tanh.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(72, 10)).eval(),
                          (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False)
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 1, 8, 8), np.float32))
    out = tmp_path / "out"
    assert main(["evaluate", "--model", str(path), "--data", str(tmp_path / "data.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unsupported op Tanh at node" in err[0] and not out.exists()


def test_the_key_of_an_onnx_model_covers_its_external_weights(tmp_path):
    """Two exports of one architecture that differ only in the weights kept beside the model (``m.onnx.data``, as
    torch's exporter writes them): the .onnx files are identical, the keys and the imported networks are not."""
    import onnx

    from flow.harness.network import load_onnx_network, onnx_key

    np.savez(tmp_path / "data.npz", x=np.random.default_rng(0).random((8, 1, 8, 8), np.float32))
    nets, keys = [], []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = tmp_path / f"export{seed}"
        folder.mkdir()
        _export(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 10)), folder / "m.onnx")
        model = onnx.load(str(folder / "m.onnx"))
        onnx.save_model(model, str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="m.onnx.data", size_threshold=0)
        keys.append(onnx_key(folder / "m.onnx", tmp_path / "data.npz"))
        nets.append(load_onnx_network(folder / "m.onnx", tmp_path / "data.npz", log=lambda *_: None))
    assert (tmp_path / "export0" / "m.onnx").read_bytes() == (tmp_path / "export1" / "m.onnx").read_bytes()
    assert keys[0] != keys[1] and nets[0].key == keys[0] and nets[1].key == keys[1]
    assert not np.array_equal(nets[0].qnet.convs[0].w, nets[1].qnet.convs[0].w)
    (tmp_path / "export1" / "m.onnx.data").unlink()
    with pytest.raises(InputError, match="m.onnx.data does not exist"):
        onnx_key(tmp_path / "export1" / "m.onnx", tmp_path / "data.npz")


def _export(model, path, **kwargs):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 1, 8, 8),), str(path), **{"dynamo": False, **kwargs})


class _Mean(nn.Module):
    def __init__(self, dims, keepdim):
        super().__init__()
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        return x.mean(self.dims, keepdim=self.keepdim)


def test_reduce_mean_over_the_plane_imports_as_global_average_pooling_and_other_forms_are_refused(tmp_path):
    """torch's default exporter writes AdaptiveAvgPool2d(1) as ReduceMean over H, W with keepdims: imported as
    global average pooling (equal to onnxruntime); a mean over the channels, or without keepdims, is refused."""
    import onnx
    import onnxruntime

    from models.onnx_import import load_onnx

    torch.manual_seed(0)
    head = [nn.Conv2d(1, 4, 3), nn.ReLU()]
    x = torch.rand(3, 1, 8, 8)
    for options in ({}, {"optimize": False}):  # the default export, and unoptimised (its axes a Reshape of constants)
        path = tmp_path / "gap.onnx"
        _export(nn.Sequential(*head, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)), path, dynamo=True,
                **options)
        assert "ReduceMean" in {node.op_type for node in onnx.load(str(path)).graph.node}
        net, _ = load_onnx(path)
        session = onnxruntime.InferenceSession(str(path))
        name = session.get_inputs()[0].name
        reference = np.concatenate([session.run(None, {name: x[i:i + 1].numpy()})[0] for i in range(3)])
        with torch.no_grad():
            np.testing.assert_allclose(net(x).numpy(), reference, rtol=1e-5, atol=1e-5)
    for mean, message in (((1,), True), "ReduceMean over axes [1] with keepdims=1"), \
                         (((2, 3), False), "ReduceMean over axes [2, 3] with keepdims=0"):
        path = tmp_path / "mean.onnx"
        _export(nn.Sequential(*head, _Mean(*mean), nn.Flatten(), nn.Linear(36 if mean[0] == (1,) else 4, 10)), path,
                dynamo=True, optimize=False)
        with pytest.raises(ValueError, match=re.escape(message)):
            load_onnx(path)


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.full((4, 1, 8, 8), np.nan, np.float32)}, "x must be finite"),
    ({"x": np.zeros((4, 1, 8, 8))}, "x must be float32 [N, 1, 8, 8] as the model takes it, not float64"),
    ({"x": np.zeros((4, 1, 8, 8), np.float32), "y": np.array([0, 1, 2, 10])},
     "y must be class indices 0..9 (the model has 10 outputs), not 0..10"),
    ({"x": np.zeros((4, 1, 8, 8), np.float32), "y": np.zeros(4, np.int32)}, "y must be int64 [4] class indices"),
    ({"x": np.zeros((4, 1, 8, 8), np.float32), "x_train": np.zeros((4, 1, 8, 8), np.float32)},
     "must hold both x_train and y_train, or neither"),
])
def test_evaluate_refuses_bad_data_in_one_line(tmp_path, capsys, arrays, message):
    import warnings

    from flow.cli import main

    path = tmp_path / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 10)).eval(),
                          (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False)
    np.savez(tmp_path / "data.npz", **arrays)
    out = tmp_path / "out"
    assert main(["evaluate", "--model", str(path), "--data", str(tmp_path / "data.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


@pytest.mark.slow
@pytest.mark.xdist_group("training")
def test_evaluate_lenet5_on_mnist_every_layer_bit_exact(tmp_path):
    """LeNet-5 on the held-out MNIST images: every conv and fc layer of two images bit-exact on all five
    techniques' RTL (5x5 Cartesian PEs, MoR's 120-neuron layer in pieces, SnaPEA's 28x28 input), every
    technique's accuracy within 2 points of the INT8 network's (make test-all: it trains LeNet-5 and builds the
    per-layer variants)."""
    import json

    from flow.cli import main

    out = tmp_path / "lenet5"
    assert main(["evaluate", "--network", "lenet5", "--images", "2", "--no-synth", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"]
    for technique in ("dense", "s2ta", "cscnn", "mor", "snapea"):
        t = summary[technique]
        assert [r["layer"] for r in t["layers"]] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
        assert t["rtl_bit_exact"] and t["accuracy"] >= summary["dense"]["accuracy"] - 0.02, technique


@pytest.mark.slow
def test_lenet5_int8_accuracy_reaches_88_percent_on_the_10000_fashion_mnist_test_images():
    """Its recipe was chosen on a validation split of the training images (flow.bench.recipes); the shipped
    checkpoint is measured on the standard test set only (13 s: `make test-all`)."""
    from flow.harness.network import load_network

    net = load_network("lenet5_fashion", log=lambda *_: None)
    assert net.reused and len(net.data.y_test) == 10000
    assert net.int8_accuracy >= 0.88 and abs(net.int8_accuracy - net.float_accuracy) <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("network,aim", [("resnet_fashion", 0.90), ("mobilenet_fashion", 0.88)])
def test_residual_and_depthwise_networks_reach_their_aims_on_the_10000_fashion_mnist_test_images(network, aim):
    """The shipped checkpoints (trained, not re-trained here), quantized to their integer DAGs (residual Adds,
    depthwise convs), measured on the standard test set only (about 30 s each: `make test-all`). Per-tensor weights
    cost the depthwise network 1.4 points (92.20% float, 90.77% INT8); per-filter scales on its depthwise convs,
    0.2 (92.00%)."""
    from flow.harness.network import load_network

    net = load_network(network, log=lambda *_: None)
    assert net.reused and len(net.data.y_test) == 10000
    assert net.int8_accuracy >= aim and abs(net.int8_accuracy - net.float_accuracy) <= 0.01


@pytest.mark.xdist_group("training")
def test_lenet5_int8_accuracy_reaches_97_percent_on_held_out_mnist():
    """The recipe was chosen on a validation split of the training images (models/networks.py NETWORKS); the 1,000
    held-out test images are only measured."""
    from flow.harness.network import load_network

    net = load_network("lenet5", log=lambda *_: None)
    assert net.int8_accuracy >= 0.97 and abs(net.int8_accuracy - net.float_accuracy) <= 0.01
