"""A GPT: a decoder-only transformer (Radford et al. 2018, "Improving Language Understanding by Generative
Pre-Training"; 2019, "Language Models are Unsupervised Multitask Learners"), built on the attention of
Vaswani et al. (2017), "Attention Is All You Need". Written in the manner of Karpathy's nanoGPT.

Every position looks at all earlier positions at once through causal self-attention: each head forms a
query, a key and a value per position; a position's output is the average of the earlier values,
weighted by softmax(query . key / sqrt(D)). Attention mixes information *between* positions; the MLP
that follows transforms each position on its own. The blocks are pre-LayerNorm (GPT-2):
``x = x + attn(ln1(x)); x = x + mlp(ln2(x))``, so the residual stream is an identity path from the
embeddings to the head.

Attention has no notion of order, so positions are added to the token embeddings: learned vectors
(GPT) or the fixed sinusoids of Vaswani et al. Either way the model has ``block_size`` positions: its
context window. Generation past it re-reads the last ``block_size`` tokens.

The module names and layouts are a contract: the NumPy transformer loads these weights and must produce
the same logits, so q/k/v are the three consecutive C-row blocks of ``qkv``, head h owns channels
``h*D:(h+1)*D`` of each, and the MLP's GELU is the tanh approximation (the form GPT-2 used).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simplellm.lm.models.base import LanguageModel, State, TorchLanguageModel

KeyValues = tuple[torch.Tensor, torch.Tensor]  # one layer's keys and values, each (B, H, T, D)


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 128  # the context window: how many positions the model has
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    positions: str = "learned"  # "learned" (GPT) or "sinusoidal" (Vaswani et al.)
    tie_weights: bool = False  # the head reuses the token embedding matrix (Press & Wolf 2017)
    attention: str = "explicit"  # "explicit" (written out below) or "sdpa" (torch's fused kernel)
    bias: bool = True  # biases in the Linear and LayerNorm layers


def sinusoidal_positions(num_positions: int, dim: int) -> torch.Tensor:
    """(num_positions, dim): PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(p / 10000^(2i/dim))."""
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    frequency = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    return table


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
        if config.attention not in ("explicit", "sdpa"):
            raise ValueError(f"attention must be 'explicit' or 'sdpa', not {config.attention!r}")
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.use_sdpa = config.attention == "sdpa"
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.attn_drop = nn.Dropout(config.dropout)
        self.resid_drop = nn.Dropout(config.dropout)
        mask = torch.ones(config.block_size, config.block_size, dtype=torch.bool).tril()
        self.register_buffer("mask", mask, persistent=False)  # position t sees positions <= t

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of every position, split into heads: each (B, H, T, D)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        return tuple(t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(B, H, Tq, Tk) attention weights of queries at the *last* Tq of Tk positions (causal)."""
        Tq, Tk = q.shape[2], k.shape[2]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~self.mask[Tk - Tq : Tk, :Tk], float("-inf"))
        return F.softmax(scores, dim=-1)

    def forward(self, x: torch.Tensor, past: KeyValues | None = None) -> tuple[torch.Tensor, KeyValues]:
        """Attention output for the positions of ``x``, and the keys/values of every position so far.

        ``past``: cached keys/values of earlier positions (generation); ``x`` then holds the new ones.
        """
        B, T, C = x.shape
        q, k, v = self.heads(x)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        if self.use_sdpa:
            # is_causal aligns the mask top-left, right only when queries and keys start together;
            # one new query after cached keys may see every key, so it needs no mask at all.
            if past is not None and T > 1:
                raise ValueError("sdpa with a cache takes one new position at a time")
            drop = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, is_causal=past is None, dropout_p=drop)
        else:
            y = self.attn_drop(self.weights(q, k)) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again, in order
        return self.resid_drop(self.proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, past: KeyValues | None = None) -> tuple[torch.Tensor, KeyValues]:
        a, present = self.attn(self.ln1(x), past)
        x = x + a
        x = x + self.mlp(self.ln2(x))
        return x, present


@dataclass
class KVCacheState:
    """Generation state: every token so far (B, T) and each layer's keys/values, (B, H, T, D).

    ``cache`` is None once the sample outgrows ``block_size``: positions then shift at every step, so
    the cached keys are stale and each step re-reads the last ``block_size`` tokens instead.
    """

    tokens: torch.Tensor
    cache: list[KeyValues] | None


class GPT(TorchLanguageModel):
    """Token + position embeddings, ``n_layer`` pre-LN transformer blocks, final LayerNorm, linear head."""

    family: ClassVar[str] = "transformer"
    Config: ClassVar[type] = GPTConfig

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        if config.positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', not {config.positions!r}")
        if config.block_size < 1 or config.n_layer < 1:
            raise ValueError("block_size and n_layer must be >= 1")
        self.context_window = config.block_size
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        if config.positions == "learned":
            self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        else:  # fixed, so a buffer; not persistent: it is a function of the config, not a weight
            self.register_buffer(
                "pos_emb",
                sinusoidal_positions(config.block_size, config.n_embd).to(torch.get_default_dtype()),
                persistent=False,
            )
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights()
        if config.tie_weights:  # one matrix both reads tokens in and scores them out
            self.head.weight = self.tok_emb.weight

    def _init_weights(self) -> None:
        # GPT-2: N(0, 0.02) everywhere; the projections that write into the residual stream get
        # 0.02 / sqrt(2 * n_layer), so the stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # .double() / .to() cast buffers; casting float32 sinusoids up would keep their float32
        # rounding, so recompute them in the new dtype (the NumPy port matches float64 logits to 1e-10)
        module = super()._apply(fn, recurse)
        if self.config.positions == "sinusoidal":
            exact = sinusoidal_positions(self.config.block_size, self.config.n_embd)
            self.pos_emb = exact.to(device=self.pos_emb.device, dtype=self.pos_emb.dtype)
        return module

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token plus position embeddings of tokens at positions start .. start + T - 1."""
        T = idx.shape[1]
        if start + T > self.config.block_size:
            raise ValueError(f"{start + T} positions exceed block_size {self.config.block_size}")
        if self.config.positions == "learned":
            pos = self.pos_emb(torch.arange(start, start + T, device=idx.device))
        else:
            pos = self.pos_emb[start : start + T]
        return self.drop(self.tok_emb(idx) + pos)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed(idx)
        for block in self.blocks:
            x, _ = block(x)
        return self.head(self.ln_f(x))

    def attention_maps(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the (B, H, T, T) attention weights on ``idx`` (eval mode: no dropout)."""
        with self.evaluating():
            maps = []
            x = self.embed(idx)
            for block in self.blocks:
                q, k, _ = block.attn.heads(block.ln1(x))
                maps.append(block.attn.weights(q, k))
                x, _ = block(x)
            return maps

    # ----------------------------------------------------------------- generation with a key/value cache
    def _cached_forward(self, idx: torch.Tensor, cache: list[KeyValues] | None) -> tuple[np.ndarray, list]:
        """Next-token log-probs after the last token of ``idx``, which follows the cached positions."""
        start = 0 if cache is None else cache[0][0].shape[2]
        x = self.embed(idx, start)
        present = []
        for layer, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[layer])
            present.append(kv)
        logits = self.head(self.ln_f(x[:, -1]))
        return F.log_softmax(logits.double(), dim=-1).cpu().numpy(), present

    def _reread(self, tokens: torch.Tensor) -> np.ndarray:
        logits = self(tokens[:, -self.config.block_size :])[:, -1]
        return F.log_softmax(logits.double(), dim=-1).cpu().numpy()

    def start(self, contexts: Sequence[Sequence[int]]) -> tuple[State, np.ndarray]:
        if len({len(c) for c in contexts}) > 1:  # prompts of different lengths cannot share one cache
            return LanguageModel.start(self, contexts)
        if any(len(c) == 0 for c in contexts):
            raise ValueError("every context needs at least one token (start with BOS)")
        with self.evaluating():
            tokens = torch.tensor([list(c) for c in contexts], dtype=torch.long, device=self.device)
            if tokens.shape[1] > self.config.block_size:
                return KVCacheState(tokens, None), self._reread(tokens)
            logp, cache = self._cached_forward(tokens, None)
            return KVCacheState(tokens, cache), logp

    def advance(self, state: State, tokens: np.ndarray) -> tuple[State, np.ndarray]:
        if not isinstance(state, KVCacheState):
            return LanguageModel.advance(self, state, tokens)
        with self.evaluating():
            new = torch.as_tensor(np.asarray(tokens), dtype=torch.long, device=self.device)[:, None]
            tokens_so_far = torch.cat([state.tokens, new], dim=1)
            if state.cache is None or tokens_so_far.shape[1] > self.config.block_size:
                return KVCacheState(tokens_so_far, None), self._reread(tokens_so_far)
            logp, cache = self._cached_forward(new, state.cache)
            return KVCacheState(tokens_so_far, cache), logp

    def select(self, state: State, rows: np.ndarray) -> State:
        if not isinstance(state, KVCacheState):
            return LanguageModel.select(self, state, rows)
        index = torch.as_tensor(np.asarray(rows), dtype=torch.long, device=state.tokens.device)
        cache = None
        if state.cache is not None:
            cache = [(k.index_select(0, index), v.index_select(0, index)) for k, v in state.cache]
        return KVCacheState(state.tokens.index_select(0, index), cache)
