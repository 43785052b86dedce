"""Stage 3: the same MLP with ``torch.nn`` layers, trained by ``torch.optim``.

Put this file beside ``stage2_tensor.py``; what changed is only who writes the code:

* our ``Layer`` (a ``W``, a ``b`` and a ReLU flag) becomes ``nn.Linear`` followed by ``nn.ReLU``,
  chained by ``nn.Sequential``; ``nn.Module`` finds the parameters and zeroes the gradients for us;
* our ``SGD`` and ``Adam`` become ``torch.optim.SGD`` and ``torch.optim.Adam``, with the same
  arguments: this module simply re-exports them.

``nn.Linear`` stores its weight as (n_outputs, n_inputs), one row per neuron, exactly like stage 2's
``W``; and ``kaiming_normal_`` draws the same numbers as stage 2's ``randn * std``, so
``MLP(n, sizes, seed=s)`` here and in stage 2 start from the same weights, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.optim import SGD, Adam
from tqdm.auto import trange

from simplellm.nn.common import Weights, check_layer_sizes, shape_of

__all__ = ["MLP", "SGD", "Adam", "mse_loss", "mse", "train", "as_tensors"]

DTYPE = torch.float64


class MLP(nn.Module):
    """Layers: ReLU in every hidden layer, linear output.

    ``model(X)`` takes a batch, a (N, n_inputs) tensor (or nested lists), and returns (N, n_outputs).
    """

    def __init__(self, n_inputs: int, layer_sizes: Sequence[int], seed: int = 0) -> None:
        super().__init__()
        sizes = check_layer_sizes(n_inputs, layer_sizes)
        generator = torch.Generator().manual_seed(seed)
        last = len(sizes) - 2
        modules: list[nn.Module] = []
        for i in range(last + 1):
            # skip_init: leave out nn.Linear's own initialisation, which would draw from torch's global
            # generator; Kaiming from our seeded generator, as in stages 1 and 2, replaces it.
            linear = nn.utils.skip_init(nn.Linear, sizes[i], sizes[i + 1], dtype=DTYPE)
            nonlinearity = "relu" if i < last else "linear"
            nn.init.kaiming_normal_(linear.weight, nonlinearity=nonlinearity, generator=generator)
            nn.init.zeros_(linear.bias)
            modules += [linear, nn.ReLU()] if i < last else [linear]
        self.net = nn.Sequential(*modules)
        self.n_inputs = n_inputs
        self.n_outputs = sizes[-1]

    def forward(self, X: torch.Tensor | Sequence) -> torch.Tensor:
        X = torch.as_tensor(X, dtype=DTYPE)
        if X.shape[-1:] != (self.n_inputs,):
            raise ValueError(f"MLP: expected inputs of length {self.n_inputs}, got shape {tuple(X.shape)}")
        return self.net(X)

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def get_weights(self) -> Weights:
        return [{"weight": layer.weight.tolist(), "bias": layer.bias.tolist()} for layer in self.linears()]

    @torch.no_grad()
    def load_weights(self, weights: Weights) -> None:
        if shape_of(weights) != (self.n_inputs, [layer.out_features for layer in self.linears()]):
            raise ValueError(f"load_weights: weights of shape {shape_of(weights)} do not fit this MLP")
        for layer, values in zip(self.linears(), weights, strict=True):
            layer.weight.copy_(torch.tensor(values["weight"], dtype=DTYPE))
            layer.bias.copy_(torch.tensor(values["bias"], dtype=DTYPE))

    @classmethod
    def from_weights(cls, weights: Weights) -> MLP:
        model = cls(*shape_of(weights))
        model.load_weights(weights)
        return model


# ---------------------------------------------------------------------------------- training
# Word for word the training code of stage 2; only the loss comes from torch.nn.functional now.


def mse_loss(model: MLP, X: torch.Tensor | Sequence, y: torch.Tensor | Sequence) -> torch.Tensor:
    """Mean squared error of a one-output ``model`` over the examples ``X`` with targets ``y``."""
    X, y = as_tensors(X, y)
    _check_data(model, X, y)
    predictions = model(X)[:, 0]
    return nn.functional.mse_loss(predictions, y)


@torch.no_grad()
def mse(model: MLP, X: torch.Tensor | Sequence, y: torch.Tensor | Sequence) -> float:
    """The mean squared error as a plain number (for evaluation: nothing will be differentiated)."""
    return mse_loss(model, X, y).item()


def train(
    model: MLP,
    optimizer: SGD | Adam,
    X: torch.Tensor | Sequence,
    y: torch.Tensor | Sequence,
    steps: int,
    progress: str | None = None,
) -> list[float]:
    """Full-batch gradient descent for ``steps`` steps; returns the loss before each step.

    ``progress``: a label for a progress bar, or ``None`` for no bar.
    """
    X, y = as_tensors(X, y)
    losses = []
    for _ in trange(steps, desc=progress, disable=progress is None, leave=False):
        loss = mse_loss(model, X, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def as_tensors(X: torch.Tensor | Sequence, y: torch.Tensor | Sequence) -> tuple[torch.Tensor, torch.Tensor]:
    """The data set's lists as float64 tensors (tensors already in float64 pass through unchanged)."""
    return torch.as_tensor(X, dtype=DTYPE), torch.as_tensor(y, dtype=DTYPE)


def _check_data(model: MLP, X: torch.Tensor, y: torch.Tensor) -> None:
    if model.n_outputs != 1:
        raise ValueError(f"mse_loss: needs a one-output MLP, this one has {model.n_outputs} outputs")
    if X.ndim != 2 or y.shape != X.shape[:1] or len(y) == 0:
        raise ValueError(
            f"mse_loss: inputs of shape {tuple(X.shape)} and targets of shape {tuple(y.shape)}; "
            "need (N, n_inputs) and (N,) with N >= 1"
        )
