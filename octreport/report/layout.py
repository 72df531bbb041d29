"""What ``templates/layout.html``, the page around every octreport page, shows in ``<head>``.

Each page's context (the report, the data audit, a comparison, a history) gives one
:class:`PageHead` as its ``head``; the page's template sets ``head`` from it before extending
``layout.html``.
"""

from __future__ import annotations

from dataclasses import dataclass

REPORT_KEYWORDS = "convolutional neural network, feature maps, model audit, OCT"


@dataclass(frozen=True)
class PageHead:
    """The page's ``<title>`` and meta tags; ``description`` and ``keywords`` are left out when None."""

    title: str
    generated_at: str
    octreport_version: str
    description: str | None = None
    keywords: str | None = None

