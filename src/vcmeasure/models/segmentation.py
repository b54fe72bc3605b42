"""U-Net, ResU-Net and R2U-Net for vertebral body segmentation (paper Methods, "Vertebral body segmentation
model based on CNN"; DESIGN §5 "Models").

All three share one skeleton: ``depth`` encoder levels (3x3 convs, BN, ReLU, 2x2 max pooling), a bottleneck,
``depth`` decoder levels (2x2 up-convolution = ``Conv2DTranspose`` stride 2, concatenation with the encoder
skip, the level's block) and a 1x1 conv + sigmoid head. Filters double per level from ``base_filters``.
Only the per-level block differs:

- ``unet``: Conv3x3-BN-ReLU, Conv3x3-BN-ReLU (Ronneberger et al. 2015).
- ``resunet``: the same two convs, the second without ReLU, added to a 1x1-conv shortcut, then ReLU.
- ``r2unet`` (Alom et al. 2018, the paper's choice): a 1x1 conv to the level's width, then two recurrent
  convolutional layers (RCL) and a residual add of the 1x1 output. An RCL with t = 2 runs
  ``x1 = f(conv(x)); x_{k+1} = f(conv(x + x_k))`` for k = 1..t with ONE ``Conv2D`` layer (one kernel)
  reused at every step; f = BN + ReLU with a BN per step (the steps' activations have different
  statistics). So an RCL has the parameters of a single 3x3 conv plus (t + 1) BNs — ports that create a
  new conv per step double or triple the count, which ``tests/test_seg_models.py`` checks.

Convs followed by BN carry no bias (BN's beta replaces it). Loss (the paper does not state one): binary
cross-entropy + soft Dice, both per image, summed. Metric ``dice``: DSC of the 0.5-thresholded prediction
(DESIGN §4), so Keras logs ``val_dice`` for epoch selection. Only ``keras.layers`` / ``keras.ops`` are used,
so the models build under the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import keras
from keras import layers, ops

ARCHITECTURES = ("unet", "resunet", "r2unet")
RECURRENT_STEPS = 2  # paper: "Recurrent Conv2D with the time step set to two"
# Moving BN statistics must settle within the few hundred steps of a small cohort (batch 5); with the Keras
# default 0.99 they lag behind the weights and validation DSC collapses while training DSC is high.
BN_MOMENTUM = 0.9
_EPS = 1e-6


@keras.saving.register_keras_serializable(package="vcmeasure")
def dice(y_true, y_pred):
    """DSC 2TP / (2TP + FP + FN) of the prediction thresholded at 0.5, over the batch (DESIGN §4)."""
    t = ops.cast(y_true > 0.5, "float32")
    p = ops.cast(y_pred > 0.5, "float32")
    inter = ops.sum(t * p)
    return (2.0 * inter + _EPS) / (ops.sum(t) + ops.sum(p) + _EPS)


@keras.saving.register_keras_serializable(package="vcmeasure")
def bce_dice_loss(y_true, y_pred):
    """Per-image binary cross-entropy + soft Dice loss (1 - 2Σyp / (Σy + Σp)); shape (batch,)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
    inter = ops.sum(y_true * y_pred, axis=(1, 2, 3))
    denom = ops.sum(y_true, axis=(1, 2, 3)) + ops.sum(y_pred, axis=(1, 2, 3))
    soft_dice = (2.0 * inter + 1.0) / (denom + 1.0)  # +1 smoothing: an empty mask predicted empty scores 1
    return bce + (1.0 - soft_dice)


def _conv_bn(x, filters, name, relu=True):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _unet_block(x, filters, name):
    x = _conv_bn(x, filters, f"{name}_1")
    return _conv_bn(x, filters, f"{name}_2")


def _res_block(x, filters, name):
    shortcut = layers.Conv2D(filters, 1, name=f"{name}_shortcut")(x)
    y = _conv_bn(x, filters, f"{name}_1")
    y = _conv_bn(y, filters, f"{name}_2", relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def _recurrent_conv(x, filters, name, steps=RECURRENT_STEPS):
    """RCL: one shared 3x3 conv applied steps + 1 times, x_{k+1} = f(conv(x + x_k))."""
    conv = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")  # the ONE kernel
    h = x
    for k in range(steps + 1):
        inp = x if k == 0 else layers.Add(name=f"{name}_in{k}")([x, h])
        h = conv(inp)
        h = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{k}")(h)
        h = layers.ReLU(name=f"{name}_relu{k}")(h)
    return h


def _r2_block(x, filters, name):
    x = layers.Conv2D(filters, 1, name=f"{name}_in1x1")(x)
    y = _recurrent_conv(x, filters, f"{name}_rcl1")
    y = _recurrent_conv(y, filters, f"{name}_rcl2")
    return layers.Add(name=f"{name}_add")([x, y])


_BLOCKS = {"unet": _unet_block, "resunet": _res_block, "r2unet": _r2_block}


def build_segmentation_model(arch: str, input_size: int | None = 512, base_filters: int = 64,
                             depth: int = 4, name: str | None = None) -> keras.Model:
    """Uncompiled ``arch`` network for a ``(input_size, input_size, 1)`` image; sigmoid map of the same size.

    ``input_size`` must be divisible by ``2**depth`` (None builds a size-agnostic model).
    """
    if arch not in _BLOCKS:
        raise ValueError(f"unknown segmentation architecture '{arch}' (choose from {', '.join(ARCHITECTURES)})")
    if depth < 1 or base_filters < 1:
        raise ValueError("depth and base_filters must be >= 1")
    if input_size is not None and input_size % (2**depth):
        raise ValueError(f"input_size {input_size} is not divisible by 2**depth = {2**depth}")
    block = _BLOCKS[arch]
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = block(x, base_filters * 2**level, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = block(x, base_filters * 2**depth, "bottleneck")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"dec{level}_up")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([skips[level], x])
        x = block(x, filters, f"dec{level}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name or arch)


def compile_segmentation_model(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    """Adam(lr) with the BCE + soft Dice loss and the ``dice`` metric (logged as ``dice`` / ``val_dice``)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=bce_dice_loss, metrics=[dice])
    return model
