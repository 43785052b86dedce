"""The trainer: its schedule, its parameter groups, that it learns, and that a resumed run is the same run."""

import math
from dataclasses import dataclass, replace

import pytest
import torch
from torch import nn

from simplellm.data import grammar
from simplellm.lm.checkpoint import read_checkpoint
from simplellm.lm.datasets import grammar_data
from simplellm.lm.device import Distributed
from simplellm.lm.models.base import TorchLanguageModel
from simplellm.lm.trainer import History, TrainConfig, evaluate, fit, lr_at, make_optimizer, train


@dataclass
class TinyConfig:
    vocab_size: int
    width: int = 16
    window: int = 12
    dropout: float = 0.0


class TinyGRU(TorchLanguageModel):
    """Embedding + positions -> LayerNorm -> GRU -> dropout -> linear: a bit of every kind of parameter."""

    family = "tiny"
    Config = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.context_window = config.window
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.pos = nn.Embedding(config.window, config.width)
        self.norm = nn.LayerNorm(config.width)
        self.gru = nn.GRU(config.width, config.width, batch_first=True)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.width, config.vocab_size)

    def forward(self, idx):
        x = self.norm(self.embed(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device)))
        return self.head(self.drop(self.gru(x)[0]))


def tiny(data, seed=0, **options):
    torch.manual_seed(seed)
    return TinyGRU(TinyConfig(vocab_size=data.tokenizer.vocab_size, **options))


def quick(**overrides):
    options = dict(
        steps=12, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=3, eval_every=4, eval_sequences=16
    )
    options.update(progress=False, threads=None, device="cpu")
    options.update(overrides)
    return TrainConfig(**options)


STICKY = grammar("sticky", n=3)


def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_the_floor():
    c = TrainConfig(steps=110, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert [lr_at(s, c) for s in range(10)] == pytest.approx([(s + 1) / 11 for s in range(10)])
    assert lr_at(10, c) == pytest.approx(1.0)  # the peak, where decay starts
    assert lr_at(60, c) == pytest.approx(0.55)  # half way down the cosine: (1 + 0.1) / 2
    assert lr_at(109, c) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 99 / 100)))
    assert lr_at(500, c) == pytest.approx(0.1)  # the floor, beyond the end too
    decay = [lr_at(s, c) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))


def test_the_optimizer_uses_the_schedule_step_by_step():
    data = grammar_data(STICKY, train_size=20, val_size=4)
    config = quick(steps=9, warmup_steps=2)
    history = train(tiny(data), data, config)
    assert history.lr == pytest.approx([lr_at(s, config) for s in range(9)], rel=1e-12)
    assert history.steps == list(range(1, 10))


def test_weight_decay_applies_to_matrices_and_embeddings_not_biases_or_norm_gains():
    model = TinyGRU(TinyConfig(vocab_size=10))
    optimizer = make_optimizer(model, TrainConfig(weight_decay=0.3), torch.device("cpu"))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.3 and plain["weight_decay"] == 0.0
    name_of = {id(p): n for n, p in model.named_parameters()}
    assert sorted(name_of[id(p)] for p in decayed["params"]) == [
        "embed.weight",
        "gru.weight_hh_l0",
        "gru.weight_ih_l0",
        "head.weight",
        "pos.weight",
    ]
    assert sorted(name_of[id(p)] for p in plain["params"]) == [
        "gru.bias_hh_l0",
        "gru.bias_ih_l0",
        "head.bias",
        "norm.bias",
        "norm.weight",
    ]


def test_training_learns_the_language():
    data = grammar_data(STICKY, val_size=64, seed=0)
    model = tiny(data, width=32)
    before = evaluate(model, data.validation, Distributed(), torch.device("cpu"))
    history = train(model, data, quick(steps=150, batch_size=32, lr=1e-2, eval_every=50, eval_sequences=64))
    uniform = math.log(data.tokenizer.vocab_size - 2)  # PAD and UNK are never targets
    assert before == pytest.approx(math.log(data.tokenizer.vocab_size), abs=0.1)
    entropy = float(STICKY.entropy_rate())
    # sticky n=3: the uniform guess is 4.17 nats, the language 3.47; a small GRU gets most of the way
    assert history.val_loss[-1] < uniform - 0.35 and history.val_loss[-1] > entropy
    assert history.val_loss == sorted(history.val_loss, reverse=True)
    assert history.best_val_loss == history.val_loss[-1] and history.best_step == 150
    assert history.tokens == sorted(history.tokens) and len(history.seconds) == 150


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("train_size", [None, 20], ids=["fresh", "fixed"])
def test_an_interrupted_and_resumed_run_gives_the_same_losses_bit_for_bit(tmp_path, train_size):
    """Dropout (torch RNG), cropping (data RNG), epochs, Adam moments, the schedule: all must carry over."""
    config = quick(steps=12, checkpoint_every=3)

    def run(out_dir, interrupt_at=None, resume=None):
        data = grammar_data(STICKY, train_size=train_size, val_size=16, seed=2)
        model = tiny(data, dropout=0.2, window=6)
        if interrupt_at is not None:  # the process dies while drawing the batch of step interrupt_at + 1
            draw, calls = data.next_batch, []

            def next_batch(*args, **kwargs):
                calls.append(1)
                if len(calls) > interrupt_at:
                    raise Interrupted
                return draw(*args, **kwargs)

            data.next_batch = next_batch
        return model, train(model, data, replace(config, out_dir=str(out_dir)), resume=resume)

    straight_model, straight = run(tmp_path / "straight")
    with pytest.raises(Interrupted):
        run(tmp_path / "first", interrupt_at=7)
    checkpoint = read_checkpoint(tmp_path / "first" / "last.pt")
    assert checkpoint["step"] == 6  # the last checkpoint before the interruption
    resumed_model, resumed = run(tmp_path / "resumed", resume=tmp_path / "first" / "last.pt")

    assert resumed.train_loss == straight.train_loss  # exact equality: CPU float32 is deterministic
    assert resumed.val_loss == straight.val_loss and resumed.eval_steps == straight.eval_steps
    assert resumed.lr == straight.lr and resumed.tokens == straight.tokens
    straight_weights, resumed_weights = straight_model.state_dict(), resumed_model.state_dict()
    for name, value in straight_weights.items():
        assert torch.equal(value, resumed_weights[name]), name


def test_training_can_be_extended_from_its_last_checkpoint(tmp_path):
    data = grammar_data(STICKY, val_size=8, seed=0)
    first = train(tiny(data), data, quick(steps=6, out_dir=str(tmp_path)))
    more = train(tiny(data), data, quick(steps=10, out_dir=str(tmp_path)), resume=tmp_path / "last.pt")
    assert more.steps == list(range(1, 11)) and more.train_loss[:6] == first.train_loss


def test_stopping_early_and_returning_the_best_weights(tmp_path):
    data = grammar_data(STICKY, val_size=32, seed=0)
    model = tiny(data)
    # a learning rate this large without clipping wrecks the model after the first evaluation
    config = quick(steps=60, lr=3.0, min_lr=3.0, warmup_steps=0, grad_clip=0.0, eval_every=3, patience=2)
    history = train(model, data, replace(config, out_dir=str(tmp_path)))
    assert history.stopped_early
    evaluations_after_best = len([s for s in history.eval_steps if s > history.best_step])
    assert evaluations_after_best == 2 and history.steps[-1] == history.eval_steps[-1] < 60
    assert history.best_val_loss == min(history.val_loss) < history.val_loss[-1]
    # the model handed back is the best one, and so is model.pt; last.pt is where training stopped
    assert evaluate(model, data.validation[:16], Distributed(), torch.device("cpu")) == history.best_val_loss
    assert read_checkpoint(tmp_path / "model.pt")["step"] == history.best_step
    assert read_checkpoint(tmp_path / "last.pt")["step"] == history.steps[-1]


def test_gradients_are_clipped_to_the_configured_norm(monkeypatch):
    seen = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        norm = original(parameters, max_norm, *args, **kwargs)
        after = torch.sqrt(sum((p.grad**2).sum() for p in parameters if p.grad is not None))
        seen.append((max_norm, float(norm), float(after)))
        return norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    data = grammar_data(STICKY, val_size=4)
    train(tiny(data), data, quick(steps=5, grad_clip=0.05))
    assert len(seen) == 5 and all(m == 0.05 for m, _, _ in seen)
    assert all(before > 0.05 and after == pytest.approx(0.05, rel=1e-4) for _, before, after in seen)
    seen.clear()
    train(tiny(data), data, quick(steps=5, grad_clip=0.0))
    assert seen == []


def test_checkpoints_hold_the_whole_training_state(tmp_path):
    data = grammar_data(STICKY, train_size=30, val_size=8, seed=0)
    model = tiny(data)
    train(model, data, quick(steps=8, eval_every=8, checkpoint_every=4, out_dir=str(tmp_path)))
    saved = read_checkpoint(tmp_path / "last.pt")
    assert saved["step"] == 8 and saved["family"] == "tiny"
    assert saved["model_config"] == {
        "vocab_size": data.tokenizer.vocab_size,
        "width": 16,
        "window": 12,
        "dropout": 0.0,
    }
    assert saved["tokenizer"] == data.tokenizer.to_dict() and saved["data"] == data.config
    assert saved["train_config"]["steps"] == 8 and saved["scheduler"]["last_epoch"] == 8
    assert saved["optimizer"]["state"] and saved["data_state"] == data.state_dict()
    assert len(saved["rng"]) == 1 and saved["rng"][0]["torch"].dtype == torch.uint8
    assert History.from_dict(saved["history"]).steps == list(range(1, 9))
    for key, value in model.state_dict().items():
        assert torch.equal(saved["model"][key], value)


def test_bfloat16_autocast_trains_close_to_float32():
    data = grammar_data(STICKY, val_size=16, seed=0)
    full = train(tiny(data), data, quick(steps=6, dtype="float32"))
    half = train(tiny(data), data, quick(steps=6, dtype="bfloat16"))
    assert half.train_loss != full.train_loss  # the forward really ran in bfloat16 ...
    # ... and costs little: bf16 keeps 8 bits of mantissa (0.4% per rounding), a few layers deep ~1%
    assert half.train_loss == pytest.approx(full.train_loss, rel=0.02)


def test_threads_option_sets_torch_threads():
    data = grammar_data(STICKY, val_size=4)
    before = torch.get_num_threads()
    try:
        train(tiny(data), data, quick(steps=1, threads=2))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_bad_configurations_are_refused():
    for bad in ({"steps": 0}, {"batch_size": 0}, {"min_lr": 1.0, "lr": 0.1}, {"patience": 0}, {"threads": 0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    data = grammar_data(STICKY, val_size=4)
    with pytest.raises(ValueError, match="device"):
        train(tiny(data), data, quick(device="tpu"))
    with pytest.raises(TypeError, match="fit"):
        train(object(), data, quick())


class CountingUnigram:
    """A model fitted in one pass, the way the counting n-gram is."""

    family = "unigram"
    vocab_size = 70

    def fit(self, sequences):
        self.seen = sequences
        return self

    def cross_entropy(self, sequences):
        return float(len(sequences))


def test_fit_dispatches_models_that_are_not_trained_by_gradient_descent():
    data = grammar_data(STICKY, val_size=5)
    model = CountingUnigram()
    history = fit(model, data, quick(steps=3, batch_size=10, eval_sequences=5))
    assert len(model.seen) == 30  # steps * batch_size fresh sequences
    assert history.val_loss == [5.0] and history.best_step == 1
    with pytest.raises(ValueError, match="resume"):
        fit(model, data, quick(), resume="x.pt")


def test_progress_bar_reports_loss_and_learning_rate(capsys):
    data = grammar_data(STICKY, val_size=4)
    train(tiny(data), data, quick(steps=4, eval_every=2, progress=True))
    captured = capsys.readouterr()
    assert "loss=" in captured.err and "lr=" in captured.err
    assert "step      2  train" in captured.out and "val" in captured.out
