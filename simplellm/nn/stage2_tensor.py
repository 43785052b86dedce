"""Stage 2: the same MLP and the same optimizers, on raw PyTorch tensors.

Put this file beside ``stage1_value.py``; what changed is only the machinery:

* a layer's neurons become the rows of one weight matrix ``W`` of shape (n_outputs, n_inputs), so a
  whole batch goes through a layer in one matrix product, ``X @ W.T + b``, instead of one ``Value.dot``
  per neuron per example;
* ``requires_grad=True`` asks PyTorch to record the graph that our ``Value`` recorded, and
  ``loss.backward()`` fills ``p.grad`` just as before;
* the optimizers do the same arithmetic once per tensor instead of once per scalar, under
  ``torch.no_grad()`` so that the update itself is not recorded as part of the next graph.

Everything is float64, so that this stage can be compared with stage 1 to 1e-9; float32 is what
one would use for speed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from tqdm.auto import trange

from simplellm.nn.common import Weights, check_hyperparameters, check_layer_sizes, shape_of

DTYPE = torch.float64


class Module:
    """Anything with parameters: a layer, a whole network."""

    def parameters(self) -> list[torch.Tensor]:
        return []

    def zero_grad(self) -> None:
        # backward() adds into .grad; None (rather than zeros) is PyTorch's way to say "no gradient yet".
        for p in self.parameters():
            p.grad = None


class Layer(Module):
    """``n_outputs`` neurons that all read the same inputs: row ``i`` of ``W`` is neuron ``i``'s weights."""

    def __init__(self, n_inputs: int, n_outputs: int, relu: bool, generator: torch.Generator) -> None:
        # Kaiming (He) initialisation, as in stage 1: std = gain / sqrt(n_inputs), gain sqrt(2) before a ReLU.
        std = (math.sqrt(2.0) if relu else 1.0) / math.sqrt(n_inputs)
        self.W = (torch.randn(n_outputs, n_inputs, generator=generator, dtype=DTYPE) * std).requires_grad_()
        self.b = torch.zeros(n_outputs, dtype=DTYPE, requires_grad=True)
        self.relu = relu

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        pre_activation = X @ self.W.T + self.b
        return pre_activation.relu() if self.relu else pre_activation

    def parameters(self) -> list[torch.Tensor]:
        return [self.W, self.b]


class MLP(Module):
    """Layers: ReLU in every hidden layer, linear output.

    ``model(X)`` takes a batch, a (N, n_inputs) tensor (or nested lists), and returns (N, n_outputs).
    """

    def __init__(self, n_inputs: int, layer_sizes: Sequence[int], seed: int = 0) -> None:
        sizes = check_layer_sizes(n_inputs, layer_sizes)
        generator = torch.Generator().manual_seed(seed)
        last = len(sizes) - 2
        self.layers = [
            Layer(sizes[i], sizes[i + 1], relu=i < last, generator=generator) for i in range(last + 1)
        ]
        self.n_inputs = n_inputs
        self.n_outputs = sizes[-1]

    def __call__(self, X: torch.Tensor | Sequence) -> torch.Tensor:
        X = torch.as_tensor(X, dtype=DTYPE)
        if X.shape[-1:] != (self.n_inputs,):
            raise ValueError(f"MLP: expected inputs of length {self.n_inputs}, got shape {tuple(X.shape)}")
        for layer in self.layers:
            X = layer(X)
        return X

    def parameters(self) -> list[torch.Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]

    def get_weights(self) -> Weights:
        return [{"weight": layer.W.tolist(), "bias": layer.b.tolist()} for layer in self.layers]

    @torch.no_grad()
    def load_weights(self, weights: Weights) -> None:
        if shape_of(weights) != (self.n_inputs, [layer.b.numel() for layer in self.layers]):
            raise ValueError(f"load_weights: weights of shape {shape_of(weights)} do not fit this MLP")
        for layer, values in zip(self.layers, weights, strict=True):
            layer.W.copy_(torch.tensor(values["weight"], dtype=DTYPE))
            layer.b.copy_(torch.tensor(values["bias"], dtype=DTYPE))

    @classmethod
    def from_weights(cls, weights: Weights) -> MLP:
        model = cls(*shape_of(weights))
        model.load_weights(weights)
        return model


# ---------------------------------------------------------------------------------- optimizers
# The lines of stage 1, with a tensor where stage 1 had a float. Both follow torch.optim exactly.


class SGD:
    """Stochastic gradient descent with momentum: ``p <- p - lr * velocity``.

    The velocity is a running sum of gradients, ``velocity <- momentum * velocity + grad``, that
    starts as the first gradient (as in ``torch.optim.SGD`` with dampening 0).
    """

    def __init__(
        self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        self.params = list(params)
        check_hyperparameters(self.params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity: list[torch.Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:  # not used in the forward pass: nothing to learn from
                continue
            g = p.grad + self.weight_decay * p
            if self.momentum != 0.0:
                v = self.velocity[i]
                g = self.velocity[i] = g if v is None else self.momentum * v + g
            p -= self.lr * g

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


class Adam:
    """Adam: a step along the running mean of the gradient, scaled per parameter by its running RMS.

    Both running means start at zero and are therefore too small in the first steps; dividing by
    ``1 - beta ** t``, with ``t`` the number of steps taken, removes that bias exactly.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = list(params)
        check_hyperparameters(self.params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m = [torch.zeros_like(p) for p in self.params]  # running mean of the gradient
        self.v = [torch.zeros_like(p) for p in self.params]  # running mean of its square
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        correction1 = 1.0 - beta1**self.t
        correction2 = 1.0 - beta2**self.t
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p
            self.m[i] = beta1 * self.m[i] + (1.0 - beta1) * g
            self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * g * g
            m_hat = self.m[i] / correction1
            v_hat = self.v[i] / correction2
            p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


# ---------------------------------------------------------------------------------- training


def mse_loss(model: MLP, X: torch.Tensor | Sequence, y: torch.Tensor | Sequence) -> torch.Tensor:
    """Mean squared error of a one-output ``model`` over the examples ``X`` with targets ``y``."""
    X, y = as_tensors(X, y)
    _check_data(model, X, y)
    predictions = model(X)[:, 0]
    return ((predictions - y) ** 2).mean()


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
