"""Domain errors. Each says what was wrong and what to do; the CLI maps them to exit codes.

Exit codes (documented in the README):
    0  success
    1  unexpected internal error (a bug: please report it with the log)
    2  usage error: a wrong option or argument (Click's own code)
    3  data error: a missing, empty or malformed data folder
    4  model error: a file that is not a usable model for these images
    5  quality gate failed, or a regression found by `compare` (the report was still written)
    6  report error: a template or the PDF renderer failed
    7  verification failed: `verify` found a run that differs from its manifest
    8  file-system error during the run: a disk that filled up, a file removed or locked under it
    9  the MLflow tracking server could not be reached, refused the credentials or timed out
       (the run folder is complete; ``octreport publish RUN --mlflow`` uploads it later)
  130  interrupted (SIGINT / SIGTERM)
"""

from __future__ import annotations


FILE_SYSTEM_ERROR_EXIT_CODE = 8


class OctReportError(Exception):
    """Base class of every error a user can cause and fix."""

    exit_code = 1


class ConfigError(OctReportError):
    """An option or configuration value that cannot be used."""

    exit_code = 2


class DataError(OctReportError):
    """The image folder is missing, empty or not in a layout octreport can read."""

    exit_code = 3


class ModelError(OctReportError):
    """The model file cannot be loaded or does not fit the images."""

    exit_code = 4


class GateFailed(OctReportError):
    """A quality gate failed; the report is complete but the model got worse."""

    exit_code = 5


class ReportError(OctReportError):
    """Rendering the HTML or PDF report failed."""

    exit_code = 6


class VerificationFailed(OctReportError):
    """``octreport verify`` found a difference between a past run and what its manifest records."""

    exit_code = 7


class TrackingUnavailable(OctReportError):
    """The MLflow tracking server could not be reached, refused the credentials or timed out.

    Raised after the run folder is complete (it is never lost), or before any work when a
    ``models:/`` URI cannot be fetched; ``octreport publish RUN --mlflow`` catches up later."""

    exit_code = 9
