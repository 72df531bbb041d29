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


def test_training_logs_each_epoch_with_the_time_left_at_most(caplog, monkeypatch):
    from octreport.models.training import EpochLogger

    clock = iter([0.0, 0.0, 30.0, 30.0, 60.0, 60.0, 90.0])  # train begin, then begin/end of 3 epochs
    monkeypatch.setattr("octreport.models.training.time.perf_counter", lambda: next(clock))
    logger = EpochLogger(epochs=3)
    with caplog.at_level(logging.INFO, logger="octreport.models.training"):
        logger.on_train_begin()
        for epoch in range(3):
            logger.on_epoch_begin(epoch)
            logger.on_epoch_end(epoch, {"loss": 0.5, "learning_rate": 0.001})
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "epoch 1/3  loss 0.5000  (30.0 s, at most 1m00s left)"
    assert lines[1].endswith("(30.0 s, at most 30s left)")
    assert lines[2].endswith("(30.0 s)")
