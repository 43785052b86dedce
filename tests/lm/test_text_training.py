"""Training on text from the command line: the overfitting warning, the report's figures, text defaults."""

import json
import math

import pytest

from simplellm.lm import train as train_cli
from simplellm.lm.checkpoint import load_model
from simplellm.lm.datasets import data_from_config
from simplellm.lm.train import overfitting
from simplellm.lm.trainer import History

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--quiet"]


def history(train: list[float], evals: dict[int, float]) -> History:
    """A history with one training loss per step (steps 1..n) and validation losses at the given steps."""
    best = min(evals, key=lambda s: (evals[s], s))
    return History(
        steps=list(range(1, len(train) + 1)),
        train_loss=train,
        lr=[1e-3] * len(train),
        eval_steps=list(evals),
        val_loss=list(evals.values()),
        best_step=best,
        best_val_loss=evals[best],
    )


def falling(n: int, start: float = 4.0, end: float = 1.0) -> list[float]:
    return [start + (end - start) * i / (n - 1) for i in range(n)]


# ------------------------------------------------------------------ the definition, on synthetic histories
def test_overfitting_begins_at_the_best_evaluation_and_is_seen_when_the_rise_exceeds_one_percent():
    evals = {
        10: 3.0,
        20: 2.5,
        30: 2.52,
        40: 2.6,
        50: 2.9,
    }  # +0.8% at 30 is within tolerance; +4% at 40 is not
    found = overfitting(history(falling(50), evals))
    assert found is not None
    assert (found.began, found.seen, found.last) == (20, 40, 50)
    assert (found.best_val, found.last_val) == (2.5, 2.9)
    # the training loss at an evaluation: the mean of the steps since the previous one
    losses = falling(50)
    assert found.train_at_best == pytest.approx(sum(losses[10:20]) / 10)
    assert found.train_at_last == pytest.approx(sum(losses[40:50]) / 10)


def test_no_overfitting_while_validation_falls_or_stays_within_tolerance():
    assert overfitting(history(falling(40), {10: 3.0, 20: 2.5, 30: 2.4, 40: 2.3})) is None
    assert overfitting(history(falling(40), {10: 3.0, 20: 2.5, 30: 2.52, 40: 2.524})) is None  # < 1% above
    assert overfitting(history(falling(10), {10: 3.0})) is None  # one evaluation shows no trend
    assert overfitting(history(falling(40), {10: 3.0, 20: 2.5, 30: 2.52, 40: 2.524}), rise=0.005) is not None


def test_a_rise_of_both_losses_is_divergence_not_overfitting():
    rising = falling(40, 1.0, 4.0)  # the optimiser is making things worse everywhere
    assert overfitting(history(rising, {10: 2.0, 20: 2.5, 30: 3.0, 40: 3.5})) is None


def test_the_first_of_tied_best_evaluations_is_where_it_began():
    found = overfitting(history(falling(40), {10: 3.0, 20: 2.5, 30: 2.5, 40: 2.7}))
    assert found is not None and (found.began, found.seen) == (20, 40)


# ------------------------------------------------------------------ the command line on text
@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A transformer trained on the shipped story by sentences until well past its best validation loss.

    A high learning rate and no early stopping: on 4,400 training words it memorises within a few
    hundred steps, which is what the warning is for.
    """
    out = tmp_path_factory.mktemp("memorised") / "run"
    argv = ["--text", "story", "--tokenizer", "word", "--unit", "sentence", "--model", "transformer", *TINY]
    argv += ["--steps", "300", "--batch-size", "16", "--lr", "1e-2", "--dropout", "0", "--weight-decay", "0"]
    argv += ["--eval-every", "20", "--patience", "0", "--out", str(out)]
    return argv, out


@pytest.mark.slow
def test_the_report_warns_about_overfitting_and_keeps_the_best_weights(memorised, capsys):
    argv, out = memorised
    assert train_cli.main(argv) == 0
    report = capsys.readouterr().out
    summary = json.loads((out / "config.json").read_text())
    results, hist = summary["results"], History.from_dict(summary["history"])
    found = overfitting(hist)
    assert found is not None and found.began == hist.best_step == results["overfitting_from"]
    assert max(hist.val_loss) > 1.05 * hist.best_val_loss  # a real rise, not a wobble
    assert f"warning     overfitting from step {found.began}:" in report
    assert f"model.pt holds step {found.began}'s weights" in report
    # the figures the report prints: perplexities of validation and training set, the uniform baseline
    model, tokenizer, _ = load_model(out / "model.pt")
    assert results["uniform_loss"] == pytest.approx(math.log(tokenizer.vocab_size))
    assert results["perplexity"] == pytest.approx(math.exp(results["best_val_loss"]))
    assert results["train_set_perplexity"] == pytest.approx(math.exp(results["train_set_loss"]))
    assert results["train_set_loss"] < results["best_val_loss"] < results["uniform_loss"]
    assert (
        f"{results['perplexity']:.2f} on validation, {results['train_set_perplexity']:.2f} on the training"
        in report
    )
    # model.pt holds the best weights: its validation loss is the best one
    data = data_from_config(summary["data"])
    assert model.cross_entropy(data.validation) == pytest.approx(results["best_val_loss"], rel=1e-5)


def test_text_runs_get_early_stopping_and_the_text_recipe_by_default():
    parser = train_cli.build_parser()
    for family in ("transformer", "gru"):
        _, model_opts, data, config = train_cli.resolve(
            parser.parse_args(["--text", "animals", "--model", family]), parser
        )
        for name, value in train_cli.TEXT_DEFAULTS["all"].items():
            assert getattr(config, name) == value, (family, name)
    _, model_opts, data, config = train_cli.resolve(parser.parse_args(["--text", "story"]), parser)
    for name, value in train_cli.TEXT_DEFAULTS["transformer"].items():
        assert getattr(config, name) == value, name
    assert model_opts["dropout"] == train_cli.TEXT_MODEL_DEFAULTS["transformer"]["dropout"]
    # a grammar keeps the grammar recipe; an option given on the command line wins over both
    _, model_opts, _, config = train_cli.resolve(parser.parse_args(["--grammar", "sticky"]), parser)
    assert config.patience is None and config.lr == train_cli.FAMILY_DEFAULTS["transformer"]["lr"]
    assert "dropout" not in model_opts
    argv = ["--text", "story", "--patience", "0", "--lr", "0.005", "--dropout", "0.3"]
    _, model_opts, _, config = train_cli.resolve(parser.parse_args(argv), parser)
    assert config.patience is None and config.lr == 0.005 and model_opts["dropout"] == 0.3


def test_any_utf8_file_trains_with_whole_held_out_lines(tmp_path, capsys):
    lines = [
        f"{word} café {i} naïve 日本 — fin." for i, word in enumerate(["un", "deux", "trois", "quatre"] * 10)
    ]
    text = tmp_path / "mine.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    argv = ["--text", str(text), "--tokenizer", "char", *TINY, "--steps", "4", "--batch-size", "4"]
    assert train_cli.main([*argv, "--out", str(out)]) == 0
    assert "perplexity" in capsys.readouterr().out
    _, tokenizer, metadata = load_model(out / "model.pt")
    data = data_from_config(metadata["data"])
    held_out = [tokenizer.decode(s) for s in data.validation]
    assert len(held_out) == 4 and all(line in lines for line in held_out)  # whole lines, nothing cut
    assert held_out != lines[-4:]  # drawn from the whole file, not its tail
    assert not set(held_out) & {tokenizer.decode(s) for s in data.train}
