"""The MLP milestone: one network, trained three ways, and nothing changes but the machinery.

``python -m simplellm.nn.test [--quick]`` fits a ReLU MLP to the noiseless quadratic
``y = w1*x1**2 + w2*x2**2 + b`` with SGD (momentum) and with Adam, in each of the three stages:

1. our scalar ``Value`` engine (``stage1_value``),
2. raw PyTorch tensors with our own optimizers (``stage2_tensor``),
3. ``torch.nn`` and ``torch.optim`` (``stage3_torch``).

Every run starts from the same initial weights. Stage 1 builds a graph of scalars for every example,
so it trains on a small slice of the training set for fewer steps; stages 2 and 3 run that same small
setting too, which is where the three loss curves are compared step by step, and then the full one.
It prints a Markdown table, and writes ``results.json`` and ``loss_curves.png`` under ``runs/nn/``.
The exit status is 0 when every check passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import ModuleType

import torch

from simplellm.nn import stage1_value, stage2_tensor, stage3_torch
from simplellm.nn.datasets import Quadratic, make_quadratic, train_test_split

ACCEPTS_QUICK = True

STAGES: dict[str, ModuleType] = {"stage 1": stage1_value, "stage 2": stage2_tensor, "stage 3": stage3_torch}


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = (16, 16)
    n_examples: int = 1000  # split into train and test
    test_fraction: float = 0.2
    steps: int = 2000  # full-batch steps on the whole training set (stages 2 and 3)
    small_examples: int = 64  # the slice of the training set that stage 1 trains on ...
    small_steps: int = 300  # ... for this many steps
    sgd: dict = field(default_factory=lambda: {"lr": 0.05, "momentum": 0.9})
    adam: dict = field(default_factory=lambda: {"lr": 0.005})
    seed: int = 0
    threads: int = 1
    curve_tolerance: float = 1e-9  # largest allowed difference between two stages' losses at any step
    max_test_mse_fraction: float = 0.01  # stage 3 + Adam must reach test MSE <= this * Var(y)
    time_budget_s: float = 120.0


QUICK = Config(steps=600, small_examples=32, small_steps=100)


@dataclass
class Run:
    stage: str
    optimizer: str
    setting: str  # "small" (the stage-1 setting) or "full"
    n_train: int
    steps: int
    losses: list[float]
    train_mse: float
    test_mse: float
    wall_s: float
    cpu_s: float  # CPU time of this process: unlike wall time, it does not grow when others share the cores

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s


def train_one(
    name: str, optimizer: str, hyper: dict, weights: list, data: tuple, setting: str, steps: int
) -> Run:
    """Train stage ``name`` from ``weights`` on ``data`` = (X_train, y_train, X_test, y_test)."""
    X_train, y_train, X_test, y_test = data
    stage = STAGES[name]
    model = stage.MLP.from_weights(weights)
    opt = getattr(stage, optimizer)(model.parameters(), **hyper)
    label = f"{name}, {optimizer}, {len(y_train)} examples"
    start, start_cpu = time.perf_counter(), time.process_time()
    losses = stage.train(model, opt, X_train, y_train, steps, progress=label)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return Run(
        name,
        optimizer,
        setting,
        len(y_train),
        steps,
        losses,
        stage.mse(model, X_train, y_train),
        stage.mse(model, X_test, y_test),
        wall,
        cpu,
    )


def largest_difference(a: list[float], b: list[float], steps: int | None = None) -> float:
    return max(abs(x - y) for x, y in zip(a[:steps], b[:steps], strict=True))


def run_milestone(config: Config, out_dir: Path) -> dict:
    """Train every run, check the claims, save the plot and the JSON; returns the results."""
    start = time.perf_counter()
    target = Quadratic()
    X, y = make_quadratic(config.n_examples, seed=config.seed, target=target)
    X_train, y_train, X_test, y_test = train_test_split(X, y, config.test_fraction, seed=config.seed)
    var_y = statistics.pvariance(y)
    small = (X_train[: config.small_examples], y_train[: config.small_examples], X_test, y_test)
    full = (X_train, y_train, X_test, y_test)
    weights = stage1_value.MLP(2, [*config.hidden, 1], seed=config.seed).get_weights()
    optimizers = {"SGD": config.sgd, "Adam": config.adam}

    print(
        f"Data: y = {target.w1}*x1**2 + {target.w2}*x2**2 + {target.b} on [{target.low}, {target.high}]^2, "
        f"{len(y_train)} training and {len(y_test)} test examples, "
        f"Var(y) = {var_y:.4f}. Network: 2 -> {' -> '.join(map(str, config.hidden))} -> 1, ReLU."
    )
    print(
        f"Stage 1 (scalar engine) trains on the first {config.small_examples} training examples for "
        f"{config.small_steps} steps; stages 2 and 3 train on those too, so that the three curves can be "
        f"compared step by step, and then on all {len(y_train)} examples for {config.steps} steps."
    )
    print(f"Optimizers: SGD {config.sgd}, Adam {config.adam}. torch threads: {config.threads}.", flush=True)

    runs: list[Run] = []
    for optimizer, hyper in optimizers.items():
        for name in STAGES:
            runs.append(train_one(name, optimizer, hyper, weights, small, "small", config.small_steps))
        for name in ("stage 2", "stage 3"):
            runs.append(train_one(name, optimizer, hyper, weights, full, "full", config.steps))

    def curve(stage: str, optimizer: str, setting: str) -> list[float]:
        (run,) = [r for r in runs if (r.stage, r.optimizer, r.setting) == (stage, optimizer, setting)]
        return run.losses

    differences = {}
    for opt in optimizers:
        small_data = f"{config.small_examples} examples"
        differences[f"{opt}: stage 1 vs stage 2, {small_data}"] = largest_difference(
            curve("stage 1", opt, "small"), curve("stage 2", opt, "small")
        )
        differences[f"{opt}: stage 2 vs stage 3, {small_data}"] = largest_difference(
            curve("stage 2", opt, "small"), curve("stage 3", opt, "small")
        )
        first = config.small_steps
        differences[f"{opt}: stage 2 vs stage 3, full data, first {first} steps"] = largest_difference(
            curve("stage 2", opt, "full"), curve("stage 3", opt, "full"), first
        )
    # Reported, not checked: over thousands of steps the rounding differences (1e-16) between two
    # implementations can be amplified by the training dynamics, Adam's especially.
    long_run = {
        f"{optimizer}: stage 2 vs stage 3, full data, all {config.steps} steps": largest_difference(
            curve("stage 2", optimizer, "full"), curve("stage 3", optimizer, "full")
        )
        for optimizer in optimizers
    }

    (adam3,) = [r for r in runs if (r.stage, r.optimizer, r.setting) == ("stage 3", "Adam", "full")]
    checks = {
        f"loss curves of the stages equal to {config.curve_tolerance:g} at every step": {
            "passed": max(differences.values()) <= config.curve_tolerance,
            "value": max(differences.values()),
            "limit": config.curve_tolerance,
        },
        f"stage 3 + Adam test MSE <= {100 * config.max_test_mse_fraction:g}% of Var(y)": {
            "passed": adam3.test_mse <= config.max_test_mse_fraction * var_y,
            "value": adam3.test_mse / var_y,
            "limit": config.max_test_mse_fraction,
        },
        "every run learns (final loss < 10% of the first)": {
            "passed": all(r.losses[-1] < 0.1 * r.losses[0] for r in runs),
            "value": max(r.losses[-1] / r.losses[0] for r in runs),
            "limit": 0.1,
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_path = plot(runs, differences, config, out_dir / "loss_curves.png")
    wall = time.perf_counter() - start
    checks[f"milestone finishes in under {config.time_budget_s:.0f} s"] = {
        "passed": wall < config.time_budget_s,
        "value": wall,
        "limit": config.time_budget_s,
    }

    results = {
        "config": asdict(config),
        "var_y": var_y,
        "runs": [{**asdict(r), "steps_per_s": r.steps_per_s} for r in runs],
        "curve_differences": differences,
        "long_run_differences": long_run,
        "checks": checks,
        "passed": all(c["passed"] for c in checks.values()),
        "wall_s": wall,
        "torch_threads": config.threads,
        "plot": str(plot_path),
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    report(results, runs, var_y, config)
    return results


def markdown_table(runs: list[Run], var_y: float) -> str:
    lines = [
        "| stage | optimizer | train examples | steps | train MSE | test MSE | test MSE / Var(y) "
        "| wall time (s) | CPU time (s) | steps/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(runs, key=lambda r: (r.setting != "small", r.optimizer != "SGD", r.stage)):
        lines.append(
            f"| {r.stage} | {r.optimizer} | {r.n_train} | {r.steps} | {r.train_mse:.3e} | "
            f"{r.test_mse:.3e} | {r.test_mse / var_y:.2e} | {r.wall_s:.2f} | {r.cpu_s:.2f} | "
            f"{r.steps_per_s:,.0f} |"
        )
    return "\n".join(lines)


def report(results: dict, runs: list[Run], var_y: float, config: Config) -> None:
    print()
    print(markdown_table(runs, var_y))
    speed = {r.stage: r.steps_per_s for r in runs if (r.optimizer, r.setting) == ("SGD", "small")}
    print(
        f"\nSame data, same steps: stage 2 runs {speed['stage 2'] / speed['stage 1']:.0f}x and stage 3 "
        f"{speed['stage 3'] / speed['stage 1']:.0f}x as many steps per second as stage 1."
    )
    print("\nLargest difference between two stages' losses, over every step:")
    for name, value in results["curve_differences"].items():
        print(f"  {name:<55} {value:.2e}")
    for name, value in results["long_run_differences"].items():
        print(f"  {name:<55} {value:.2e}  (reported, not checked)")
    print("\nChecks:")
    for name, check in results["checks"].items():
        verdict = "pass" if check["passed"] else "FAIL"
        print(f"  [{verdict}] {name}: {check['value']:.3g} (limit {check['limit']:g})")
    print(
        f"\nWall time {results['wall_s']:.1f} s. Wrote {results['plot']} and "
        f"{Path(results['plot']).with_name('results.json')}."
    )


def plot(runs: list[Run], differences: dict, config: Config, path: Path) -> Path:
    # Figure without pyplot: no global backend or figure registry is touched.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.5), layout="constrained")
    small_ax, full_ax, diff_ax = fig.subplots(1, 3)
    colours = {"SGD": "tab:blue", "Adam": "tab:orange"}
    # Thick and pale under dashed under dotted: where the stages agree, all three lines are visible at once.
    styles = {
        "stage 1": {"lw": 4, "alpha": 0.35},
        "stage 2": {"lw": 1.5, "ls": "--"},
        "stage 3": {"lw": 1, "ls": ":"},
    }
    for r in runs:
        ax = small_ax if r.setting == "small" else full_ax
        ax.plot(
            range(r.steps),
            r.losses,
            color=colours[r.optimizer],
            label=f"{r.stage}, {r.optimizer}",
            **styles[r.stage],
        )
    small_ax.set_title(f"{config.small_examples} training examples: stages 1, 2, 3 overlaid")
    full_ax.set_title(f"{runs[-1].n_train} training examples: stages 2 and 3 overlaid")
    for ax in (small_ax, full_ax):
        ax.set(yscale="log", xlabel="step", ylabel="training MSE")
        ax.legend(fontsize=8)
    small_runs = {(r.stage, r.optimizer): r.losses for r in runs if r.setting == "small"}
    for optimizer in colours:
        gap = [
            max(abs(a - b), 1e-18)
            for a, b in zip(small_runs["stage 1", optimizer], small_runs["stage 2", optimizer], strict=True)
        ]
        diff_ax.plot(gap, color=colours[optimizer], label=f"|stage 1 - stage 2|, {optimizer}")
    tolerance = config.curve_tolerance
    diff_ax.axhline(tolerance, color="k", lw=0.8, ls="--", label=f"tolerance {tolerance:g}")
    diff_ax.set(
        yscale="log",
        ylim=(1e-19, 1e-6),
        xlabel="step",
        ylabel="absolute difference of losses",
        title="Stage 1 vs stage 2: rounding only (1e-18 stands for 0)",
    )
    diff_ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simplellm.nn.test", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and a smaller stage-1 setting")
    parser.add_argument("--out", type=Path, default=Path("runs") / "nn", help="where to write plot and JSON")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these sizes)")
    args = parser.parse_args(argv)
    config = replace(QUICK if args.quick else Config(), threads=args.threads)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        results = run_milestone(config, args.out)
    finally:
        torch.set_num_threads(previous_threads)
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
