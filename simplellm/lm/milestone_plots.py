"""The lm milestone's pictures: loss curves per language, the sweeps with their predicted threshold, and
the excess loss of every model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from simplellm.lm import evaluate as ev
from simplellm.lm.milestone import LANGUAGES
from simplellm.lm.pictures import pyplot

plt = pyplot()  # files only (Agg), unless a notebook kernel chose its inline backend

COLOURS = {
    "uniform": "C7",
    "ngram": "C5",
    "bigram": "C0",
    "mlp": "C1",
    "rnn": "C2",
    "gru": "C3",
    "transformer": "C4",
}


def save_plots(summary: dict[str, Any], out: Path) -> list[Path]:
    results = summary["results"]
    paths = [loss_curves(results, summary["languages"], out, key) for key in summary["languages"]]
    paths.append(sweeps(results, out))
    paths.append(excess_by_model(results, out))
    return [p for p in paths if p is not None]


def loss_curves(results: list[dict], languages: dict[str, Any], out: Path, key: str) -> Path | None:
    """Training loss against steps for every trained model of a language, beside the entropy rate."""
    rows = [r for r in results if r["language"] == key and r["main"] and "history" in r]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        h = r["history"]
        style = "-" if r["regime"] == "fresh" else "--"
        ax.plot(
            h["steps"],
            h["train_loss"],
            style,
            color=COLOURS.get(r["model"]),
            label=f"{r['model']} ({r['regime']})",
        )
        if h["eval_steps"]:
            ax.plot(h["eval_steps"], h["val_loss"], "o", color=COLOURS.get(r["model"]), markersize=3)
    rate = languages[key]["entropy_rate"]
    ax.axhline(rate, color="black", linewidth=1, label=f"entropy rate {rate:.3f}")
    ax.set_ylim(rate - 0.1 * rate, rate + max(0.6, 0.5 * rate))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token); dots: validation")
    ax.set_title(f"{LANGUAGES[key].label}: training loss")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = out / f"loss_{key}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweeps(results: list[dict], out: Path) -> Path | None:
    """In-distribution share against how many previous characters a model sees, predicted threshold marked.

    An n-gram of order k sees k - 1 previous tokens; an MLP of context k sees k. Both are drawn against the
    characters seen, so one vertical line (n, for sticky) marks the prediction for both.
    """
    keys = [
        k
        for k in LANGUAGES
        if len({r["sweep_value"] for r in results if r["language"] == k and r["sweep_value"] is not None}) > 1
    ]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for model, offset, marker in (("ngram", -1, "s-"), ("mlp", 0, "o-")):
            points = sorted(
                (r["sweep_value"], r["generation"]["in_distribution"])
                for r in results
                if r["language"] == key
                and r["model"] == model
                and r["regime"] != "fixed"
                and r["sweep_value"] is not None
            )
            if points:
                xs = [v + offset for v, _ in points]
                label = "count n-gram (order - 1)" if model == "ngram" else "MLP (context)"
                ax.plot(xs, [100 * y for _, y in points], marker, label=label)
        predicted = ev.predicted_threshold(LANGUAGES[key].grammar(), "mlp")
        if predicted is not None:
            ax.axvline(predicted, color="black", linestyle=":", label=f"predicted: {predicted} characters")
        ax.set_title(LANGUAGES[key].label)
        ax.set_xlabel("previous characters seen")
        ax.set_ylabel("in-distribution %")
        ax.set_ylim(0, 102)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = out / "sweeps.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def excess_by_model(results: list[dict], out: Path) -> Path | None:
    """Paired excess (KL per token) of every main-table model, log scale; the target line at 0.005."""
    rows = [r for r in results if r["main"] and r["regime"] in ("fresh", "half")]
    if not rows:
        return None
    keys = [k for k in LANGUAGES if any(r["language"] == k for r in rows)]
    models = [
        m
        for m in ("uniform", "ngram", "bigram", "mlp", "rnn", "gru", "transformer")
        if any(r["model"] == m for r in rows)
    ]
    models += sorted({r["model"] for r in rows} - set(models))
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(keys)), 4.5))
    width = 0.8 / len(models)
    labelled: set[str] = set()
    for i, model in enumerate(models):
        for j, key in enumerate(keys):
            r = next((r for r in rows if r["language"] == key and r["model"] == model), None)
            if r is None:
                continue
            x = j + (i - (len(models) - 1) / 2) * width
            excess = r["loss"]["excess"]
            if math.isinf(excess):
                ax.text(x, 1.0, "∞", ha="center", fontsize=8, color=COLOURS.get(model, "gray"))
                continue
            ax.bar(
                x,
                max(excess, 1e-5),
                width,
                color=COLOURS.get(model, "gray"),
                label=None if model in labelled else model,
            )
            labelled.add(model)
    ax.axhline(0.005, color="black", linestyle=":", linewidth=1, label="target 0.005")
    ax.set_yscale("log")
    ax.set_xticks(range(len(keys)), [LANGUAGES[k].label for k in keys], rotation=15, fontsize=8)
    ax.set_ylabel("excess over the entropy rate (nats/token)")
    ax.set_title("What is left to learn: KL(p || q) per token on fresh samples")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    path = out / "excess.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
