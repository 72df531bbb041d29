"""Named training recipes: frozen configurations that ``--preset NAME`` starts from.

``oct-real`` is the recipe for real Spectralis B-scans (Kermany et al. 2018, CC BY 4.0): about
1,000 scans, 496 px tall and 512-1536 px wide, trained on two CPU cores in under 20 minutes.
Every choice and the reason for it is written beside the value below.

Patient-disjoint 5-fold cross-validation on the 1,000 scans of ``shared/oct-real`` (635 patients;
``python benchmarks/crossval_oct_real.py --folds 5 --seed 0 --preset oct-real --export-variants``,
800 scans per training, 15% of their patients for early stopping): accuracy 0.951 +/- 0.016 (std
over folds, 0.925-0.970), urgent-referral sensitivity 0.970 and specificity 0.976, weighted error
0.078; 6.4-12.9 min of training per fold on two CPU cores (idle to shared). The same folds
resampled to 512, 768 or 1536 px wide score 95.1-95.5% against 95.1% as they are, and a darker
export 94.3% (the former centre-crop recipe: 0.935 +/- 0.026). Data: Kermany et al. 2018, Cell
172:1122.
"""

from __future__ import annotations

import dataclasses

from octreport.config import TrainConfig
from octreport.data.preprocessing import Preprocessing
from octreport.errors import ConfigError

OCT_REAL = TrainConfig(
    # Separable convs after a stride-2 stem: ~0.14 M weights, fast enough on 2 cores for 128x256.
    architecture="compact-bn",
    preprocessing=Preprocessing(
        # 1:2 like the scans (most are 1024x496, i.e. 1:2.06): 496 -> 128 rows keeps the retina
        # about 20 rows thick and its layers visible, for twice the pixels of a 128x128 input.
        height=128,
        width=256,
        # OCT is grayscale; the two RGB JPEGs in the data are converted.
        channels=1,
        # The whole scan, fitted to 1:2 ("stretch"). Kermany's scans are exported 512, 768, 1024 or
        # 1536 px wide for about the same width of retina (the width is the lateral sampling), so
        # fitting the full width brings every export to the same geometry. The former "crop" kept the
        # pixel scale instead: a 512-wide scan then reached the model at twice the zoom with the
        # top and bottom of the retina cut, and an external set of mostly 512-wide scans fell to
        # 55% accuracy (issue 13). The 1024x496 majority changes by 3% in aspect.
        aspect="stretch",
        # Exports differ in brightness and contrast: stretch each scan's 1st-99th percentile.
        normalization="percentile",
    ),
    # Cosine decay ends training at a low learning rate; early stopping rarely needs to stop it.
    # 40 epochs: with 30, the best epoch was 25-28 in four of the five cross-validation folds (still
    # improving), and the export augmentations below make each epoch's task harder.
    epochs=40,
    batch_size=32,
    learning_rate=2e-3,
    lr_schedule="cosine",
    warmup_epochs=2,
    # Horizontal flip, small shifts and zoom, brightness and contrast: never a vertical flip.
    augment=True,
    # Exports differ in lateral field of view and intensity curve as well: the retina 80-120% as
    # wide, and a gamma of 0.74-1.35 (the percentile normalization above undoes only linear changes).
    width_scale_augment=0.2,
    gamma_augment=0.3,
    # The classes are balanced in oct-real (weights ~1); on unbalanced data this matters.
    class_weights=True,
    # The best epoch (lowest validation loss) is restored. The validation loss of 120 scans jumps
    # about while the learning rate is high; a patience of 10 rides most of that out.
    early_stopping_patience=10,
    seed=0,
    val_fraction=0.15,
    test_fraction=0.2,
)

PRESETS: dict[str, TrainConfig] = {"oct-real": OCT_REAL}


def preset_config(name: str, **overrides) -> TrainConfig:
    """The preset ``name`` with ``overrides`` (explicit options) replacing its values.

    A ``preprocessing`` override replaces the whole Preprocessing; build it from the preset's with
    ``dataclasses.replace(preset.preprocessing, ...)`` to change one of its values.
    """
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.") from None
    return dataclasses.replace(preset, **overrides)
