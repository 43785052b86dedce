"""The autograd milestone: fit ``y = a*x + b`` with our engine, and prove it right twice over.

``python -m simplellm.autograd.test``

1. Against the ground truth: the data are noiseless, so gradient descent must recover ``a`` and
   ``b`` (to 1e-6).
2. Against PyTorch: the same run in float64 from the same initial values must give the same loss
   at every step (to 1e-9). Equal losses at every step mean equal gradients at every step.

Prints a table, writes ``runs/autograd/{results.json,loss.png,graph.dot}``, and exits non-zero when
a check fails. (The engine itself is pure Python; only this demonstration imports torch and
matplotlib, to compare and to plot.)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from simplellm.autograd import Value, draw

ACCEPTS_QUICK = False  # already takes about a second
OUT_DIR = Path("runs") / "autograd"


@dataclass
class Config:
    a_true: float = 2.5
    b_true: float = -0.7
    n_points: int = 20
    steps: int = 200
    lr: float = 0.2
    seed: int = 0


def make_data(cfg: Config) -> tuple[list[float], list[float]]:
    xs = [-1.0 + 2.0 * i / (cfg.n_points - 1) for i in range(cfg.n_points)]
    return xs, [cfg.a_true * x + cfg.b_true for x in xs]


def mse(a, b, xs, ys):
    """Mean squared error; works unchanged on Values and on torch tensors."""
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        total = total + (a * x + b - y) ** 2
    return total / len(xs)


def train_ours(cfg: Config, a0: float, b0: float) -> tuple[list[float], float, float, Value]:
    xs, ys = make_data(cfg)
    a, b = Value(a0, label="a"), Value(b0, label="b")
    losses = []
    for _ in range(cfg.steps):
        loss = mse(a, b, xs, ys)
        a.grad = b.grad = 0.0
        loss.backward()
        a.data -= cfg.lr * a.grad
        b.data -= cfg.lr * b.grad
        losses.append(loss.data)
    return losses, a.data, b.data, loss


def train_torch(cfg: Config, a0: float, b0: float) -> list[float]:
    import torch

    xs, ys = make_data(cfg)
    a = torch.tensor(a0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
    losses = []
    for _ in range(cfg.steps):
        loss = mse(a, b, xs, ys)
        a.grad = b.grad = None
        loss.backward()
        with torch.no_grad():
            a -= cfg.lr * a.grad
            b -= cfg.lr * b.grad
        losses.append(loss.item())
    return losses


def plot(losses: list[float], torch_losses: list[float], path: Path) -> None:
    import os
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")  # off-screen, unless a notebook kernel chose its inline backend
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(losses, label="our engine", linewidth=3, alpha=0.6)
    ax.semilogy(torch_losses, "--", label="PyTorch float64", color="black")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE (log scale)")
    ax.set_title("y = a*x + b: the two curves coincide")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=Config.seed, help="seed for the initial a and b")
    parser.add_argument("--steps", type=int, default=Config.steps)
    parser.add_argument("--lr", type=float, default=Config.lr)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where plots and results go")
    args = parser.parse_args(argv)
    cfg = Config(seed=args.seed, steps=args.steps, lr=args.lr)

    rng = random.Random(cfg.seed)
    a0, b0 = rng.uniform(-1, 1), rng.uniform(-1, 1)

    start = time.perf_counter()
    losses, a, b, last_loss = train_ours(cfg, a0, b0)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    torch_losses = train_torch(cfg, a0, b0)
    torch_seconds = time.perf_counter() - start

    max_step_diff = max(abs(p - q) for p, q in zip(losses, torch_losses, strict=True))
    checks = {
        "a recovered to 1e-6": abs(a - cfg.a_true) <= 1e-6,
        "b recovered to 1e-6": abs(b - cfg.b_true) <= 1e-6,
        "every step's loss equals PyTorch's to 1e-9": max_step_diff <= 1e-9,
    }

    print(
        f"Linear regression y = {cfg.a_true}*x + {cfg.b_true}, {cfg.n_points} noiseless points, "
        f"{cfg.steps} steps of gradient descent (lr {cfg.lr}) from a={a0:.4f}, b={b0:.4f}\n"
    )
    print("| quantity | ours | reference |")
    print("|---|---|---|")
    print(f"| a | {a:.10f} | {cfg.a_true} (truth) |")
    print(f"| b | {b:.10f} | {cfg.b_true} (truth) |")
    print(f"| final loss | {losses[-1]:.3e} | {torch_losses[-1]:.3e} (PyTorch) |")
    print(f"| max per-step loss difference | {max_step_diff:.1e} | 1e-9 allowed |")
    print(f"| wall time | {ours_seconds:.3f} s | {torch_seconds:.3f} s (PyTorch) |")
    print()
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")

    args.out.mkdir(parents=True, exist_ok=True)
    plot(losses, torch_losses, args.out / "loss.png")
    # The graph of the last step's loss: every point's residual feeds one sum.
    (args.out / "graph.dot").write_text(draw(last_loss))
    results = {
        "config": asdict(cfg),
        "initial": {"a": a0, "b": b0},
        "final": {"a": a, "b": b, "loss": losses[-1], "torch_loss": torch_losses[-1]},
        "max_step_loss_difference": max_step_diff,
        "seconds": {"ours": ours_seconds, "torch": torch_seconds},
        "losses": losses,
        "torch_losses": torch_losses,
        "checks": checks,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}/loss.png, {args.out}/graph.dot, {args.out}/results.json")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
