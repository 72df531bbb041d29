"""What ``templates/layout.html``, the page around every octreport page, shows in ``<head>``.

Each page's context (the report, the data audit, a comparison, a history) gives one
:class:`PageHead` as its ``head``; the page's template sets ``head`` from it before extending
``layout.html``.
"""

from __future__ import annotations

from dataclasses import dataclass

from octreport.report.views import KeyValue

REPORT_KEYWORDS = "convolutional neural network, feature maps, model audit, OCT"


@dataclass(frozen=True)
class PageHead:
    """The page's ``<title>`` and meta tags; ``description`` and ``keywords`` are left out when None."""

    title: str
    generated_at: str
    octreport_version: str
    description: str | None = None
    keywords: str | None = None


@dataclass(frozen=True)
class SinglePage:
    """What a page without the full report's sections (a screening run, the data audit alone)
    shows above them: ``templates/macros.html``'s ``single_title_block`` and ``single_summary``."""

    title: str
    subtitle: str
    generated_at: str
    octreport_version: str
    data_description: tuple[KeyValue, ...]
    headline: str

    @property
    def head(self) -> PageHead:
        return PageHead(self.title, self.generated_at, self.octreport_version, self.subtitle)
