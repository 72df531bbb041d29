"""The DICOM device in the acquisition profile: counted, kept in the sidecar's JSON, and named as a
shift only where the training profile knows its images' devices."""

from __future__ import annotations

import numpy as np

from octreport.data.acquisition_profile import AcquisitionProfile, compare_profiles, profile_from_facts
from octreport.data.image_facts import ImageFacts


def _facts(n: int, decoded=None) -> ImageFacts:
    ones = np.ones(n)
    return ImageFacts(width=(ones * 64).astype(np.int32), height=(ones * 32).astype(np.int32),
                      file_type=np.array(["dicom"] * n), file_size=(ones * 100).astype(np.int64),
                      mean_intensity=ones * 0.3, phash=np.zeros(n, np.uint64),
                      decoded=np.ones(n, bool) if decoded is None else np.array(decoded), channels=np.ones(n, np.int32))


def test_devices_are_counted_over_the_decoded_images_that_name_one():
    profile = profile_from_facts(_facts(4, [True, True, True, False]), ["Zeiss Cirrus", "", "Zeiss Cirrus", "Topcon"])
    assert profile.devices == (("Zeiss Cirrus", 2),)  # "" names none; the undecoded Topcon scan is not profiled
    assert AcquisitionProfile.from_dict(profile.to_dict()) == profile
    old = profile.to_dict()
    del old["devices"]  # a sidecar written before devices were kept
    assert AcquisitionProfile.from_dict(old).devices == ()
    assert profile_from_facts(_facts(2)).devices == ()


def test_a_new_device_is_a_shift_only_when_training_knew_its_devices():
    evaluated = profile_from_facts(_facts(10), ["Topcon Triton"] * 10)
    unknown = profile_from_facts(_facts(10))  # trained on JPEGs: no device known
    assert compare_profiles(unknown, evaluated).findings == ()
    known = profile_from_facts(_facts(10), ["Heidelberg Engineering Spectralis"] * 10)
    (finding,) = compare_profiles(known, evaluated).findings
    assert finding.kind == "device" and "100% of these scans come from a Topcon Triton device (training: none)" in finding.text
    assert compare_profiles(known, known).findings == ()
