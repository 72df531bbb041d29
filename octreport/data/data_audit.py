"""The data audit: is the test split independent of training, and is the data what it claims?

Pure functions over what a run already has: the images' paths, splits and classes, their SHA-256
(the manifest's fingerprint hashes every file; those hashes are passed in, never recomputed), the
patients (file names or a ``--patients`` CSV) and the :class:`~octreport.data.image_facts.ImageFacts`
of one downscaled decode. Findings:

- **leaked patients**: a patient with images in more than one split;
- **exact duplicates**: files with the same SHA-256, across splits or within one;
- **label conflicts**: exact duplicates filed under two classes;
- **near-duplicates**: images of *different* (or unknown) patients whose perceptual hashes differ in at
  most :data:`HAMMING_THRESHOLD` of 64 bits (re-encoded, slightly shifted copies); pairs of the *same*
  patient (neighbouring B-scans look alike) are counted apart and not as duplicates. Pairs are
  counted exactly and grouped into clusters (:mod:`octreport.data.near_clusters`); the biggest
  clusters are listed, never every pair, so the audit stays near-linear in the images;
- **shortcuts**: a trivial property that predicts the class (:mod:`octreport.data.shortcuts`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from octreport.data.dataset import PreparedData
from octreport.data.dicom_headers import device_names
from octreport.data.fingerprint import DatasetFingerprint
from octreport.data.groups import GroupTable
from octreport.data.image_facts import HASH_SIZE, ImageFacts, SplitFacts, collect_image_facts
from octreport.data.layout import SPLIT_NAMES
from octreport.data.near_clusters import CLUSTERS_LISTED, NearCluster, NearClusters, PairCounts, cluster_near_duplicates
from octreport.data.patients import NAMES, PatientTable
from octreport.data.shortcuts import SHORTCUT_MARGIN, ShortcutResult, shortcut_check

log = logging.getLogger(__name__)

HAMMING_THRESHOLD = 4
"""Largest pHash distance (of 64 bits) at which two images count as near-duplicates. On the 1,000
real scans of oct-real the 25 copies filed under other patients are at 0, then one pair at 4 (two
similar retinas of different patients, not a copy), 9 at 6 and most pairs at 16-30; a JPEG-70,
3-pixel-shifted copy of a constructed scan lies 0 to 6 bits from it (0, 2, 4, 0 for four seeds, 6 for
one wrapped-around shift), so 4 catches most copies at the cost of an occasional look-alike, which
the report shows side by side for a person to judge. (pHash distances are even: each hash has as
many ones as zeros.) The synthetic sample_data is drawn with scans of different patients at least 8
bits apart (:data:`octreport.data.synthetic.DISTINCT_BITS`), so it passes this audit."""
EXAMPLES = 5


@dataclass(frozen=True)
class AuditedImage:
    """One image of the run: ``path`` relative to the data root, its split, class and SHA-256."""

    path: str
    split: str
    class_name: str
    sha256: str


@dataclass(frozen=True)
class SharedPatient:
    """A patient with images in more than one split: ``images`` per split, a few ``examples``."""

    patient: str
    images: tuple[tuple[str, int], ...]
    examples: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"patient": self.patient, "images": dict(self.images), "examples": list(self.examples)}


@dataclass(frozen=True)
class DuplicateGroup:
    """Files with the same bytes: ``files`` as (path, split, class)."""

    sha256: str
    files: tuple[tuple[str, str, str], ...]

    @property
    def across_splits(self) -> bool:
        return len({split for _, split, _ in self.files}) > 1

    @property
    def label_conflict(self) -> bool:
        return len({name for _, _, name in self.files}) > 1

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "files": [{"path": p, "split": s, "class": c} for p, s, c in self.files],
                "across_splits": self.across_splits, "label_conflict": self.label_conflict}


@dataclass(frozen=True)
class NearDuplicatePair:
    """Two images whose hashes differ in ``distance`` bits."""

    first: AuditedImage
    second: AuditedImage
    distance: int
    same_patient: bool

    @property
    def across_splits(self) -> bool:
        return self.first.split != self.second.split

    def to_dict(self) -> dict:
        return {"first": {"path": self.first.path, "split": self.first.split, "class": self.first.class_name},
                "second": {"path": self.second.path, "split": self.second.split, "class": self.second.class_name},
                "distance": self.distance, "same_patient": self.same_patient}


@dataclass(frozen=True)
class NearDuplicateCluster:
    """Images whose perceptual hashes are linked within the threshold: ``size`` images, their
    near-duplicate ``pairs`` (different or unknown patients) and those ``across_splits``, images
    per split, the first images and an example pair (None when none was found among them)."""

    size: int
    pairs: int
    across_splits: int
    splits: tuple[tuple[str, int], ...]
    images: tuple[AuditedImage, ...]
    example: NearDuplicatePair | None

    def to_dict(self) -> dict:
        return {"size": self.size, "pairs": self.pairs, "pairs_across_splits": self.across_splits,
                "images_per_split": dict(self.splits),
                "first_images": [{"path": i.path, "split": i.split, "class": i.class_name} for i in self.images],
                "example_pair": None if self.example is None else self.example.to_dict()}


@dataclass(frozen=True)
class DataAudit:
    """Everything the data audit found. ``counts``: images per split and class; ``patients``:
    distinct known patients per split (None when no image has a known patient)."""

    counts: dict[str, dict[str, int]]
    patients: dict[str, int] | None
    patient_source: str
    images_without_patient: int
    shared_patients: tuple[SharedPatient, ...]
    duplicate_groups: tuple[DuplicateGroup, ...]
    near_counts: PairCounts
    """Near-duplicate pairs of different or unknown patients (exact duplicates left out), of those
    across splits, and same-patient look-alikes: exact counts."""
    near_clusters: tuple[NearDuplicateCluster, ...]
    """The biggest clusters, at most :data:`~octreport.data.near_clusters.CLUSTERS_LISTED`."""
    near_cluster_count: int
    shortcuts: tuple[ShortcutResult, ...]
    image_sizes: tuple[tuple[str, int], ...]
    """``("1024x496", n)``, most frequent first."""
    hamming_threshold: int = HAMMING_THRESHOLD
    skipped: tuple[str, ...] = field(default=())
    """Checks not done, and why."""
    devices: tuple[tuple[str, int], ...] = field(default=())
    """``("Heidelberg Engineering Spectralis", files)``: the DICOM devices (Manufacturer and
    ManufacturerModelName) of the files that name one, most frequent first; empty when none does."""

    @property
    def leaked_patients(self) -> int:
        return len(self.shared_patients)

    @property
    def exact_across_splits(self) -> tuple[DuplicateGroup, ...]:
        return tuple(g for g in self.duplicate_groups if g.across_splits)

    @property
    def exact_within_splits(self) -> tuple[DuplicateGroup, ...]:
        return tuple(g for g in self.duplicate_groups if not g.across_splits)

    @property
    def label_conflicts(self) -> tuple[DuplicateGroup, ...]:
        return tuple(g for g in self.duplicate_groups if g.label_conflict)

    @property
    def duplicates_across_splits(self) -> int:
        """What ``--max-duplicates`` counts: groups of identical files that span splits, plus
        near-duplicate pairs (different or unknown patients) that span splits."""
        return len(self.exact_across_splits) + self.near_counts.across_splits

    def near_examples(self) -> tuple[NearDuplicatePair, ...]:
        """One example pair per listed cluster, those across splits first."""
        found = [c.example for c in self.near_clusters if c.example is not None]
        return tuple(sorted(found, key=lambda p: not p.across_splits))

    @property
    def flagged_shortcuts(self) -> tuple[ShortcutResult, ...]:
        return tuple(s for s in self.shortcuts if s.flagged)

    def findings(self) -> tuple[str, ...]:
        """One line per kind of problem found, worst first; empty when the data look clean."""
        lines = []
        if self.label_conflicts:
            g = self.label_conflicts[0]
            lines.append(f"{len(self.label_conflicts)} label conflict(s): the same image under two classes "
                         f"(e.g. {' and '.join(f'{p} ({c})' for p, _, c in g.files[:2])}).")
        if self.shared_patients:
            p = self.shared_patients[0]
            lines.append(f"{self.leaked_patients} patient(s) have images in more than one split (e.g. patient "
                         f"{p.patient}: {', '.join(f'{n} in {s}' for s, n in p.images)}): the test split is not "
                         "independent of training.")
        if self.exact_across_splits:
            g = self.exact_across_splits[0]
            lines.append(f"{len(self.exact_across_splits)} file(s) copied byte for byte across splits (e.g. "
                         f"{' = '.join(f'{path} ({split})' for path, split, _ in g.files[:2])}).")
        if self.near_counts.across_splits:
            p = next((p for p in self.near_examples() if p.across_splits), None)
            example = "" if p is None else (f" (e.g. {p.first.path} ({p.first.split}) and {p.second.path} ({p.second.split}), "
                                            f"{p.distance} of 64 hash bits apart)")
            lines.append(f"{self.near_counts.across_splits:,} near-duplicate pair(s) across splits{example}, in "
                         f"{self.near_cluster_count:,} cluster(s).")
        for s in self.flagged_shortcuts:
            lines.append(f"Shortcut: the image's {s.feature} alone predicts the class with {s.accuracy:.0%} accuracy on "
                         f"the test split (chance {s.chance:.0%}).")
        within = self.exact_within_splits
        if within:
            lines.append(f"{len(within)} group(s) of identical files within one split.")
        near_within = self.near_counts.pairs - self.near_counts.across_splits
        if near_within:
            lines.append(f"{near_within:,} near-duplicate pair(s) of different patients within one split.")
        return tuple(lines)

    def worst_finding(self) -> str | None:
        found = self.findings()
        return found[0] if found else None

    def to_dict(self) -> dict:
        """The ``data_audit`` entry of metrics.json."""
        return {
            "counts": self.counts,
            "patients_per_split": self.patients,
            "patient_source": self.patient_source,
            "images_without_patient": self.images_without_patient,
            "image_sizes": dict(self.image_sizes),
            "devices": dict(self.devices),
            "leaked_patients": self.leaked_patients,
            "shared_patients": [p.to_dict() for p in self.shared_patients],
            "exact_duplicate_groups": len(self.duplicate_groups),
            "exact_duplicates_across_splits": len(self.exact_across_splits),
            "exact_duplicates_within_splits": len(self.exact_within_splits),
            "label_conflicts": len(self.label_conflicts),
            "duplicate_groups": [g.to_dict() for g in self.duplicate_groups],
            "near_duplicate_hash": f"pHash: {HASH_SIZE}x{HASH_SIZE} lowest DCT frequencies of a 32x32 grayscale image (64 bits)",
            "near_duplicate_threshold_bits": self.hamming_threshold,
            "near_duplicates": self.near_counts.pairs,
            "near_duplicates_across_splits": self.near_counts.across_splits,
            "near_duplicate_clusters": self.near_cluster_count,
            "near_duplicate_clusters_listed_at_most": CLUSTERS_LISTED,
            "near_duplicate_cluster_list": [c.to_dict() for c in self.near_clusters],
            "same_patient_similar_pairs": self.near_counts.same_patient,
            "duplicates_across_splits": self.duplicates_across_splits,
            "shortcut_margin": SHORTCUT_MARGIN,
            "shortcuts": [s.to_dict() for s in self.shortcuts],
            "flagged_shortcuts": [s.feature for s in self.flagged_shortcuts],
            "findings": list(self.findings()),
            "skipped": list(self.skipped),
        }


def audit_data(
    images: Sequence[AuditedImage],
    class_names: Sequence[str],
    facts: ImageFacts | None = None,
    patients: PatientTable = NAMES,
    threshold: int = HAMMING_THRESHOLD,
) -> DataAudit:
    """Audit ``images`` (every image of the run, all splits). ``facts``: aligned with ``images``;
    None skips the near-duplicate and shortcut checks (said in ``skipped``)."""
    images = tuple(images)
    patient_of = [patients.patient(image.path) for image in images]
    skipped = []
    if facts is None:
        skipped.append("near-duplicates and shortcuts: no image facts were collected")
        near, shortcuts, sizes = NearClusters(PairCounts(0, 0, 0), 0, ()), (), ()
    else:
        if len(facts) != len(images):
            raise ValueError(f"facts for {len(facts)} images, but {len(images)} images")
        near = _near_duplicates(images, facts, patient_of, threshold)
        shortcuts = _shortcuts(images, facts, class_names)
        if not shortcuts:
            skipped.append("shortcuts: the train or test split is empty")
        ok = facts.decoded
        sizes = tuple((f"{w}x{h}", n) for (w, h), n in
                      Counter(zip(facts.width[ok].tolist(), facts.height[ok].tolist())).most_common())
    known = [p for p in patient_of if p is not None]
    if not known:
        skipped.append(f"patient leakage: no image has a known patient ({patients.source}); "
                       "give a file,patient CSV with --patients")
    return DataAudit(
        counts=_counts(images, class_names),
        patients={s: len({p for img, p in zip(images, patient_of) if img.split == s and p}) for s in _splits(images)}
        if known else None,
        patient_source=patients.source,
        images_without_patient=len(images) - len(known),
        shared_patients=_shared_patients(images, patient_of),
        duplicate_groups=_duplicate_groups(images),
        near_counts=near.counts,
        near_clusters=tuple(_cluster(c, images) for c in near.listed),
        near_cluster_count=near.clusters,
        shortcuts=shortcuts,
        image_sizes=sizes,
        hamming_threshold=threshold,
        skipped=tuple(skipped),
    )


def _splits(images: Sequence[AuditedImage]) -> list[str]:
    present = {image.split for image in images}
    return [s for s in SPLIT_NAMES if s in present] + sorted(present - set(SPLIT_NAMES))


def _counts(images, class_names) -> dict[str, dict[str, int]]:
    counts = {split: {name: 0 for name in class_names} for split in _splits(images)}
    for image in images:
        counts[image.split][image.class_name] += 1
    return counts


def _shared_patients(images, patient_of) -> tuple[SharedPatient, ...]:
    by_patient: dict[str, list[AuditedImage]] = defaultdict(list)
    for image, patient in zip(images, patient_of):
        if patient is not None:
            by_patient[patient].append(image)
    shared = []
    for patient, own in by_patient.items():
        per_split = Counter(image.split for image in own)
        if len(per_split) > 1:
            order = _splits(own)
            examples = tuple(next(img.path for img in own if img.split == s) for s in order)[:EXAMPLES]
            shared.append(SharedPatient(patient, tuple((s, per_split[s]) for s in order), examples))
    # Most test images first: those are the ones whose scores the leak inflates.
    shared.sort(key=lambda p: (-dict(p.images).get("test", 0), -sum(n for _, n in p.images), p.patient))
    return tuple(shared)


def _duplicate_groups(images) -> tuple[DuplicateGroup, ...]:
    by_hash: dict[str, list[AuditedImage]] = defaultdict(list)
    for image in images:
        by_hash[image.sha256].append(image)
    groups = [DuplicateGroup(sha, tuple(sorted((i.path, i.split, i.class_name) for i in same)))
              for sha, same in by_hash.items() if len(same) > 1]
    groups.sort(key=lambda g: (not g.label_conflict, not g.across_splits, g.files))
    return tuple(groups)


def _near_duplicates(images, facts: ImageFacts, patient_of, threshold) -> NearClusters:
    usable = np.flatnonzero(facts.decoded)
    picked = [images[i] for i in usable.tolist()]
    found = cluster_near_duplicates(facts.phash[usable], [i.split for i in picked], [patient_of[i] for i in usable.tolist()],
                                    [i.sha256 for i in picked], threshold)
    # Back from positions among the decoded images to positions among all images.
    return NearClusters(found.counts, found.clusters, tuple(
        NearCluster(c.size, c.counts, c.splits, tuple(int(usable[i]) for i in c.listed),
                    None if c.example is None else (int(usable[c.example[0]]), int(usable[c.example[1]]), c.example[2]))
        for c in found.listed))


def _cluster(cluster: NearCluster, images: Sequence[AuditedImage]) -> NearDuplicateCluster:
    example = None
    if cluster.example is not None:
        i, j, distance = cluster.example
        example = NearDuplicatePair(images[i], images[j], distance, False)
    return NearDuplicateCluster(cluster.size, cluster.counts.pairs, cluster.counts.across_splits, cluster.splits,
                                tuple(images[i] for i in cluster.listed), example)


def _shortcuts(images, facts: ImageFacts, class_names) -> tuple[ShortcutResult, ...]:
    label = {name: index for index, name in enumerate(class_names)}
    labels = np.array([label[image.class_name] for image in images])
    split = np.array([image.split for image in images])
    train, test = (split == "train") & facts.decoded, (split == "test") & facts.decoded
    values = {
        "width": facts.width, "height": facts.height, "file type": facts.file_type,
        "file size": facts.file_size, "mean intensity": facts.mean_intensity,
    }
    return shortcut_check({name: (v[train], v[test]) for name, v in values.items()}, labels[train], labels[test])


def audit_prepared_data(data: PreparedData, fingerprint: DatasetFingerprint, patients: PatientTable = NAMES,
                        near_duplicate_bits: int = 4, collected: SplitFacts | None = None,
                        devices: GroupTable | None = None) -> DataAudit:
    """The data audit of a run: the fingerprint's SHA-256 of every file (no second hashing) and
    the facts of one DCT-scaled decode of every image (:mod:`octreport.data.image_facts`):
    ``collected`` when the run has them already (a model run collects them before training),
    else collected here; ``devices``: the DICOM devices of the files, counted per device."""
    images = [AuditedImage(r.path, r.split, r.class_name, r.sha256) for r in fingerprint.files]
    facts = (collect_image_facts([data.root / r.path for r in fingerprint.files]) if collected is None
             else collected.lookup_files([(r.split, r.path) for r in fingerprint.files]))
    audit = audit_data(images, data.class_names, facts, patients, near_duplicate_bits)
    named = Counter(d for d in device_names([r.path for r in fingerprint.files], devices) if d)
    audit = replace(audit, devices=tuple(sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))))
    for line in audit.findings():
        log.warning("data audit: %s", line)
    return audit
