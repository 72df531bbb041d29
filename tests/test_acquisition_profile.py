"""The acquisition profile and the data-shift check: profiles from image facts, the comparison's
findings (and its silence on a split of one data set), the profile in the model's sidecar, and
the image facts it is made of (channels, intensity percentiles)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from octreport.data.acquisition_profile import (
    NO_TRAINING_PROFILE,
    AcquisitionProfile,
    compare_profiles,
    profile_from_facts,
    size_labels,
)
from octreport.data.image_facts import ImageFacts, collect_image_facts, collect_split_facts
from octreport.data.preprocessing import Preprocessing
from octreport.errors import ModelError
from octreport.models.metadata import ModelMetadata, read_metadata, write_metadata


def facts(sizes, file_types=None, channels=None, brightness=None, seed=0) -> ImageFacts:
    """Hand-made facts: ``sizes`` as (width, height) per image; ``brightness`` scales the per-image
    intensity percentiles (default about 0.05 / 0.12 / 0.8, with some spread between images)."""
    n = len(sizes)
    rng = np.random.default_rng(seed)
    base = np.array([0.05, 0.12, 0.8]) * (1 if brightness is None else brightness)
    percentiles = np.clip(base + rng.normal(0, [0.01, 0.02, 0.06], (n, 3)), 0, 1).astype(np.float32)
    return ImageFacts(
        width=np.array([w for w, _ in sizes], np.int32), height=np.array([h for _, h in sizes], np.int32),
        file_type=np.array(file_types or ["jpeg"] * n, dtype=object), file_size=np.full(n, 1000, np.int64),
        mean_intensity=percentiles[:, 1].copy(), phash=np.zeros(n, np.uint64), decoded=np.ones(n, bool),
        channels=np.array(channels or [1] * n, np.int8), intensity_percentiles=percentiles,
    )


KERMANY_LIKE = [(1024, 496)] * 94 + [(1536, 496)] * 5 + [(768, 496)]  # oct-real: 94% 1024 px wide


def test_profile_counts_sizes_ratios_types_channels_and_summarises_intensity():
    found = facts([(1024, 496)] * 3 + [(512, 496)], file_types=["jpeg"] * 3 + ["png"], channels=[1, 1, 1, 3])
    profile = profile_from_facts(found)
    assert profile.n_images == 4 and profile.sizes == (("1024x496", 3), ("512x496", 1))
    assert profile.aspect_ratios == (("2.1", 3), ("1.0", 1))
    assert profile.file_types == (("jpeg", 3), ("png", 1)) and profile.channels == (("1", 3), ("3", 1))
    p50 = profile.spread(50)
    values = found.intensity_percentiles[:, 1].astype(np.float64)
    assert p50.median == pytest.approx(np.median(values), abs=1e-4)
    assert p50.low == pytest.approx(np.percentile(values, 5), abs=1e-4)
    assert AcquisitionProfile.from_dict(profile.to_dict()) == profile
    assert size_labels(found) == ["1024x496"] * 3 + ["512x496"]
    undecoded = ImageFacts(**{**found.__dict__, "decoded": np.array([True, True, True, False])})
    assert profile_from_facts(undecoded).n_images == 3 and profile_from_facts(undecoded).undecoded == 1


def test_comparison_is_silent_on_random_splits_of_the_training_distribution():
    everything = facts(KERMANY_LIKE * 10, seed=1)  # 1,000 images
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(len(everything))
        training = profile_from_facts(everything.take(order[:800]))
        for n in (200, 20):
            report = compare_profiles(training, profile_from_facts(everything.take(order[800:800 + n])))
            assert report.findings == () and report.note == "", (seed, n, report.findings)


def test_a_size_common_here_and_absent_in_training_is_named_in_plain_words():
    training = profile_from_facts(facts(KERMANY_LIKE))
    evaluated = profile_from_facts(facts([(512, 496)] * 77 + [(768, 496)] * 23, seed=2))
    report = compare_profiles(training, evaluated)
    assert [f.kind for f in report.findings] == ["size", "size"]  # the aspect ratio is not named twice
    assert report.findings[0].text == ("77% of these scans are 512x496 px (training: none); the model was trained "
                                       "on 1024x496 px scans (94%).")
    assert report.findings[1].text.startswith("23% of these scans are 768x496 px (training: 1%)")
    # With the model's preprocessing known, a further finding says what the new width does to it.
    cropped = compare_profiles(training, evaluated, aspect="crop").findings
    assert [f.kind for f in cropped] == ["size", "size", "geometry"] and "another zoom" in cropped[-1].text
    assert "reaches it alike" in compare_profiles(training, evaluated, aspect="stretch").findings[-1].text
    # 1536 px is 5% of training: not rare, so 30% of it here is no finding.
    assert compare_profiles(training, profile_from_facts(facts([(1536, 496)] * 30 + [(1024, 496)] * 70))).findings == ()


def test_unseen_file_types_and_channels_and_darker_scans_are_named():
    training = profile_from_facts(facts(KERMANY_LIKE))
    pngs = facts([(1024, 496)] * 100, file_types=["png"] * 6 + ["jpeg"] * 94, channels=[3] * 30 + [1] * 70)
    kinds = [f.kind for f in compare_profiles(training, profile_from_facts(pngs)).findings]
    assert kinds == ["file type", "channels"]
    darker = compare_profiles(training, profile_from_facts(facts([(1024, 496)] * 100, brightness=0.5, seed=3)))
    assert [f.kind for f in darker.findings] == ["intensity"]
    assert darker.findings[0].text.startswith("These scans are darker than the training scans")
    assert "bright end (99th percentile) is 0.40" in darker.findings[0].text


def test_without_a_training_profile_the_report_says_so_and_compares_nothing():
    evaluated = profile_from_facts(facts([(512, 496)] * 10))
    report = compare_profiles(None, evaluated)
    assert report.findings == () and report.note == NO_TRAINING_PROFILE
    assert report.to_dict()["training_profile"] is None and report.to_dict()["evaluated_profile"]["n_images"] == 10


def test_the_sidecar_keeps_the_training_profile_and_old_sidecars_still_load(tmp_path):
    import json

    profile = profile_from_facts(facts(KERMANY_LIKE))
    model_path = tmp_path / "model.keras"
    sidecar = write_metadata(model_path, ModelMetadata(("CNV", "NORMAL"), Preprocessing(), training_profile=profile))
    assert read_metadata(model_path).training_profile == profile
    old = json.loads(sidecar.read_text())
    del old["training_profile"]
    sidecar.write_text(json.dumps(old))
    assert read_metadata(model_path).training_profile is None
    old["training_profile"] = {"sizes": {}}
    sidecar.write_text(json.dumps(old))
    with pytest.raises(ModelError, match="not a valid octreport model description"):
        read_metadata(model_path)


def test_image_facts_read_the_channel_count_and_intensity_percentiles(tmp_path):
    gray = np.full((40, 60), 64, np.uint8)
    gray[:, :30] = 192  # half dark, half bright
    paths = []
    for name, mode in (("g.jpeg", "L"), ("c.jpeg", "RGB"), ("g.png", "L"), ("c.png", "RGB"), ("a.png", "RGBA")):
        Image.fromarray(gray).convert(mode).save(tmp_path / name)
        paths.append(tmp_path / name)
    found = collect_image_facts(paths)
    assert found.channels.tolist() == [1, 3, 1, 3, 4]
    assert found.file_type.tolist() == ["jpeg", "jpeg", "png", "png", "png"]
    png = found.intensity_percentiles[2]
    assert png[0] == pytest.approx(64 / 255, abs=0.01) and png[2] == pytest.approx(192 / 255, abs=0.01)
    split = collect_split_facts(tmp_path, {"train": paths[:2], "test": paths[2:]})
    assert split.lookup([("test", "c.png")]).channels.tolist() == [3]
    assert split.split("train").channels.tolist() == [1, 3]
