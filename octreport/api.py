"""The Python entry point: define a model, pass it to one function, get the report."""

from __future__ import annotations

from pathlib import Path

from octreport.audit.gates import GateConfig
from octreport.audit.model_card import ModelCard
from octreport.config import ReportConfig, TrainConfig


def make_report(
    model=None,
    data: str | Path | None = None,
    out: str | Path = "octreport-runs",
    *,
    train: TrainConfig | None = None,
    gates: GateConfig | None = None,
    card: ModelCard | None = None,
    **report_options,
):
    """Write a report folder for ``model`` evaluated on ``data`` and return where it is.

    Args:
        model: an in-memory ``keras.Model``, the path of a ``.keras``/``.h5`` file, or None to train
            the default network (``train`` configures it).
        data: an image folder (Kermany train/test layout or class folders); None for the bundled
            synthetic sample data.
        out: the output root; the run gets a new folder in it and ``out/latest`` links to it.
        gates: quality gates (:class:`octreport.audit.gates.GateConfig`); the built-in chance-level
            gate is always on. A failed gate does not raise: see ``outcome.failed_gates``.
        card: the model card (:class:`octreport.audit.model_card.ModelCard`, e.g. from
            ``card_from_mapping({"intended_use": ...}, "my code")``); None, and the report lists
            the missing fields.
        report_options: any :class:`octreport.config.ReportConfig` field, e.g. ``images_per_class=1``,
            ``formats=("html",)``, ``layer_names=("conv2",)`` or ``"all"``, ``ci_level=0.9``,
            ``bootstrap_resamples=5000``, ``input_scale="byte"`` (a model trained on 0-255 input; also
            ``unit``, ``symmetric``, ``caffe``, ``torch``; default ``auto``), ``groups_file="groups.csv"``
            (performance per acquisition group: a ``file,group`` CSV).

    Returns:
        :class:`octreport.pipeline.run.RunOutcome` with ``run_dir``, ``pdf_path``, ``html_path``,
        ``metrics_path``, ``manifest_path``, ``accuracy`` and ``failed_gates``.

    TensorFlow's C++ start-up messages (CUDA probing on a machine without a GPU among them) are kept
    out of stderr as the command line keeps them out; when TensorFlow was imported before octreport,
    those it printed then are beyond reach (import octreport first).
    """
    from octreport.logsetup import import_tensorflow_quietly, quiet_tensorflow

    quiet_tensorflow()
    import_tensorflow_quietly()
    from octreport.pipeline.run import run_report

    train = train or TrainConfig()
    report_config = ReportConfig(out_root=str(out), seed=train.seed, **report_options)
    return run_report(data_dir=data, model=model, train_config=train, report_config=report_config,
                      gate_config=gates or GateConfig(), card=card)
