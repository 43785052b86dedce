"""How much does writing the backward pass by hand in NumPy cost, next to PyTorch's autograd?

``python -m benchmarks.numpy_vs_torch``

The NumPy transformer (``simplellm.lm.models.numpy_transformer``) and the torch GPT
(``simplellm.lm.models.transformer``) with the same configuration and the same weights, on the same
batch: one forward and backward pass each (mean cross-entropy, gradients of every parameter), timed
alternately in this one run, the median of several repeats after a warm-up. In float64 (the precision
of the gradient tests) and float32 (the precision of training). Both on one CPU thread: torch via
``set_num_threads(1)``, NumPy's OpenBLAS through its own ``set_num_threads`` where it can be found (the
table says so). Each row also reports how far the two losses are apart, to show the same work was done.

Results are machine-dependent: read the ratio, NumPy time over torch time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from simplellm.lm.models import build_model
from simplellm.lm.models.numpy_transformer import NumpyTransformer, NumpyTransformerConfig
from simplellm.lm.numpy_train import blas_threads

# (name, model options, batch size, sequence length)
CONFIGS = [
    ("small: 2 layers, C=32, 4 heads, V=66", dict(n_layer=2, n_head=4, n_embd=32, block_size=32), 32, 32),
    ("medium: 4 layers, C=64, 4 heads, V=66", dict(n_layer=4, n_head=4, n_embd=64, block_size=64), 32, 64),
]
VOCAB = 66  # a character vocabulary of the synthetic languages
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def time_one(step, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        out.append(time.perf_counter() - start)
    return out


def measure(options: dict, batch_size: int, seq_len: int, dtype: str, repeats: int, seed: int = 0) -> dict:
    """Seconds of one forward+backward pass of each implementation (medians), and their losses."""
    config = NumpyTransformerConfig(vocab_size=VOCAB, precision=dtype, init_seed=seed, **options)
    ours = NumpyTransformer(config)
    gpt = build_model("transformer", **ours.torch_config()).to(TORCH_DTYPES[dtype])
    gpt.load_state_dict(ours.state_dict())
    gpt.train()  # dropout is 0: train mode only means autograd records the graph, as in training
    rng = np.random.default_rng(seed)
    batch = rng.integers(4, VOCAB, size=(batch_size, seq_len + 1))
    batch_t = torch.from_numpy(batch)
    losses = {}

    def numpy_step() -> None:
        ours.zero_grad()
        losses["numpy"], _ = ours.loss_and_backward(batch)

    def torch_step() -> None:
        gpt.zero_grad(set_to_none=True)
        loss = gpt.loss(batch_t)
        loss.backward()
        losses["torch"] = loss.item()

    numpy_step(), torch_step()  # warm-up: first-call allocations and lazy initialisation
    numpy_times, torch_times = [], []
    for _ in range(repeats):  # alternating, so a slow spell of the machine hits both
        numpy_times += time_one(numpy_step, 1)
        torch_times += time_one(torch_step, 1)
    numpy_s, torch_s = statistics.median(numpy_times), statistics.median(torch_times)
    return {
        "numpy_s": numpy_s,
        "torch_s": torch_s,
        "ratio": numpy_s / torch_s,
        "loss_gap": abs(losses["numpy"] - losses["torch"]),
        "tokens": batch_size * seq_len,
        "parameters": ours.num_parameters(),
    }


def run(repeats: int = 10, configs: list | None = None) -> list[dict]:
    """One row per (configuration, dtype): NumPy and torch seconds per forward+backward, and the ratio."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    blas = blas_threads(1)
    try:
        rows = []
        for name, options, batch_size, seq_len in configs or CONFIGS:
            for dtype in ("float64", "float32"):
                m = measure(options, batch_size, seq_len, dtype, repeats)
                rows.append(
                    {
                        "benchmark": f"transformer fwd+bwd, {name}, batch {batch_size}x{seq_len}",
                        "dtype": dtype,
                        **m,
                        "note": f"{m['parameters']:,} parameters; loss gap {m['loss_gap']:.1e}; "
                        f"NumPy BLAS threads: {'1' if blas is not None else 'library default'}",
                    }
                )
        return rows
    finally:
        torch.set_num_threads(torch_threads)
        blas_threads(blas)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| benchmark | dtype | NumPy ms | PyTorch ms | NumPy / PyTorch | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['benchmark']} | {r['dtype']} | {1e3 * r['numpy_s']:.2f} | {1e3 * r['torch_s']:.2f} | "
            f"{r['ratio']:.2f}x | {r['note']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed passes per figure (median reported)")
    args = parser.parse_args(argv)
    print(markdown(run(args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
