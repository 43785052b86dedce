"""Stage 1: a multilayer perceptron and its optimizers, built on our own scalar engine.

Every weight is a ``Value``; the forward pass builds a graph of scalar operations and
``loss.backward()`` fills every ``.grad``. The optimizers then read ``p.grad`` and write ``p.data``.

Put this file beside ``stage2_tensor.py`` and ``stage3_torch.py``: the three define the same names
with the same signatures (``MLP``, ``SGD``, ``Adam``, ``mse_loss``, ``train``, ``mse``) and compute
the same numbers, step for step. What changes from stage to stage is only the machinery.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

from tqdm.auto import trange

from simplellm.autograd import Value
from simplellm.nn.common import Weights, check_hyperparameters, check_layer_sizes, shape_of


class Module:
    """Anything with parameters: a neuron, a layer, a whole network."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        # backward() adds into .grad (as PyTorch does), so each step must start from zero.
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """One neuron: ``relu(w . x + b)`` in a hidden layer, ``w . x + b`` in the output layer.

    The pre-activation is ``Value.dot(self.w, x) + self.b``, which equals
    ``sum(wi * xi for wi, xi in zip(self.w, x)) + self.b`` op by op (same value, bit for bit, and the
    same gradients) but adds one node to the graph instead of 2n, so backward has far less to visit.
    """

    def __init__(self, n_inputs: int, relu: bool, rng: random.Random) -> None:
        # Kaiming (He) initialisation: standard deviation gain / sqrt(n_inputs) keeps the variance of
        # the signal the same from one ReLU layer to the next; ReLU zeroes half of it, hence the gain
        # sqrt(2). The linear output layer has no ReLU and takes gain 1.
        std = (math.sqrt(2.0) if relu else 1.0) / math.sqrt(n_inputs)
        self.w = [Value(rng.gauss(0.0, std)) for _ in range(n_inputs)]
        self.b = Value(0.0)
        self.relu = relu

    def __call__(self, x: Sequence[Value | float]) -> Value:
        pre_activation = Value.dot(self.w, x) + self.b
        return pre_activation.relu() if self.relu else pre_activation

    def parameters(self) -> list[Value]:
        return self.w + [self.b]


class Layer(Module):
    """``n_outputs`` neurons that all read the same inputs."""

    def __init__(self, n_inputs: int, n_outputs: int, relu: bool, rng: random.Random) -> None:
        self.neurons = [Neuron(n_inputs, relu, rng) for _ in range(n_outputs)]

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        return [neuron(x) for neuron in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for neuron in self.neurons for p in neuron.parameters()]


class MLP(Module):
    """Layers of neurons: ReLU in every hidden layer, linear output.

    ``MLP(2, [16, 16, 1])`` maps 2 inputs through two hidden layers of 16 to one output.
    ``model(x)`` takes one example, a list of ``n_inputs`` numbers, and returns a ``Value``
    (or a list of them when the last layer has more than one neuron).
    """

    def __init__(self, n_inputs: int, layer_sizes: Sequence[int], seed: int = 0) -> None:
        sizes = check_layer_sizes(n_inputs, layer_sizes)
        rng = random.Random(seed)
        last = len(sizes) - 2
        self.layers = [Layer(sizes[i], sizes[i + 1], relu=i < last, rng=rng) for i in range(last + 1)]
        self.n_inputs = n_inputs
        self.n_outputs = sizes[-1]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        if len(x) != self.n_inputs:
            raise ValueError(f"MLP: expected an input of length {self.n_inputs}, got length {len(x)}")
        for layer in self.layers:
            x = layer(x)
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def get_weights(self) -> Weights:
        return [
            {
                "weight": [[w.data for w in neuron.w] for neuron in layer.neurons],
                "bias": [neuron.b.data for neuron in layer.neurons],
            }
            for layer in self.layers
        ]

    def load_weights(self, weights: Weights) -> None:
        if shape_of(weights) != (self.n_inputs, [len(layer.neurons) for layer in self.layers]):
            raise ValueError(f"load_weights: weights of shape {shape_of(weights)} do not fit this MLP")
        for layer, values in zip(self.layers, weights, strict=True):
            for neuron, row, bias in zip(layer.neurons, values["weight"], values["bias"], strict=True):
                for w, value in zip(neuron.w, row, strict=True):
                    w.data = float(value)
                neuron.b.data = float(bias)

    @classmethod
    def from_weights(cls, weights: Weights) -> MLP:
        model = cls(*shape_of(weights))
        model.load_weights(weights)
        return model


# ---------------------------------------------------------------------------------- optimizers
# Both follow torch.optim exactly: weight decay is L2, added to the gradient before anything else.


class SGD:
    """Stochastic gradient descent with momentum: ``p <- p - lr * velocity``.

    The velocity is a running sum of gradients, ``velocity <- momentum * velocity + grad``, that
    starts as the first gradient (as in ``torch.optim.SGD`` with dampening 0).
    """

    def __init__(
        self, params: Iterable[Value], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        self.params = list(params)
        check_hyperparameters(self.params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity: list[float | None] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = p.grad + self.weight_decay * p.data
            if self.momentum != 0.0:
                v = self.velocity[i]
                g = self.velocity[i] = g if v is None else self.momentum * v + g
            p.data -= self.lr * g

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = 0.0


class Adam:
    """Adam: a step along the running mean of the gradient, scaled per parameter by its running RMS.

    Both running means start at zero and are therefore too small in the first steps; dividing by
    ``1 - beta ** t``, with ``t`` the number of steps taken, removes that bias exactly.
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = list(params)
        check_hyperparameters(self.params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m = [0.0] * len(self.params)  # running mean of the gradient
        self.v = [0.0] * len(self.params)  # running mean of its square
        self.t = 0

    def step(self) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        correction1 = 1.0 - beta1**self.t
        correction2 = 1.0 - beta2**self.t
        for i, p in enumerate(self.params):
            g = p.grad + self.weight_decay * p.data
            self.m[i] = beta1 * self.m[i] + (1.0 - beta1) * g
            self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * g * g
            m_hat = self.m[i] / correction1
            v_hat = self.v[i] / correction2
            p.data -= self.lr * m_hat / (math.sqrt(v_hat) + self.eps)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = 0.0


# ---------------------------------------------------------------------------------- training


def mse_loss(model: MLP, X: Sequence[Sequence[float]], y: Sequence[float]) -> Value:
    """Mean squared error of a one-output ``model`` over the examples ``X`` with targets ``y``."""
    _check_data(model, X, y)
    predictions = [model(x) for x in X]
    return Value.sum([(p - t) ** 2 for p, t in zip(predictions, y, strict=True)]) / len(y)


def mse(model: MLP, X: Sequence[Sequence[float]], y: Sequence[float]) -> float:
    """The mean squared error as a plain number (for evaluation: nothing will be differentiated)."""
    return mse_loss(model, X, y).data


def train(
    model: MLP,
    optimizer: SGD | Adam,
    X: Sequence[Sequence[float]],
    y: Sequence[float],
    steps: int,
    progress: str | None = None,
) -> list[float]:
    """Full-batch gradient descent for ``steps`` steps; returns the loss before each step.

    ``progress``: a label for a progress bar, or ``None`` for no bar.
    """
    losses = []
    for _ in trange(steps, desc=progress, disable=progress is None, leave=False):
        loss = mse_loss(model, X, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.data)
    return losses


def _check_data(model: MLP, X: Sequence, y: Sequence) -> None:
    if model.n_outputs != 1:
        raise ValueError(f"mse_loss: needs a one-output MLP, this one has {model.n_outputs} outputs")
    if len(X) != len(y) or not y:
        raise ValueError(f"mse_loss: {len(X)} inputs and {len(y)} targets; need the same number, at least 1")
