"""The built-in networks. Each builder takes the input shape and the number of classes."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from octreport.errors import ConfigError

BN_MOMENTUM = 0.9
"""Batch-norm moving averages of ``compact-bn`` follow the batches within ~2 epochs of ~25 steps;
at Keras's default 0.99 they lag for hundreds of steps, and a small data set's validation loss
(early stopping's signal) is meaningless for the first 10-15 epochs."""


def notebook_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The source notebook's network: four 3x3 conv blocks (32, 64, 128, 128 filters), each with
    ReLU, 2x2 max-pooling and dropout 0.3, then flatten and a softmax over the classes."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block, filters in enumerate((32, 64, 128, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{block}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
        x = layers.Dropout(0.3, name=f"dropout{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="notebook_cnn")


def compact_bn_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """A small, fast network for real scans on a CPU (about 0.14 M weights).

    * stem: one plain 3x3 conv, 16 filters, stride 2: halves the resolution before anything costly
      (at 128x256 input the rest runs on 64x128 and smaller);
    * four stages of batch-normalised 3x3 *separable* convs (32, 64x2, 128x2, 256x2 filters), with
      2x2 max-pooling between stages: depthwise-then-pointwise costs about 1/8 of a full 3x3 conv at
      these widths, which is what makes a 128x256 input affordable on two cores;
    * global average pooling (any input size, no large dense layer), dropout 0.3, softmax.

    Every conv is followed by BatchNormalization (momentum 0.9, see ``BN_MOMENTUM``) and ReLU, and
    has no bias of its own (BN adds it).
    The network is a plain Functional model of public Keras layers.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    stages = ((32, 1), (64, 2), (128, 2), (256, 2))
    for stage, (filters, convs) in enumerate(stages, start=1):
        for step in range(1, convs + 1):
            x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"sepconv{stage}_{step}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{stage}_{step}")(x)
            x = layers.ReLU(name=f"relu{stage}_{step}")(x)
        if stage < len(stages):
            x = layers.MaxPooling2D(2, padding="same", name=f"pool{stage}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="compact_bn_cnn")


ARCHITECTURES: dict[str, Callable[[tuple[int, int, int], int], keras.Model]] = {
    "notebook": notebook_cnn,
    "compact-bn": compact_bn_cnn,
}


def build_model(architecture: str, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    try:
        builder = ARCHITECTURES[architecture]
    except KeyError:
        raise ConfigError(
            f"Unknown architecture '{architecture}'. Choose one of: {', '.join(ARCHITECTURES)}."
        ) from None
    return builder(input_shape, num_classes)
