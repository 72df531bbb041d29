"""Progress lines for long passes: counts, rate and time left."""

from __future__ import annotations

import logging

from octreport.progress import Progress, format_duration


def test_durations_read_naturally():
    assert format_duration(42) == "42s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3 * 3600 + 61) == "3h01m"


def test_progress_logs_rate_and_time_left(caplog, monkeypatch):
    clock = iter([0.0, 10.0, 20.0, 20.0])
    monkeypatch.setattr("octreport.progress.time.perf_counter", lambda: next(clock))
    progress = Progress(total=1000, every_s=5)
    with caplog.at_level(logging.INFO, logger="octreport.progress"):
        progress.advance(100)  # t = 10 s: 10 images/s, 900 left -> 1m30s
    assert "evaluated 100 of 1,000 images (10.0/s, 1m30s left)" in caplog.text
