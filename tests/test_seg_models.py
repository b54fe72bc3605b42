"""Segmentation networks: shapes, parameter counts from the architecture, loss/metric, save/load."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from vcmeasure.models.segmentation import (  # noqa: E402
    ARCHITECTURES,
    RECURRENT_STEPS,
    bce_dice_loss,
    build_segmentation_model,
    compile_segmentation_model,
    dice,
)

# ---- hand-derived parameter counts (all weights, BN moving stats included: 4 per channel) ----
# conv3x3 without bias (BN follows): 9*cin*cout; BN: 4*cout; 1x1 conv with bias: cin*cout + cout;
# 2x2 up-conv with bias: 4*cin*cout + cout; head 1x1 -> 1 channel: f + 1.


def conv_bn(cin, cout):
    return 9 * cin * cout + 4 * cout


def block_params(arch, cin, cout):
    if arch == "unet":
        return conv_bn(cin, cout) + conv_bn(cout, cout)
    if arch == "resunet":
        return conv_bn(cin, cout) + conv_bn(cout, cout) + (cin * cout + cout)
    # r2unet: 1x1 in, two RCLs, each ONE shared 3x3 kernel and a BN per step (t + 1 steps)
    rcl = 9 * cout * cout + (RECURRENT_STEPS + 1) * 4 * cout
    return (cin * cout + cout) + 2 * rcl


def expected_params(arch, f, depth):
    total, cin = 0, 1
    for level in range(depth):
        total += block_params(arch, cin, f * 2**level)
        cin = f * 2**level
    total += block_params(arch, cin, f * 2**depth)
    for level in reversed(range(depth)):
        c = f * 2**level
        total += 4 * (2 * c) * c + c  # up-conv from 2c channels
        total += block_params(arch, 2 * c, c)  # after concatenation with the skip
    return total + f + 1


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("f,depth", [(4, 2), (8, 4)])
def test_parameter_count_matches_architecture(arch, f, depth):
    model = build_segmentation_model(arch, 32, base_filters=f, depth=depth)
    assert model.count_params() == expected_params(arch, f, depth)


def test_hand_computed_unet_depth1():
    # U-Net, f=2, depth 1 written out by hand:
    # enc0: 9*1*2+8=26, 9*2*2+8=44 | bottleneck: 9*2*4+16=88, 9*4*4+16=160 | up: 4*4*2+2=34
    # dec0: 9*4*2+8=80, 9*2*2+8=44 | head: 2+1=3   -> 479
    assert build_segmentation_model("unet", 8, base_filters=2, depth=1).count_params() == 479


def test_r2unet_shares_one_kernel_per_recurrent_layer():
    model = build_segmentation_model("r2unet", 16, base_filters=4, depth=2)
    convs3 = [layer for layer in model.layers
              if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose)
              and layer.kernel_size == (3, 3)]
    # 2 encoder + bottleneck + 2 decoder levels, two RCLs each, one 3x3 conv per RCL
    assert len(convs3) == 5 * 2
    for layer in convs3:
        # the same layer object runs t + 1 times (once per time step)
        assert len(layer._inbound_nodes) == RECURRENT_STEPS + 1
    # a port with one kernel per step would have (t+1)x the 3x3 weights: the count above rules it out
    f, d = 4, 2
    duplicated = expected_params("r2unet", f, d) + sum(
        2 * RECURRENT_STEPS * 9 * c * c for c in [f, 2 * f, 4 * f, 2 * f, f])
    assert model.count_params() != duplicated


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_output_shape_and_range(arch):
    model = build_segmentation_model(arch, 32, base_filters=4, depth=2)
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, 32, 32, 1)
    assert np.all((y >= 0) & (y <= 1))


def test_paper_depth_has_four_poolings_and_four_upconvs():
    model = build_segmentation_model("r2unet", 64, base_filters=2, depth=4)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("MaxPooling2D") == 4
    assert kinds.count("Conv2DTranspose") == 4
    assert model.layers[-1].activation.__name__ == "sigmoid"


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown"):
        build_segmentation_model("vnet", 32)
    with pytest.raises(ValueError, match="divisible"):
        build_segmentation_model("unet", 40, depth=4)


def test_dice_metric_and_loss_hand_cases():
    t = np.zeros((1, 4, 4, 1), np.float32)
    t[0, :2, :2] = 1  # 4 true pixels
    p = np.zeros((1, 4, 4, 1), np.float32)
    p[0, :2, :1] = 0.9  # 2 TP
    p[0, 3, 3] = 0.8  # 1 FP ; FN = 2
    assert float(dice(t, p)) == pytest.approx(2 * 2 / (2 * 2 + 1 + 2), abs=1e-5)
    perfect = float(bce_dice_loss(t, np.clip(t, 1e-7, 1 - 1e-7))[0])
    worse = float(bce_dice_loss(t, p)[0])
    assert perfect == pytest.approx(0.0, abs=1e-3)
    assert worse > 0.5
    # soft dice term alone for p: 1 - (2*1.8 + 1) / (4 + 2.6 + 1)
    bce = float(np.mean(keras.losses.binary_crossentropy(t, p)))
    assert worse == pytest.approx(bce + 1 - (2 * 1.8 + 1) / (4 + 2.6 + 1), rel=1e-4)


def test_save_load_roundtrip(tmp_path):
    model = compile_segmentation_model(build_segmentation_model("r2unet", 16, base_filters=2, depth=2))
    x = np.random.default_rng(1).random((1, 16, 16, 1), dtype=np.float32)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
    assert again.count_params() == model.count_params()


def test_model_code_uses_keras_api_only(root):
    src = (root / "src/vcmeasure/models/segmentation.py").read_text()
    assert "tensorflow" not in src and "tf." not in src
