"""The data's stages of a run: the folder split (or the images to evaluate), the one cheap decode
of every image (image facts), the files the user named, and the evaluated images' acquisition
against the training images'."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from octreport.config import ReportConfig, TrainConfig
from octreport.data.acquisition_profile import ShiftReport, compare_profiles, profile_from_facts, size_labels
from octreport.data.class_map import align_to_model
from octreport.data.dataset import SPLIT_AUTO, PreparedData, prepare_data
from octreport.data.dicom_headers import device_names, has_dicom, new_salt
from octreport.data.groups import NOT_LISTED, GroupTable
from octreport.data.image_choice import items_from_paths, sentinel_paths
from octreport.data.image_facts import ImageFacts, SplitFacts, collect_split_facts
from octreport.data.layout import ImageItem, item_name, relative_name
from octreport.evaluation.group_metrics import BY_SIZE, GroupMetrics, compute_group_metrics
from octreport.evaluation.predict import Predictions
from octreport.evaluation.referral import urgent_calls
from octreport.models.metadata import ModelMetadata
from octreport.resources import sample_data_dir

log = logging.getLogger(__name__)


def prepare(data_dir: Path | str | None, config: TrainConfig, training: bool = True, split: str = SPLIT_AUTO) -> PreparedData:
    """The data folder (default: the bundled sample data) split for training, or, for a model that
    is only evaluated, the images ``split`` names (:data:`~octreport.data.dataset.SPLIT_CHOICES`)."""
    data = prepare_data(data_dir or sample_data_dir(), config.seed, config.val_fraction, config.test_fraction,
                        config.follow_symlinks, training=training, split=split)
    log.info("data: %s (%s); %s", data.root, ", ".join(data.class_names), data.split_note)
    return data


def model_classes(data: PreparedData, class_names: tuple[str, ...], config: ReportConfig) -> PreparedData:
    """The evaluated data labelled with a given model's classes (``class_names``, in output
    order): some of them, under the folders' own names through ``--class-map``
    (:mod:`octreport.data.class_map`)."""
    aligned = align_to_model(data, class_names, dict(config.class_map))
    absent = [name for name in aligned.class_names if name not in aligned.classes_present()]
    if absent:
        log.warning("not in this data: %s (the model's other classes are evaluated; their recall is not measured)",
                    ", ".join(absent))
    return aligned


def image_facts(data: PreparedData, splits: tuple[str, ...] = ("train", "val", "test"),
                on_read: Callable[[Path, bytes], None] | None = None) -> SplitFacts:
    """The facts of every image of ``splits`` from one cheap decode (:mod:`octreport.data.image_facts`),
    for images no other pass reads (a given model's training folders; the data audit's own run): the
    evaluated images' acquisition profile and the data audit read them.
    ``on_read(path, bytes)``: for what else each file's one read gives (its DICOM header facts)."""
    return collect_split_facts(data.root, {split: data.split(split) for split in splits}, on_read=on_read)


def requested_images(config: ReportConfig, data: PreparedData) -> tuple[ImageItem, ...] | None:
    """The images the user named (``--image``, ``--sentinels``), or None to draw them with the seed."""
    paths = tuple(config.image_paths)
    if config.sentinels:
        paths += sentinel_paths(config.sentinels, data.root)
    return items_from_paths(tuple(dict.fromkeys(paths)), data.class_names) if paths else None


def acquisition_shift(data: PreparedData, predictions: Predictions, facts: SplitFacts, metadata: ModelMetadata | None,
                      aspect: str, groups: GroupTable | None, ci_level: float,
                      devices: GroupTable | None = None, referral_threshold: float | None = None,
                      ) -> tuple[ShiftReport, tuple[GroupMetrics, ...]]:
    """The evaluated images' acquisition profile (with their DICOM ``devices``) against the model's
    training profile (none for a model without one), and performance per image size and per the
    user's groups (urgent calls by the report's referral rule: ``referral_threshold``, or the
    predicted class when None)."""
    shift, evaluated = evaluated_shift(data, predictions, facts, metadata, aspect, devices)
    called = urgent_calls(predictions.probabilities, data.class_names, referral_threshold)
    grouped = [compute_group_metrics(predictions.labels, predictions.predicted, data.class_names, size_labels(evaluated),
                                     BY_SIZE, ci_level, called)]
    if groups is not None:
        names = [relative_name(item.path, data.root) for item in predictions.items]  # the file's: a group is per file
        by_user = compute_group_metrics(predictions.labels, predictions.predicted, data.class_names,
                                        [groups.group(name) for name in names], groups.source, ci_level, called)
        if by_user.not_listed:
            log.warning("%s does not list %d of the %d evaluated images; they are grouped as '%s'",
                        groups.source, by_user.not_listed, len(names), NOT_LISTED)
        grouped.append(by_user)
    return shift, tuple(grouped)


def evaluated_shift(data: PreparedData, predictions: Predictions, facts: SplitFacts, metadata: ModelMetadata | None,
                    aspect: str, devices: GroupTable | None) -> tuple[ShiftReport, ImageFacts]:
    """The evaluated images' acquisition profile (with their DICOM ``devices``) against the model's
    training profile (none for a model without one), each finding logged as a warning; and the
    evaluated images' facts, in the order of ``predictions``."""
    names = [relative_name(item.path, data.root) for item in predictions.items]  # the file's: a device is per file
    evaluated = facts.lookup([("test", item_name(item, data.root)) for item in predictions.items])
    training = metadata.training_profile if metadata is not None else None
    shift = compare_profiles(training, profile_from_facts(evaluated, device_names(names, devices)), aspect)
    for finding in shift.findings:
        log.warning("data shift: %s", finding.text)
    return shift, evaluated


def with_dicom_salt(config: ReportConfig, items: Sequence[ImageItem]) -> ReportConfig:
    """``config`` with a new salt for the DICOM PatientID hashes when ``items`` hold DICOM files and
    none was given (``--dicom-salt``); the manifest records it, so a rerun given it agrees."""
    if has_dicom(items) and not config.dicom_salt:
        return replace(config, dicom_salt=new_salt())
    return config
