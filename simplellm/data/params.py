"""Parameter checks that fail with a message saying what is allowed."""

from __future__ import annotations


def check_int(
    name: str, value: object, minimum: int, maximum: int | None = None, minimum_text: str | None = None
) -> None:
    allowed = f">= {minimum_text} ({minimum})" if minimum_text else f">= {minimum}"
    if maximum is not None:
        allowed = f"in [{minimum}, {maximum}]"
    # bool is an int subclass, but n=True is a mistake, not the number 1
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_probability(name: str, value: object) -> float:
    """A probability in [0, 1], returned as float so that configs are canonical (1 and 1.0 are one config)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value <= 1):
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return float(value)
