"""The check every bad-input CLI test makes: exit 1, the reference, a hint, no traceback."""

from __future__ import annotations


def expect_failure(result, reference: str, *words: str) -> None:
    """``result`` (the ``cli`` fixture's) failed with exit 1 and ``error: REFERENCE``, a hint,
    no traceback and no internal-error; its stderr holds each of ``words``."""
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr, result
    assert "hint:" in result.stderr, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert "internal-error" not in result.stderr, result
    for word in words:
        assert word in result.stderr, (word, result)
