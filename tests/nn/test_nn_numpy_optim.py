"""NumPy SGD and Adam against torch.optim, per parameter per step; and a NumPy network that learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simplellm.nn import numpy_layers as L
from simplellm.nn import numpy_optim
from simplellm.nn.datasets import make_moons

torch.set_num_threads(1)

SETTINGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
]


@pytest.mark.parametrize(("name", "hyper"), SETTINGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SETTINGS)])
def test_numpy_optimizers_equal_torch_optim_per_parameter_per_step(name, hyper):
    rng = np.random.default_rng(0)
    model = L.Sequential([L.Linear(3, 5, rng=rng), L.Tanh(), L.Linear(5, 2, rng=rng)])
    loss_fn = L.SoftmaxCrossEntropy()
    x, targets = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    reference = {key: torch.tensor(value, requires_grad=True) for key, value in model.params.items()}
    ours = getattr(numpy_optim, name)(model.params, model.grads, **hyper)
    theirs = getattr(torch.optim, name)(list(reference.values()), **hyper)
    for step in range(30):
        # Real gradients from our layers, handed to torch as well: this isolates the optimizer.
        ours.zero_grad()
        loss_fn(model(x), targets)
        model.backward(loss_fn.backward())
        for key, tensor in reference.items():
            tensor.grad = torch.tensor(model.grads[key])
        ours.step()
        theirs.step()
        for key, tensor in reference.items():
            difference = np.abs(model.params[key] - tensor.detach().numpy()).max()
            assert difference <= 1e-9, f"step {step}, {key}: {difference}"


def test_optimizers_update_the_layers_arrays_in_place():
    rng = np.random.default_rng(1)
    layer = L.Linear(2, 2, rng=rng)
    W = layer.params["W"]
    before = W.copy()
    layer.grads["W"][...] = 1.0
    numpy_optim.SGD(layer.params, layer.grads, lr=0.5).step()
    assert layer.params["W"] is W
    np.testing.assert_allclose(W, before - 0.5)


def test_optimizer_rejects_params_and_grads_that_do_not_match():
    with pytest.raises(ValueError, match=r"only in params \['b'\]"):
        numpy_optim.SGD({"W": np.ones(2), "b": np.ones(1)}, {"W": np.ones(2)}, lr=0.1)
    with pytest.raises(ValueError, match="has shape"):
        numpy_optim.Adam({"W": np.ones(2)}, {"W": np.ones(3)}, lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        numpy_optim.Adam({"W": np.ones(2)}, {"W": np.ones(2)}, lr=-0.1)


def test_a_numpy_network_learns_the_two_moons():
    X, y = make_moons(200, noise=0.1, seed=0)
    X, y = np.array(X), np.array(y)
    rng = np.random.default_rng(2)
    model = L.Sequential(
        [L.Linear(2, 16, rng=rng), L.Tanh(), L.Linear(16, 16, rng=rng), L.Tanh(), L.Linear(16, 2, rng=rng)]
    )
    loss_fn = L.SoftmaxCrossEntropy()
    optimizer = numpy_optim.Adam(model.params, model.grads, lr=0.02)
    first = None
    for _ in range(300):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        first = loss if first is None else first
        model.backward(loss_fn.backward())
        optimizer.step()
    accuracy = (model(X).argmax(axis=1) == y).mean()
    assert first > 0.5 and loss < 0.1 and accuracy > 0.97
