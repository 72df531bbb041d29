"""The reporting-checklist appendix: the items of CLAIM 2024 and TRIPOD+AI that an evaluation report
can address, each mapped to what in this report (a section, a manifest or metrics.json field, a
model-card field) addresses it, or marked "not addressed" with the reason.

Sources (item numbers as published; the topics below are abbreviated paraphrases, see the papers for
the full wording):

* :data:`CLAIM_CITATION`: CLAIM 2024, 44 items for AI in medical imaging;
* :data:`TRIPOD_AI_CITATION`: TRIPOD+AI, 27 items (52 with their parts) for prediction models.

Items about a study's conduct that a report on one evaluation run cannot speak to (title,
abstract, registration, funding, ethics approval, patient involvement, ensembling, ...) are left
out. What a run shows depends on the run (trained or loaded model, the four OCT classes or not,
which model-card fields were given): :func:`checklist_rows` takes those :class:`ChecklistFacts`
and returns plain :class:`ChecklistRow` s; :mod:`octreport.report.build` turns them into the
appendix. Pure: nothing here reads files or imports the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from octreport.audit.model_card import CARD_LABELS, ModelCard

CLAIM = "CLAIM 2024"
TRIPOD_AI = "TRIPOD+AI"
CLAIM_CITATION = (
    "Tejani AS, Klontzas ME, Gatti AA, et al. Checklist for Artificial Intelligence in Medical Imaging "
    "(CLAIM): 2024 Update. Radiol Artif Intell 2024;6(4):e240300. doi:10.1148/ryai.240300"
)
TRIPOD_AI_CITATION = (
    "Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for reporting clinical "
    "prediction models that use regression or machine learning methods. BMJ 2024;385:e078378. "
    "doi:10.1136/bmj-2023-078378"
)

ADDRESSED, PARTLY, NOT_ADDRESSED = "addressed", "partly addressed", "not addressed"
SECTION, MANIFEST, METRICS, CARD = "section", "manifest.json", "metrics.json", "model card"


@dataclass(frozen=True)
class ChecklistFacts:
    """What this run shows, as far as the checklist needs it."""

    card: ModelCard
    trained_in_run: bool
    referral: bool
    intervals: bool
    errors_gallery: bool
    training_curves: bool
    split_by_octreport: bool  # every split made by octreport, patient-disjoint (class-folder layout)
    model_file: bool  # the model has a file (not an in-memory model)
    citation: bool
    heatmap_checks: bool = False  # the heat maps were checked (faithfulness curves, randomisation check)
    subgroups: bool = False  # performance per acquisition group (image size, --groups) is shown
    referral_rule: str = ""  # the urgent-referral rule in words and where it came from; "" without one
    referral_threshold: bool = False  # the rule is a threshold on P(CNV) + P(DME), not the predicted class


@dataclass(frozen=True)
class Ref:
    """Where an item is addressed. ``kind``: :data:`SECTION` (``target`` is the section's anchor),
    :data:`MANIFEST` or :data:`METRICS` (``target`` is a dotted field), :data:`CARD` (a card key)."""

    kind: str
    target: str


@dataclass(frozen=True)
class ChecklistRow:
    checklist: str
    item: str
    topic: str
    status: str
    where: tuple[Ref, ...]
    note: str = ""


@dataclass(frozen=True)
class _Mapping:
    status: str
    where: tuple[Ref, ...] = ()
    note: str = ""


_Resolver = Callable[[ChecklistFacts], _Mapping]


def _section(*anchors: str) -> tuple[Ref, ...]:
    return tuple(Ref(SECTION, a) for a in anchors)


def _manifest(*fields: str) -> tuple[Ref, ...]:
    return tuple(Ref(MANIFEST, f) for f in fields)


def _metrics(*fields: str) -> tuple[Ref, ...]:
    return tuple(Ref(METRICS, f) for f in fields)


def _fixed(status: str, where: tuple[Ref, ...] = (), note: str = "") -> _Resolver:
    return lambda facts: _Mapping(status, where, note)


def _card(*keys: str, also: tuple[Ref, ...] = (), without: str = NOT_ADDRESSED, full: str = ADDRESSED) -> _Resolver:
    """Addressed (``full``) by the model-card fields ``keys``; ``without`` them, what ``also`` shows."""

    def resolve(facts: ChecklistFacts) -> _Mapping:
        given = [k for k in keys if facts.card.get(k)]
        lacking = [CARD_LABELS[k].lower() for k in keys if k not in given]
        where = tuple(Ref(CARD, k) for k in given) + also
        if not lacking:
            return _Mapping(full, where)
        note = f"model card field(s) not given: {', '.join(lacking)}"
        status = PARTLY if given or (also and without == PARTLY) else without
        return _Mapping(status, where, note)

    return resolve


def _when(fact: str, yes: _Mapping, no: _Mapping) -> _Resolver:
    return lambda facts: yes if getattr(facts, fact) else no


_LOADED = "the model was loaded, not trained in this run: octreport does not know how it was trained"
_NO_INTERVALS = "no confidence intervals are computed"


def _split_level(facts: ChecklistFacts) -> _Mapping:
    if facts.split_by_octreport:
        return _Mapping(ADDRESSED, _metrics("data.split_note"),
                        "patient level: octreport split by the patient ID of Kermany-style file names")
    return _Mapping(PARTLY, _metrics("data.split_note"),
                    "the test split was taken as found on disk; octreport does not check at which level it is disjoint")


def _performance_precision(facts: ChecklistFacts) -> _Mapping:
    where = _section("metrics") + _metrics("referral" if facts.referral else "classification.per_class")
    return _Mapping(ADDRESSED, where) if facts.intervals else _Mapping(PARTLY, where, _NO_INTERVALS)


def _subgroup_performance(facts: ChecklistFacts) -> _Mapping:
    overall = _performance_precision(facts)
    if not facts.subgroups:
        return overall
    note = "; ".join(filter(None, (overall.note, "subgroups by image size, and by the groups of --groups when given")))
    return _Mapping(overall.status, overall.where + _section("data-shift") + _metrics("group_metrics"), note)


def _failure_analysis(facts: ChecklistFacts) -> _Mapping:
    return _Mapping(ADDRESSED, _section("confusion", *(("errors",) if facts.errors_gallery else ())))


def _training(facts: ChecklistFacts) -> _Mapping:
    if not facts.trained_in_run:
        return _Mapping(NOT_ADDRESSED, (), _LOADED)
    return _Mapping(ADDRESSED, _section(*(("training",) if facts.training_curves else ()), "appendix") + _manifest("config.train"))


def _final_model(facts: ChecklistFacts) -> _Mapping:
    if not facts.trained_in_run:
        return _Mapping(NOT_ADDRESSED, (), _LOADED)
    return _Mapping(ADDRESSED, _metrics("training.best_epoch") + _manifest("config.train.early_stopping_patience"),
                    "the weights of the epoch with the lowest validation loss (early stopping on a validation split)")


def _full_model(facts: ChecklistFacts) -> _Mapping:
    where = _manifest("model.file", "model.file_sha256", "model.weights_sha256")
    if facts.model_file:
        return _Mapping(ADDRESSED, where + _section("layers"))
    return _Mapping(PARTLY, _manifest("model.weights_sha256") + _section("layers"), "an in-memory model: no model file was saved")


def _thresholds(facts: ChecklistFacts) -> _Mapping:
    argmax = "the predicted class is the class of highest probability"
    if not facts.referral_rule:
        return _Mapping(ADDRESSED, _section("metrics"), argmax)
    where = _section("metrics", "operating-point") + _metrics("referral.rule")
    if facts.referral_threshold:
        return _Mapping(ADDRESSED, where, f"{argmax}; urgent referral: {facts.referral_rule}")
    return _Mapping(ADDRESSED, where, f"{argmax}, for urgent referral too: {facts.referral_rule}")


def _data_availability(facts: ChecklistFacts) -> _Mapping:
    where = (Ref(CARD, "data_provenance"),) if facts.card.get("data_provenance") else ()
    where += _section("appendix") if facts.citation else ()
    if where:
        return _Mapping(PARTLY, where + _manifest("data.files"), "where the data came from; not whether others may obtain them")
    return _Mapping(NOT_ADDRESSED, _manifest("data.files"), "only the image list is recorded; give the data provenance in the model card")


_ITEMS: tuple[tuple[str, str, str, _Resolver], ...] = (
    (CLAIM, "3", "Background, intended use and role of the AI approach", _card("intended_use", "intended_users")),
    (CLAIM, "7", "Data sources", _card("data_provenance", also=_manifest("data.root"), without=PARTLY)),
    (CLAIM, "9", "Data pre-processing", _fixed(ADDRESSED, _section("appendix") + _manifest("preprocessing"))),
    (CLAIM, "10", "Selection of data subsets", _fixed(ADDRESSED, _manifest("data.files", "data.skipped"))),
    (CLAIM, "12", "How missing data were handled", _fixed(ADDRESSED, _section("warnings") + _manifest("data.skipped"),
                                                          "damaged image files are skipped and listed")),
    (CLAIM, "13", "Image acquisition protocol", _card("data_provenance", full=PARTLY)),
    (CLAIM, "14", "Method used to obtain the reference standard", _card("reference_standard")),
    (CLAIM, "15", "Rationale for choosing the reference standard", _card("reference_standard", full=PARTLY)),
    (CLAIM, "16", "Source of the reference standard annotations", _card("reference_standard", full=PARTLY)),
    (CLAIM, "19", "How data were assigned to partitions", _fixed(ADDRESSED, _metrics("data.split_note") + _manifest("data.files"))),
    (CLAIM, "20", "Level at which partitions are disjoint", _split_level),
    (CLAIM, "21", "Intended sample size", _fixed(PARTLY, _metrics("data.counts"), "the number of images is given, not how it was chosen")),
    (CLAIM, "22", "Detailed description of the model", _fixed(ADDRESSED, _section("layers") + _manifest("model"))),
    (CLAIM, "23", "Software libraries, frameworks and packages", _fixed(ADDRESSED, _section("appendix") + _manifest("versions"))),
    (CLAIM, "24", "Initialization of model parameters", _when(
        "trained_in_run", _Mapping(PARTLY, _manifest("seed.train"), "random initialization with the recorded seed"),
        _Mapping(NOT_ADDRESSED, (), _LOADED))),
    (CLAIM, "25", "Details of the training approach", _training),
    (CLAIM, "26", "Method of selecting the final model", _final_model),
    (CLAIM, "28", "Metrics of model performance", _fixed(ADDRESSED, _section("metrics"))),
    (CLAIM, "29", "Statistical measures of significance and uncertainty", _when(
        "intervals", _Mapping(ADDRESSED, _section("metrics")), _Mapping(NOT_ADDRESSED, (), _NO_INTERVALS))),
    (CLAIM, "30", "Robustness or sensitivity analysis", _fixed(NOT_ADDRESSED, (), "not part of an octreport run")),
    (CLAIM, "31", "Methods for explainability or interpretability", _when(
        "heatmap_checks",
        _Mapping(ADDRESSED, _section("feature-maps", "attention", "heatmap-checks") + _metrics("heatmap_checks"),
                 "Grad-CAM is validated against the model (deletion and insertion curves against a random map, the "
                 "randomisation sanity check), not against experts' annotations"),
        _Mapping(PARTLY, _section("feature-maps", "attention"),
                 "Grad-CAM and feature maps are shown; they are not validated here (--no-heatmap-checks)"))),
    (CLAIM, "32", "Evaluation on internal data", _fixed(ADDRESSED, _section("metrics", "confusion"),
                                                        "the held-out test split, never used for training")),
    (CLAIM, "33", "Testing on external data", _card(
        "data_provenance", full=PARTLY, without=NOT_ADDRESSED)),
    (CLAIM, "35", "Numbers of patients or examinations included and excluded", _fixed(
        PARTLY, _metrics("data.counts") + _section("warnings"), "images per class and split, and the files excluded; not patients")),
    (CLAIM, "36", "Demographic and clinical characteristics in each partition", _fixed(
        NOT_ADDRESSED, (), "octreport sees only images and their class folders")),
    (CLAIM, "37", "Performance metrics and measures of statistical uncertainty", _performance_precision),
    (CLAIM, "38", "Estimates of diagnostic performance and their precision", _performance_precision),
    (CLAIM, "39", "Failure analysis of incorrect results", _failure_analysis),
    (CLAIM, "40", "Study limitations", _card("limitations", also=_section("warnings"), without=PARTLY)),
    (CLAIM, "41", "Implications for practice, intended use, clinical role", _card("intended_use", "out_of_scope_uses")),
    (CLAIM, "43", "Availability of software, trained model and data", _fixed(
        PARTLY, _manifest("model.file", "versions.octreport", "data.files"),
        "the files used are identified by their hashes; not whether others may obtain them")),
    (TRIPOD_AI, "3b", "Target population, intended purpose in the care pathway, intended users",
     _card("intended_use", "intended_users")),
    (TRIPOD_AI, "3c", "Known health inequalities between sociodemographic groups", _card("ethical_considerations", full=PARTLY)),
    (TRIPOD_AI, "5a", "Data sources and how well they represent the target population",
     _card("data_provenance", also=_manifest("data.root"), without=PARTLY)),
    (TRIPOD_AI, "7", "Data preparation: pre-processing and quality checking", _fixed(
        ADDRESSED, _section("appendix", "warnings") + _manifest("preprocessing", "data.skipped"))),
    (TRIPOD_AI, "8a", "Outcome: definition and how it was assessed", _card("reference_standard")),
    (TRIPOD_AI, "10", "How the study size was arrived at", _fixed(PARTLY, _metrics("data.counts"),
                                                                  "the number of images is given, not how it was chosen")),
    (TRIPOD_AI, "11", "How missing data were handled", _fixed(ADDRESSED, _section("warnings") + _manifest("data.skipped"))),
    (TRIPOD_AI, "12a", "How the data were used, including partitioning", _fixed(
        ADDRESSED, _metrics("data.split_note") + _manifest("data.files"))),
    (TRIPOD_AI, "12c", "Type of model, model-building steps, hyperparameters", _when(
        "trained_in_run", _Mapping(ADDRESSED, _section("layers", "appendix") + _manifest("config.train")),
        _Mapping(PARTLY, _section("layers"), _LOADED))),
    (TRIPOD_AI, "12e", "Performance measures and their rationale", _fixed(ADDRESSED, _section("metrics"))),
    (TRIPOD_AI, "12g", "How the predictions were calculated", _fixed(
        ADDRESSED, _section("appendix") + _manifest("model.weights_sha256", "command_line", "artifacts.predictions.csv"))),
    (TRIPOD_AI, "13", "Class imbalance: methods used and any recalibration", _when(
        "trained_in_run", _Mapping(PARTLY, _manifest("config.train.class_weights") + _section("warnings"),
                                   "class weights during training; no recalibration"),
        _Mapping(PARTLY, _section("warnings"), "imbalance is flagged; " + _LOADED))),
    (TRIPOD_AI, "14", "Approaches to model fairness", _card("ethical_considerations", full=PARTLY)),
    (TRIPOD_AI, "15", "Model output and how classification thresholds were set", _thresholds),
    (TRIPOD_AI, "18e", "Data availability", _data_availability),
    (TRIPOD_AI, "18f", "Code availability", _fixed(ADDRESSED, _section("appendix") + _manifest("versions.octreport"))),
    (TRIPOD_AI, "20b", "Characteristics of the data, including sample size", _fixed(
        PARTLY, _metrics("data.counts"), "images per class and split; no demographics")),
    (TRIPOD_AI, "21", "Number of participants and outcome events in each analysis", _fixed(
        PARTLY, _metrics("data.counts", "classification.per_class"), "counted in images, not patients")),
    (TRIPOD_AI, "22", "Full model, sufficient to predict for new individuals", _full_model),
    (TRIPOD_AI, "23a", "Performance with confidence intervals, including key subgroups", _subgroup_performance),
    (TRIPOD_AI, "26", "Limitations", _card("limitations", also=_section("warnings"), without=PARTLY)),
    (TRIPOD_AI, "27b", "Users' interaction with the model, and the expertise required", _card("intended_users")),
)


def checklist_rows(facts: ChecklistFacts) -> tuple[ChecklistRow, ...]:
    """Every item, in checklist order, with where this run addresses it and how fully."""
    rows = []
    for checklist, item, topic, resolve in _ITEMS:
        mapping = resolve(facts)
        rows.append(ChecklistRow(checklist, item, topic, mapping.status, mapping.where, mapping.note))
    return tuple(rows)


def status_counts(rows: Sequence[ChecklistRow]) -> dict[str, int]:
    """``{status: number of items}`` in the order addressed, partly, not addressed."""
    return {status: sum(r.status == status for r in rows) for status in (ADDRESSED, PARTLY, NOT_ADDRESSED)}
