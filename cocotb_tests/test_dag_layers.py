"""Every technique's blocks on the layers of residual and depthwise-separable networks (``conftest.dag_net``): grouped
convs as per-group jobs that compose the layer, convs feeding a residual Add run exactly without the mechanisms that
need their ReLU, and every job bit-exact between golden and the RTL on both simulators."""

import dataclasses

import numpy as np
import pytest

from flow.harness.activations import FcBatch, conv_inputs, fc_batch, group_convs, layer_images, layer_inputs, layer_jobs
from flow.harness.drivers.array import ArrayDriver
from flow.harness.mor_inputs import engine_inputs, layer_notes
from flow.techniques.cscnn import check_cartesian_layers
from flow.techniques.dense import check_array_layers
from flow.techniques.mor import check_mor_layers
from flow.techniques.s2ta import layer_nnz_a
from flow.techniques.snapea import check_snapea_layers
from generators.config import preset
from golden.conv import conv2d
from golden.cscnn import mirror_canonical
from models.mor import mor_forward, tables
from models.quantize import QuantizedNet

from .matrix import SIMULATORS

# the layers of the new kinds: a residual body's last conv, the 1×1 projection shortcut, depthwise, pointwise
NEW_KINDS = ("conv5", "conv6", "conv7", "conv8")


def test_grouped_conv_jobs_compose_the_layer(dag_net):
    """The per-group jobs of each conv (``group_convs``), lowered and run by the array's golden model, give the
    layer's convolution (``golden.conv.conv2d`` with ``groups``, checked against torch) when their outputs are
    stacked in filter order."""
    data, _, qnet = dag_net
    cfg = preset("sa", "default")
    acts = conv_inputs(qnet, data.x_test[:1])
    assert any(layer.groups > 1 for layer in qnet.convs)
    for layer in qnet.convs:
        x = acts[layer.name][0]
        jobs = group_convs(layer, x)
        assert len(jobs) == layer.groups
        outs = [ArrayDriver.golden(cfg, ArrayDriver.validate(cfg, {"x": xg, "w": wg, "pad": np.int64(layer.pad),
                                                                   "stride": np.int64(layer.stride)}))[0]["y"]
                for xg, wg, _ in jobs]
        want = conv2d(x, layer.w, pad=layer.pad, stride=layer.stride, groups=layer.groups)
        assert np.array_equal(np.concatenate(outs), want), layer.name


def test_mor_on_a_dag_skips_only_where_its_predictor_applies(dag_net):
    """The skipping network follows the DAG: with every predictor off (T above 1) it is the exact INT8 network; the
    tables cluster a depthwise conv's filters within their groups (each its own proxy), so it and the convs feeding an
    Add skip nothing, and their notes say why."""
    data, _, qnet = dag_net
    layer_tables = tables(qnet, layer_inputs(qnet, data.x_train[:40]))
    assert "conv5" not in layer_tables and "conv6" not in layer_tables   # no ReLU after them
    assert (layer_tables["conv7"].proxy == -1).all()
    for image in data.x_test[:3]:
        assert np.array_equal(mor_forward(qnet, layer_tables, 2.0, image)[0], qnet.forward(image)[0])
    counts = {}
    for image in data.x_test[:5]:
        for name, c in mor_forward(qnet, layer_tables, 0.6, image)[1].items():
            counts[name] = counts.get(name, 0) + c["skipped"]
    assert counts["conv7"] == 0 and counts["conv2"] > 0
    notes = layer_notes(qnet)
    assert "residual Add" in notes["conv5"] and "depthwise" in notes["conv7"] and notes["conv8"] is None


def _symmetric(qnet):
    """``qnet`` with every unit-stride conv's filters made centrosymmetric, as CSCNN's retraining leaves them."""
    return QuantizedNet(tuple(dataclasses.replace(layer, w=mirror_canonical(layer.w))
                              if layer.kind == "conv" and layer.stride == 1 else layer for layer in qnet.layers))


def _rows(block, qnet, data, sim, images, layers, batch=None):
    quiet = {"log": lambda *_: None, "batch": batch}
    if block == "sa":
        return check_array_layers(preset("sa", "default"), sim, qnet, images, layers=layers, **quiet)
    if block == "s2ta_aw":
        cfg = preset("s2ta_aw", "default")
        return check_array_layers(cfg, sim, qnet, images, nnz_a=layer_nnz_a(cfg, qnet, data.x_train[:20]),
                                  layers=layers, **quiet)
    if block == "snapea":
        return check_snapea_layers(preset("snapea", "default"), sim, qnet, images, layers=layers, **quiet)
    if block == "cscnn":
        return check_cartesian_layers(preset("cscnn", "default"), sim, _symmetric(qnet), images, layers=layers,
                                      **quiet)
    layer_tables = tables(qnet, layer_inputs(qnet, data.x_train[:40]))
    inputs = engine_inputs(qnet, layer_tables, 0.6, images, batch=batch)
    return check_mor_layers(preset("mor", "default"), sim, {name: inputs[name] for name in layers},
                            images=layer_images(qnet, images, batch), notes=layer_notes(qnet), log=quiet["log"])


@pytest.mark.parametrize("block,sim", [
    pytest.param(block, sim, id=f"{block}-{sim}",
                 # s2ta_aw's depthwise layer pads each group's one channel to 8 lanes: 17 s on Icarus (make test-all)
                 marks=[pytest.mark.slow] if (block, sim) == ("s2ta_aw", "icarus") else [])
    for block in ("sa", "s2ta_aw", "snapea", "cscnn", "mor") for sim in SIMULATORS])
def test_every_block_runs_residual_and_depthwise_layers_bit_exact(dag_net, block, sim):
    """Each technique's block runs the network's layers (Verilator: all; Icarus: the new kinds) on one test image
    bit-exact, one row per layer and image; where the mechanism needs what the layer lacks, the row says why."""
    data, _, qnet = dag_net
    layers = [layer.name for layer in qnet.computes] if sim == "verilator" else list(NEW_KINDS)
    rows = _rows(block, qnet, data, sim, data.x_test[:1], layers)
    assert [r["layer"] for r in rows] == layers
    for row in rows:
        assert row["mismatches"] == 0 and row["first_mismatch"] is None, (row["layer"], row["first_mismatch"])
        assert row["images"] == 1 and row["cycles"] == row["golden_cycles"] > 0
    why = {r["layer"]: r.get("fallback") or "" for r in rows}
    if block in ("snapea", "mor"):
        assert "residual Add" in why["conv5"] and "residual Add" in why["conv6"] and why["conv8"] == ""
    if block == "s2ta_aw":
        assert "depthwise" in why["conv7"]
    if block == "cscnn" and sim == "verilator":   # the strided 3x3 conv runs with the array's reuse off
        assert why["conv4"].startswith("no dual-weight reuse") and why["conv2"] == ""


def test_fc_batches_are_one_convolution_of_their_images_as_pixels(dag_net):
    """An fc layer's jobs (``layer_jobs``): ``size`` images a job as a 1×size plane whose 1×1 convolution is each
    image's x·wᵀ + bias (the last job the rest); ``fc_batch`` fills the last batch with the next test images."""
    data, _, qnet = dag_net
    fc = next(layer for layer in qnet.computes if layer.kind == "fc")
    acts = layer_inputs(qnet, data.x_test[:5])[fc.name]
    jobs = layer_jobs(fc, acts, 2)
    assert [x.shape for x, _, _ in jobs] == [(acts.shape[1], 1, 2)] * 2 + [(acts.shape[1], 1, 1)]
    outs = np.concatenate([conv2d(x, w, pad=0)[:, 0, :] + bias[:, None] for x, w, bias in jobs], axis=1)
    assert np.array_equal(outs.T, acts.astype(np.int64) @ fc.w.T.astype(np.int64) + fc.bias)
    assert len(fc_batch(data.x_test, 5, 8).images) == 8 and len(fc_batch(data.x_test, 16, 8).images) == 16
    assert len(fc_batch(data.x_test[:6], 5, 8).images) == 6   # no more test images than the set holds
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="an fc batch is a positive whole number of images"):
            fc_batch(data.x_test, 1, bad)


@pytest.mark.parametrize("block,sim", [(block, sim) for block in ("sa", "s2ta_aw", "snapea", "cscnn", "mor")
                                       for sim in SIMULATORS])
def test_every_block_runs_an_fc_batch_bit_exact(dag_net, block, sim):
    """Each technique's block runs the fc layer on 4 images in batches of 3 (jobs of 3 and 1) bit-exact; the row
    counts the 4 images."""
    data, _, qnet = dag_net
    fc = [layer.name for layer in qnet.computes if layer.kind == "fc"]
    rows = _rows(block, qnet, data, sim, data.x_test[:1], fc, FcBatch(3, data.x_test[:4]))
    for row in rows:
        assert row["mismatches"] == 0 and row["first_mismatch"] is None, (row["layer"], row["first_mismatch"])
        assert row["images"] == 4 and row["cycles"] == row["golden_cycles"] > 0


@pytest.mark.parametrize("block", ["scnn", "scnn_pe"])
def test_a_layer_longer_than_a_harness_job_runs_as_partial_sums_bit_exact(block, rng):
    """A dense 256-channel layer takes more op words than one harness job holds (13,329 on the scnn array, 6,405 on
    its PE): it runs as input-channel halves, each bit-exact on Verilator, whose outputs summed are the layer's
    (the golden model of the whole layer, which has no such limit), and its row says so."""
    from flow.harness.drivers import DRIVERS
    from flow.techniques import check_jobs
    from flow.techniques.cscnn import cartesian_jobs
    from golden.cartesian_array import array_conv
    from golden.cartesian_pe import pe_conv
    from models.quantize import QLayer

    cfg = preset(block, "default")
    x = rng.integers(1, 128, (256, 8, 8)).astype(np.int8)
    w = rng.integers(-127, 128, (16, 256, 3, 3)).astype(np.int8)
    bias = rng.integers(-1000, 1000, 16).astype(np.int32)
    qnet = QuantizedNet((QLayer("conv1", "conv", w, bias, pad=1, mult=1 << 30, shift=40),))
    jobs = cartesian_jobs(cfg, qnet, {"conv1": x[None]}, ["conv1"], tiling="channel")
    driver = DRIVERS[block]
    variant, batch, _ = jobs["conv1"]
    assert len(batch) == 2 and all(driver.longest_job(variant, args) <= driver.depth for args in batch)
    whole = (array_conv(cfg, x, w, bias, batch[0]["tiling"]) if block == "scnn" else pe_conv(cfg, x, w, bias))["y"]
    assert np.array_equal(sum(driver.golden(variant, args)[0]["y"].astype(np.int64) for args in batch), whole)
    [row] = check_jobs(driver, "verilator", jobs, log=lambda *_: None)
    assert row["mismatches"] == 0 and row["cycles"] == row["golden_cycles"] and row["images"] == 1
    assert "2 partial-sum runs" in row["fallback"]
