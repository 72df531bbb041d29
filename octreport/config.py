"""Run configuration: frozen dataclasses with their defaults in code, validated when built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from octreport.data.augmentation import Augmentation
from octreport.data.dataset import SPLIT_AUTO, SPLIT_CHOICES
from octreport.data.dicom_frames import DICOM_FRAMES, FRAMES_CENTER
from octreport.data.preprocessing import INPUT_SCALES, Preprocessing
from octreport.errors import ConfigError
from octreport.evaluation.bootstrap_settings import BootstrapSettings
from octreport.evaluation.faithfulness import BASELINES as HEATMAP_BASELINES
from octreport.evaluation.referral_rule import DEFAULT_TARGET_SENSITIVITY

ARCHITECTURE_NAMES = ("notebook", "compact-bn")
LR_SCHEDULES = ("constant", "cosine")
DISTRIBUTE_MODES = ("none", "mirrored", "multi-worker")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained. Validation data come from the train split, never from test.

    ``lr_schedule``: ``constant`` (the learning rate throughout) or ``cosine`` (linear warm-up from
    a tenth of the learning rate over ``warmup_epochs``, at most ``epochs - 1`` of them so that a
    short smoke run still works, then cosine decay to 0 at ``epochs``).
    ``early_stopping_start``: epochs before which the validation loss is neither monitored nor
    its weights kept (Keras's ``start_from_epoch``): while the learning rate is high, a small
    validation split's loss jumps about and a lucky early epoch can be restored. When it is
    ``epochs`` or more, the last epoch's weights are kept.
    ``distribute``: ``none``, ``mirrored`` (every GPU of this machine, or its CPU) or
    ``multi-worker`` (several hosts described by ``TF_CONFIG``); see :mod:`octreport.models.distribute`.
    ``batch_size`` is the global batch, split over the replicas.
    ``follow_symlinks``: read symbolic links that lead outside the data folder (skipped otherwise).
    ``width_scale_augment``, ``gamma_augment``: the optional parts of the augmentation (horizontal
    scale, intensity curve) that make a model robust to other devices' exports;
    ``field_of_view_augment``, ``vertical_shift_augment``, ``tilt_augment``, ``speckle_augment``,
    ``blur_augment``: those for other devices' fields of view, retina positions, noise and optics; see
    :class:`~octreport.data.augmentation.Augmentation`. Used only when ``augment`` is on.
    ``deterministic``: with the same seed, data and machine, training gives bit-identical weights
    (TensorFlow's op determinism; see :mod:`octreport.models.training`). False trades that for speed.
    ``referral_sensitivity``: the urgent-referral sensitivity the model's referral threshold aims at,
    chosen on the validation split after training (:mod:`octreport.evaluation.referral_rule`; four
    OCT classes only).
    """

    architecture: str = "notebook"
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 1e-3
    augment: bool = True
    width_scale_augment: float = 0.0
    gamma_augment: float = 0.0
    field_of_view_augment: float = 0.0
    vertical_shift_augment: float = 0.0
    tilt_augment: float = 0.0
    speckle_augment: float = 0.0
    blur_augment: float = 0.0
    class_weights: bool = True
    early_stopping_patience: int = 5
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    early_stopping_start: int = 0
    distribute: str = "none"
    follow_symlinks: bool = False
    deterministic: bool = True
    referral_sensitivity: float = DEFAULT_TARGET_SENSITIVITY

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURE_NAMES:
            raise ConfigError(
                f"Unknown architecture '{self.architecture}'. Choose one of: {', '.join(ARCHITECTURE_NAMES)}."
            )
        _require(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}.")
        _require_seed(self.seed)
        _require(self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}.")
        _require(0 < self.learning_rate < 1, f"learning rate must be between 0 and 1, got {self.learning_rate}.")
        _require(self.early_stopping_patience >= 1, "early-stopping patience must be at least 1 epoch.")
        _require(self.lr_schedule in LR_SCHEDULES,
                 f"lr schedule must be one of {', '.join(LR_SCHEDULES)}, got '{self.lr_schedule}'.")
        _require(self.warmup_epochs >= 0, f"warm-up epochs must be 0 or more, got {self.warmup_epochs}.")
        _require(self.early_stopping_start >= 0,
                 f"early stopping must start at epoch 0 or later, got {self.early_stopping_start}.")
        _require(self.distribute in DISTRIBUTE_MODES,
                 f"distribute must be one of {', '.join(DISTRIBUTE_MODES)}, got '{self.distribute}'.")
        _require(0 < self.referral_sensitivity < 1,
                 f"referral sensitivity must be between 0 and 1 (exclusive), got {self.referral_sensitivity}.")
        self.augmentation()  # validates the augmentation's ranges
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0 < value < 0.9, f"{name.replace('_', ' ')} must be between 0 and 0.9, got {value}.")

    def augmentation(self) -> Augmentation | None:
        """What training augments, or None with ``augment`` off."""
        augmentation = Augmentation(self.width_scale_augment, self.gamma_augment, self.field_of_view_augment,
                                    self.vertical_shift_augment, self.tilt_augment, self.speckle_augment,
                                    self.blur_augment)
        return augmentation if self.augment else None

    def to_dict(self) -> dict:
        return asdict(self)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


MAX_SEED = 2**32 - 1  # what NumPy's and Keras's seeding accept


def _require_seed(seed: object) -> None:
    _require(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED,
             f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}.")


HTML_MODES = ("embedded", "assets")
IMAGE_FORMATS = ("png", "jpeg")
REPORT_FORMATS = ("html", "pdf")
FILTER_VIEWS = ("kernels", "patches", "maximisation")  # what the filter section draws per layer
PDF_VARIANTS = ("pdf/a-3b", "pdf/a-3u", "pdf/a-3a")  # PDF/A-3: the archival variants that keep attachments
INPUT_SCALE_CHOICES = ("auto",) + INPUT_SCALES
MIN_HEATMAP_STEPS, MAX_HEATMAP_STEPS = 2, 100


@dataclass(frozen=True)
class ReportConfig:
    """What the report shows and where it goes.

    ``layer_names``: the conv layers drawn (feature maps, filters): empty for the default rule
    (all of a model with at most 12, else the first and each resolution's last; see
    :mod:`octreport.engine.layer_selection`), ``("all",)`` for every one, or names or paths.
    ``input_scale``: the input convention of a model octreport did not train (``auto``: from its
    sidecar or its first Rescaling/Normalization layer, else 0-1 with a warning; or one of
    :data:`~octreport.data.preprocessing.INPUT_SCALES`).
    """

    images_per_class: int = 2
    image_paths: tuple[str, ...] = ()
    maps_per_layer: int = 32
    channel_selection: str = "strongest"
    filters_per_layer: int = 32
    filter_reduction: str = "mean"
    filter_views: tuple[str, ...] = FILTER_VIEWS
    layer_names: tuple[str, ...] = ()
    formats: tuple[str, ...] = REPORT_FORMATS
    html_mode: str = "embedded"
    image_format: str = "jpeg"
    templates_dir: str | None = None
    out_root: str = "octreport-runs"
    pdf_variant: str | None = None
    compare_to: str | None = None
    occlusion: bool = False
    occlusion_patch: int = 20
    occlusion_stride: int = 10
    errors_per_cell: int = 3
    seed: int = 0
    batch_size: int = 32
    ci_level: float = 0.95
    bootstrap_resamples: int = 2000
    temperature_scaling: bool = True
    patients_file: str | None = None
    """A ``file,patient`` CSV for the data audit; None: patients from Kermany-style file names."""
    groups_file: str | None = None
    """A ``file,group`` CSV of acquisition groups (device, site) whose performance the report gives apart."""
    near_duplicate_bits: int = 4
    """Largest perceptual-hash distance (of 64 bits) at which the data audit calls two images near-duplicates."""
    input_scale: str = "auto"
    heatmap_checks: bool = True
    heatmap_steps: int = 10
    heatmap_baseline: str = "blur"
    sentinels: str | None = None
    """A file of image paths (one a line) shown instead of images drawn with the seed, so that runs compare alike."""
    split: str = SPLIT_AUTO
    """What a run that does not train evaluates (``test``, ``all`` or ``auto``; see
    :data:`~octreport.data.dataset.SPLIT_CHOICES`). The run records the choice it resolved to."""
    class_names: tuple[str, ...] = ()
    """``--class-names``: a given model's classes in output order, for a model without a sidecar."""
    class_map: tuple[tuple[str, str], ...] = ()
    """``--class-map``: ``(folder, model class)`` pairs, for evaluation data that names classes its own way."""
    dicom_salt: str = ""
    """``--dicom-salt``: the salt of the DICOM PatientID hashes; empty: a new one per run, which
    the run's configuration (manifest.json) records so a second run given it agrees."""
    dicom_frames: str = FRAMES_CENTER
    """``--dicom-frames``: a DICOM volume's central frame (``center``) or each of its frames as its
    own image (``all``; evaluation only, :mod:`octreport.data.dicom_frames`)."""
    unlabelled: bool = False
    """``--unlabelled``: read every image under the folder without labels (a screening run); a
    folder of images without class folders is read so without it."""
    cache: bool = True
    """Keep what depends only on the model's weights (activation maximisation) in the weights cache
    and read it from there (:mod:`octreport.cache`); False (``--no-cache``) computes it every time."""
    cache_dir: str | None = None
    """The weights cache's folder; None: :func:`octreport.cache.default_cache_dir`."""
    referral_threshold: float | None = None
    """Urgent when ``P(CNV) + P(DME)`` reaches it, for this report only, instead of the model's stored
    rule (:mod:`octreport.evaluation.referral_rule`); None: the model's rule."""

    def __post_init__(self) -> None:
        if isinstance(self.layer_names, str):  # layer_names="all" or "conv1,conv2" from Python
            object.__setattr__(self, "layer_names", tuple(n.strip() for n in self.layer_names.split(",") if n.strip()))
        _require(self.input_scale in INPUT_SCALE_CHOICES,
                 f"input scale must be one of {', '.join(INPUT_SCALE_CHOICES)}, got '{self.input_scale}'.")
        _require(0 <= self.near_duplicate_bits <= 16,
                 f"near-duplicate bits must be from 0 to 16 (of 64), got {self.near_duplicate_bits}.")
        _require(self.images_per_class >= 0, "images per class must be 0 or more.")
        _require(self.dicom_frames in DICOM_FRAMES,
                 f"DICOM frames must be one of {', '.join(DICOM_FRAMES)}, got '{self.dicom_frames}'.")
        _require(self.images_per_class > 0 or self.image_paths or self.sentinels, "show at least one image: images per class is 0 and no --image given.")
        _require(self.maps_per_layer >= 1, f"maps per layer must be at least 1, got {self.maps_per_layer}.")
        _require(self.filters_per_layer >= 1, f"filters per layer must be at least 1, got {self.filters_per_layer}.")
        _require(self.channel_selection in ("strongest", "first"), f"channel selection must be 'strongest' or 'first', got '{self.channel_selection}'.")
        _require(self.filter_reduction in ("mean", "max_norm_channel"), f"filter reduction must be 'mean' or 'max_norm_channel', got '{self.filter_reduction}'.")
        _require(bool(self.filter_views) and set(self.filter_views) <= set(FILTER_VIEWS),
                 f"filter views must be some of {', '.join(FILTER_VIEWS)} (comma-separated), got '{','.join(self.filter_views)}'.")
        _require(bool(self.formats) and set(self.formats) <= set(REPORT_FORMATS), f"formats must be some of {', '.join(REPORT_FORMATS)}, got {', '.join(self.formats) or 'none'}.")
        _require(self.html_mode in HTML_MODES, f"HTML mode must be one of {', '.join(HTML_MODES)}, got '{self.html_mode}'.")
        _require(self.image_format in IMAGE_FORMATS, f"image format must be one of {', '.join(IMAGE_FORMATS)}, got '{self.image_format}'.")
        _require(self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}.")
        _require_seed(self.seed)
        _require(self.occlusion_patch >= 1 and self.occlusion_stride >= 1, "occlusion patch and stride must be at least 1 pixel.")
        _require(self.errors_per_cell >= 0, f"errors per confusion cell must be 0 or more, got {self.errors_per_cell}.")
        _require(self.pdf_variant in (None,) + PDF_VARIANTS, f"PDF variant must be one of {', '.join(PDF_VARIANTS)}, got '{self.pdf_variant}'.")
        _require(MIN_HEATMAP_STEPS <= self.heatmap_steps <= MAX_HEATMAP_STEPS,
                 f"heat-map steps must be {MIN_HEATMAP_STEPS} to {MAX_HEATMAP_STEPS}, got {self.heatmap_steps}.")
        _require(self.heatmap_baseline in HEATMAP_BASELINES,
                 f"heat-map baseline must be one of {', '.join(HEATMAP_BASELINES)}, got '{self.heatmap_baseline}'.")
        _require(self.referral_threshold is None or 0 <= self.referral_threshold <= 1,
                 f"referral threshold must be from 0 to 1, got {self.referral_threshold}.")
        _require(self.split in SPLIT_CHOICES, f"split must be one of {', '.join(SPLIT_CHOICES)}, got '{self.split}'.")
        self.bootstrap  # validates the interval settings

    @property
    def bootstrap(self) -> BootstrapSettings:
        """How the report's confidence intervals are computed (resamples, level, the run's seed)."""
        return BootstrapSettings(self.bootstrap_resamples, self.ci_level, self.seed)

    def to_dict(self) -> dict:
        return asdict(self)
