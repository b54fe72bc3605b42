"""Regression networks (paper Methods, Fig. 4; DESIGN §5): shapes, MRDN structure, CARN pieces, CARN loss."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from vcmeasure.errors import ConfigError  # noqa: E402
from vcmeasure.models.regression import (  # noqa: E402
    MODELS,
    ManifoldRegularizedMSE,
    build_regression_model,
    n_poolings,
)


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_destandardisation(name):
    model = build_regression_model(name, 32, filters=4, target_mean=7.0, target_std=3.0)
    assert model.input_shape == (None, 32, 32, 1)
    x = np.random.default_rng(0).random((3, 32, 32, 1), dtype=np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == (3, 1) and np.all(np.isfinite(y))
    head, last = model.get_layer("regression_head"), model.layers[-1]
    assert head.units == 1 and head.get_config()["activation"] == "linear"
    # the output is the linear unit mapped back to VC percent: y = 3 z + 7
    z = keras.Model(model.input, head.output).predict(x, verbose=0)
    np.testing.assert_allclose(y, 3.0 * z + 7.0, rtol=1e-5, atol=1e-5)
    assert last.name == "to_vc"


def _convs(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def test_mrdn_structure():
    model = build_regression_model("mrdn", 128, filters=4)
    convs = _convs(model)
    stem = [c for c in convs if c.name.startswith("stem")]
    assert len(stem) == 6 and all(c.kernel_size == (3, 3) and c.strides == (1, 1) for c in stem)
    pools = [la for la in model.layers if isinstance(la, keras.layers.MaxPooling2D)]
    assert len(pools) == 6 and all(p.pool_size == (2, 2) for p in pools)
    rates = {c.dilation_rate[0] for c in convs if c.kernel_size == (3, 3)}
    assert {2, 4, 8, 16} <= rates
    bottlenecks = [c for c in convs if c.kernel_size == (1, 1) and "bottleneck" in c.name]
    assert len(bottlenecks) == 2 and all(c.filters == 2 for c in bottlenecks)  # 1x1, half the width
    adds = [la for la in model.layers if isinstance(la, keras.layers.Add)]
    concats = [la for la in model.layers if isinstance(la, keras.layers.Concatenate)]
    assert adds and concats
    # each concatenation joins the four dilated branches and the plain Conv3x3
    assert all(len(c.input) == 5 for c in concats)
    gap = model.get_layer("gap")
    assert isinstance(gap, keras.layers.GlobalAveragePooling2D)
    assert gap.input.shape[1:3] == (2, 2)  # six poolings: 128 -> 2x2 as in the paper
    # residual add closes the block right before GAP (through the block's ReLU)
    assert isinstance(model.layers[model.layers.index(gap) - 2], keras.layers.Add)


def test_small_inputs_use_fewer_poolings():
    assert [n_poolings(s) for s in (128, 64, 48, 32, 16, 1)] == [6, 6, 5, 5, 4, 0]
    model = build_regression_model("mrdn", 32, filters=2)
    assert model.get_layer("gap").input.shape[1:3] == (1, 1)
    assert len([c for c in _convs(model) if c.name.startswith("stem")]) == 6  # still six conv blocks


def test_carn_amplifier_units_gate_adjacent_layers():
    model = build_regression_model("carn", 32, filters=4)
    gates = [c for c in _convs(model) if c.name.endswith("_gate")]
    assert len(gates) == 8 and all(g.get_config()["activation"] == "sigmoid" for g in gates)
    for g in gates:
        unit = g.name[: -len("_gate")]
        assert isinstance(model.get_layer(f"{unit}_amplify"), keras.layers.Multiply)
        assert len(model.get_layer(f"{unit}_adjacent").input) == 2


def _manifold_numpy(y, p, weight, sigma):
    w = np.exp(-((y[:, None] - y[None, :]) ** 2) / (2 * sigma**2))
    term = (w * (p[:, None] - p[None, :]) ** 2).sum(1) / w.sum(1)
    return float(np.mean((p - y) ** 2 + weight * term))


def test_manifold_loss_matches_definition_and_penalises_neighbour_spread():
    y = np.array([10.0, 10.5, 40.0, -3.0])
    p = np.array([12.0, 8.0, 35.0, -1.0])
    loss = ManifoldRegularizedMSE(weight=0.3, sigma=2.0)
    got = float(loss(y[:, None], p[:, None]))
    assert got == pytest.approx(_manifold_numpy(y, p, 0.3, 2.0), rel=1e-5)
    mse = float(np.mean((p - y) ** 2))
    assert got > mse  # neighbours 10 and 10.5 predicted 4 points apart
    assert float(ManifoldRegularizedMSE(weight=0.0)(y[:, None], p[:, None])) == pytest.approx(mse, rel=1e-6)
    # labels far apart (>> sigma) do not couple their predictions
    far = np.array([0.0, 50.0])
    assert float(loss(far[:, None], np.array([[5.0], [40.0]]))) == pytest.approx((25 + 100) / 2, rel=1e-4)


def test_carn_round_trips_with_its_loss(tmp_path):
    model = build_regression_model("carn", 32, filters=2)
    model.compile(optimizer="adam", loss=ManifoldRegularizedMSE(weight=0.2, sigma=3.0))
    model.save(tmp_path / "carn.keras")
    back = keras.models.load_model(tmp_path / "carn.keras")
    assert back.loss.weight == 0.2 and back.loss.sigma == 3.0
    x = np.ones((1, 32, 32, 1), np.float32)
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_bad_names_and_sizes():
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        build_regression_model("vgg", 32)
    with pytest.raises(ConfigError, match="at least 32 px"):
        build_regression_model("resnet50", 16)
