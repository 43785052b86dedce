"""Checkpoints are data: the file alone rebuilds the model, and every broken file says what is wrong."""

import pickle
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from simplellm.data import grammar
from torch import nn

from simplellm.lm import checkpoint as ckpt
from simplellm.lm.datasets import grammar_data
from simplellm.lm.models import FAMILIES, build_model
from simplellm.lm.models.base import TorchLanguageModel
from simplellm.lm.tokenizers import BOS, CharTokenizer
from simplellm.lm.trainer import TrainConfig, train


@dataclass
class SmallConfig:
    vocab_size: int
    width: int = 8


class SmallLM(TorchLanguageModel):
    family = "small"
    Config = SmallConfig

    def __init__(self, config: SmallConfig) -> None:
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.head = nn.Linear(config.width, config.vocab_size)

    def forward(self, idx):
        return self.head(torch.tanh(self.embed(idx)).cumsum(dim=1))


class OtherLM(SmallLM):
    family = "other"


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(FAMILIES, "small", SmallLM)
    monkeypatch.setitem(FAMILIES, "other", OtherLM)


STICKY = grammar("sticky", n=2)


def quick(out_dir, **overrides):
    options = dict(steps=4, batch_size=4, eval_every=2, eval_sequences=8, progress=False, threads=None)
    options.update(device="cpu", out_dir=str(out_dir), **overrides)
    return TrainConfig(**options)


@pytest.fixture
def trained(tmp_path):
    data = grammar_data(STICKY, val_size=8, seed=0)
    torch.manual_seed(0)
    model = SmallLM(SmallConfig(data.tokenizer.vocab_size))
    train(model, data, quick(tmp_path))
    return model, data, tmp_path / "model.pt"


def test_a_checkpoint_alone_rebuilds_the_model_and_its_tokenizer(trained):
    model, data, path = trained
    loaded, tokenizer, metadata = ckpt.load_model(path)
    assert type(loaded) is SmallLM and not loaded.training
    assert tokenizer == data.tokenizer
    assert metadata["family"] == "small" and metadata["data"] == data.config and metadata["step"] == 4
    assert "optimizer" not in metadata and "model" not in metadata
    contexts = [[BOS], [BOS, 5, 6], [BOS, 9, 9, 9]]
    np.testing.assert_array_equal(loaded.next_token_logprobs(contexts), model.next_token_logprobs(contexts))


def test_checkpoints_open_with_weights_only_and_hold_only_plain_data(trained):
    _, _, path = trained
    raw = torch.load(path, weights_only=True)

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str | int) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(map(plain, value))
        return value is None or isinstance(value, str | int | float | bool | torch.Tensor)

    assert plain(raw)


def test_weights_saved_from_a_compiled_model_load_into_a_plain_one(tmp_path):
    torch.manual_seed(0)
    model = SmallLM(SmallConfig(vocab_size=12))
    compiled = torch.compile(model)  # compilation is lazy: nothing is compiled until it runs
    assert all(k.startswith("_orig_mod.") for k in compiled.state_dict())
    tokenizer = CharTokenizer("abcdefgh")
    ckpt.save_model(tmp_path / "m.pt", compiled, tokenizer)
    loaded, _, _ = ckpt.load_model(tmp_path / "m.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    # a state_dict taken from the compiled (or DDP-wrapped) module itself loads too
    fresh = SmallLM(SmallConfig(vocab_size=12))
    ckpt.load_weights(fresh, compiled.state_dict())
    ckpt.load_weights(fresh, {"module." + k: v for k, v in model.state_dict().items()})
    assert torch.equal(fresh.head.weight, model.head.weight)


def test_missing_files_and_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*nothing\.pt.*simplellm\.lm\.train"):
        ckpt.load_model(tmp_path / "nothing.pt")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"is a directory.*did you mean .*model\.pt"):
        ckpt.load_model(tmp_path / "run")


def test_truncated_and_garbage_files_are_reported_as_corrupt(trained, tmp_path):
    _, _, path = trained
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable checkpoint.*corrupt or truncated"):
        ckpt.load_model(tmp_path / "cut.pt")
    (tmp_path / "noise.pt").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        ckpt.load_model(tmp_path / "noise.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        ckpt.load_model(tmp_path / "empty.pt")


class Payload:
    """An object whose unpickling would run code (here: harmlessly, it would set a flag)."""

    ran = False

    def __reduce__(self):
        return (setattr, (Payload, "ran", True))


def test_a_file_that_could_run_code_is_refused_without_running_it(tmp_path):
    torch.save({"format": ckpt.FORMAT, "version": 1, "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="could run code"):
        ckpt.load_model(tmp_path / "evil.pt")
    assert not Payload.ran
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(Payload(), f)
    with pytest.raises(ValueError):
        ckpt.load_model(tmp_path / "plain.pkl")
    assert not Payload.ran


def test_torch_files_that_are_not_our_checkpoints_are_recognised(trained, tmp_path):
    model, _, path = trained
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="not a simplellm checkpoint"):
        ckpt.load_model(tmp_path / "weights.pt")
    saved = torch.load(path, weights_only=True)
    torch.save({**saved, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="version 99"):
        ckpt.load_model(tmp_path / "future.pt")
    del saved["tokenizer"]
    torch.save(saved, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="lacks tokenizer"):
        ckpt.load_model(tmp_path / "partial.pt")


def test_weights_that_do_not_fit_the_described_model_are_reported(trained, tmp_path):
    _, _, path = trained
    saved = torch.load(path, weights_only=True)
    torch.save({**saved, "model_config": {**saved["model_config"], "width": 9}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not fit the model"):
        ckpt.load_model(tmp_path / "bad.pt")
    torch.save({**saved, "family": "hologram"}, tmp_path / "unknown.pt")
    with pytest.raises(ValueError, match="cannot build.*hologram"):
        ckpt.load_model(tmp_path / "unknown.pt")
    torch.save({**saved, "tokenizer": {"kind": "char", "tokens": ["a"]}}, tmp_path / "tok.pt")
    with pytest.raises(ValueError, match="inconsistent"):
        ckpt.load_model(tmp_path / "tok.pt")


def resume(path, model, data, config):
    return train(model, data, config, resume=path)


def test_resuming_into_another_family_or_configuration_is_refused(trained, tmp_path):
    _, data, path = trained
    config = quick(tmp_path / "again", steps=6)
    vocab = data.tokenizer.vocab_size
    with pytest.raises(
        ValueError, match="holds a small model, but the model to resume is a other.*--model small"
    ):
        resume(path, OtherLM(SmallConfig(vocab)), data, config)
    with pytest.raises(ValueError, match=r"another configuration \(width: 8 -> 16\)"):
        resume(path, SmallLM(SmallConfig(vocab, width=16)), data, config)


def test_resuming_with_another_tokenizer_data_or_optimiser_is_refused(trained, tmp_path):
    _, data, path = trained
    config = quick(tmp_path / "again", steps=6)
    other_language = grammar_data(grammar("counting"), val_size=8)
    model = SmallLM(SmallConfig(other_language.tokenizer.vocab_size))
    with pytest.raises(ValueError, match="another tokenizer"):
        resume(path, model, other_language, config)
    other_seed = grammar_data(STICKY, val_size=8, seed=1)
    with pytest.raises(ValueError, match=r"other data \(seed: 0 -> 1\)"):
        resume(path, SmallLM(SmallConfig(data.tokenizer.vocab_size)), other_seed, config)
    with pytest.raises(ValueError, match=r"optimisation settings \(lr: 0.003 -> 0.1\).*may change only"):
        resume(path, SmallLM(SmallConfig(data.tokenizer.vocab_size)), data, replace(config, lr=0.1))
    model_only = tmp_path / "weights.pt"
    ckpt.save_model(model_only, SmallLM(SmallConfig(data.tokenizer.vocab_size)), data.tokenizer, data.config)
    with pytest.raises(ValueError, match="no training state"):
        resume(model_only, SmallLM(SmallConfig(data.tokenizer.vocab_size)), data, config)


def test_models_fitted_in_one_pass_round_trip_too(tmp_path):
    data = grammar_data(STICKY, train_size=200, val_size=8)
    model = build_model("ngram", vocab_size=data.tokenizer.vocab_size, order=3)
    model.fit(data.training_sequences())
    ckpt.save_model(tmp_path / "ngram.pt", model, data.tokenizer, data.config)
    loaded, tokenizer, _ = ckpt.load_model(tmp_path / "ngram.pt")
    assert tokenizer == data.tokenizer
    assert loaded.cross_entropy(data.validation) == model.cross_entropy(data.validation)
