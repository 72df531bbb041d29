"""The ``octreport`` command. It parses, validates and wires; the library does the work.

TensorFlow and friends are imported inside the commands, so ``--help`` and ``--version`` are
instant. Every option can also come from a TOML file (``--config``) or an ``OCTREPORT_*``
environment variable; the command line wins over the environment, which wins over the file.
"""

from __future__ import annotations

import atexit
import functools
import gc
import shlex
import signal
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from octreport._version import __version__
from octreport.cli_options import (
    BATCH_SIZE_TYPE,
    DISTRIBUTE_OPTION,
    FOLLOW_SYMLINKS_OPTION,
    GATE_OPTION_NAMES,
    MLFLOW_OPTION_NAMES,
    REPORT_OPTION_NAMES,
    SEED_TYPE,
    FiniteFloatRange,
    build_gate_config,
    build_report_config,
    build_tracking_settings,
    build_train_config,
    card_option,
    data_audit_options,
    data_gate_options,
    gate_options,
    interval_options,
    mlflow_options,
    mlflow_register_options,
    quiet_option,
    report_options,
    run_root_option,
    take,
    training_options,
)
from octreport.errors import (
    FILE_SYSTEM_ERROR_EXIT_CODE,
    ConfigError,
    GateFailed,
    OctReportError,
    TrackingUnavailable,
    VerificationFailed,
)
from octreport.logsetup import configure_logging, import_tensorflow_quietly, quiet_tensorflow, runtime_log_dropped

ENV_PREFIX = "OCTREPORT"
CARD_META = "octreport.card"  # ctx.meta key of the config file's [card] table


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def handle_errors(command):
    """Turn our own errors into a one-line message and a documented exit code, never a traceback.

    Under ``--quiet``, the C++ runtime's log lines are dropped from stderr (:func:`runtime_log_dropped`).
    SIGTERM is treated like Ctrl-C, so an interrupted run is marked failed and leaves no half report.
    An operating-system error that no check foresaw (a disk that fills up during the run, a file
    removed under it) is a file-system error, exit 8, named with its path.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            with runtime_log_dropped(kwargs.get("quiet") is True):
                return command(*args, **kwargs)
        except OctReportError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(error.exit_code)
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            click.echo(f"Error: the file system refused an operation{where}: {error.strerror or error}. "
                       f"Check the free space and permissions, then run again.", err=True)
            sys.exit(FILE_SYSTEM_ERROR_EXIT_CODE)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)

    return wrapper


def _load_config_file(ctx: click.Context, param, value: Path | None):
    if value is None:
        return None
    from octreport.audit.config_file import load_config_file_and_card

    try:
        ctx.default_map, ctx.meta[CARD_META] = load_config_file_and_card(value, ctx.command)
    except OctReportError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return value


def entry() -> None:
    """The ``octreport`` program (the console script and ``python -m octreport``): :func:`main`, in a
    process whose exit skips the interpreter's last garbage collection (``gc.freeze`` at exit). With
    TensorFlow loaded that collection walks about a million objects, 1.0 s of every command (0.1 s
    frozen), to free memory that the operating system takes back anyway. Files are not left to it:
    each is written and closed in a ``with`` block, and logging closes its own at exit."""
    atexit.register(gc.freeze)
    main()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100,
                               "auto_envvar_prefix": ENV_PREFIX})
@click.version_option(__version__, prog_name="octreport")
@click.option("--config", type=click.Path(dir_okay=False, exists=True, path_type=Path), callback=_load_config_file,
              is_eager=True, expose_value=False,
              help="TOML file with option values (top level, or [run]/[report]/[train]/[compare]/... tables; [card]: the model card).")
def main() -> None:
    """Reports on convolutional image classifiers: what each conv layer sees and learned, how well
    the model does, in one HTML and PDF. Built for retinal OCT B-scans (CNV, DME, DRUSEN, NORMAL)."""
    quiet_tensorflow()


def _given_options() -> set[str]:
    """The options of the running command that the user set (command line, environment, config file)."""
    ctx = click.get_current_context()
    return {name for name in ctx.params if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}


def _command_line() -> str:
    """The command line as the manifest records it; a URL's ``user:password@`` is left out."""
    line = shlex.join(["octreport", *sys.argv[1:]])
    if "@" not in line:
        return line
    from octreport.audit.mlflow_record import without_credentials

    return without_credentials(line)


def _model_card(card_file: Path | None):
    """The model card: ``--card FILE``, else the config file's ``[card]`` table, else None."""
    if card_file is not None:
        from octreport.audit.model_card import read_card_file

        return read_card_file(card_file)
    return click.get_current_context().meta.get(CARD_META)


def _tracking(options: dict, quiet: bool = False):
    """The MLflow settings (None without --mlflow; exit 2 naming the extra when MLflow is missing)
    and the tracking URI models:/ and runs:/ URIs are fetched from. Under ``--quiet``, MLflow's
    progress bar and log lines are kept off standard error."""
    values = take(options, MLFLOW_OPTION_NAMES)
    settings = build_tracking_settings(values)
    if quiet and settings is not None:
        _quiet_mlflow()
    return settings, values["mlflow_tracking_uri"]


def _quiet_mlflow() -> None:
    from octreport.audit.mlflow_tracking import quiet_mlflow

    quiet_mlflow()


def _model_argument(model_path: Path | None, tracking_uri: str | None, cache_dir: Path | None = None, quiet: bool = False):
    """``--model``: a file, or for ``models:/...`` and ``runs:/...`` the model fetched from MLflow
    (into ``--cache-dir``'s ``mlflow/``)."""
    if model_path is None:
        return None
    from octreport.audit.mlflow_models import fetch_model, is_mlflow_uri

    if not is_mlflow_uri(model_path):
        return model_path
    if quiet:
        _quiet_mlflow()
    return fetch_model(str(model_path), tracking_uri, cache_dir)


def _log_to_mlflow(run_dir: Path, settings, quiet: bool, skip_if_logged: bool = False) -> TrackingUnavailable | None:
    """Log a finished run folder to MLflow; a server that fails is a warning (returned), never a lost run."""
    from octreport.audit.mlflow_record import read_run_folder
    from octreport.audit.mlflow_tracking import log_record

    try:
        logged = log_record(read_run_folder(run_dir), settings, skip_if_logged=skip_if_logged)
    except TrackingUnavailable as error:
        click.echo(f"Warning: {error}", err=True)
        return error
    if logged.not_registered:
        click.echo(f"Warning: {logged.not_registered}.", err=True)
    if not quiet:
        what = "already logged as" if logged.already_logged else "logged to"
        extra = "".join([f"; registered as {settings.register} version {logged.registered_version}" if logged.registered_version else "",
                         f"; tagged model version {logged.tagged_version}" if logged.tagged_version else ""])
        click.echo(f"{what} MLflow run {logged.run_id} ({logged.tracking_uri}, experiment {settings.experiment}){extra}", err=True)
    return None


def _finish(failed_gates: str | None, tracking_error: TrackingUnavailable | None) -> None:
    """A failed gate ends with exit 5 (the report is complete); else a failed MLflow upload with exit 9."""
    if failed_gates:
        raise GateFailed(failed_gates)
    if tracking_error is not None:
        sys.exit(tracking_error.exit_code)


def _report_and_echo(quiet: bool, tracking=None, **kwargs) -> None:
    from octreport.pipeline.run import run_report

    outcome = run_report(command_line=_command_line(), **kwargs)
    result = "no labels, no accuracy (screening)" if outcome.accuracy is None else f"accuracy {outcome.accuracy:.1%}"
    if not outcome.published:
        click.echo(f"{result}; this worker's copy was discarded, the chief worker writes the report")
        return
    if not quiet:
        click.echo(f"{result}; report in {outcome.run_dir}", err=True)
    click.echo(str((outcome.pdf_path or outcome.html_path).resolve()))
    tracking_error = _log_to_mlflow(outcome.run_dir, tracking, quiet) if tracking else None
    _finish(f"quality gate(s) failed: {'; '.join(outcome.failed_gates)}. The report above is complete."
            if outcome.failed_gates else None, tracking_error)


@main.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Image folder (Kermany train/test layout or class folders). Default: the bundled sample_data.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Load this model instead of training one: a .keras or .h5 file, or an MLflow URI "
                   "(models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/PATH).")
@training_options
@report_options
@gate_options
@card_option
@mlflow_register_options
@quiet_option
@handle_errors
def run(data_dir, model_path, card_file, quiet, **options):
    """The whole job: train (or load) a model, evaluate it, look inside it, write HTML + PDF.

    With no options it trains the default network on the bundled synthetic sample_data.
    """
    configure_logging(quiet)
    report_values, gate_values = take(options, REPORT_OPTION_NAMES), take(options, GATE_OPTION_NAMES)
    tracking, tracking_uri = _tracking(options, quiet)
    if model_path is not None and tracking is not None and tracking.register:
        raise click.BadParameter("registers the model a run trains; with --model nothing is trained. Leave one out.",
                                 param_hint="--mlflow-register")
    train_config = build_train_config(options, _given_options())
    report_config = build_report_config(report_values, train_config.seed, train_config.batch_size)
    gate_config = build_gate_config(gate_values)
    card = _model_card(card_file)
    model = _model_argument(model_path, tracking_uri, report_values["cache_dir"], quiet)
    import_tensorflow_quietly()
    _report_and_echo(quiet, tracking, data_dir=data_dir, model=model, train_config=train_config, report_config=report_config,
                     gate_config=gate_config, card=card)


@main.command("audit-data")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
              help="Image folder to audit (Kermany train/test layout or class folders).")
@click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("octreport-data-audits"),
              show_default=True, help="Folder of data-audit runs (kept apart from model runs).")
@click.option("--seed", type=SEED_TYPE, default=0, show_default=True, help="Seed of the splits octreport makes.")
@click.option("--val-fraction", type=FiniteFloatRange(0, 0.9, min_open=True), default=0.15, show_default=True,
              help="Share of training patients held out for validation when the data has no val/.")
@click.option("--test-fraction", type=FiniteFloatRange(0, 0.9, min_open=True), default=0.2, show_default=True,
              help="Share of patients held out for test when the data has class folders only.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["html", "pdf"]), default=("html", "pdf"),
              show_default=True, help="Report formats to write (repeatable).")
@FOLLOW_SYMLINKS_OPTION
@data_audit_options
@data_gate_options
@mlflow_options
@quiet_option
@handle_errors
def audit_data(data_dir, out_root, seed, val_fraction, test_fraction, formats, follow_symlinks, patients_file,
               near_duplicate_bits, max_leaked_patients, max_duplicates, quiet, **options):
    """The data audit alone, no model: leaked patients, duplicates, label conflicts, shortcuts.

    Splits the data as `run` would, and writes a run folder with a short report, metrics.json and
    manifest.json. Exit code 5 when --max-leaked-patients or --max-duplicates is exceeded.
    """
    from octreport.audit.gates import GateConfig
    from octreport.config import ReportConfig, TrainConfig

    configure_logging(quiet)
    tracking, _ = _tracking(options, quiet)
    train_config = TrainConfig(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                               follow_symlinks=follow_symlinks)
    report_config = ReportConfig(out_root=str(out_root), formats=tuple(dict.fromkeys(formats)), seed=seed,
                                 patients_file=str(patients_file) if patients_file else None,
                                 near_duplicate_bits=near_duplicate_bits, dicom_salt=options.get("dicom_salt") or "")
    gate_config = GateConfig(max_leaked_patients=max_leaked_patients, max_duplicates=max_duplicates)
    import_tensorflow_quietly()
    from octreport.pipeline.data_audit_run import run_data_audit

    outcome = run_data_audit(data_dir=data_dir, train_config=train_config, report_config=report_config,
                             gate_config=gate_config, command_line=_command_line())
    if not quiet:
        click.echo(f"data audit: {(outcome.audit.worst_finding() or 'nothing found').rstrip('.')}; report in {outcome.run_dir}", err=True)
    click.echo(str((outcome.pdf_path or outcome.html_path or outcome.metrics_path).resolve()))
    tracking_error = _log_to_mlflow(outcome.run_dir, tracking, quiet) if tracking else None
    _finish(f"data gate(s) failed: {'; '.join(outcome.failed_gates)}. The report above is complete."
            if outcome.failed_gates else None, tracking_error)


@main.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The model to report on: a .keras or .h5 file, or models:/NAME/VERSION, models:/NAME@ALIAS, "
                   "runs:/RUN_ID/PATH (fetched from MLflow).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
              help="Image folder whose test split is evaluated (Kermany layout or class folders).")
@click.option("--seed", type=SEED_TYPE, default=0, show_default=True, help="Seed for splits and the images shown.")
@click.option("--batch-size", type=BATCH_SIZE_TYPE, default=32, show_default=True, help="Images per evaluation batch.")
@DISTRIBUTE_OPTION
@FOLLOW_SYMLINKS_OPTION
@report_options
@gate_options
@card_option
@mlflow_options
@quiet_option
@handle_errors
def report(model_path, data_dir, seed, batch_size, distribute, follow_symlinks, card_file, quiet, **options):
    """Report on an existing model: evaluate it and look inside it, without training."""
    from octreport.config import TrainConfig

    configure_logging(quiet)
    gate_config = build_gate_config(take(options, GATE_OPTION_NAMES))
    tracking, tracking_uri = _tracking(options, quiet)
    cache_dir = options["cache_dir"]
    report_config = build_report_config(options, seed, batch_size)
    card = _model_card(card_file)
    model = _model_argument(model_path, tracking_uri, cache_dir, quiet)
    import_tensorflow_quietly()
    train_config = TrainConfig(seed=seed, batch_size=batch_size, distribute=distribute, follow_symlinks=follow_symlinks)
    _report_and_echo(quiet, tracking, data_dir=data_dir, model=model, train_config=train_config,
                     report_config=report_config, gate_config=gate_config, card=card)


@main.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Image folder (Kermany train/test layout or class folders). Default: the bundled sample_data.")
@click.option("--out", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("model.keras"),
              show_default=True, help="Where to save the model (.keras); its history and classes go beside it.")
@training_options
@quiet_option
@handle_errors
def train(data_dir, model_path, quiet, **options):
    """Train a model, evaluate it on the test split and save it with its history."""
    configure_logging(quiet)
    if model_path.suffix != ".keras":
        raise click.BadParameter(f"the model file must end in .keras, got '{model_path}'.", param_hint="--out")
    train_config = build_train_config(options, _given_options())
    import_tensorflow_quietly()
    from octreport.pipeline.train import train_evaluate_save

    outcome = train_evaluate_save(data_dir, model_path, train_config)
    if not outcome.saved:
        click.echo(f"test accuracy {outcome.test_accuracy:.1%}; the chief worker saves the model")
        return
    click.echo(
        f"test accuracy {outcome.test_accuracy:.1%} on {outcome.test_images} images "
        f"(trained {outcome.train_seconds:.0f} s); model saved to {outcome.model_path}"
    )
    if outcome.referral_rule:
        click.echo(f"urgent referral: {outcome.referral_rule}")


@main.command()
@click.argument("run_a")
@click.argument("run_b", default="latest")
@click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("octreport-runs"),
              show_default=True, help="Output root where 'latest' and 'previous' are looked up.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the comparison as HTML.")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the comparison as PDF.")
@click.option("--fail-on-regression", "tolerance", type=FiniteFloatRange(0, 1), default=None,
              help="Exit with code 5 when a metric fell by more than this (0.02 = 2 points).")
@click.option("--regression-mode", type=click.Choice(("any", "significant")), default="any", show_default=True,
              help="With --fail-on-regression: any drop beyond the tolerance fails, or only a statistically "
                   "significant one (a drop that cannot be tested still fails).")
@interval_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the paired bootstrap.")
@handle_errors
def compare(run_a, run_b, out_root, html_path, pdf_path, tolerance, regression_mode, ci_level, bootstrap_resamples, seed):
    """Compare two runs (folders, or 'latest' and 'previous'): metrics, confusion, layers, what changed,
    and whether each change is significant (paired when both runs evaluated the same images).

    RUN_B defaults to 'latest': `octreport compare previous` compares the last two runs.
    """
    from octreport.audit.compare import compare_runs, load_run, regressions
    from octreport.evaluation.bootstrap_settings import BootstrapSettings
    from octreport.report.compare_view import format_comparison_text, render_comparison_html

    configure_logging(quiet=True)
    settings = BootstrapSettings(bootstrap_resamples, ci_level, seed)
    comparison = compare_runs(load_run(run_a, out_root), load_run(run_b, out_root), settings)
    click.echo(format_comparison_text(comparison))
    if html_path or pdf_path:
        from octreport.pipeline.publish import publish_page

        html = render_comparison_html(comparison, tolerance, mode=regression_mode)
        publish_page(html, html_path, pdf_path, base_url=pdf_path.parent if pdf_path else None)
    found = regressions(comparison, tolerance, regression_mode) if tolerance is not None else []
    if found:
        what = "Significant regression" if regression_mode == "significant" else "Regression"
        raise GateFailed(f"{what} beyond the tolerance: " + "; ".join(found))


@main.command()
@click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("octreport-runs"),
              show_default=True, help="Output root whose runs are listed.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the history page here (default: OUT/history.html unless --pdf or --json is given).")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write it as PDF.")
@click.option("--last", type=click.IntRange(min=1), default=None, help="Only the last N complete runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON for scripts (links relative to OUT).")
@handle_errors
def history(out_root, html_path, pdf_path, last, as_json):
    """One page over all complete runs of an output root: trends of the headline metrics, what
    changed (model, data, configuration), failed gates in red, each run linked to its report.

    Reads only each run's metrics.json and manifest.json; writes nothing into the run folders.
    """
    import json

    from octreport.audit.history import build_history, history_to_dict
    from octreport.report.history_view import format_history_text, render_history_html

    configure_logging(quiet=True)
    found = build_history(out_root, last)
    if as_json:
        click.echo(json.dumps(history_to_dict(found), indent=2))
    else:
        click.echo(format_history_text(found), nl=False)
    if html_path is None and pdf_path is None and not as_json:
        html_path = out_root / "history.html"
    from octreport.pipeline.publish import publish_page

    written = []
    if html_path:  # links are relative to where each page is written
        written += publish_page(render_history_html(found, html_path.parent), html_path, None, base_url=None)
    if pdf_path:
        written += publish_page(render_history_html(found, pdf_path.parent), None, pdf_path, base_url=None,
                                title=f"octreport history: {out_root}")
    for path in written:
        click.echo(f"wrote {path}", err=True)


@main.command()
@click.argument("run")
@run_root_option
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The data folder to check (default: where the run read it).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The model file to check (default: the run's own, or where the manifest says).")
@click.option("--full", is_flag=True, help="Re-run the model on every evaluated image, not only on those the report shows.")
@click.option("--tolerance", type=FiniteFloatRange(0, 1, max_open=True), default=1e-4, show_default=True,
              help="Largest difference allowed in a class probability when the model is re-run.")
@click.option("--strict", is_flag=True, help="Exit 7 also when a check could not be made (no model found, the data folder gone).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON for scripts.")
@click.option("--mlflow-tracking-uri", default=None, metavar="URI",
              help="The MLflow server a registry model whose cached copy is gone is fetched again from "
                   "(default: the one the manifest records, else $MLFLOW_TRACKING_URI).")
@handle_errors
def verify(run, out_root, data_dir, model_path, full, tolerance, strict, as_json, mlflow_tracking_uri):
    """Check a past run against its manifest: the run folder's files, the PDF's embedded
    metrics.json and manifest.json, the model file and weights, the data set's fingerprint, and
    the model re-run on the images of the report (--full: on every evaluated image).

    Exits 0 when every check holds, 7 when something differs (--strict: or could not be checked).
    Writes nothing.
    """
    import json

    from octreport.audit.verify import format_verification, verify_run

    configure_logging(quiet=True)
    progress = (lambda message: None) if as_json else (lambda message: click.echo(f"checking {message} ...", err=True))
    result = verify_run(run, out_root, data_dir, model_path, full, tolerance, progress, mlflow_tracking_uri)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_verification(result), nl=as_json)
    if not result.holds:
        raise VerificationFailed(f"{len(result.differing)} check(s) differ: {', '.join(c.name for c in result.differing)}.")
    if strict and result.not_checked:
        raise VerificationFailed(f"--strict: {len(result.not_checked)} check(s) could not be made: "
                                 f"{', '.join(c.name for c in result.not_checked)}.")


@main.command()
@click.argument("run")
@run_root_option
@mlflow_register_options
@quiet_option
@handle_errors
def publish(run, out_root, quiet, **options):
    """Log a finished run folder to MLflow now (--mlflow): a cron job's catch-up after the tracking
    server was down. A run folder already logged in the experiment is not logged twice.

    Exits 0 when logged, 9 when the server fails again. Writes nothing into the run folder.
    """
    from octreport.audit.compare import resolve_run

    configure_logging(quiet)
    tracking, _ = _tracking(options, quiet)
    if tracking is None:
        raise ConfigError("publish needs --mlflow: where to publish the run folder (MLflow is the one place so far).")
    _finish(None, _log_to_mlflow(resolve_run(run, out_root).resolve(), tracking, quiet, skip_if_logged=True))


@main.command()
@click.argument("model_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@handle_errors
def layers(model_path, as_json):
    """List the convolutional layers octreport finds in MODEL_PATH, in forward order."""
    import json

    configure_logging(quiet=True)
    import_tensorflow_quietly()
    from octreport.engine.layers import discover_conv_layers, format_layer_table, layers_to_json
    from octreport.models.io import load_model

    found = discover_conv_layers(load_model(model_path).model)
    click.echo(json.dumps(layers_to_json(found), indent=2) if as_json else format_layer_table(found))


@main.command("sample-data")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the synthetic data set into (must be empty or new).")
@click.option("--seed", type=SEED_TYPE, default=0, show_default=True,
              help="Seed of the synthetic scans (the same seed writes the same images).")
@click.option("--overwrite", is_flag=True, help="Replace train/ and test/ of a non-empty folder (other files, such as a README, are kept).")
@handle_errors
def sample_data(out_dir, seed, overwrite):
    """Generate the synthetic OCT B-scan data set that ships in sample_data/."""
    from octreport.data.synthetic import describe_counts, write_sample_dataset

    counts = write_sample_dataset(out_dir, seed=seed, overwrite=overwrite)
    click.echo(describe_counts(out_dir, counts, seed))
