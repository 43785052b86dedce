"""The fast-mode switch the notebooks read."""

import pytest

from simplellm import FAST_ENV, fast_mode


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_fast_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(FAST_ENV, value)
    assert fast_mode() is expected


def test_fast_mode_is_off_by_default(monkeypatch):
    monkeypatch.delenv(FAST_ENV, raising=False)
    assert fast_mode() is False
