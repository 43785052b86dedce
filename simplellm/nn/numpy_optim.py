"""SGD and Adam for the NumPy layers: the arithmetic of stages 1 and 2, on arrays.

A NumPy layer keeps each parameter and its gradient in two dicts with the same keys, so the
optimizers take both: ``Adam(model.params, model.grads, lr=1e-3)``. They update the arrays in
place, which is how the change reaches the layers that own them. Semantics are ``torch.optim``'s:
L2 weight decay added to the gradient, a momentum buffer that starts as the first gradient, and
Adam's bias correction by the number of steps taken.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from simplellm.nn.common import check_hyperparameters


class _Optimizer:
    def __init__(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        if set(params) != set(grads):
            raise ValueError(
                f"optimizer: params and grads must have the same names; "
                f"only in params {sorted(set(params) - set(grads))}, "
                f"only in grads {sorted(set(grads) - set(params))}"
            )
        for name in params:
            if params[name].shape != grads[name].shape:
                raise ValueError(
                    f"optimizer: {name} has shape {params[name].shape} but its gradient {grads[name].shape}"
                )
        self.params, self.grads = dict(params), dict(grads)

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)


class SGD(_Optimizer):
    """``p <- p - lr * velocity``, ``velocity <- momentum * velocity + grad`` (no momentum: the gradient)."""

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, grads)
        check_hyperparameters(list(self.params), lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity: dict[str, np.ndarray] = {}

    def step(self) -> None:
        for name, p in self.params.items():
            g = self.grads[name] + self.weight_decay * p
            if self.momentum != 0.0:
                v = self.velocity.get(name)
                g = self.velocity[name] = g if v is None else self.momentum * v + g
            p -= self.lr * g


class Adam(_Optimizer):
    """Adam with torch.optim.Adam's semantics; ``t`` counts the steps for the bias correction."""

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, grads)
        check_hyperparameters(list(self.params), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m = {name: np.zeros_like(p) for name, p in self.params.items()}  # running mean of the gradient
        self.v = {name: np.zeros_like(p) for name, p in self.params.items()}  # running mean of its square
        self.t = 0

    def step(self) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        correction1 = 1.0 - beta1**self.t
        correction2 = 1.0 - beta2**self.t
        for name, p in self.params.items():
            g = self.grads[name] + self.weight_decay * p
            self.m[name] = beta1 * self.m[name] + (1.0 - beta1) * g
            self.v[name] = beta2 * self.v[name] + (1.0 - beta2) * g * g
            m_hat = self.m[name] / correction1
            v_hat = self.v[name] / correction2
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
