"""The NumPy training loop: its schedules, clipping as torch clips, BLAS threads, early stopping, the
checkpoint it writes, and the runs it refuses. (Adam against the torch trainer: test_numpy_transformer.)"""

import math

import numpy as np
import pytest
import torch

from benchmarks import numpy_vs_torch
from simplellm.lm import checkpoint as ckpt
from simplellm.lm.datasets import FixedSet, text_data
from simplellm.lm.models.numpy_ngram import NumpyNGram, NumpyNGramConfig
from simplellm.lm.numpy_train import blas_threads, clip_gradients, learning_rate, step_lr, train_numpy
from simplellm.lm.tokenizers import BOS, EOS
from simplellm.lm.trainer import TrainConfig, lr_at


def test_the_step_schedule_halves_then_drops_to_min_lr_and_cosine_is_the_torch_trainers():
    config = TrainConfig(steps=100, lr=0.1, min_lr=0.02)
    rates = [step_lr(s, config) for s in range(100)]
    assert rates[:50] == [0.1] * 50 and rates[50:75] == [0.05] * 25 and rates[75:] == [0.02] * 25
    # a min_lr above half the rate: the middle level never drops below the last
    assert step_lr(60, TrainConfig(steps=100, lr=0.1, min_lr=0.08)) == 0.08
    assert [learning_rate(s, config, "cosine") for s in range(100)] == [lr_at(s, config) for s in range(100)]


def test_clipping_rescales_the_global_norm_as_torch_does():
    rng = np.random.default_rng(0)
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    tensors = [torch.tensor(g, requires_grad=True) for g in grads.values()]
    for t, g in zip(tensors, grads.values(), strict=True):
        t.grad = torch.tensor(g)
    norm = clip_gradients(grads, 0.5)
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, 0.5)
    assert norm == pytest.approx(torch_norm.item(), rel=1e-14) and norm > 0.5
    for t, g in zip(tensors, grads.values(), strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14)
    small = {"a": np.full(4, 0.01)}
    clip_gradients(small, 1.0)
    assert (small["a"] == 0.01).all()  # below the threshold nothing changes


def test_blas_threads_are_set_and_reported():
    before = blas_threads(2)
    assert before is not None and before >= 1  # numpy's wheels bundle OpenBLAS
    try:
        assert blas_threads() == 2 and blas_threads(1) == 2 and blas_threads() == 1
    finally:
        blas_threads(before)


CORPUS = [[BOS, 4, 5, 6, EOS], [BOS, 5, 6, 7, EOS], [BOS, 6, 4, EOS], [BOS, 7, 7, 5, EOS]]


def data(validation=()):
    return FixedSet(CORPUS, list(validation), None, {}, seed=0)


def test_the_history_records_every_step_and_the_best_weights_are_restored():
    net = NumpyNGram(NumpyNGramConfig(vocab_size=8, context=2))
    config = TrainConfig(**{**net.train_defaults, "steps": 200, "eval_every": 50, "progress": False})
    history = train_numpy(net, data(CORPUS[:2]), config)
    assert history.steps == list(range(1, 201)) and history.eval_steps == [50, 100, 150, 200]
    assert history.best_val_loss == min(history.val_loss)
    assert net.cross_entropy(CORPUS[:2]) == pytest.approx(history.best_val_loss, rel=1e-12)
    assert history.train_loss[-1] < history.train_loss[0] and history.tokens[-1] == 200 * 32


def test_patience_stops_a_run_whose_validation_loss_stops_improving():
    net = NumpyNGram(NumpyNGramConfig(vocab_size=8, context=1))
    # validation on a sequence the training data contradicts: it gets worse as training goes on
    config = TrainConfig(
        steps=2000,
        batch_size=8,
        lr=0.5,
        min_lr=0.5,
        weight_decay=0,
        grad_clip=0,
        eval_every=20,
        patience=3,
        progress=False,
    )
    history = train_numpy(net, data([[BOS, 4, 4, 4, EOS]]), config)
    assert history.stopped_early and len(history.steps) < 2000
    assert len(history.eval_steps) - history.eval_steps.index(history.best_step) - 1 == 3


def test_a_run_writes_a_weights_only_checkpoint_that_rebuilds_the_model(tmp_path):
    text = tmp_path / "tiny.txt"
    text.write_text("the cat sat .\nthe dog sat .\nthe cat ran .\na dog ran .\nthe cat sat .\n" * 3)
    corpus = text_data(str(text), tokenizer="word", min_frequency=1, val_fraction=0.2)
    net = NumpyNGram(NumpyNGramConfig(vocab_size=corpus.tokenizer.vocab_size, context=2))
    config = TrainConfig(
        **{
            **net.train_defaults,
            "steps": 50,
            "eval_every": 25,
            "progress": False,
            "out_dir": str(tmp_path / "run"),
        }
    )
    train_numpy(net, corpus, config)
    saved = ckpt.read_checkpoint(tmp_path / "run" / "model.pt")  # torch.load(weights_only=True)
    assert saved["family"] == "numpy-ngram" and saved["model_config"]["context"] == 2
    assert saved["tokenizer"] == corpus.tokenizer.to_dict() and saved["data"] == corpus.config
    rebuilt = NumpyNGram(NumpyNGramConfig(**saved["model_config"]))
    rebuilt.load_state_dict(saved["model"])
    np.testing.assert_array_equal(
        rebuilt.sequence_logprobs(corpus.validation), net.sequence_logprobs(corpus.validation)
    )


def test_runs_that_cannot_be_done_are_refused_with_a_reason():
    net = NumpyNGram(NumpyNGramConfig(vocab_size=8))
    config = TrainConfig(steps=5, progress=False)
    with pytest.raises(ValueError, match="cannot be resumed"):
        train_numpy(net, data(), config, resume="somewhere/last.pt")
    with pytest.raises(ValueError, match="optimizer must be"):
        train_numpy(net, data(), config, optimizer="lion")
    with pytest.raises(ValueError, match="schedule must be"):
        train_numpy(net, data(), config, schedule="linear")
    with pytest.raises(ValueError, match="no tokenizer"):
        net.fit(CORPUS, out_dir="runs/x")
    net.params["W2"][0, 0] = np.nan  # as a diverged run would leave it
    with pytest.raises(FloatingPointError, match="lower the lr"):
        net.fit(CORPUS, steps=5)


def test_the_benchmark_times_both_implementations_on_the_same_work():
    tiny = [("tiny", dict(n_layer=1, n_head=2, n_embd=8, block_size=8), 4, 8)]
    rows = numpy_vs_torch.run(repeats=2, configs=tiny)
    assert [r["dtype"] for r in rows] == ["float64", "float32"]
    for r in rows:
        assert r["numpy_s"] > 0 and r["torch_s"] > 0 and r["ratio"] == r["numpy_s"] / r["torch_s"]
        assert math.isfinite(r["ratio"])
    assert rows[0]["loss_gap"] < 1e-12 and rows[1]["loss_gap"] < 1e-5  # the same loss: the same work
    table = numpy_vs_torch.markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "NumPy / PyTorch" in table
