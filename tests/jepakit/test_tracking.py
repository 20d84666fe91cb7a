"""Logging during training: warnings print on their own line, above the progress bar."""

from __future__ import annotations

import re

from jepakit.tracking import Progress, log, setup_logging


def test_a_warning_prints_above_the_progress_bar_not_into_its_line(capsys):
    setup_logging(None)
    progress = Progress(10, enabled=True)
    progress.update_to(3, {"loss": 0.5, "lr": 1e-3, "images_per_s": 100.0})
    progress.bar.refresh()
    log.warning("step 3: the representations may be collapsing")
    progress.update_to(4, {"loss": 0.4, "lr": 1e-3, "images_per_s": 100.0})
    progress.close()
    err = capsys.readouterr().err
    assert "3/10" in err  # the bar was drawn before the warning
    segments = [s.strip() for s in re.split(r"[\r\n]", err)]
    # the warning is a line of its own (the bar cleared first), not appended to the bar
    assert "WARNING: step 3: the representations may be collapsing" in segments, err
    assert err.index("WARNING") < err.rindex("4/10")  # the bar is redrawn below it


def test_python_warnings_print_above_the_bar_while_it_is_open(capsys):
    import warnings

    before = warnings.showwarning
    progress = Progress(10, enabled=True)
    progress.update_to(3, {"loss": 0.5, "lr": 1e-3, "images_per_s": 100.0})
    progress.bar.refresh()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("torch says something", UserWarning, stacklevel=1)
    progress.close()
    assert warnings.showwarning is before  # restored
    err = capsys.readouterr().err
    segments = [s.strip() for s in re.split(r"[\r\n]", err)]
    assert any(s.endswith("UserWarning: torch says something") and "3/10" not in s
               for s in segments), err
