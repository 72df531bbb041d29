"""Patient-disjoint k-fold cross-validation of a training preset on real OCT B-scans.

Run on demand (not a test), from the repository root:

    python benchmarks/crossval_oct_real.py [--data ../shared/oct-real] [--folds 5] [--seed 0]
        [--preset oct-real] [--out /tmp/octreport-crossval/oct-real-seed0.json] [--quick]
        [--only-fold K] [--tune] [--set FIELD=VALUE ...] [--measure-cache] [--export-variants]

Every patient lands in exactly one fold (``partition_by_patient(items, [1] * folds, seed)``). For
fold k the model is trained on the other folds; the validation split that early stopping and the
restored weights use is carved, patient-disjoint, from those training folds (``val_fraction`` of
their patients), never from fold k. Fold k is only predicted, once, after training.

``--tune`` never touches an evaluated fold: it trains on fold 0's inner training split and reports
the metrics on fold 0's inner validation split (the one split used for choosing the recipe).
``--set`` overrides preset values for such tuning runs (``epochs=20``, ``learning_rate=0.001``,
``preprocessing.normalization=none``, ``lr_schedule=constant`` ...).

Prints a markdown table (per fold, then mean, std, min and max over folds, and the mean's 95%
confidence interval: Student's t over the folds) and, below it, every metric pooled over all
evaluated scans (each scan is evaluated exactly once, by the model that did not train on it) with
octreport's own intervals (Wilson for proportions, a bootstrap over patients for the rest). Writes
per-fold results, with each fold's predictions, as JSON after every fold. ``--export-variants``
also scores each evaluated fold as other devices would export it (other widths, a darker curve;
:mod:`export_variants`) and prints that table too. ``--quick`` is a smoke run: a few patients per class, a 32x64
input and 2 epochs. Images shown in results: Kermany et al. 2018, Cell 172:1122 (CC BY 4.0).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from octreport.data.layout import ImageItem  # noqa: E402
from octreport.data.splits import partition_by_patient, patient_id  # noqa: E402
from octreport.evaluation.intervals import mean_interval  # noqa: E402

log = logging.getLogger("crossval")

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "oct-real"
DEFAULT_OUT_DIR = Path("/tmp/octreport-crossval")
QUICK_PATIENTS_PER_CLASS = 8


@dataclass(frozen=True)
class FoldSplit:
    """One fold: ``test`` is evaluated; ``train`` and ``val`` come from the other folds only."""

    index: int
    train: tuple[ImageItem, ...]
    val: tuple[ImageItem, ...]
    test: tuple[ImageItem, ...]


def assign_folds(items: Sequence[ImageItem], folds: int, seed: int, val_fraction: float) -> tuple[FoldSplit, ...]:
    """Patient-disjoint folds, each with a validation split carved from its own training folds."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    parts = partition_by_patient(items, [1] * folds, seed)
    splits = []
    for k, test in enumerate(parts):
        rest = [item for j, part in enumerate(parts) if j != k for item in part]
        train, val = partition_by_patient(rest, [1 - val_fraction, val_fraction], seed)
        splits.append(FoldSplit(k, train, val, test))
    return tuple(splits)


def quick_subset(items: Sequence[ImageItem], patients_per_class: int = QUICK_PATIENTS_PER_CLASS) -> tuple[ImageItem, ...]:
    """All images of the first few patients (by sorted id) of each class: a smoke-run data set."""
    chosen: dict[int, list[str]] = {}
    for patient in sorted({(item.label, patient_id(item)) for item in items}):
        label, pid = patient
        chosen.setdefault(label, [])
        if len(chosen[label]) < patients_per_class:
            chosen[label].append(pid)
    keep = {(label, pid) for label, pids in chosen.items() for pid in pids}
    return tuple(item for item in items if (item.label, patient_id(item)) in keep)


def apply_overrides(config, assignments: Sequence[str]):
    """``FIELD=VALUE`` (a Python literal or a bare word) onto a frozen config; ``preprocessing.X``
    changes one value of its Preprocessing."""
    for assignment in assignments:
        name, _, text = assignment.partition("=")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        if name.startswith("preprocessing."):
            prep = dataclasses.replace(config.preprocessing, **{name.split(".", 1)[1]: value})
            config = dataclasses.replace(config, preprocessing=prep)
        else:
            config = dataclasses.replace(config, **{name: value})
    return config


def run_fold(split: FoldSplit, data_root: Path, class_names: tuple[str, ...], config, tune: bool,
             export_variants: bool = False) -> dict:
    """Train on ``split.train`` (early stopping on ``split.val``) and score ``split.test`` (or, when
    tuning, ``split.val``). Returns the fold's JSON-ready results."""
    from octreport.data.dataset import PreparedData
    from octreport.evaluation.metrics import compute_classification_metrics
    from octreport.evaluation.predict import predict_items
    from octreport.evaluation.referral import compute_referral_metrics
    from octreport.models.training import train_model

    scored = split.val if tune else split.test
    data = PreparedData(
        data_root, "class-folders", class_names, split.train, split.val, scored, (), (),
        f"cross-validation fold {split.index}",
    )
    trained = train_model(data, config)
    rule = trained.metadata.referral_rule  # chosen on split.val, never on the scored fold
    threshold = None if rule is None else rule.threshold
    started = time.perf_counter()
    predictions = predict_items(trained.model, scored, config.preprocessing, config.batch_size)
    predict_seconds = time.perf_counter() - started
    metrics = compute_classification_metrics(predictions.labels, predictions.probabilities, class_names)
    referral = compute_referral_metrics(predictions.labels, predictions.probabilities, class_names)
    rule_referral = compute_referral_metrics(predictions.labels, predictions.probabilities, class_names, threshold)
    variants = None
    if export_variants:
        from export_variants import score_variants

        variants = score_variants(trained.model, scored, data_root, config.preprocessing, config.batch_size, class_names,
                                  threshold)
    return {
        "fold": split.index,
        "export_variants": variants,
        "scored_split": "inner validation (tuning)" if tune else "evaluated fold",
        "train_images": len(split.train),
        "val_images": len(split.val),
        "scored_images": len(predictions.labels),
        "train_patients": len({patient_id(i) for i in split.train}),
        "scored_patients": len({patient_id(i) for i in scored}),
        "train_seconds": trained.seconds,
        "predict_seconds": predict_seconds,
        "epochs_run": len(trained.metadata.history.get("loss", [])),
        "best_epoch": trained.metadata.best_epoch,
        "accuracy": metrics.accuracy,
        "sensitivity": {row.name: row.recall for row in metrics.per_class},
        "macro_roc_auc": metrics.macro_roc_auc,
        "referral": referral.to_dict() if referral else None,
        "referral_rule": None if rule is None else rule.to_dict(),
        "rule_referral": rule_referral.to_dict() if rule_referral else None,
        "confusion_matrix": [[int(v) for v in row] for row in metrics.confusion],
        "history": trained.metadata.history,
        "predictions": {
            "paths": [str(item.path.relative_to(data_root)) for item in predictions.items],
            "patients": [patient_id(item) for item in predictions.items],
            "labels": predictions.labels.tolist(),
            "probabilities": [[round(float(v), 7) for v in row] for row in predictions.probabilities],
        },
    }


COLUMNS = (
    ("accuracy", lambda r: r["accuracy"]),
    ("sens CNV", lambda r: r["sensitivity"].get("CNV")),
    ("sens DME", lambda r: r["sensitivity"].get("DME")),
    ("sens DRUSEN", lambda r: r["sensitivity"].get("DRUSEN")),
    ("sens NORMAL", lambda r: r["sensitivity"].get("NORMAL")),
    ("urgent sens", lambda r: (r["referral"] or {}).get("urgent_sensitivity")),
    ("urgent spec", lambda r: (r["referral"] or {}).get("urgent_specificity")),
    ("rule threshold", lambda r: (r.get("referral_rule") or {}).get("threshold")),
    ("rule sens", lambda r: (r.get("rule_referral") or {}).get("urgent_sensitivity")),
    ("rule spec", lambda r: (r.get("rule_referral") or {}).get("urgent_specificity")),
    ("weighted error", lambda r: (r["referral"] or {}).get("weighted_error")),
    ("train min", lambda r: r["train_seconds"] / 60),
    ("best/run epochs", None),
)


def summarize(results: Sequence[dict], level: float = 0.95) -> dict:
    """Mean, sample std (n-1), min and max over folds of every numeric column, and the t interval
    of the mean (``ci_low``/``ci_high``, None with a single fold)."""
    summary = {}
    for name, get in COLUMNS:
        if get is None:
            continue
        values = [get(r) for r in results if get(r) is not None]
        if values:
            interval = mean_interval(values, level)
            if interval is not None:  # a t interval knows no bounds; a share lies in [0, 1], an error above 0
                top = 1.0 if name not in ("weighted error", "train min") else float("inf")
                interval = (interval[0], max(0.0, interval[1]), min(top, interval[2]))
            summary[name] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
                "ci_low": None if interval is None else interval[1],
                "ci_high": None if interval is None else interval[2],
            }
    return summary


def pooled_intervals(results: Sequence[dict], class_names: Sequence[str], settings) -> dict:
    """Every metric over all scored scans of all folds together, with octreport's intervals
    (Wilson; bootstrap over patients). Each scan was scored once, by a model that never saw it."""
    import numpy as np

    from octreport.evaluation.intervals import compute_metric_intervals
    from octreport.evaluation.metrics import compute_classification_metrics
    from octreport.evaluation.referral import compute_referral_metrics

    labels = np.concatenate([np.asarray(r["predictions"]["labels"], dtype=np.int64) for r in results])
    probabilities = np.concatenate([np.asarray(r["predictions"]["probabilities"], dtype=np.float64) for r in results])
    patients = [p for r in results for p in r["predictions"]["patients"]]
    metrics = compute_classification_metrics(labels, probabilities, class_names)
    referral = compute_referral_metrics(labels, probabilities, class_names)
    return compute_metric_intervals(metrics, probabilities, referral, patients, settings).to_dict()


def pooled_table(pooled: dict) -> str:
    """The pooled metrics as markdown: value (95% CI low-high), method."""
    from octreport.evaluation.intervals import Interval
    from octreport.formatting import with_ci

    level = pooled["level"]
    rows = [("accuracy", pooled["accuracy"], "fraction")]
    rows += [(f"sensitivity {name}", entry["recall"], "fraction") for name, entry in pooled["per_class"].items()]
    rows += [("macro F1", pooled["macro"]["f1"], "score"), ("macro ROC AUC", pooled["macro_roc_auc"], "score")]
    referral = pooled.get("referral") or {}
    rows += [(label, referral[key], kind) for label, key, kind in (
        ("urgent-referral sensitivity", "urgent_sensitivity", "fraction"),
        ("urgent-referral specificity", "urgent_specificity", "fraction"),
        ("urgent ROC AUC", "urgent_roc_auc", "score"), ("weighted error", "weighted_error", "score")) if key in referral]
    lines = [f"| pooled over {pooled['n_images']} scans ({pooled['n_units']} {pooled['unit']}s) | value ({level:.0%} CI) | method |",
             "|---|---|---|"]
    for label, entry, kind in rows:
        interval = Interval(entry["value"], entry["low"], entry["high"], entry["method"], level)
        lines.append(f"| {label} | {with_ci(interval, kind)} | {entry['method']} |")
    return "\n".join(lines)


def markdown_table(results: Sequence[dict], summary: dict) -> str:
    header = "| fold | n | " + " | ".join(name for name, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]

    def cell(value, name):
        if value is None:
            return "-"
        return f"{value:.1f}" if name == "train min" else f"{value:.3f}"

    for r in results:
        cells = [
            f"{r['best_epoch']}/{r['epochs_run']}" if get is None else cell(get(r), name) for name, get in COLUMNS
        ]
        lines.append(f"| {r['fold']} | {r['scored_images']} | " + " | ".join(cells) + " |")
    for stat in ("mean", "std", "min", "max"):
        cells = ["" if get is None else cell(summary.get(name, {}).get(stat), name) for name, get in COLUMNS]
        lines.append(f"| **{stat}** | | " + " | ".join(cells) + " |")
    ci_cells = []
    for name, get in COLUMNS:
        entry = summary.get(name, {}) if get is not None else {}
        low, high = entry.get("ci_low"), entry.get("ci_high")
        ci_cells.append("" if low is None else f"{cell(low, name)}-{cell(high, name)}")
    lines.append("| **95% CI of the mean** | | " + " | ".join(ci_cells) + " |")
    return "\n".join(lines)


def measure_cache(split: FoldSplit, config) -> dict:
    """Seconds for one pass over the training split: decoding every file, writing the disk cache
    on the first pass, and reading it on a later pass (no model, no augmentation)."""
    import tempfile

    from octreport.data.pipeline import image_dataset

    def one_pass(dataset) -> float:
        started = time.perf_counter()
        for _ in dataset:
            pass
        return time.perf_counter() - started

    prep, batch = config.preprocessing, config.batch_size
    with tempfile.TemporaryDirectory(prefix="octreport-cache-bench-") as folder:
        uncached = one_pass(image_dataset(split.train, prep, batch, shuffle=True))
        cached = image_dataset(split.train, prep, batch, shuffle=True, cache_file=Path(folder) / "train")
        first = one_pass(cached)
        later = [one_pass(cached) for _ in range(3)]
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
    return {
        "images": len(split.train),
        "decode_every_epoch_s": uncached,
        "first_epoch_writing_cache_s": first,
        "later_epoch_reading_cache_s": statistics.median(later),
        "cache_bytes": size,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="class-folder data (default ../shared/oct-real)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds and of training")
    parser.add_argument("--preset", default="oct-real")
    parser.add_argument("--out", type=Path, default=None, help="JSON of per-fold results (default under /tmp)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few patients, 32x64 input, 2 epochs")
    parser.add_argument("--only-fold", type=int, action="append", default=None, help="run only this fold (repeatable)")
    parser.add_argument("--tune", action="store_true", help="score fold 0's inner validation split, not a fold")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--measure-cache", action="store_true", help="only time decoding against the disk cache")
    parser.add_argument("--export-variants", action="store_true",
                        help="also score each fold resampled to 512/768/1536 px wide and darker (export_variants.py)")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="JSON",
                        help="print the tables of per-fold result files written by separate runs (--only-fold) together")
    parser.add_argument("--bootstrap-resamples", type=int, default=2000, help="resamples of the pooled intervals")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    if args.merge:
        return print_merged(args.merge, args)
    from octreport.data.layout import scan_dataset
    from octreport.data.validation import partition_usable
    from octreport.models.recipes import preset_config

    config = dataclasses.replace(preset_config(args.preset), seed=args.seed)
    if args.quick:
        config = apply_overrides(config, ["epochs=2", "preprocessing.height=32", "preprocessing.width=64"])
    config = apply_overrides(config, args.overrides)
    scanned = scan_dataset(args.data)
    items, skipped = partition_usable(scanned.splits["all"])
    if args.quick:
        items = quick_subset(items)
    splits = assign_folds(items, args.folds, args.seed, config.val_fraction)
    log.info("%d images, %d patients, %d folds; config %s", len(items), len({patient_id(i) for i in items}), args.folds, config)

    if args.measure_cache:
        print(json.dumps(measure_cache(splits[0], config), indent=2))
        return 0

    tag = "tune" if args.tune else ("quick" if args.quick else "cv")
    out = args.out or DEFAULT_OUT_DIR / f"{args.preset}-{tag}-seed{args.seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    chosen = [splits[0]] if args.tune else [s for s in splits if args.only_fold is None or s.index in args.only_fold]
    results: list[dict] = []
    for split in chosen:
        log.info("fold %d: train %d, val %d, test %d images", split.index, len(split.train), len(split.val), len(split.test))
        results.append(run_fold(split, scanned.root, scanned.class_names, config, args.tune, args.export_variants))
        log.info("fold %d: accuracy %.3f in %.1f min", split.index, results[-1]["accuracy"], results[-1]["train_seconds"] / 60)
        summary = summarize(results)
        out.write_text(json.dumps({
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "preset": args.preset,
            "config": {**config.to_dict()},
            "data": str(args.data),
            "images": len(items),
            "skipped": [str(s.path) for s in skipped],
            "folds": args.folds,
            "seed": args.seed,
            "mode": tag,
            "results": results,
            "summary": summary,
            "citation": "Kermany et al. 2018, Cell 172:1122-1131 (data CC BY 4.0)",
        }, indent=2))
    from octreport.evaluation.bootstrap_settings import BootstrapSettings

    settings = BootstrapSettings(args.bootstrap_resamples, 0.95, args.seed)
    pooled = print_tables(results, scanned.class_names, settings, with_pooled=not args.tune)
    if pooled is not None:
        document = json.loads(out.read_text())
        document["pooled"] = pooled
        out.write_text(json.dumps(document, indent=2))
    print(f"\nper-fold results: {out}")
    return 0


def print_tables(results: Sequence[dict], class_names: Sequence[str], settings, with_pooled: bool = True) -> dict | None:
    """Print the per-fold table, the export variants' table when every fold has one, and (with
    ``with_pooled``, for two folds or more) the pooled metrics, which it returns."""
    print(markdown_table(results, summarize(results)))
    if all(r.get("export_variants") for r in results):
        from export_variants import variants_table

        print("\n" + variants_table(results))
    if not with_pooled or len(results) < 2:
        return None
    pooled = pooled_intervals(results, class_names, settings)
    print("\n" + pooled_table(pooled))
    return pooled


def print_merged(files: Sequence[Path], args: argparse.Namespace) -> int:
    """The per-fold, variants and pooled tables of folds run separately (the same preset, seed and
    settings; refused otherwise), each fold once."""
    documents = [json.loads(Path(f).read_text()) for f in files]
    settings = {json.dumps([d["config"], d["folds"], d["seed"], d["data"], d.get("mode")], sort_keys=True)
                for d in documents}
    if len(settings) != 1:
        raise SystemExit("--merge: the files come from different settings (config, folds, seed, data or mode)")
    results = sorted((r for d in documents for r in d["results"]), key=lambda r: r["fold"])
    if len({r["fold"] for r in results}) != len(results):
        raise SystemExit("--merge: a fold appears twice")
    from octreport.evaluation.bootstrap_settings import BootstrapSettings
    from octreport.evaluation.referral import OCT_CLASSES

    # OCT_CLASSES: what the per-fold files' labels index (oct-real's class folders, sorted)
    print_tables(results, OCT_CLASSES, BootstrapSettings(args.bootstrap_resamples, 0.95, documents[0]["seed"]))
    for r in results:
        rule = r.get("referral_rule") or {}
        reached = ("" if not rule.get("sensitivity") else
                   f", validation sens/spec {rule['sensitivity']['value']:.3f}/{rule['specificity']['value']:.3f}")
        print(f"fold {r['fold'] + 1}: threshold {rule.get('threshold')}{reached}; trained "
              f"{r['train_seconds'] / 60:.1f} min, best epoch {r['best_epoch']} of {r['epochs_run']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
