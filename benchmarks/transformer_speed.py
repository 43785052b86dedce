"""How fast is our GPT, next to the same architecture built from PyTorch's own modules?

``python -m benchmarks.transformer_speed``

Three contenders with the same configuration, the same weights and the same batches:

* ours, explicit: ``simplellm.lm.models.transformer.GPT`` with attention written out
  (scores, causal mask, softmax, weighted sum of values);
* ours, SDPA: the same model with ``F.scaled_dot_product_attention``, torch's fused kernel;
* PyTorch's modules: :class:`EncoderStackGPT`, an ``nn.TransformerEncoder`` of pre-LN
  ``nn.TransformerEncoderLayer`` s (tanh GELU, 4C hidden units, a causal mask) between the same
  embeddings, final LayerNorm and head. It loads our weights and computes the same function
  (tested to 1e-10 in float64), so every difference below is speed, not work.

Measured:

1. training: tokens/s of forward + backward + AdamW step, on random token batches;
2. inference: tokens/s of a forward pass without autograd (what scoring does);
3. generation: tokens/s of sampling a fixed number of tokens per row, with our key/value cache and by
   re-reading the whole context at every step (the base class's generation: all PyTorch's stack has).

The contenders are timed in turn within each round (A B C, A B C, ...), so a slow spell of a shared
machine hits all of them; each speed is the median over rounds, and each ratio is the median of the
ratios within a round, shown with their range over the rounds (how noisy the machine was). One torch
thread unless a row says otherwise. Results are machine-dependent: read the ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simplellm.lm.models.base import LanguageModel, TorchLanguageModel
from simplellm.lm.models.transformer import GPT, GPTConfig
from simplellm.lm.sampling import choose
from simplellm.lm.tokenizers import BOS

VOCAB = 66  # about the size of a character vocabulary of the text corpora


def tanh_gelu(x: torch.Tensor) -> torch.Tensor:
    """Our MLP's activation (GPT-2's tanh approximation of GELU), as a plain function.

    A plain function, not ``nn.GELU(approximate="tanh")``: given an ``nn.GELU``, the encoder layer takes
    its inference fast path without autograd, and that kernel computes the *exact* GELU whatever
    ``approximate`` says, so the reference would compute a different function in eval mode.
    """
    return F.gelu(x, approximate="tanh")


class EncoderStackGPT(TorchLanguageModel):
    """Our GPT's architecture from PyTorch's modules: a causal ``nn.TransformerEncoder``.

    ``activation`` is :func:`tanh_gelu` (our function); pass ``nn.GELU()`` to let PyTorch use its
    inference fast path, which then computes the exact GELU: a slightly different model.
    """

    family = "torch-encoder"
    Config = GPTConfig

    def __init__(self, config: GPTConfig, activation: Callable | str = tanh_gelu) -> None:
        super().__init__(config)
        if config.positions != "learned" or config.tie_weights or not config.bias:
            raise ValueError("the reference mirrors learned positions, untied weights and biases only")
        C = config.n_embd
        self.context_window = config.block_size
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.pos_emb = nn.Embedding(config.block_size, C)
        layer = nn.TransformerEncoderLayer(
            d_model=C,
            nhead=config.n_head,
            dim_feedforward=4 * C,
            dropout=config.dropout,
            activation=activation,
            layer_norm_eps=1e-5,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, config.n_layer, norm=nn.LayerNorm(C, eps=1e-5), enable_nested_tensor=False
        )
        self.head = nn.Linear(C, config.vocab_size, bias=False)
        mask = nn.Transformer.generate_square_subsequent_mask(config.block_size)  # -inf above the diagonal
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))
        # is_causal tells PyTorch the mask is the causal one, so attention may skip reading it
        x = self.encoder(x, mask=self.mask[:T, :T].to(x.dtype), is_causal=True)
        return self.head(x)

    @classmethod
    def from_gpt(cls, gpt: GPT, activation: Callable | str = tanh_gelu) -> EncoderStackGPT:
        """A reference with ``gpt``'s configuration, dtype and weights."""
        reference = cls(gpt.config, activation).to(next(gpt.parameters()).dtype)
        reference.load_state_dict(encoder_state_dict(gpt.state_dict()))
        return reference


# our name -> PyTorch's name, inside each block; the layouts agree (q, k, v stacked in that order in
# one matrix, head h owning channels h*D:(h+1)*D of each), so the weights copy over unchanged
BLOCK_NAMES = {
    "ln1": "norm1",
    "attn.qkv.weight": "self_attn.in_proj_weight",
    "attn.qkv.bias": "self_attn.in_proj_bias",
    "attn.proj": "self_attn.out_proj",
    "ln2": "norm2",
    "mlp.fc": "linear1",
    "mlp.proj": "linear2",
}


def encoder_state_dict(gpt_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our GPT's state_dict under :class:`EncoderStackGPT`'s names."""
    out = {}
    for name, tensor in gpt_state.items():
        if name.startswith("blocks."):
            _, layer, rest = name.split(".", 2)
            ours = next(key for key in BLOCK_NAMES if rest.startswith(key))
            name = f"encoder.layers.{layer}.{BLOCK_NAMES[ours]}{rest[len(ours) :]}"
        elif name.startswith("ln_f."):
            name = "encoder.norm." + name[len("ln_f.") :]
        out[name] = tensor
    return out


class Rereading(LanguageModel):
    """A model seen only through ``next_token_logprobs``: generation re-reads the context at every step."""

    def __init__(self, model: LanguageModel) -> None:
        self.model = model
        self.vocab_size = model.vocab_size
        self.context_window = model.context_window

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        return self.model.next_token_logprobs(contexts)


def generate_tokens(model: LanguageModel, rows: int, new_tokens: int, seed: int = 0) -> np.ndarray:
    """(rows, new_tokens) sampled tokens after BOS: the sampler's loop, except that EOS does not end a
    row, so every contender does the same amount of work."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, new_tokens), dtype=np.int64)
    state, logp = model.start([[BOS]] * rows)
    for step in range(new_tokens):
        out[:, step] = choose(np.exp(logp), rng)
        if step < new_tokens - 1:
            state, logp = model.advance(state, out[:, step])
    return out


# ---------------------------------------------------------------------------------------- timing
def interleaved(
    contenders: dict[str, Callable[[], None]],
    rounds: int,
    warmup: dict[str, Callable[[], None]] | None = None,
) -> dict[str, list[float]]:
    """Seconds of each contender's call, per round, after one untimed warm-up call each (of ``warmup``'s
    shorter version where given): first calls allocate and initialise lazily."""
    for fn in (warmup or contenders).values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def speeds(times: dict[str, list[float]], tokens: int) -> dict[str, float]:
    return {name: tokens / statistics.median(seconds) for name, seconds in times.items()}


def ratios(times: dict[str, list[float]], faster: str, slower: str) -> list[float]:
    """How many times faster ``faster`` ran than ``slower``, in each round."""
    return [s / f for f, s in zip(times[faster], times[slower], strict=True)]


def ratio(times: dict[str, list[float]], faster: str, slower: str) -> float:
    return statistics.median(ratios(times, faster, slower))


def versus(times: dict[str, list[float]], ours: str, theirs: str) -> dict:
    """The headline ratio (median of the rounds') and its range over the rounds: how noisy it was."""
    each = ratios(times, ours, theirs)
    return {"sdpa/pytorch": statistics.median(each), "range": (min(each), max(each))}


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


# ---------------------------------------------------------------------------------------- contenders
@dataclass
class Setting:
    name: str
    model: dict  # GPTConfig options besides vocab_size and attention
    batch: int
    seq_len: int


@dataclass
class Sizes:
    settings: list[Setting] = field(
        default_factory=lambda: [
            Setting("4 layers, C=64, 4 heads", dict(n_layer=4, n_head=4, n_embd=64, block_size=128), 64, 64),
            Setting(
                "4 layers, C=128, 8 heads", dict(n_layer=4, n_head=8, n_embd=128, block_size=128), 32, 128
            ),
        ]
    )
    rounds: int = 11  # timed rounds per measurement (each figure is a median over these)
    train_steps: int = 2  # optimizer steps per contender per round
    gen_rows: int = 64  # generation: rows sampled together ...
    gen_tokens: int = 127  # ... each this many new tokens after BOS (BOS + 127 fills a 128 window)
    gen_rounds: int = 3
    threads: int = 1  # torch threads for every figure ...
    info_threads: int | None = 2  # ... and the first setting's training again with these, for information


QUICK = Sizes(
    settings=[Setting("1 layer, C=16, 2 heads", dict(n_layer=1, n_head=2, n_embd=16, block_size=16), 4, 8)],
    rounds=2,
    train_steps=1,
    gen_rows=3,
    gen_tokens=6,
    gen_rounds=1,
    info_threads=None,
)


def build(setting: Setting, seed: int = 0) -> dict[str, TorchLanguageModel]:
    """The three contenders, with the same weights."""
    torch.manual_seed(seed)
    explicit = GPT(GPTConfig(vocab_size=VOCAB, attention="explicit", **setting.model))
    sdpa = GPT(replace(explicit.config, attention="sdpa"))
    sdpa.load_state_dict(explicit.state_dict())
    return {"explicit": explicit, "sdpa": sdpa, "pytorch": EncoderStackGPT.from_gpt(explicit)}


def batch_of(setting: Setting, seed: int = 0) -> torch.Tensor:
    """(batch, seq_len + 1) random tokens, none of them PAD: ``seq_len`` predictions per row."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, VOCAB, (setting.batch, setting.seq_len + 1), generator=g)


def describe(setting: Setting, models: dict[str, TorchLanguageModel]) -> str:
    counts = {m.num_parameters() for m in models.values()}
    return f"{setting.name}, {' vs '.join(f'{c:,}' for c in sorted(counts))} parameters"


def training(setting: Setting, sizes: Sizes, threads: int) -> dict:
    models = build(setting)
    batch = batch_of(setting)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=3e-4) for name, m in models.items()}
    first_loss = {name: m.loss(batch).item() for name, m in models.items()}

    def train(name: str) -> Callable[[], None]:
        model, optimizer = models[name], optimizers[name]

        def steps() -> None:
            for _ in range(sizes.train_steps):
                loss = model.loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

        return steps

    times = interleaved({name: train(name) for name in models}, sizes.rounds)
    gap = max(abs(v - first_loss["explicit"]) for v in first_loss.values())
    return {
        "benchmark": f"training (fwd+bwd+AdamW), {describe(setting, models)}, batch {setting.batch}x"
        f"{setting.seq_len}",
        "threads": threads,
        **speeds(times, sizes.train_steps * setting.batch * setting.seq_len),
        **versus(times, "sdpa", "pytorch"),
        "note": f"explicit/pytorch {ratio(times, 'explicit', 'pytorch'):.2f}x; first losses agree to "
        f"{gap:.1e}; {load()}",
    }


def inference(setting: Setting, sizes: Sizes) -> dict:
    models = build(setting)
    # PyTorch's inference fast path needs an nn.GELU: exact GELU, so not quite our function
    models["pytorch fast path"] = EncoderStackGPT.from_gpt(models["explicit"], activation=nn.GELU())
    inputs = batch_of(setting)[:, :-1]

    def forward(model: TorchLanguageModel) -> Callable[[], None]:
        def once() -> None:
            with model.evaluating():
                model(inputs)

        return once

    times = interleaved({name: forward(m) for name, m in models.items()}, sizes.rounds)
    fast = speeds(times, inputs.numel())
    return {
        "benchmark": f"inference forward, {setting.name}, batch {setting.batch}x{setting.seq_len}",
        "threads": torch.get_num_threads(),
        **{name: fast[name] for name in ("explicit", "sdpa", "pytorch")},
        **versus(times, "sdpa", "pytorch"),
        "note": f"PyTorch's fast path (exact GELU) {fast['pytorch fast path']:,.0f} tokens/s, ours SDPA "
        f"{ratio(times, 'sdpa', 'pytorch fast path'):.2f}x that; {load()}",
    }


def generation(setting: Setting, sizes: Sizes) -> list[dict]:
    models = build(setting)
    rows, new = sizes.gen_rows, sizes.gen_tokens
    contenders = {
        "explicit cached": models["explicit"],
        "sdpa cached": models["sdpa"],
        "explicit": Rereading(models["explicit"]),
        "sdpa": Rereading(models["sdpa"]),
        "pytorch": models["pytorch"],  # the base class's start/advance: re-reading
    }
    times = interleaved(
        {name: (lambda m=m: generate_tokens(m, rows, new)) for name, m in contenders.items()},
        sizes.gen_rounds,
        warmup={name: (lambda m=m: generate_tokens(m, rows, 2)) for name, m in contenders.items()},
    )
    fast = speeds(times, rows * new)
    what = f"generation, {setting.name}, {rows} rows x {new} tokens"
    return [
        {
            "benchmark": f"{what}, key/value cache",
            "threads": torch.get_num_threads(),
            "explicit": fast["explicit cached"],
            "sdpa": fast["sdpa cached"],
            "pytorch": math.nan,
            **versus(times, "sdpa cached", "pytorch"),
            "note": f"the cache is {ratio(times, 'explicit cached', 'explicit'):.1f}x (explicit) and "
            f"{ratio(times, 'sdpa cached', 'sdpa'):.1f}x (SDPA) re-reading; PyTorch's stack has no cache, "
            f"so the ratio is against its re-reading; {load()}",
        },
        {
            "benchmark": f"{what}, re-reading the context",
            "threads": torch.get_num_threads(),
            **{name: fast[name] for name in ("explicit", "sdpa", "pytorch")},
            **versus(times, "sdpa", "pytorch"),
            "note": f"every step re-reads up to {min(new, setting.model['block_size'])} tokens; {load()}",
        },
    ]


def run(sizes: Sizes | None = None) -> list[dict]:
    """Rows of tokens/s for each contender (``explicit``, ``sdpa``, ``pytorch``) and ``sdpa/pytorch``."""
    sizes = sizes or Sizes()
    threads_before = torch.get_num_threads()
    rows = []
    try:
        for i, setting in enumerate(sizes.settings):
            torch.set_num_threads(sizes.threads)
            rows.append(training(setting, sizes, sizes.threads))
            rows.append(inference(setting, sizes))
            if i == 0 and sizes.info_threads:
                torch.set_num_threads(sizes.info_threads)
                rows.append(training(setting, sizes, sizes.info_threads))
        torch.set_num_threads(sizes.threads)
        rows.extend(generation(sizes.settings[0], sizes))
    finally:
        torch.set_num_threads(threads_before)
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{x:,.0f}"

    lines = [
        "| benchmark | threads | ours, explicit (tokens/s) | ours, SDPA (tokens/s) | PyTorch's modules "
        "(tokens/s) | SDPA / PyTorch (range over rounds) | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['benchmark']} | {r['threads']} | {cell(r['explicit'])} | {cell(r['sdpa'])} | "
            f"{cell(r['pytorch'])} | {r['sdpa/pytorch']:.2f}x ({r['range'][0]:.2f}-{r['range'][1]:.2f}) | "
            f"{r['note']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument(
        "--rounds", type=int, default=Sizes.rounds, help="timed rounds per training and inference figure"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes(rounds=args.rounds)
    print(markdown(run(sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
