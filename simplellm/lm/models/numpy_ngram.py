"""A position-aware n-gram network in NumPy, every derivative written out by hand.

The model of Bengio et al. (2003), "A Neural Probabilistic Language Model", with one table per slot:
the previous k words are looked up, word i of the context in table i, their vectors concatenated, passed
through a tanh hidden layer, and turned into next-word probabilities by a softmax:

    x = [E_1[w_{t-k}], ..., E_k[w_{t-1}]]       (k * d)
    h = tanh(x W1 + b1)                          (hidden)
    p = softmax(h W2 + b2)                       (V)

One table per position lets a word mean one thing right before the prediction and another three words
back. The ablation ``position_specific=False`` shares one table and *averages* the k vectors: the sum
is the same for any order of the words, so contexts that are permutations of each other get identical
predictions -- "dog bites man" and "man bites dog" cannot be told apart.

Before the first word of a sentence the context is filled with BOS, so the first word is predicted too
(from ``BOS BOS BOS``). Training is plain SGD on one (context, next word) example or a mini-batch of
them, with a step learning-rate schedule (see ``simplellm.lm.numpy_train``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from simplellm.lm.models.numpy_base import NumpyLanguageModel
from simplellm.lm.tokenizers import BOS
from simplellm.nn.numpy_layers import SoftmaxCrossEntropy


@dataclass
class NumpyNGramConfig:
    vocab_size: int
    context: int = 3  # k: how many previous words a prediction reads
    embedding_dim: int = 16
    hidden: int = 64
    position_specific: bool = True  # False: the ablation, one shared table whose k vectors are averaged
    init_scale: float = 0.1  # output weights ~ N(0, (init_scale / sqrt(hidden))^2): near-uniform at first
    init_seed: int = 0


class NumpyNGram(NumpyLanguageModel):
    """Per-position embeddings (or their average), a tanh hidden layer, softmax; backprop by hand."""

    family: ClassVar[str] = "numpy-ngram"
    Config: ClassVar[type] = NumpyNGramConfig
    default_optimizer: ClassVar[str] = "sgd"
    default_schedule: ClassVar[str] = "step"
    # plain SGD: no weight decay, no clipping, no warm-up (the step schedule has none)
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 20_000,
        "batch_size": 32,
        "lr": 0.1,
        "min_lr": 0.02,
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "grad_clip": 0.0,
        "eval_every": 2000,
    }

    def __init__(self, config: NumpyNGramConfig) -> None:
        super().__init__(config)
        for name in ("context", "embedding_dim", "hidden"):
            if getattr(config, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(config, name)}")
        if config.init_scale < 0:
            raise ValueError(f"init_scale must be >= 0, not {config.init_scale}")
        k, V, d, H = config.context, config.vocab_size, config.embedding_dim, config.hidden
        self.context_window = k  # the base class crops longer contexts to their last k tokens
        rng = np.random.default_rng(config.init_seed)
        tables = k if config.position_specific else 1
        n_in = k * d if config.position_specific else d
        self.add_param("emb", rng.standard_normal((tables, V, d)))  # emb[i, w]: word w in slot i
        # Kaiming's gain for tanh (5/3): the pre-activations start with unit variance, neither saturated
        # (where tanh' = 0 stops learning) nor so small that the layer is nearly linear.
        self.add_param("W1", rng.standard_normal((n_in, H)) * (5 / 3) / math.sqrt(n_in))
        self.add_param("b1", np.zeros(H))
        # Small output weights: the first predictions are close to uniform, the first loss close to log V,
        # instead of confidently wrong.
        self.add_param("W2", rng.standard_normal((H, V)) * config.init_scale / math.sqrt(H))
        self.add_param("b2", np.zeros(V))
        self.loss_fn = SoftmaxCrossEntropy(ignore_index=None)

    # ----------------------------------------------------------------- forward and backward
    def forward(self, contexts: np.ndarray) -> np.ndarray:
        """(B, V) logits of the next word after each (B, k) context of word ids."""
        contexts = np.asarray(contexts)
        B, k = contexts.shape
        if k != self.config.context:
            raise ValueError(f"contexts must hold {self.config.context} tokens each, got {k}")
        emb = self.params["emb"]
        if self.config.position_specific:
            # slot i reads table i: emb[i, contexts[:, i]] for every i at once -> (B, k, d)
            x = emb[np.arange(k), contexts].reshape(B, -1)
        else:
            x = emb[0][contexts].mean(axis=1)  # (B, d): the order of the k words is gone here
        h = np.tanh(x @ self.params["W1"] + self.params["b1"])
        self._cache = (contexts, x, h)
        return h @ self.params["W2"] + self.params["b2"]

    def backward(self, dlogits: np.ndarray) -> None:
        """Add the gradient of every parameter, given the gradient of the loss w.r.t. the logits."""
        contexts, x, h = self._cache
        p, g = self.params, self.grads
        g["W2"] += h.T @ dlogits
        g["b2"] += dlogits.sum(axis=0)
        dpre = (dlogits @ p["W2"].T) * (1.0 - h * h)  # through tanh: tanh' = 1 - tanh^2
        g["W1"] += x.T @ dpre
        g["b1"] += dpre.sum(axis=0)
        dx = dpre @ p["W1"].T
        B, k = contexts.shape
        # A word used twice (twice in one context, or in two examples) must receive both gradients:
        # g[...][idx] += dx would keep only the last one; np.add.at adds them all.
        if self.config.position_specific:
            slots = np.broadcast_to(np.arange(k), (B, k))
            np.add.at(g["emb"], (slots, contexts), dx.reshape(B, k, -1))
        else:
            # each of the k vectors contributed 1/k of the mean, so each receives 1/k of its gradient
            share = np.broadcast_to(dx[:, None, :] / k, (B, k, dx.shape[1]))
            np.add.at(g["emb"][0], contexts, share)

    def loss_and_backward(self, batch: tuple[np.ndarray, np.ndarray]) -> tuple[float, int]:
        contexts, targets = batch
        loss = self.loss_fn(self.forward(contexts), targets)
        self.backward(self.loss_fn.backward())
        return loss, len(targets)

    # ----------------------------------------------------------------- data
    def examples(self, sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Every (context, next word) pair of framed sequences: (N, k) BOS-padded contexts, (N,) targets."""
        k = self.config.context
        contexts, targets = [], []
        for seq in sequences:
            padded = np.asarray([BOS] * k + list(seq), dtype=np.int64)
            # the word at padded[k + t] (t >= 1) follows the k tokens padded[t : t + k]
            contexts.append(sliding_window_view(padded, k)[1 : len(seq)])
            targets.append(padded[k + 1 :])
        if not contexts:
            return np.zeros((0, k), dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(contexts), np.concatenate(targets)

    def training_batches(
        self, data: Any, batch_size: int, seed: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Mini-batches of ``batch_size`` examples (1: one example per step), in a random order.

        Sequences come from ``data.next_batch`` a chunk at a time (a fixed set is visited epoch by epoch,
        a language gives fresh samples); their examples are shuffled and served until too few are left.
        """
        rng = np.random.default_rng(seed)
        X = np.zeros((0, self.config.context), dtype=np.int64)
        Y = np.zeros(0, dtype=np.int64)
        while True:
            while len(Y) < batch_size:
                new_x, new_y = self.examples(data.next_batch(256))
                order = rng.permutation(len(new_y))
                X, Y = np.concatenate([X, new_x[order]]), np.concatenate([Y, new_y[order]])
            yield X[:batch_size], Y[:batch_size]
            X, Y = X[batch_size:], Y[batch_size:]

    # ----------------------------------------------------------------- the language-model questions
    def _logprobs(self, contexts: np.ndarray) -> np.ndarray:
        logits = self.forward(contexts)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        k = self.config.context
        rows = []
        for c in contexts:
            if len(c) == 0:
                raise ValueError("every context needs at least one token (start with BOS)")
            last = [int(t) for t in c[-k:]]
            rows.append([BOS] * (k - len(last)) + last)
        return self._logprobs(np.asarray(rows, dtype=np.int64).reshape(len(rows), k))

    def sequence_logprobs(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        X, Y = self.examples(sequences)
        owner = np.repeat(np.arange(len(sequences)), [max(0, len(s) - 1) for s in sequences])
        picked = np.empty(len(Y))
        for start in range(0, len(Y), 4096):
            chunk = slice(start, start + 4096)
            picked[chunk] = np.take_along_axis(self._logprobs(X[chunk]), Y[chunk, None], axis=-1)[:, 0]
        return np.bincount(owner, weights=picked, minlength=len(sequences))


# ------------------------------------------------------------------ what a learner looks at
_EIGHTHS = " ▏▎▍▌▋▊▉"


def text_bar(fraction: float, width: int) -> str:
    """A bar of ``fraction * width`` character cells, drawn to an eighth of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def top_predictions(model: Any, tokenizer: Any, prompts: Sequence[str], top: int = 5, width: int = 30) -> str:
    """For each prompt, the ``top`` likeliest next tokens with their probabilities and a bar.

    A prompt is text the sample starts with ("" for the start of a sentence); the bar is drawn to scale,
    a full ``width`` cells for probability 1. Works for any language model.
    """
    lines = []
    for prompt in prompts:
        context = [BOS, *tokenizer.encode(prompt, frame=False)]
        probs = np.exp(model.next_token_logprobs([context])[0])
        best = np.argsort(-probs, kind="stable")[:top]
        lines.append(f"{prompt or '(start of a sentence)'} ...")
        names = [tokenizer.itos[i] for i in best]
        pad = max(len(n) for n in names)
        for name, i in zip(names, best, strict=True):
            lines.append(f"  {name:<{pad}}  {probs[i]:.3f}  {text_bar(float(probs[i]), width)}")
    return "\n".join(lines)
