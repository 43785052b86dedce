"""What the three MLP stages share: one weight format and one set of argument checks.

A network's weights travel as plain Python lists, one entry per layer::

    [{"weight": [[w11, w12, ...], ...],   # one row per neuron: shape (n_outputs, n_inputs)
      "bias": [b1, b2, ...]},             # one per neuron
     ...]

Rows are neurons because that is how stage 1 is built, and it is also how ``torch.nn.Linear``
stores its ``weight``, so no stage needs a transpose. Starting every stage from the same lists is
what makes "same initial weights" a fact rather than a hope.
"""

from __future__ import annotations

from collections.abc import Sequence

Weights = list[dict[str, list]]


def check_layer_sizes(n_inputs: int, layer_sizes: Sequence[int]) -> list[int]:
    """Validate an MLP shape and return it as a list: ``[n_inputs, *layer_sizes]``."""
    sizes = [n_inputs, *layer_sizes]
    if not layer_sizes:
        raise ValueError("MLP: layer_sizes is empty; give at least the output layer, e.g. [16, 16, 1]")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                f"MLP: sizes must be positive integers, got n_inputs={n_inputs!r}, "
                f"layer_sizes={list(layer_sizes)!r}"
            )
    return sizes


def shape_of(weights: Weights) -> tuple[int, list[int]]:
    """``(n_inputs, layer_sizes)`` of the network that ``weights`` describe, once checked to fit together."""
    if not weights:
        raise ValueError("weights: empty list; expected one {'weight', 'bias'} entry per layer")
    n_inputs = _width(weights[0]["weight"], 0)
    fan_in = n_inputs
    for i, layer in enumerate(weights):
        rows, bias = layer["weight"], layer["bias"]
        if len(rows) != len(bias):
            raise ValueError(f"weights: layer {i} has {len(rows)} weight rows but {len(bias)} biases")
        width = _width(rows, i)
        if width != fan_in:
            raise ValueError(f"weights: layer {i} takes {width} inputs but the layer before gives {fan_in}")
        fan_in = len(rows)
    return n_inputs, [len(layer["bias"]) for layer in weights]


def _width(rows: list[list[float]], layer: int) -> int:
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(f"weights: layer {layer} has rows of lengths {sorted(widths)}; need one length")
    return widths.pop()


def check_hyperparameters(
    params: list,
    lr: float,
    weight_decay: float,
    momentum: float = 0.0,
    betas: tuple[float, float] = (0.0, 0.0),
    eps: float = 0.0,
) -> None:
    """The checks (and messages) of ``torch.optim``: a typo should fail loudly, not train badly."""
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    if not lr >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not momentum >= 0.0:
        raise ValueError(f"Invalid momentum value: {momentum}")
    if not weight_decay >= 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if not eps >= 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
