"""Regression networks for VC from three-body windows (paper Methods "Vertebral compression measurement
model based on CNN", Fig. 4; DESIGN §5 "Models").

- **MRDN** (the paper's model): six Conv3×3(stride 1)-BN-ReLU-MaxPool2×2 blocks extract a low-level map;
  multi-scale residual dilated blocks (MRDBs) follow — a 1×1 bottleneck, four dilated 3×3 convs at rates
  2, 4, 8, 16 and a plain Conv3×3 side by side, their maps concatenated, fused by a 1×1 conv and added to the
  block input (the residual Add closes the block); then global average pooling and a linear Dense(1).
- **ResNet50 / DenseNet121** baselines: ``keras.applications`` with ``weights=None``, one input channel,
  ``include_top=False, pooling="avg"`` and a linear Dense(1).
- **CARN** baseline (Pang et al., MICCAI 2018 / MedIA 2019): a cascade of amplifier units that gate and
  reuse the previous layer's features, GAP and a linear regressor, trained with MSE plus a local
  shape-constrained manifold regularisation. What exactly is implemented is in ``docs/carn.md``.

Every model ends in ``Rescaling(std, mean)`` after the linear unit, so the network learns a standardised
target while its output (and the saved model) is in VC percent. Keras 3 layers and ops only.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from ..errors import ConfigError

MODELS = ("mrdn", "resnet50", "densenet121", "carn")
DILATION_RATES = (2, 4, 8, 16)
# Moving BN statistics must settle within the few hundred steps of a small cohort; 0.99 (Keras default)
# lags behind and inflates validation error in the first epochs.
BN_MOMENTUM = 0.9


def n_poolings(size: int, wanted: int = 6) -> int:
    """Poolings that keep the map at least 1 px: six for >= 64 px (128 -> 2×2, as in the paper), fewer below."""
    n, side = 0, int(size)
    while n < wanted and side // 2 >= 1:
        side //= 2
        n += 1
    return n


def _conv_bn_relu(x, filters: int, kernel: int = 3, dilation: int = 1, name: str = ""):
    x = layers.Conv2D(filters, kernel, padding="same", dilation_rate=dilation, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def mrdb(x, filters: int, name: str, rates=DILATION_RATES):
    """One multi-scale residual dilated block: bottleneck, dilated convs + Conv3×3, concat, 1×1 fuse, Add."""
    width = max(1, filters // 2)  # the bottleneck halves the channels (paper: "for computation time reduction")
    b = _conv_bn_relu(x, width, kernel=1, name=f"{name}_bottleneck")
    branches = [_conv_bn_relu(b, width, dilation=r, name=f"{name}_dil{r}") for r in rates]
    branches.append(_conv_bn_relu(b, width, name=f"{name}_conv3"))
    cat = layers.Concatenate(name=f"{name}_concat")(branches)
    fused = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_fuse_conv")(cat)
    fused = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_fuse_bn")(fused)
    out = layers.Add(name=f"{name}_add")([x, fused])
    return layers.ReLU(name=f"{name}_out")(out)


def _head(features, target_mean: float, target_std: float):
    """GAP'd features -> linear Dense(1) -> de-standardisation to VC percent."""
    z = layers.Dense(1, activation="linear", name="regression_head")(features)
    return layers.Rescaling(scale=float(target_std), offset=float(target_mean), name="to_vc")(z)


def build_mrdn(input_size: int, filters: int = 64, blocks: int = 2, target_mean: float = 0.0,
               target_std: float = 1.0) -> keras.Model:
    """MRDN (paper Fig. 4). Inputs below 64 px get fewer poolings (see :func:`n_poolings`), never six
    convolutions fewer."""
    inp = keras.Input((input_size, input_size, 1), name="window")
    x, pools = inp, n_poolings(input_size)
    for i in range(6):
        x = _conv_bn_relu(x, filters, name=f"stem{i + 1}")
        if i < pools:
            x = layers.MaxPooling2D(2, name=f"stem{i + 1}_pool")(x)
    for b in range(blocks):
        x = mrdb(x, filters, name=f"mrdb{b + 1}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, _head(x, target_mean, target_std), name="mrdn")


def _application(app, name: str, input_size: int, target_mean: float, target_std: float) -> keras.Model:
    if input_size < 32:
        raise ConfigError(f"triplets.window_size: {name} needs windows of at least 32 px, got {input_size}")
    inp = keras.Input((input_size, input_size, 1), name="window")
    base = app(include_top=False, weights=None, input_tensor=inp, pooling="avg")
    return keras.Model(inp, _head(base.output, target_mean, target_std), name=name)


def amplifier_unit(prev, filters: int, name: str):
    """CARN amplifier unit: a conv layer whose input features are selectively reused.

    ``cur = Conv-BN-ReLU(prev)``; a sigmoid gate computed from the concatenation of the two adjacent layers'
    maps, ``g = σ(Conv1×1([prev, cur]))``, stimulates useful and suppresses redundant features of ``prev``
    before they are added to ``cur``: ``out = cur + g ⊙ P(prev)`` (``P`` a 1×1 projection when the channel
    counts differ).
    """
    cur = _conv_bn_relu(prev, filters, name=f"{name}_layer")
    gate = layers.Conv2D(filters, 1, activation="sigmoid", name=f"{name}_gate")(
        layers.Concatenate(name=f"{name}_adjacent")([prev, cur]))
    reuse = prev if prev.shape[-1] == filters else layers.Conv2D(filters, 1, use_bias=False,
                                                                  name=f"{name}_project")(prev)
    amplified = layers.Multiply(name=f"{name}_amplify")([gate, reuse])
    return layers.Add(name=f"{name}_out")([cur, amplified])


def build_carn(input_size: int, filters: int = 64, stages: int = 4, units_per_stage: int = 2,
               target_mean: float = 0.0, target_std: float = 1.0) -> keras.Model:
    """CARN: a stem conv, then a cascade of amplifier units in ``stages`` stages (width ``filters``, doubled
    from the second stage on), 2×2 max pooling after the stem and every stage while the map stays >= 1 px,
    GAP and a linear regressor. Kept shallow and narrow, like MRDN (paper Discussion), so the comparison is
    between architectures rather than budgets."""
    inp = keras.Input((input_size, input_size, 1), name="window")
    pools = n_poolings(input_size, wanted=stages + 1)
    x = _conv_bn_relu(inp, filters, name="carn_stem")
    if pools:
        x = layers.MaxPooling2D(2, name="carn_stem_pool")(x)
    for s in range(stages):
        width = filters * (1 if s == 0 else 2)
        for u in range(units_per_stage):
            x = amplifier_unit(x, width, name=f"au{s + 1}_{u + 1}")
        if s + 1 < pools:
            x = layers.MaxPooling2D(2, name=f"carn_pool{s + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, _head(x, target_mean, target_std), name="carn")


def build_regression_model(name: str, input_size: int, filters: int = 64, target_mean: float = 0.0,
                           target_std: float = 1.0) -> keras.Model:
    """Build ``mrdn``, ``resnet50``, ``densenet121`` or ``carn`` for (S, S, 1) windows with one linear output.

    ``filters`` sets MRDN's and CARN's width (config ``regression.mrdn_filters``); the applications keep their
    published widths. ``target_mean``/``target_std`` fix the output de-standardisation.
    """
    if name == "mrdn":
        return build_mrdn(input_size, filters, target_mean=target_mean, target_std=target_std)
    if name == "carn":
        return build_carn(input_size, filters, target_mean=target_mean, target_std=target_std)
    if name == "resnet50":
        return _application(keras.applications.ResNet50, name, input_size, target_mean, target_std)
    if name == "densenet121":
        return _application(keras.applications.DenseNet121, name, input_size, target_mean, target_std)
    raise ConfigError(f"regression.models: unknown model '{name}' (choose from {', '.join(MODELS)})")


@keras.saving.register_keras_serializable(package="vcmeasure")
class ManifoldRegularizedMSE(keras.losses.Loss):
    """CARN's loss: MSE plus a local shape-constrained manifold term over the batch.

    For sample i: ``(ŷ_i − y_i)² + λ Σ_j w_ij (ŷ_i − ŷ_j)² / Σ_j w_ij`` with ``w_ij = exp(−(y_i − y_j)² / 2σ²)``
    over the batch: samples whose reference values are close (neighbours on the label manifold) are pushed to
    close predictions, which damps over-fitting to individual windows. σ is in target units (VC percent).
    """

    def __init__(self, weight: float = 0.1, sigma: float = 5.0, name: str = "manifold_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight, self.sigma = float(weight), float(sigma)

    def call(self, y_true, y_pred):
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
        y_pred = ops.reshape(y_pred, (-1,))
        mse = ops.square(y_pred - y_true)
        dy = y_true[:, None] - y_true[None, :]
        w = ops.exp(-ops.square(dy) / (2.0 * self.sigma**2))
        dp = ops.square(y_pred[:, None] - y_pred[None, :])
        # the self-pair adds 0 to the numerator and 1 to the denominator: no division by zero for a lone sample
        manifold = ops.sum(w * dp, axis=1) / ops.sum(w, axis=1)
        return mse + self.weight * manifold

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "sigma": self.sigma}


def regression_loss(name: str):
    """MSE for MRDN and the applications (the paper names no loss), the manifold-regularised MSE for CARN."""
    return ManifoldRegularizedMSE() if name == "carn" else "mse"
