"""Recurrent language models: a hidden state carries everything read so far, one token at a time.

* ``RNNLanguageModel``: the Elman network (Elman 1990, "Finding Structure in Time"),
  ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``.
* ``GRULanguageModel``: the gated recurrent unit (Cho et al. 2014, "Learning Phrase Representations
  using RNN Encoder-Decoder for Statistical Machine Translation"). A reset gate r decides how much of
  the past enters the candidate state n, an update gate z how much of the old state to keep:

      r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
      z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
      n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
      h' = (1 - z) * n + z * h

  Keeping ``z * h`` is an identity path through time, so gradients survive long sequences where the
  Elman network's fade (Bengio, Simard & Frasconi 1994).

Both cells are written out here, gate by gate, with the equations and parameter layout of
``torch.nn.RNN`` / ``torch.nn.GRU`` (``weight_ih`` stacks ``[W_ir | W_iz | W_in]`` as (3H, I)), so
``to_torch()`` / ``load_from_torch()`` convert exactly and the tests check our cells against torch's.

The model: embedding -> ``num_layers`` cells, each reading the sequence of the one below -> linear head.
Generation carries the hidden state: one step per new token, instead of re-reading the whole sample.
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

from simplellm.lm.models.base import TorchLanguageModel, pad_batch


@dataclass
class RNNConfig:
    vocab_size: int
    embedding_dim: int = 32
    hidden: int = 128
    num_layers: int = 1
    dropout: float = 0.0  # between layers and before the head, as in Zaremba et al. (2014)


class RecurrentCell(nn.Module):
    """The weights of one layer, laid out as torch's (``weight_ih``: (gates * H, I), ...)."""

    gates: ClassVar[int] = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        G, H = self.gates * hidden_size, hidden_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, H))
        self.bias_ih = nn.Parameter(torch.empty(G))
        self.bias_hh = nn.Parameter(torch.empty(G))
        bound = 1 / math.sqrt(H)  # torch's initialisation, so both start from the same distribution
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih x + b_ih, for all time steps at once: only the part that depends on h is sequential."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The next hidden state from this step's input projection ``gi`` and the previous state."""
        raise NotImplementedError

    def sequence(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The hidden states (B, T, H) after each of the T input projections ``gi`` (B, T, G), from ``h``:
        ``step`` applied along the sequence, differentiated by autograd."""
        states = []
        # unbind, not gi[:, t]: the backward of each gi[:, t] would fill a whole (B, T, G) zero tensor
        for gi_t in gi.unbind(dim=1):
            h = self.step(gi_t, h)
            states.append(h)
        return torch.stack(states, dim=1)


class ElmanCell(RecurrentCell):
    gates = 1

    def step(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(gi + F.linear(h, self.weight_hh, self.bias_hh))


class GRUCell(RecurrentCell):
    gates = 3

    def step(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        H = self.hidden_size
        gi_rz, gi_n = gi.split([2 * H, H], dim=-1)
        gh_rz, gh_n = F.linear(h, self.weight_hh, self.bias_hh).split([2 * H, H], dim=-1)
        r, z = torch.sigmoid(gi_rz + gh_rz).chunk(2, dim=-1)
        n = torch.tanh(gi_n + r * gh_n)  # r gates W_hn h + b_hn, bias included
        return n + z * (h - n)  # (1 - z) * n + z * h, with one operation fewer (torch computes it so too)

    def sequence(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The same states as ``RecurrentCell.sequence``, with the backward pass written out (below). On a
        CPU, where each small operation's overhead dominates, its forward takes half the time and a
        training step of the milestone's two-layer GRU ~20% less."""
        return GRUThroughTime.apply(gi, h, self.weight_hh, self.bias_hh)


class GRUThroughTime(torch.autograd.Function):
    """``GRUCell.step`` applied along a whole sequence, with its backward pass (backpropagation through
    time, Werbos 1990) written out instead of recorded op by op.

    The same equations as ``step``; what changes is the cost. Through ``step``, autograd records ~10
    small operations per time step and replays their backwards one by one; with (B, H) = (50, 64) on a
    CPU each costs microseconds of bookkeeping, more than its arithmetic. Here the forward runs 7
    operations per step into preallocated time-major buffers (r, z, n, h - n and W_hn h + b_hn, what
    the backward needs) and records none; the backward computes the factors that do not depend on the
    incoming gradient for all steps at once, leaves 7 operations per step, and makes the weight
    gradient one matrix product over all steps instead of one per step. Checked against autograd
    through ``step`` and against torch.nn.GRU in float64, and by finite differences.

    ``gi``: (B, T, 3H), the input projections ``W_ih x + b_ih`` (``RecurrentCell.input_projection``);
    ``h0``: (B, H). Returns the hidden states (B, T, H).
    """

    @staticmethod
    def forward(ctx, gi, h0, weight_hh, bias_hh):  # type: ignore[override]
        B, T, G = gi.shape
        H = G // 3
        hs, rz, n, h_minus_n, gh = (gi.new_empty(T, B, size) for size in (H, 2 * H, H, H, G))
        # every per-step view made once (indexing a tensor costs microseconds, a list lookup nothing)
        gi_rz, gi_n = (part.unbind(1) for part in gi.split([2 * H, H], dim=2))
        gh_t, hs_t, rz_t, n_t, hmn_t = (x.unbind(0) for x in (gh, hs, rz, n, h_minus_n))
        gh_rz, gh_n = (part.unbind(0) for part in gh.split([2 * H, H], dim=2))
        r_t, z_t = (part.unbind(0) for part in rz.split([H, H], dim=2))
        w_t = weight_hh.t()
        h = h0
        for t in range(T):
            torch.addmm(bias_hh, h, w_t, out=gh_t[t])  # W_hh h + b_hh, all three gates
            torch.add(gi_rz[t], gh_rz[t], out=rz_t[t]).sigmoid_()
            torch.addcmul(gi_n[t], r_t[t], gh_n[t], out=n_t[t]).tanh_()
            torch.sub(h, n_t[t], out=hmn_t[t])
            h = torch.addcmul(n_t[t], z_t[t], hmn_t[t], out=hs_t[t])  # n + z * (h - n)
        ctx.save_for_backward(h0, weight_hh, hs, rz, n, h_minus_n, gh[:, :, 2 * H :])
        return hs.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_hs):  # type: ignore[override]
        h0, weight_hh, hs, rz, n, h_minus_n, gh_n = ctx.saved_tensors
        T, B, H = hs.shape
        r, z = rz.split([H, H], dim=2)
        # pre-activation gradients: of n, dh (1 - z) tanh'; of r, that times gh_n sigmoid'(r);
        # of z, dh (h - n) sigmoid'(z). The factors that do not depend on dh, for every step at once:
        d_sigmoid = rz * (1 - rz)
        n_factor = ((1 - z) * (1 - n * n)).unbind(0)
        r_factor = (gh_n * d_sigmoid[..., :H]).unbind(0)
        z_factor = (h_minus_n * d_sigmoid[..., H:]).unbind(0)
        r_t, z_t, grad_t = r.unbind(0), z.unbind(0), grad_hs.unbind(1)
        # d(W_hh h + b_hh) per step: [r | z | n] pre-activation gradients, the n part gated by r;
        # the input side's n gradient is not gated
        dgh = hs.new_empty(T, B, 3 * H)
        dgi_n = hs.new_empty(T, B, H)
        dgh_r, dgh_z, dgh_n = (part.unbind(0) for part in dgh.split([H, H, H], dim=2))
        dgh_t, dgi_n_t = dgh.unbind(0), dgi_n.unbind(0)
        dh = grad_t[T - 1].clone()
        for t in range(T - 1, -1, -1):
            torch.mul(dh, n_factor[t], out=dgi_n_t[t])
            torch.mul(dgi_n_t[t], r_factor[t], out=dgh_r[t])
            torch.mul(dh, z_factor[t], out=dgh_z[t])
            torch.mul(dgi_n_t[t], r_t[t], out=dgh_n[t])
            dh.mul_(z_t[t]).addmm_(dgh_t[t], weight_hh)  # back through z * h and through W_hh h
            if t > 0:
                dh.add_(grad_t[t - 1])  # and h_{t-1}'s own gradient, from the head or the layer above
        dgi = torch.cat([dgh[..., : 2 * H], dgi_n], dim=-1).transpose(0, 1)
        h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]])
        d_weight = dgh.reshape(T * B, 3 * H).t() @ h_prev.reshape(T * B, H)
        return dgi, dh, d_weight, dgh.sum(dim=(0, 1))


class RecurrentLanguageModel(TorchLanguageModel):
    """Embedding, a stack of recurrent cells, a linear head. Subclasses choose the cell."""

    Config: ClassVar[type] = RNNConfig
    Cell: ClassVar[type[RecurrentCell]]
    torch_class: ClassVar[type[nn.RNNBase]]  # the torch module with the same equations

    def __init__(self, config: RNNConfig) -> None:
        super().__init__(config)
        if config.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, not {config.num_layers}")
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.cells = nn.ModuleList(
            self.Cell(config.embedding_dim if layer == 0 else config.hidden, config.hidden)
            for layer in range(config.num_layers)
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)
        nn.init.normal_(self.head.weight, std=0.02)  # start near uniform: loss ~ log V
        nn.init.zeros_(self.head.bias)

    def layer_outputs(self, idx: torch.Tensor, hidden: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each layer's hidden states at every position, (B, T, H) per layer, from initial states
        ``hidden`` ((num_layers, B, H); zeros by default)."""
        x = self.embedding(idx)
        outputs = []
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                x = self.drop(x)
            gi = cell.input_projection(x)  # (B, T, gates * H) in one matmul
            h = x.new_zeros(idx.shape[0], cell.hidden_size) if hidden is None else hidden[layer]
            x = cell.sequence(gi, h)  # only the part that depends on h runs step by step
            outputs.append(x)
        return outputs

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.layer_outputs(idx)[-1]))

    # ----------------------------------------------------------------- generation: carry the state
    def _logprobs(self, top: torch.Tensor) -> np.ndarray:
        return F.log_softmax(self.head(top).double(), dim=-1).cpu().numpy()

    def start(self, contexts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, np.ndarray]:
        """The state is the (num_layers, B, H) hidden state after each context's last token."""
        if any(len(c) == 0 for c in contexts):
            raise ValueError("every context needs at least one token (start with BOS)")
        with self.evaluating():
            outputs = self.layer_outputs(pad_batch(contexts, self.device))
            rows = torch.arange(len(contexts), device=self.device)
            last = torch.tensor([len(c) - 1 for c in contexts], device=self.device)
            hidden = torch.stack([out[rows, last] for out in outputs])  # right padding comes after `last`
            return hidden, self._logprobs(hidden[-1])

    def advance(self, state: torch.Tensor, tokens: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        with self.evaluating():
            x = self.embedding(torch.as_tensor(np.asarray(tokens), dtype=torch.long, device=self.device))
            hidden = []
            for cell, h in zip(self.cells, state, strict=True):
                x = cell.step(cell.input_projection(x), h)
                hidden.append(x)
            return torch.stack(hidden), self._logprobs(x)

    def select(self, state: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return state.index_select(1, torch.as_tensor(np.asarray(rows), dtype=torch.long, device=state.device))

    # ----------------------------------------------------------------- torch.nn.RNN / GRU interchange
    _names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

    def to_torch(self) -> nn.RNNBase:
        """A ``batch_first`` torch.nn.RNN / GRU holding copies of this model's recurrent weights."""
        c, w = self.config, self.embedding.weight
        rnn = self.torch_class(
            c.embedding_dim,
            c.hidden,
            num_layers=c.num_layers,
            batch_first=True,
            device=w.device,
            dtype=w.dtype,
        )
        with torch.no_grad():
            for layer, cell in enumerate(self.cells):
                for name in self._names:
                    getattr(rnn, f"{name}_l{layer}").copy_(getattr(cell, name))
        return rnn

    def load_from_torch(self, rnn: nn.RNNBase) -> None:
        """Copy the weights of a torch.nn.RNN / GRU of the same shape into our cells."""
        c = self.config
        if not isinstance(rnn, self.torch_class) or rnn.bidirectional or rnn.proj_size or not rnn.bias:
            raise ValueError(f"expected a unidirectional {self.torch_class.__name__} with biases")
        if (rnn.input_size, rnn.hidden_size, rnn.num_layers) != (c.embedding_dim, c.hidden, c.num_layers):
            raise ValueError(
                f"shape mismatch: torch module has (input, hidden, layers) = "
                f"{(rnn.input_size, rnn.hidden_size, rnn.num_layers)}, this model "
                f"{(c.embedding_dim, c.hidden, c.num_layers)}"
            )
        with torch.no_grad():
            for layer, cell in enumerate(self.cells):
                for name in self._names:
                    getattr(cell, name).copy_(getattr(rnn, f"{name}_l{layer}"))


class RNNLanguageModel(RecurrentLanguageModel):
    """Elman (1990) recurrent network language model."""

    family: ClassVar[str] = "rnn"
    Cell = ElmanCell
    torch_class = nn.RNN


class GRULanguageModel(RecurrentLanguageModel):
    """GRU (Cho et al. 2014) language model."""

    family: ClassVar[str] = "gru"
    Cell = GRUCell
    torch_class = nn.GRU
