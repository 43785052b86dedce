"""One trainer for every PyTorch language model, in the manner of nanoGPT's train.py.

``train(model, data, config)`` runs the loop that every modern language model is trained with:

* AdamW (Loshchilov & Hutter 2019), with weight decay on the matrices and embeddings only. Decay pulls
  weights towards zero; on a bias or a LayerNorm gain that only shifts or rescales, so it buys no
  regularisation and costs fit (the grouping of nanoGPT and GPT-2/3 training).
* The learning rate rises linearly for ``warmup_steps`` (Adam's second-moment estimates are noisy at
  first, and large early steps can wreck an initialisation), then follows a cosine down to ``min_lr``.
* Gradients are clipped to a global norm of ``grad_clip``: one freak batch cannot throw the weights away.
* Every ``eval_every`` steps the validation loss is measured exactly (whole sequences, per token, EOS
  counted, the number that compares with a language's entropy rate); the best weights are kept, and
  ``patience`` evaluations without improvement stop training early.
* Checkpoints (``checkpoint.py``) hold everything needed to continue as if never interrupted.

Launched by ``torchrun`` with several processes, the same loop runs data-parallel (DDP): every process
draws the same global batch from the shared seed and trains on its own slice; gradients are averaged by
DDP, losses by an all-reduce, and rank 0 alone writes files and prints. Drawing the whole batch on every
rank costs each process the generation of the full batch (cheap next to the forward and backward
passes of any model here), and buys simplicity: one process and K processes see exactly the same data.

Models that are not trained by gradient descent plug in at :func:`fit`: the counting n-gram is fitted
on whole training sequences in one pass.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from simplellm.lm import checkpoint as ckpt
from simplellm.lm.datasets import TrainingData
from simplellm.lm.device import Distributed, autocast_dtype, current_distributed, pick_device
from simplellm.lm.models.base import TorchLanguageModel, pad_batch


@dataclass
class TrainConfig:
    steps: int = 2000  # optimizer steps (each on one global batch)
    batch_size: int = 64  # sequences per step, summed over all processes
    lr: float = 3e-3  # peak learning rate, reached at the end of warm-up
    min_lr: float = 3e-4  # the floor the cosine decays to
    warmup_steps: int = 100
    weight_decay: float = 0.1  # on matrices and embeddings only (see the module doc)
    beta1: float = 0.9
    beta2: float = 0.99  # nanoGPT's choice for small models and batches: a quicker second-moment estimate
    grad_clip: float = 1.0  # global gradient norm; 0 turns clipping off
    eval_every: int = 200  # steps between validation measurements (and always after the last step)
    eval_sequences: int = 512  # validation sequences measured (the first ones of the data's validation set)
    patience: int | None = None  # evaluations without improvement before stopping; None never stops early
    seed: int = 0  # dropout and every other random draw of training (the data has its own seed)
    device: str = "auto"  # auto: CUDA, then MPS, then CPU
    # torch's intra-op threads (None: torch's choice). Measured with the default transformer on sticky,
    # batch 64, on this project's 2 CPU cores shared with other work (load average 4.5): 1 thread
    # 4.9-5.9 steps/s, 2 threads 0.45-0.81 steps/s, 7 to 13 times slower. A small model gains little
    # from splitting its matrix products, and a contended thread stalls the other at every barrier.
    threads: int | None = 1
    dtype: str = "auto"  # auto: bfloat16 autocast on CUDA, float32 elsewhere
    compile: bool = False  # torch.compile the training step (CUDA mostly; needs a C++ compiler on CPU)
    checkpoint_every: int | None = None  # also write out_dir/last.pt every this many steps
    out_dir: str | None = None  # where model.pt (best) and last.pt (latest) go; None writes nothing
    progress: bool = True  # tqdm progress bar and evaluation lines (rank 0 only)

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "eval_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")
        for name in ("warmup_steps", "eval_sequences", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        for name in ("patience", "checkpoint_every", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or None, not {getattr(self, name)}")


@dataclass
class History:
    """What happened, step by step: enough to plot a run and to compare two of them exactly."""

    steps: list[int] = field(default_factory=list)  # 1, 2, ...: optimizer steps taken
    train_loss: list[float] = field(default_factory=list)  # the step's batch loss, nats per token
    lr: list[float] = field(default_factory=list)  # learning rate used by the step
    tokens: list[int] = field(default_factory=list)  # predicted tokens seen so far, all processes
    seconds: list[float] = field(default_factory=list)  # wall-clock seconds since training began
    eval_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)  # exact validation cross-entropy, nats per token
    best_step: int | None = None
    best_val_loss: float | None = None
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(**data)


# ------------------------------------------------------------------ the pieces of the loop
def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to ``min_lr``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / (config.warmup_steps + 1)
    decay_steps = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with two groups: matrices and embeddings decay, biases and normalisation gains do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # one kernel for all parameters instead of several per tensor: on a CPU, for the milestone's small
    # models, the optimizer step went from ~2.0 to ~1.2 ms (of ~12 ms for a transformer step)
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=fused)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    # a plain function (not a callable object), so the schedule comes from the current config and the
    # scheduler's saved state is just its step count
    def factor(step: int) -> float:
        return lr_at(step, config) / config.lr if config.lr > 0 else 0.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class LossOf(nn.Module):
    """The model's loss as a module's forward, so DDP and torch.compile see the whole training step.

    DDP only synchronises gradients of computations that go through its own ``forward``; calling
    ``model.loss`` directly would bypass it.
    """

    def __init__(self, model: TorchLanguageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model.loss(batch)


@torch.no_grad()
def evaluate(
    model: TorchLanguageModel, sequences: list[list[int]], ddp: Distributed, device: torch.device
) -> float:
    """Exact cross-entropy in nats per token of whole ``sequences``, each process scoring a share of them.

    Runs in float32 even under bf16 training: the gap to a language's entropy rate can be a few
    thousandths of a nat, below bf16's resolution.
    """
    mine = sequences[ddp.rank :: ddp.world_size]
    logprob = float(model.sequence_logprobs(mine).sum()) if mine else 0.0
    tokens = sum(len(s) - 1 for s in mine)
    total_logprob, total_tokens = ddp.all_reduce_sum([logprob, tokens], device)
    return -total_logprob / total_tokens


def _rng_states(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_states(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


# ------------------------------------------------------------------ the loop
def train(
    model: TorchLanguageModel,
    data: TrainingData,
    config: TrainConfig,
    resume: str | Path | None = None,
) -> History:
    """Train ``model`` on ``data``; ``resume`` continues from a checkpoint written by an earlier call.

    Returns the history. On return the model holds the best weights seen by validation (the final ones
    when nothing was evaluated); with ``out_dir``, ``model.pt`` holds them too and ``last.pt`` the final
    training state, from which training can be resumed or extended.
    """
    if not isinstance(model, TorchLanguageModel):
        raise TypeError(f"train() trains torch models; use fit() for {type(model).__name__}")
    ddp = current_distributed()
    if config.batch_size < ddp.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} is smaller than the number of processes ({ddp.world_size})"
        )
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device, ddp.local_rank)
    amp_dtype = autocast_dtype(config.dtype, device)
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    main = ddp.is_main
    out_dir = Path(config.out_dir) if config.out_dir else None

    model.to(device)
    model.train()
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config)
    # each process its own dropout masks: the same masks on every rank would waste the extra data
    torch.manual_seed(config.seed * 1_000_003 + ddp.rank)
    validation = data.validation[: config.eval_sequences]
    window = model.context_window

    history = History()
    step, bad_evals, seconds_before = 0, 0, 0.0
    best_state: dict[str, torch.Tensor] | None = None  # a copy of the best weights so far
    if resume is not None:
        saved = ckpt.read_checkpoint(resume)
        ckpt.check_resumable(saved, model, data.tokenizer, data.config, config, str(resume))
        ckpt.load_weights(model, saved["model"], str(resume))
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        data.load_state_dict(saved["data_state"])
        history = History.from_dict(saved["history"])
        step, bad_evals = saved["step"], saved["best"]["bad_evals"]
        # the best weights: stored apart when they are not the current ones
        best_state = saved.get("best_model")
        if best_state is None and history.best_step == step:
            best_state = _cpu_copy(model.state_dict())
        seconds_before = history.seconds[-1] if history.seconds else 0.0
        if len(saved["rng"]) == ddp.world_size:
            _set_rng_states(saved["rng"][ddp.rank], device)
        elif main:
            # other process count: data and weights continue exactly, only dropout masks differ
            print(
                f"note: {resume} was saved by {len(saved['rng'])} process(es); dropout is reseeded",
                file=sys.stderr,
            )

    def training_state(current_best: dict | None) -> dict[str, Any]:
        # every rank takes part (its random state is gathered); only rank 0 writes the file
        rng = ddp.all_gather(_rng_states(device))
        return ckpt.model_checkpoint(
            model,
            data.tokenizer,
            data.config,
            train_config=asdict(config),
            step=step,
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            data_state=data.state_dict(),
            rng=rng,
            history=history.to_dict(),
            best={"step": history.best_step, "val_loss": history.best_val_loss, "bad_evals": bad_evals},
            best_model=current_best,
        )

    step_fn: nn.Module = LossOf(model)
    if ddp.enabled:
        ids = [device.index] if device.type == "cuda" else None
        step_fn = nn.parallel.DistributedDataParallel(step_fn, device_ids=ids)
    if config.compile:
        step_fn = torch.compile(step_fn)  # checkpoints save the plain model, so they load uncompiled

    bar = tqdm(total=config.steps, initial=step, disable=not (config.progress and main), dynamic_ncols=True)
    start = time.perf_counter()
    tokens_seen = history.tokens[-1] if history.tokens else 0
    while step < config.steps:
        lr = optimizer.param_groups[0]["lr"]
        # the global batch, identical on every rank; each rank takes its share of the rows
        batch = data.next_batch(config.batch_size, window)
        bounds = [len(batch) * r // ddp.world_size for r in range(ddp.world_size + 1)]
        mine = batch[bounds[ddp.rank] : bounds[ddp.rank + 1]]
        global_tokens = sum(len(s) - 1 for s in batch)
        my_tokens = sum(len(s) - 1 for s in mine)
        with autocast:
            loss = step_fn(pad_batch(mine, device))
        # model.loss is a mean over this rank's tokens and DDP averages gradients over ranks; weighting by
        # the rank's share of the tokens makes the result the gradient of the mean over the global batch
        weight = my_tokens * ddp.world_size / global_tokens
        (loss * weight if ddp.enabled else loss).backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += global_tokens
        (train_loss,) = ddp.all_reduce_sum([loss.item() * my_tokens / global_tokens], device)

        history.steps.append(step)
        history.train_loss.append(train_loss)
        history.lr.append(lr)
        history.tokens.append(tokens_seen)
        history.seconds.append(seconds_before + time.perf_counter() - start)
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.4f}", lr=f"{lr:.2e}", refresh=False)

        stop = False
        if validation and (step % config.eval_every == 0 or step == config.steps):
            val_loss = evaluate(model, validation, ddp, device)
            history.eval_steps.append(step)
            history.val_loss.append(val_loss)
            improved = history.best_val_loss is None or val_loss < history.best_val_loss
            if improved:
                history.best_step, history.best_val_loss, bad_evals = step, val_loss, 0
                best_state = _cpu_copy(model.state_dict())
                if out_dir is not None:
                    state = training_state(None)
                    if main:
                        ckpt.save_checkpoint(out_dir / "model.pt", state)
            else:
                bad_evals += 1
                stop = config.patience is not None and bad_evals >= config.patience
                history.stopped_early = stop
            if main and config.progress:
                mark = " *" if improved else ""
                bar.write(f"step {step:6d}  train {train_loss:.4f}  val {val_loss:.4f}{mark}")
        last = step == config.steps or stop
        if out_dir is not None and (
            last or (config.checkpoint_every and step % config.checkpoint_every == 0)
        ):
            state = training_state(best_state if history.best_step != step else None)
            if main:
                ckpt.save_checkpoint(out_dir / "last.pt", state)
                if not validation and last:
                    ckpt.save_checkpoint(out_dir / "model.pt", state)
        if stop:
            break
    bar.close()

    if best_state is not None and history.best_step != step:
        ckpt.load_weights(model, best_state)
    ddp.barrier()  # no process returns while rank 0 is still writing
    return history


def fit(model: Any, data: TrainingData, config: TrainConfig, resume: str | Path | None = None) -> History:
    """Train any model: torch models by gradient descent, others by their own ``fit``.

    The counting n-gram's ``fit(sequences)`` reads whole training sequences once; a fresh-samples source
    supplies ``steps * batch_size`` of them, the data the torch models would see. New kinds of model
    (the NumPy networks) add their branch here.
    """
    if isinstance(model, TorchLanguageModel):
        return train(model, data, config, resume)
    if resume is not None:
        raise ValueError(f"{type(model).__name__} is fitted in one pass; there is no training to resume")
    if not hasattr(model, "fit"):
        raise TypeError(f"{type(model).__name__} is neither a torch model nor has a fit(sequences) method")
    start = time.perf_counter()
    sequences = data.training_sequences(config.steps * config.batch_size)
    model.fit(sequences)
    history = History(
        steps=[1],
        train_loss=[model.cross_entropy(sequences[: config.eval_sequences or 1])],
        lr=[0.0],
        tokens=[sum(len(s) - 1 for s in sequences)],
        seconds=[time.perf_counter() - start],
    )
    validation = data.validation[: config.eval_sequences]
    if validation:
        val_loss = model.cross_entropy(validation)
        history.eval_steps, history.val_loss = [1], [val_loss]
        history.best_step, history.best_val_loss = 1, val_loss
    if config.out_dir and current_distributed().is_main:
        ckpt.save_model(
            Path(config.out_dir) / "model.pt",
            model,
            data.tokenizer,
            data.config,
            train_config=asdict(config),
            history=history.to_dict(),
        )
    return history
