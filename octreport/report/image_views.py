"""What the report shows of images and layers (feature maps, filters, layer health, the errors
gallery, the heat-map checks) as the templates receive it."""

from __future__ import annotations

from dataclasses import dataclass

from octreport.report.views import FigureRef, KeyValue


@dataclass(frozen=True)
class LayerGrid:
    """The feature-map grid of one conv layer for one image."""

    layer_path: str
    figure: FigureRef


@dataclass(frozen=True)
class ShownImage:
    """One image chosen for the visual sections, with what the model made of it."""

    title: str
    file_name: str
    true_class: str | None
    predicted_class: str
    correct: bool | None
    probabilities: tuple[KeyValue, ...]
    image: FigureRef
    probability_chart: FigureRef
    layer_grids: tuple[LayerGrid, ...]
    gradcam: tuple[FigureRef, ...] = ()
    occlusion: FigureRef | None = None


@dataclass(frozen=True)
class ClassSection:
    anchor: str
    class_name: str
    images: tuple[ShownImage, ...]

    @property
    def title(self) -> str:
        """The heading of this class's feature maps, and its entry in the contents."""
        return f"Class {self.class_name}"


@dataclass(frozen=True)
class FilterSection:
    anchor: str
    layer_path: str
    figure: FigureRef | None  # the kernels; None when --filter-views leaves them out
    norm_min: float
    norm_median: float
    norm_max: float
    patches_figure: FigureRef | None = None  # top-activating test-image patches, a row per filter
    maximised_figure: FigureRef | None = None  # activation maximisation, one tile per filter
    views_note: str = ""  # why a view asked for is missing

    @property
    def title(self) -> str:
        """The heading of this layer's filters (and its contents entry, where one is listed)."""
        return self.layer_path


@dataclass(frozen=True)
class LayerHealthRow:
    path: str
    filters: int
    dead_share: float
    dead_strict_share: float
    sparsity: float
    norm_min: float
    norm_median: float
    norm_max: float
    norm_cv: float | None
    basis: str
    flagged: bool


@dataclass(frozen=True)
class ErrorCase:
    """One mistake in the errors gallery: the image with Grad-CAM for the predicted class."""

    file_name: str
    confidence: float
    true_probability: float
    figure: FigureRef


@dataclass(frozen=True)
class ErrorCell:
    anchor: str
    true_class: str
    predicted_class: str
    count: int
    mean_confidence: float
    cases: tuple[ErrorCase, ...]


@dataclass(frozen=True)
class FaithfulnessRow:
    """One image's (or the mean's) deletion and insertion areas and drop at 10% for one map."""

    image: str
    class_name: str
    method: str
    deletion_area: float
    insertion_area: float
    drop_at_read: float
    is_mean: bool = False


@dataclass(frozen=True)
class SanityStepRow:
    """One step of the randomisation cascade: the layer re-initialised and the mean similarity
    of the maps to the trained model's."""

    step: int
    layer: str
    mean_spearman: float | None
    mean_ssim: float | None


@dataclass(frozen=True)
class SanityImageRow:
    """One image after the whole cascade; ``flagged`` when its map barely changed."""

    image: str
    class_name: str
    spearman: float | None
    ssim: float | None
    flagged: bool


@dataclass(frozen=True)
class HeatmapChecksSection:
    """Faithfulness (deletion and insertion curves) and the randomisation sanity check."""

    note: str
    reading: str
    figure: FigureRef
    rows: tuple[FaithfulnessRow, ...]
    sanity_note: str
    sanity_reading: str
    sanity_flagged: bool
    sanity_steps: tuple[SanityStepRow, ...] = ()
    sanity_images: tuple[SanityImageRow, ...] = ()
