"""Train a built-in network on a prepared data set, selecting the epoch on the validation split."""

from __future__ import annotations

import logging
import math
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from octreport._version import __version__
from octreport.config import TrainConfig
from octreport.data.acquisition_profile import AcquisitionProfile, profile_from_facts
from octreport.data.dataset import PreparedData
from octreport.data.dicom_headers import DicomHeaderReads, device_names
from octreport.data.image_facts import ImageFacts, SplitFacts, split_keys
from octreport.data.layout import relative_name
from octreport.data.pipeline import fill_decode_cache, image_dataset
from octreport.evaluation.predict import Predictions, predict_items
from octreport.evaluation.referral import oct_class_order
from octreport.evaluation.referral_rule import VALIDATION, ReferralRule, argmax_rule, choose_referral_threshold
from octreport.models.architectures import build_model
from octreport.models.metadata import ModelMetadata
from octreport.models.replicated_fit import fit_replicated
from octreport.progress import format_duration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedModel:
    model: keras.Model
    metadata: ModelMetadata
    seconds: float
    validation: Predictions | None = None
    """The trained model's predictions on the validation split (None without one): the referral
    rule is chosen on them, and a run fits its temperature scaling on them."""
    facts: SplitFacts | None = None
    """The image facts and file digests of the training and validation images (splits ``train``
    and ``val``), from training's one read of each file."""


class EpochLogger(keras.callbacks.Callback):
    """One log line per epoch, with the time the remaining epochs take at most (early stopping may
    end sooner): the CLI shows it on a terminal and keeps it in the run log."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.started = self.first_started = 0.0

    def on_train_begin(self, logs=None):
        self.first_started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        now = time.perf_counter()
        shown = "  ".join(f"{key} {value:.4f}" for key, value in logs.items() if key != "learning_rate")
        left = (self.epochs - epoch - 1) * (now - self.first_started) / (epoch + 1)
        eta = f", at most {format_duration(left)} left" if epoch + 1 < self.epochs else ""
        log.info("epoch %d/%d  %s  (%.1f s%s)", epoch + 1, self.epochs, shown, now - self.started, eta)


def balanced_class_weights(labels: list[int], num_classes: int) -> dict[int, float]:
    """``n / (K * n_c)`` per class, so every class weighs the same in the loss."""
    counts = Counter(labels)
    total = len(labels)
    return {c: total / (num_classes * counts[c]) if counts[c] else 0.0 for c in range(num_classes)}


def learning_rate_for(config: TrainConfig, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The optimizer's learning rate: constant, or warm-up then cosine decay (``lr_schedule``).

    ``cosine``: from ``learning_rate / 10`` up to ``learning_rate`` linearly over ``warmup_epochs``,
    then down to 0 along a half cosine by the end of ``epochs``. At most ``epochs - 1`` epochs warm
    up, so that a one-epoch smoke run of a preset still trains.
    """
    if config.lr_schedule == "constant":
        return config.learning_rate
    warmup_steps = min(config.warmup_epochs, config.epochs - 1) * steps_per_epoch
    total_steps = config.epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10 if warmup_steps else config.learning_rate,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=config.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def best_validation_epoch(val_loss: list[float], start: int = 0) -> int:
    """The 1-based epoch whose weights early stopping keeps: the lowest validation loss from
    epoch ``start + 1`` on; the last epoch when training ended before monitoring began."""
    if start >= len(val_loss):
        return len(val_loss)
    return start + int(np.argmin(val_loss[start:])) + 1


def _fit(model: keras.Model, train, val, epochs: int, class_weight, callbacks) -> dict[str, list[float]]:
    """``Model.fit``, or under a multi-worker strategy, where ``fit`` fails in Keras 3,
    :func:`~octreport.models.replicated_fit.fit_replicated`, which does the same."""
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return fit_replicated(model, train, val, epochs=epochs, class_weight=class_weight, callbacks=callbacks,
                              strategy=strategy)
    fit = model.fit(train, validation_data=val, epochs=epochs, class_weight=class_weight, callbacks=callbacks,
                    verbose=0, shuffle=False)
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


def train_model(data: PreparedData, config: TrainConfig, headers: DicomHeaderReads | None = None) -> TrainedModel:
    """Train ``config.architecture`` on ``data.train``; early stopping and the restored weights use
    ``data.val``. The test split is never seen here.

    Each image is read once and decoded once: before the first epoch the fitted images of both
    splits go into a cache in a temporary folder on disk (removed afterwards), and the same read
    gives each file's image facts and SHA-256 (:attr:`TrainedModel.facts`) and the training images'
    acquisition profile, recorded in the model's metadata (with their DICOM devices: ``headers``
    sees each file's bytes). Augmentation runs on the cached images every epoch, and the
    validation predictions come from the cache.
    """
    with tempfile.TemporaryDirectory(prefix="octreport-cache-") as cache_dir:
        return _train(data, config, Path(cache_dir), headers)


def _train(data: PreparedData, config: TrainConfig, cache_dir: Path, headers: DicomHeaderReads | None) -> TrainedModel:
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        # Process-wide and for good: TensorFlow offers no public way back. A later training in
        # the same process with deterministic=False is then deterministic too, never the reverse.
        tf.config.experimental.enable_op_determinism()
    prep = config.preprocessing
    num_classes = len(data.class_names)
    model = build_model(config.architecture, prep.input_shape, num_classes)
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_for(config, steps_per_epoch)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    log.info("reading the %d training and %d validation images once (decode cache, image facts, hashes)",
             len(data.train), len(data.val))
    train_facts, train_digests = fill_decode_cache(data.train, prep, cache_dir / "train", config.seed, headers)
    val_facts, val_digests = fill_decode_cache(data.val, prep, cache_dir / "val", None, headers)
    train = image_dataset(
        data.train, prep, config.batch_size, shuffle=True, augment=config.augmentation(), seed=config.seed,
        cache_file=cache_dir / "train",
    )
    val = image_dataset(data.val, prep, config.batch_size, cache_file=cache_dir / "val")
    weights = balanced_class_weights([i.label for i in data.train], num_classes) if config.class_weights else None
    start = config.early_stopping_start
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True,
        start_from_epoch=start,
    )
    log.info(
        "training %s on %d images (%d for validation), %d epochs at most, %s learning rate, %d replica(s)",
        config.architecture, len(data.train), len(data.val), config.epochs,
        config.lr_schedule, tf.distribute.get_strategy().num_replicas_in_sync,
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # The stream drops undecodable files, so its length is unknown up front and Keras warns
        # at the end of every epoch that the input "ran out of data". That is expected here.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        history = _fit(model, train, val, config.epochs, weights, [stopper, EpochLogger(config.epochs)])
    seconds = time.perf_counter() - started
    best_epoch = best_validation_epoch(history["val_loss"], start)
    log.info("trained in %.1f s; weights restored from epoch %d (lowest validation loss)", seconds, best_epoch)
    validation = predict_items(model, data.val, prep, config.batch_size, image_dataset(
        data.val, prep, config.batch_size, with_index=True, cache_file=cache_dir / "val")) if data.val else None
    rule = validation_referral_rule(validation, data, config)
    training = {
        **config.to_dict(),
        "train_images": len(data.train),
        "val_images": len(data.val),
        "seconds": seconds,
    }
    metadata = ModelMetadata(
        class_names=data.class_names,
        preprocessing=prep,
        history=history,
        best_epoch=best_epoch,
        training=training,
        octreport_version=__version__,
        training_profile=_training_profile(data, train_facts, headers),
        referral_rule=rule,
    )
    facts = SplitFacts(split_keys(data.root, {"train": data.train}), train_facts, train_digests).merged(
        SplitFacts(split_keys(data.root, {"val": data.val}), val_facts, val_digests))
    return TrainedModel(model, metadata, seconds, validation, facts)


def _training_profile(data: PreparedData, facts: ImageFacts, headers: DicomHeaderReads | None) -> AcquisitionProfile:
    """The acquisition profile of ``data.train`` from its ``facts``, with each file's DICOM device."""
    names = [relative_name(item.path, data.root) for item in data.train]
    return profile_from_facts(facts, device_names(names, None if headers is None else headers.tables().devices))


def validation_referral_rule(predictions: Predictions | None, data: PreparedData, config: TrainConfig) -> ReferralRule | None:
    """The urgent-referral rule chosen on the validation split's ``predictions`` for
    ``config.referral_sensitivity`` (never on the test split); None when the classes are not the
    four OCT ones."""
    if oct_class_order(data.class_names) is None:
        return None
    if predictions is None:
        return argmax_rule("No threshold: the run has no validation split to choose it on. Urgent referral uses "
                           "the predicted class (CNV or DME).", VALIDATION)
    rule = choose_referral_threshold(predictions.labels, predictions.probabilities, data.class_names,
                                     config.referral_sensitivity)
    if rule is not None:
        log.info("urgent referral: %s (%s)", rule.text, rule.provenance())
    return rule
