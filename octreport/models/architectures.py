"""The built-in networks. Each builder takes the input shape and the number of classes."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from octreport.errors import ConfigError


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
    """A stronger small network for real scans: four blocks of two batch-normalised 3x3 convs
    (32, 64, 128, 256 filters), max-pooling between blocks, global average pooling, dropout 0.4."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block, filters in enumerate((32, 64, 128, 256), start=1):
        for step in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{block}_{step}")(x)
            x = layers.BatchNormalization(name=f"bn{block}_{step}")(x)
            x = layers.ReLU(name=f"relu{block}_{step}")(x)
        if block < 4:
            x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.4, name="dropout")(x)
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
