"""The manual-backprop track, measured: ``python -m simplellm.lm.numpy_demo`` (``--quick`` for a smoke run).

1. The position-aware n-gram network on the shipped word corpus ``story`` (one sample per sentence),
   trained by SGD with the step schedule, for a short and a long run, beside the averaging ablation.
   Each training loss is printed beside its *floor* (``simplellm.lm.floors``): the loss of the count
   model that memorises the training set, seeing what the network sees. A training loss near its floor
   with a validation loss far above it is memorising, not learning.
2. What a learner looks at: the likeliest next words after a few prompts, with bars.
3. The NumPy transformer on the synthetic language ``sticky`` (n=2, fresh samples), where the floor of
   the validation loss is the language's entropy rate, and on the same word corpus.

Prints a Markdown table and writes ``runs/numpy/results.json``. The numbers are seeded and
reproducible on one machine; the seconds depend on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from simplellm.lm.datasets import TrainingData, grammar_data, text_data
from simplellm.lm.floors import conditional_entropy
from simplellm.lm.models.numpy_ngram import NumpyNGram, NumpyNGramConfig, top_predictions
from simplellm.lm.models.numpy_transformer import NumpyTransformer, NumpyTransformerConfig
from simplellm.lm.numpy_train import train_numpy
from simplellm.lm.trainer import TrainConfig

PROMPTS = ["", "the baker", "lina and", "the dog"]


def word_corpus() -> TrainingData:
    return text_data("story", tokenizer="word", unit="sentence", min_frequency=2, seed=0)


def ngram_rows(runs: list[tuple[int, bool]], k: int = 3) -> tuple[list[dict], Any, TrainingData]:
    """One row per (steps, position_specific) run on the word corpus; returns the rows, the last
    position-aware model and the data. Each run reads fresh data, so it is the run the command line makes."""
    rows, shown = [], None
    for steps, position_specific in runs:
        data = word_corpus()
        model = NumpyNGram(
            NumpyNGramConfig(
                vocab_size=data.tokenizer.vocab_size, context=k, position_specific=position_specific
            )
        )
        # no validation during training: the weights after the last step, to see memorising happen
        config = TrainConfig(
            **{**model.train_defaults, "steps": steps, "eval_sequences": 0, "progress": False}
        )
        start = time.perf_counter()
        train_numpy(model, data, config)
        rows.append(
            {
                "model": f"numpy-ngram, k={k}, "
                + ("per-position tables" if position_specific else "averaged"),
                "data": "story (words, sentences)",
                "steps": steps,
                "seconds": time.perf_counter() - start,
                "train_loss": model.cross_entropy(data.train),
                "floor": conditional_entropy(data.train, k, ordered=position_specific),
                "floor_seen": f"previous {k} words" + ("" if position_specific else " as a multiset"),
                "val_loss": model.cross_entropy(data.validation),
            }
        )
        if position_specific:
            shown = model
    return rows, shown, data


def transformer_row(data: TrainingData, name: str, steps: int, floor: float, floor_seen: str) -> dict:
    model = NumpyTransformer(
        NumpyTransformerConfig(
            vocab_size=data.tokenizer.vocab_size,
            block_size=64,
            n_layer=2,
            n_head=4,
            n_embd=32,
            precision="float32",
        )
    )
    config = TrainConfig(
        **{**model.train_defaults, "steps": steps, "eval_every": max(1, steps // 5), "progress": False}
    )
    start = time.perf_counter()
    history = train_numpy(model, data, config)
    seconds = time.perf_counter() - start
    fixed = hasattr(data, "train")
    return {
        "model": "numpy-transformer, 2 layers, C=32, float32",
        "data": name,
        "steps": steps,
        "seconds": seconds,
        # a fixed set: the loss on all of it (best-validation weights); fresh samples: the last batch's
        "train_loss": model.cross_entropy(data.train) if fixed else history.train_loss[-1],
        "floor": floor,
        "floor_seen": floor_seen,
        "val_loss": history.best_val_loss,
        "best_step": history.best_step,
    }


def run(quick: bool = False) -> tuple[list[dict], str]:
    scale = 10 if quick else 1
    rows, shown, data = ngram_rows([(2000 // scale, True), (20_000 // scale, True), (20_000 // scale, False)])
    display = top_predictions(shown, data.tokenizer, PROMPTS, top=5)

    from simplellm.data import grammar

    language = grammar("sticky", n=2)
    sticky = grammar_data(language, train_size=None, val_size=512, seed=0)
    rows.append(
        transformer_row(
            sticky,
            "sticky n=2 (fresh samples)",
            1000 // scale,
            float(language.entropy_rate()),
            "entropy rate",
        )
    )
    words = word_corpus()  # fresh: the n-gram runs have moved their data's position on
    floor = conditional_entropy(words.train, None)
    rows.append(transformer_row(words, "story (words, sentences)", 1000 // scale, floor, "whole prefix"))
    return rows, display


def markdown(rows: list[dict]) -> str:
    lines = [
        "| model | data | steps | train loss | floor (what it sees) | val loss | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['data']} | {r['steps']:,} | {r['train_loss']:.3f} | "
            f"{r['floor']:.3f} ({r['floor_seen']}) | {r['val_loss']:.3f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps: a smoke run")
    parser.add_argument("--out", default="runs/numpy", help="where results.json goes")
    args = parser.parse_args(argv)
    rows, display = run(args.quick)
    print(markdown(rows))
    print()
    print(display)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"rows": rows, "display": display}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
