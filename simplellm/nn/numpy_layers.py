"""Neural-network layers with hand-written backward passes, in NumPy.

PyTorch's autograd records the graph and differentiates it for us; here every layer writes its own
``backward`` next to its ``forward``, so each derivative can be read, and checked, line by line.
The NumPy language models (an n-gram network, a transformer) are built from these pieces.

Conventions that every layer keeps, and that code built on these layers may rely on:

* ``params`` and ``grads`` are ``dict[str, np.ndarray]`` with the same keys and shapes. A layer made of
  layers lists its children's arrays under dotted names (``"qkv.W"``, ``"0.gamma"``).
* ``forward(x)`` caches what the backward pass needs; ``backward(dout)`` uses the cache of the most
  recent forward, returns the gradient with respect to the input, and *adds* the parameter gradients
  into ``grads``, as PyTorch accumulates into ``.grad``; ``zero_grad()`` sets them back to zero.
  A layer called twice in one forward pass would overwrite its own cache: make two layers instead.
* Arrays are changed in place and never replaced, because a parent layer and an optimizer hold the
  very same arrays: write ``layer.params["W"][...] = values`` or use ``load_params``.
* Parameters are float64 unless ``dtype`` says otherwise. Element-wise layers keep the input's dtype,
  and every input gradient has the dtype of its input.
* ``Linear`` stores ``W`` as (in_features, out_features) and computes ``x @ W + b``: the transpose of
  ``torch.nn.Linear.weight``. Load a torch layer with ``W[...] = linear.weight.detach().numpy().T``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import ArrayLike, DTypeLike


class Layer:
    """The base of every layer: named parameters, their gradients, and the forward/backward pair."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def add_child(self, name: str, layer: Layer) -> Layer:
        """Adopt ``layer``'s parameters under ``name.``: the same arrays, so updates reach both."""
        for key in layer.params:
            self.params[f"{name}.{key}"] = layer.params[key]
            self.grads[f"{name}.{key}"] = layer.grads[key]
        return layer

    def __call__(self, *inputs: ArrayLike) -> np.ndarray:
        return self.forward(*(np.asarray(x) for x in inputs))

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def load_params(self, values: Mapping[str, ArrayLike]) -> None:
        """Copy ``values`` into the parameters of the same names (in place), checking names and shapes."""
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise KeyError(f"load_params: no parameters named {unknown}; there are {sorted(self.params)}")
        for name, value in values.items():
            value = np.asarray(value)
            if value.shape != self.params[name].shape:
                raise ValueError(f"load_params: {name} is {self.params[name].shape}, got {value.shape}")
            self.params[name][...] = value

    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def _cached(self, name: str) -> np.ndarray:
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return value


def _in_dtype_of(dx: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The gradient in the dtype of the input it belongs to (an integer input keeps a float gradient)."""
    return dx.astype(x.dtype, copy=False) if np.issubdtype(x.dtype, np.floating) else dx


class Linear(Layer):
    """``y = x @ W + b`` on the last axis of ``x``; any leading (batch) axes are carried along."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rng: np.random.Generator,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        # The distribution of torch.nn.Linear's default: uniform in +-1/sqrt(in_features).
        bound = 1.0 / math.sqrt(in_features)
        self.add_param("W", rng.uniform(-bound, bound, (in_features, out_features)).astype(dtype))
        if bias:
            self.add_param("b", rng.uniform(-bound, bound, out_features).astype(dtype))
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear: expected a last axis of {self.in_features}, got shape {x.shape}")
        self.x = x
        y = x @ self.params["W"]
        return y + self.params["b"] if "b" in self.params else y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._cached("x")
        # Every leading axis is a batch axis: flatten them, and dW is one matrix product.
        x2 = x.reshape(-1, self.in_features)
        d2 = dout.reshape(-1, self.out_features)
        self.grads["W"] += x2.T @ d2
        if "b" in self.params:
            self.grads["b"] += d2.sum(axis=0)
        return _in_dtype_of(dout @ self.params["W"].T, x)


class Embedding(Layer):
    """Row ``i`` of ``W`` is the vector of token ``i``: ``forward(idx)`` is the lookup ``W[idx]``."""

    def __init__(
        self, num_embeddings: int, dim: int, *, rng: np.random.Generator, dtype: DTypeLike = np.float64
    ) -> None:
        super().__init__()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.add_param("W", rng.standard_normal((num_embeddings, dim)).astype(dtype))  # as torch: N(0, 1)
        self.idx: np.ndarray | None = None

    def forward(self, idx: ArrayLike) -> np.ndarray:
        idx = np.asarray(idx)
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"Embedding: indices must be integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise IndexError(
                f"Embedding: indices must be in [0, {self.num_embeddings}), "
                f"got min {idx.min()} and max {idx.max()}"
            )
        self.idx = idx
        return self.params["W"][idx]

    def backward(self, dout: np.ndarray) -> None:
        # A token that appears twice must receive both gradients: W[idx] += dout would keep only one,
        # np.add.at adds them all.
        np.add.at(self.grads["W"], self._cached("idx"), dout)
        return None  # indices are not differentiable


class LayerNorm(Layer):
    """Normalise the last axis to mean 0 and variance 1, then scale by ``gamma`` and shift by ``beta``.

    As ``torch.nn.LayerNorm``: the biased variance (divide by n, not n - 1), and ``eps`` added to it
    inside the square root.
    """

    def __init__(self, dim: int, eps: float = 1e-5, dtype: DTypeLike = np.float64) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.add_param("gamma", np.ones(dim, dtype=dtype))
        self.add_param("beta", np.zeros(dim, dtype=dtype))
        self.xhat: np.ndarray | None = None
        self.rstd: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"LayerNorm: expected inputs with last axis {self.dim}, got shape {x.shape}")
        centred = x - x.mean(axis=-1, keepdims=True)
        variance = (centred * centred).mean(axis=-1, keepdims=True)
        self.rstd = 1.0 / np.sqrt(variance + self.eps)
        self.xhat = centred * self.rstd
        return self.xhat * self.params["gamma"] + self.params["beta"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        xhat, rstd = self._cached("xhat"), self._cached("rstd")
        batch_axes = tuple(range(dout.ndim - 1))
        self.grads["gamma"] += (dout * xhat).sum(axis=batch_axes)
        self.grads["beta"] += dout.sum(axis=batch_axes)
        # Each output depends on every input of its row through the mean and the variance. The
        # gradient of xhat, minus its mean (the mean's share), minus its projection on xhat (the
        # variance's share), scaled by 1/std.
        dxhat = dout * self.params["gamma"]
        dx = rstd * (
            dxhat - dxhat.mean(axis=-1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)
        )
        return _in_dtype_of(dx, xhat)


class Tanh(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        out = self._cached("out")  # tanh' = 1 - tanh^2: the output is all backward needs
        return _in_dtype_of(dout * (1.0 - out * out), out)


class ReLU(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._cached("x")
        return _in_dtype_of(dout * (x > 0), x)  # as torch: the gradient at exactly 0 is 0


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # a Python float, so float32 inputs stay float32


class GELU(Layer):
    """GELU in its tanh form, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Equal to ``torch.nn.GELU(approximate="tanh")`` (GPT-2's activation), not to the exact erf form.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        self.t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
        return 0.5 * x * (1.0 + self.t)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x, t = self._cached("x"), self._cached("t")
        dinner = _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)
        return _in_dtype_of(dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dinner), x)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)), after subtracting the maximum so that no exp can overflow."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class SoftmaxCrossEntropy(Layer):
    """The mean of ``-log softmax(logits)[target]`` over the targets that are not ``ignore_index``.

    ``forward(logits, targets)``: logits (..., V), integer targets (...), returns the loss as a float.
    ``backward(dloss=1.0)`` returns dlogits, which is ``(softmax - onehot) / n_counted`` on counted
    rows and 0 on ignored ones. As ``torch.nn.functional.cross_entropy`` (whose default
    ``ignore_index`` is also -100, and whose class axis is axis 1 where ours is the last): if every
    target is ignored the loss is nan and the gradient is 0.
    """

    def __init__(self, ignore_index: int | None = -100) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.probs: np.ndarray | None = None

    def forward(self, logits: np.ndarray, targets: ArrayLike) -> float:
        targets = np.asarray(targets)
        if logits.shape[:-1] != targets.shape or not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(
                f"SoftmaxCrossEntropy: logits of shape {logits.shape} need integer targets "
                f"of shape {logits.shape[:-1]}, got {targets.dtype} of shape {targets.shape}"
            )
        if self.ignore_index is None:
            counted = np.ones(targets.shape, dtype=bool)
        else:
            counted = targets != self.ignore_index
        vocab = logits.shape[-1]
        if np.any(counted & ((targets < 0) | (targets >= vocab))):
            raise IndexError(
                f"SoftmaxCrossEntropy: targets must be in [0, {vocab}) or be ignore_index "
                f"({self.ignore_index})"
            )
        safe_targets = np.where(counted, targets, 0)[..., None]
        # log softmax through log-sum-exp of shifted logits: large logits cannot overflow exp.
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        self.probs = np.exp(log_probs)
        self.safe_targets, self.counted = safe_targets, counted
        self.n_counted = int(counted.sum())
        if self.n_counted == 0:
            return math.nan
        nll = -np.take_along_axis(log_probs, safe_targets, axis=-1)[..., 0]
        return float(nll[counted].sum() / self.n_counted)

    def backward(self, dloss: float = 1.0) -> np.ndarray:
        dlogits = self._cached("probs").copy()
        if self.n_counted == 0:
            return np.zeros_like(dlogits)
        np.put_along_axis(
            dlogits, self.safe_targets, np.take_along_axis(dlogits, self.safe_targets, axis=-1) - 1.0, axis=-1
        )
        dlogits[~self.counted] = 0.0
        dlogits *= dloss / self.n_counted
        return dlogits


class CausalSelfAttention(Layer):
    """Multi-head self-attention in which position t attends to positions 0..t only.

    Input and output (B, T, C). ``qkv`` (C -> 3C) makes queries, keys and values: the three
    consecutive C-column blocks of its output. Head h uses columns h*D:(h+1)*D of each block
    (D = C / n_head). Scores are ``q k^T / sqrt(D)``, masked above the diagonal, soft-maxed; the heads'
    outputs are concatenated back in order and mixed by ``proj`` (C -> C). The same layout as
    nanoGPT's ``c_attn``/``c_proj``, so torch weights load with one transpose each.
    """

    def __init__(
        self, n_embd: int, n_head: int, *, rng: np.random.Generator, dtype: DTypeLike = np.float64
    ) -> None:
        super().__init__()
        if n_head < 1 or n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_embd ({n_embd}) is not a multiple of n_head ({n_head})")
        self.n_embd, self.n_head = n_embd, n_head
        self.qkv = self.add_child("qkv", Linear(n_embd, 3 * n_embd, rng=rng, dtype=dtype))
        self.proj = self.add_child("proj", Linear(n_embd, n_embd, rng=rng, dtype=dtype))
        self.scale = 1.0 / math.sqrt(n_embd // n_head)
        self.att: np.ndarray | None = None

    def _split_heads(self, x: np.ndarray) -> np.ndarray:  # (B, T, C) -> (B, H, T, D)
        B, T, C = x.shape
        return x.reshape(B, T, self.n_head, C // self.n_head).transpose(0, 2, 1, 3)

    @staticmethod
    def _merge_heads(x: np.ndarray) -> np.ndarray:  # (B, H, T, D) -> (B, T, C)
        B, H, T, D = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, T, H * D)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(f"CausalSelfAttention: expected (B, T, {self.n_embd}), got shape {x.shape}")
        T, C = x.shape[1], self.n_embd
        qkv = self.qkv(x)
        q, k, v = (self._split_heads(qkv[..., i * C : (i + 1) * C]) for i in range(3))
        scores = (q @ k.swapaxes(-1, -2)) * self.scale  # (B, H, T, T)
        # -inf above the diagonal: exp(-inf) = 0 exactly, so no weight reaches a future position.
        future = np.triu(np.ones((T, T), dtype=bool), k=1)
        self.att = softmax(np.where(future, -np.inf, scores))
        self.q, self.k, self.v = q, k, v
        return self.proj(self._merge_heads(self.att @ v))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        att = self._cached("att")
        q, k, v = self.q, self.k, self.v
        dy = self._split_heads(self.proj.backward(dout))  # (B, H, T, D)
        datt = dy @ v.swapaxes(-1, -2)
        dv = att.swapaxes(-1, -2) @ dy
        # Softmax backward, row by row: ds = p * (dp - sum(dp * p)). Masked entries have p = 0, so
        # they receive no gradient, as they should.
        dscores = att * (datt - (datt * att).sum(axis=-1, keepdims=True)) * self.scale
        dq = dscores @ k
        dk = dscores.swapaxes(-1, -2) @ q
        dqkv = np.concatenate([self._merge_heads(d) for d in (dq, dk, dv)], axis=-1)
        return self.qkv.backward(dqkv)


class Sequential(Layer):
    """Layers applied one after the other; backward runs them in reverse. Parameters are named
    ``"<position>.<name>"``: ``Sequential([Linear(...), ReLU()]).params`` has ``"0.W"`` and ``"0.b"``."""

    def __init__(self, layers: Iterable[Layer]) -> None:
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            self.add_child(str(i), layer)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)
