"""The transformer of ``transformer.py``, in NumPy, with its backward pass written by hand.

The decoder-only GPT of Radford et al. (2019), "Language Models are Unsupervised Multitask Learners",
on the attention of Vaswani et al. (2017), "Attention Is All You Need". The same network as the PyTorch
GPT, layer for layer: token and learned position embeddings, ``n_layer``
pre-LayerNorm blocks ``x = x + attn(ln1(x)); x = x + mlp(ln2(x))`` with multi-head causal self-attention
and a GELU feed-forward layer, a final LayerNorm and a linear head. It is assembled from the layers of
``simplellm.nn.numpy_layers``, each of which keeps its backward next to its forward; this file only
wires them together, forwards and then backwards:

* a residual connection ``x + f(x)`` copies its gradient into both branches, so the backward pass
  adds the gradient that comes back through ``f`` to the one that skipped it;
* LayerNorm's backward is *not* the identity: each output depends on every input of its row through
  the mean and the variance (a published NumPy transformer that drops this is off by 26-95% below the
  head). Tests compare every parameter's gradient with torch autograd on the GPT loaded with the same
  weights, in float64, to a relative error below 1e-6.
* with ``tie_weights`` the head reads the token embedding matrix, transposed; that matrix then gets
  two gradients, one from the lookup and one from the head, and they are summed.

No dropout (the NumPy models train without it) and learned positions only. ``state_dict()`` has the
names and layouts of the torch GPT's, so weights move both ways: a NumPy checkpoint loads into
``GPT`` and a GPT's weights load here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import DTypeLike

from simplellm.lm.models.numpy_base import NumpyLanguageModel, _as_numpy
from simplellm.lm.tokenizers import PAD
from simplellm.nn.numpy_layers import (
    GELU,
    CausalSelfAttention,
    Embedding,
    Layer,
    LayerNorm,
    Linear,
    SoftmaxCrossEntropy,
)

PRECISIONS = {"float64": np.float64, "float32": np.float32}


@dataclass
class NumpyTransformerConfig:
    vocab_size: int
    block_size: int = 64  # the context window: how many positions the model has
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 32
    tie_weights: bool = False  # the head reuses the token embedding matrix (Press & Wolf 2017)
    precision: str = "float64"  # weights and arithmetic: float64 (gradient tests) or float32 (2x faster)
    init_seed: int = 0


class Block(Layer):
    """Pre-LayerNorm: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, n_embd: int, n_head: int, rng: np.random.Generator, dtype: DTypeLike) -> None:
        super().__init__()
        self.ln1 = self.add_child("ln1", LayerNorm(n_embd, dtype=dtype))
        self.attn = self.add_child("attn", CausalSelfAttention(n_embd, n_head, rng=rng, dtype=dtype))
        self.ln2 = self.add_child("ln2", LayerNorm(n_embd, dtype=dtype))
        self.fc = self.add_child("mlp.fc", Linear(n_embd, 4 * n_embd, rng=rng, dtype=dtype))
        self.gelu = GELU()
        self.proj = self.add_child("mlp.proj", Linear(4 * n_embd, n_embd, rng=rng, dtype=dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = x + self.attn(self.ln1(x))
        return x + self.proj(self.gelu(self.fc(self.ln2(x))))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        # each residual: the gradient that skipped the branch plus the one that went through it
        dx = dout + self.ln2.backward(self.fc.backward(self.gelu.backward(self.proj.backward(dout))))
        return dx + self.ln1.backward(self.attn.backward(dx))


def torch_name(name: str) -> str:
    """Our parameter name -> the torch GPT's: ``W``/``gamma`` are ``weight``, ``b``/``beta`` are ``bias``."""
    head, _, leaf = name.rpartition(".")
    return f"{head}.{ {'W': 'weight', 'gamma': 'weight', 'b': 'bias', 'beta': 'bias'}[leaf] }"


class NumpyTransformer(NumpyLanguageModel):
    """A GPT in NumPy: embeddings, pre-LN blocks, final LayerNorm, head; backward by hand."""

    family: ClassVar[str] = "numpy-transformer"
    Config: ClassVar[type] = NumpyTransformerConfig
    default_optimizer: ClassVar[str] = "adam"
    default_schedule: ClassVar[str] = "cosine"
    # the torch trainer's recipe (AdamW, warm-up + cosine, clipping at 1), with its default decay of 0.1:
    # on sticky n=2, 1000 steps, float32, decay 0.1 measured val 3.6531 and 94.7% valid samples against
    # 3.6561 and 93.2% without (the torch GPT's command-line default, measured on n=3, is no decay)
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 2000,
        "batch_size": 32,
        "lr": 1e-2,
        "min_lr": 1e-3,
        "warmup_steps": 100,
        "weight_decay": 0.1,
        "eval_every": 200,
    }

    def __init__(self, config: NumpyTransformerConfig) -> None:
        super().__init__(config)
        if config.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}")
        dtype = PRECISIONS[config.precision]
        if config.block_size < 1 or config.n_layer < 1:
            raise ValueError("block_size and n_layer must be >= 1")
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
        self.context_window = config.block_size
        rng = np.random.default_rng(config.init_seed)
        C = config.n_embd
        self.tok_emb = Embedding(config.vocab_size, C, rng=rng, dtype=dtype)
        self.pos_emb = Embedding(config.block_size, C, rng=rng, dtype=dtype)
        self.blocks = [Block(C, config.n_head, rng, dtype) for _ in range(config.n_layer)]
        self.ln_f = LayerNorm(C, dtype=dtype)
        self.head = Linear(C, config.vocab_size, bias=False, rng=rng, dtype=dtype)
        self.loss_fn = SoftmaxCrossEntropy(ignore_index=PAD)
        if config.tie_weights:
            # the head's (C, V) matrix *is* the (V, C) embedding, transposed: a view, not a copy, so an
            # update of one is an update of the other
            self.head.params["W"] = self.tok_emb.params["W"].T
        layers: list[tuple[str, Layer]] = [("tok_emb", self.tok_emb), ("pos_emb", self.pos_emb)]
        layers += [(f"blocks.{i}", block) for i, block in enumerate(self.blocks)]
        layers += [("ln_f", self.ln_f)] + ([] if config.tie_weights else [("head", self.head)])
        for prefix, layer in layers:
            for name in layer.params:
                self.params[f"{prefix}.{name}"] = layer.params[name]
                self.grads[f"{prefix}.{name}"] = layer.grads[name]
        self._init_weights(rng)

    def _init_weights(self, rng: np.random.Generator) -> None:
        # GPT-2's initialisation, as the torch GPT: N(0, 0.02) for every matrix, 0.02 / sqrt(2 n_layer)
        # for the projections that write into the residual stream (so its variance does not grow with
        # depth), zero biases; LayerNorms start as the identity (gain 1, shift 0).
        for name, p in self.params.items():
            if name.endswith(".b"):
                p[...] = 0.0
            elif p.ndim == 2:
                std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith("proj.W") else 0.02
                p[...] = rng.normal(0.0, std, p.shape)

    # ----------------------------------------------------------------- forward and backward
    def forward(self, idx: np.ndarray) -> np.ndarray:
        """(B, T, V) logits; position t predicts token t+1 from tokens 0..t."""
        idx = np.asarray(idx)
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"{T} positions exceed block_size {self.config.block_size}")
        x = self.tok_emb(idx) + self.pos_emb(np.arange(T))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def backward(self, dlogits: np.ndarray) -> None:
        """Add every parameter's gradient, given the gradient of the loss w.r.t. the (B, T, V) logits."""
        dx = self.ln_f.backward(self.head.backward(dlogits))
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        # the position vector of t was added to every sequence of the batch: it gets their sum
        self.pos_emb.backward(dx.sum(axis=0))
        self.tok_emb.backward(dx)
        if self.config.tie_weights:  # the head's share of the tied matrix's gradient
            self.tok_emb.grads["W"] += self.head.grads["W"].T
            self.head.grads["W"].fill(0)

    def loss_and_backward(self, batch: np.ndarray) -> tuple[float, int]:
        """Mean cross-entropy of a padded (B, T) batch of framed sequences (PAD targets ignored), and its
        gradient: the loss of ``TorchLanguageModel.loss``."""
        batch = np.asarray(batch)
        inputs, targets = batch[:, :-1], batch[:, 1:]
        loss = self.loss_fn(self.forward(inputs), targets)
        self.backward(self.loss_fn.backward())
        return loss, self.loss_fn.n_counted

    def training_batches(self, data: Any, batch_size: int, seed: int) -> Iterator[np.ndarray]:
        """Padded (B, T) batches of whole sequences, cropped to the context window by the data."""
        while True:
            yield pad_array(data.next_batch(batch_size, self.context_window))

    # ----------------------------------------------------------------- the language-model questions
    def _logprobs(self, idx: np.ndarray) -> np.ndarray:
        logits = self.forward(idx).astype(np.float64)  # a float32 model's scores are still float64
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        cropped = [self.crop(c) for c in contexts]
        if any(len(c) == 0 for c in cropped):
            raise ValueError("every context needs at least one token (start with BOS)")
        lengths = np.array([len(c) for c in cropped])
        # right padding is safe: causal attention never lets position t read a later (padded) position
        logp = self._logprobs(pad_array(cropped))
        return logp[np.arange(len(cropped)), lengths - 1]

    def sequence_logprobs(self, sequences: Sequence[Sequence[int]], batch_size: int = 64) -> np.ndarray:
        window = self.context_window
        short = [i for i, s in enumerate(sequences) if len(s) - 1 <= window]
        totals = np.zeros(len(sequences))
        for start in range(0, len(short), batch_size):
            rows = short[start : start + batch_size]
            batch = pad_array([sequences[i] for i in rows])
            targets = batch[:, 1:]
            picked = np.take_along_axis(self._logprobs(batch[:, :-1]), targets[..., None], axis=-1)[..., 0]
            totals[rows] = np.where(targets != PAD, picked, 0.0).sum(axis=1)
        long = sorted(set(range(len(sequences))) - set(short))
        if long:  # past the window every token is scored from its cropped context, one at a time
            totals[long] = super().sequence_logprobs([sequences[i] for i in long])
        return totals

    # ----------------------------------------------------------------- weights, in the torch GPT's layout
    def torch_layout(self, arrays: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Arrays named as ``params`` (the weights, or their gradients) under the torch GPT's names and
        layouts: a Linear's matrix transposed, as torch stores (out, in)."""
        state = {}
        for name, value in arrays.items():
            value = value.T if _is_linear(name) else value
            state[torch_name(name)] = torch.from_numpy(value.copy())
        if self.config.tie_weights:  # torch lists the shared matrix under both names
            state["head.weight"] = state["tok_emb.weight"]
        return state

    def to_torch_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as the torch GPT's ``state_dict()``: ``GPT(...).load_state_dict`` takes them as is."""
        return self.torch_layout(self.params)

    def load_torch_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load a torch GPT's ``state_dict()`` (learned positions; biases on). Checks before changing."""
        expected = set(map(torch_name, self.params)) | ({"head.weight"} if self.config.tie_weights else set())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"these weights are not a GPT of this configuration: missing {missing}, "
                f"unexpected {unexpected}"
            )
        values = {}
        for name, p in self.params.items():
            transposed = _is_linear(name)
            value = _as_numpy(state[torch_name(name)]).astype(p.dtype)
            expected = p.T.shape if transposed else p.shape
            if value.shape != expected:
                raise ValueError(f"{torch_name(name)}: expected shape {expected}, got {value.shape}")
            values[name] = value.T if transposed else value
        if self.config.tie_weights and not np.array_equal(
            _as_numpy(state["head.weight"]), _as_numpy(state["tok_emb.weight"])
        ):
            raise ValueError("tie_weights is set, but head.weight and tok_emb.weight differ in these weights")
        self.set_params(values)

    # the checkpoint holds the torch layout, so a NumPy transformer's file also loads into the torch GPT
    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.to_torch_state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.load_torch_state_dict(state)

    def torch_config(self) -> dict[str, Any]:
        """The options of the torch GPT with this architecture (``GPT(GPTConfig(**torch_config()))``)."""
        c = self.config
        return {
            "vocab_size": c.vocab_size,
            "block_size": c.block_size,
            "n_layer": c.n_layer,
            "n_head": c.n_head,
            "n_embd": c.n_embd,
            "dropout": 0.0,
            "positions": "learned",
            "tie_weights": c.tie_weights,
            "bias": True,
        }


def _is_linear(name: str) -> bool:
    """Whether a parameter is a Linear's matrix, which torch stores transposed (embeddings are not)."""
    return name.endswith(".W") and not name.endswith("emb.W")


def pad_array(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """(B, T) int64 array of the sequences, right-padded with PAD."""
    if not sequences:
        raise ValueError("pad_array needs at least one sequence")
    out = np.full((len(sequences), max(len(s) for s in sequences)), PAD, dtype=np.int64)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = seq
    return out
