"""Data-parallel training: two CPU processes (gloo) give the losses of one process with the same global batch.

The test launches this very file with ``torchrun`` (``python -m torch.distributed.run``); run as a script, it
is the worker. Processes talk over localhost only.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from torch import nn

from simplellm.data import grammar
from simplellm.lm.datasets import grammar_data
from simplellm.lm.device import init_distributed, shutdown_distributed
from simplellm.lm.models.base import TorchLanguageModel
from simplellm.lm.trainer import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TinyConfig:
    vocab_size: int
    width: int = 16


class TinyGRU(TorchLanguageModel):
    family = "tiny"
    Config = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.context_window = 10
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.gru = nn.GRU(config.width, config.width, batch_first=True)
        self.head = nn.Linear(config.width, config.vocab_size)

    def forward(self, idx):
        return self.head(self.gru(self.embed(idx))[0])


CONFIG = TrainConfig(
    steps=8,
    batch_size=8,  # the global batch: 4 sequences per process with 2 processes
    lr=1e-2,
    warmup_steps=2,
    eval_every=4,
    eval_sequences=15,  # odd, so the two processes score different numbers of sequences
    checkpoint_every=2,
    progress=False,
    threads=1,
    device="cpu",
)


class Interrupted(Exception):
    pass


def run(out_dir: Path, interrupt_after: int | None = None, resume: Path | None = None):
    data = grammar_data(grammar("sticky", n=3), val_size=15, seed=0)
    torch.manual_seed(0)
    model = TinyGRU(TinyConfig(data.tokenizer.vocab_size))
    if interrupt_after is not None:  # every process dies at the same point, as when a job is killed
        draw, calls = data.next_batch, []

        def next_batch(*args, **kwargs):
            calls.append(1)
            if len(calls) > interrupt_after:
                raise Interrupted
            return draw(*args, **kwargs)

        data.next_batch = next_batch
    history = train(model, data, replace(CONFIG, out_dir=str(out_dir)), resume=resume)
    return model, history


def worker(base: Path) -> None:
    ddp = init_distributed("cpu")
    assert ddp.world_size == 2, ddp
    # each process is given its own folder, so a file written by rank 1 would show
    model, history = run(base / f"straight-rank{ddp.rank}")
    try:
        run(base / f"cut-rank{ddp.rank}", interrupt_after=5)
    except Interrupted:
        pass
    _, resumed = run(base / f"resumed-rank{ddp.rank}", resume=base / "cut-rank0" / "last.pt")
    result = {
        "rank": ddp.rank,
        "train_loss": history.train_loss,
        "val_loss": history.val_loss,
        "tokens": history.tokens,
        "resumed_train_loss": resumed.train_loss,
        "resumed_val_loss": resumed.val_loss,
        "weights": [p.detach().double().sum().item() for p in model.parameters()],
    }
    (base / f"result-{ddp.rank}.json").write_text(json.dumps(result))
    shutdown_distributed()


def torchrun(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch_and_resume(tmp_path):
    done = torchrun(str(Path(__file__).resolve()), str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads((tmp_path / f"result-{rank}.json").read_text()) for rank in (0, 1)]

    _, single = run(tmp_path / "single")
    for result in results:
        assert result["train_loss"] == pytest.approx(single.train_loss, abs=1e-5)
        assert result["val_loss"] == pytest.approx(single.val_loss, abs=1e-5)
        assert result["tokens"] == single.tokens  # the same global batches
        # interrupted at step 5, resumed from the step-4 checkpoint: the same run, bit for bit
        assert result["resumed_train_loss"] == result["train_loss"]
        assert result["resumed_val_loss"] == result["val_loss"]
    assert results[0]["weights"] == results[1]["weights"]  # DDP keeps the replicas identical

    # rank 0 alone writes: rank 1's folders were never created
    assert sorted(p.name for p in (tmp_path / "straight-rank0").iterdir()) == ["last.pt", "model.pt"]
    assert not any((tmp_path / f"{run}-rank1").exists() for run in ("straight", "cut", "resumed"))
    saved = torch.load(tmp_path / "straight-rank0" / "last.pt", weights_only=True)
    assert len(saved["rng"]) == 2  # each process's random state, so a resumed run continues each one


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
