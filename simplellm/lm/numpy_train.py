"""The training loop of the NumPy models: the torch trainer's loop, with the optimizer written in NumPy.

``train_numpy(model, data, config)`` takes the same ``TrainingData`` and ``TrainConfig`` as
:func:`simplellm.lm.trainer.train` and returns the same ``History``, so the command line treats NumPy and
torch models alike. Each step: draw a batch, ``model.loss_and_backward(batch)`` (the hand-written
backward pass fills ``model.grads``), clip the gradient, decay the weights, take an optimizer step.

* Optimizers: ``simplellm.nn.numpy_optim``'s SGD and Adam. Weight decay is applied here, *decoupled*
  from the gradient as in AdamW (Loshchilov & Hutter 2019): ``p <- p * (1 - lr * weight_decay)``
  before the step, on matrices and embeddings only (as the torch trainer groups them). With Adam this
  is exactly ``torch.optim.AdamW``; a test checks it step by step.
* Schedules: ``"cosine"``, the torch trainer's warm-up then cosine (``trainer.lr_at``); ``"step"``, the
  classic schedule of hand-written SGD: ``lr`` for the first half of training, ``max(lr / 2, min_lr)``
  until three quarters, then ``min_lr`` (0.1 -> 0.05 -> 0.02 with the n-gram's defaults).
* Clipping rescales the whole gradient to a global norm of at most ``grad_clip``, as
  ``torch.nn.utils.clip_grad_norm_`` does.
* ``config.threads`` limits NumPy's BLAS (OpenBLAS) as the torch trainer limits torch. It matters: on
  two busy cores, the n-gram network's small matrix products ran 12x slower with OpenBLAS's default
  threads than with one (measured: 2,000 steps in 10.2 s against 0.8 s).
* Every ``eval_every`` steps (and after the last) the exact validation loss is measured; the best
  weights are kept and restored at the end, and written to ``out_dir/model.pt`` in the checkpoint
  format of every model. There is no dropout in the NumPy models, so nothing else is random but the
  batches, drawn from ``config.seed``. A NumPy run is not resumable: it writes no optimizer state.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from simplellm.lm import checkpoint as ckpt
from simplellm.lm.datasets import FixedSet
from simplellm.lm.models.numpy_base import NumpyLanguageModel
from simplellm.lm.trainer import History, TrainConfig, lr_at
from simplellm.nn.numpy_optim import SGD, Adam

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step")


@functools.cache
def _openblas() -> tuple[Any, Any] | None:
    """(set, get) thread-count functions of the OpenBLAS that NumPy uses, or None if there is none."""
    paths = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
    try:
        with open("/proc/self/maps") as maps:  # Linux: every shared library loaded in this process
            paths += sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        pass
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas_", "64_"), ("openblas_", "")):
            setter = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            getter = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                return setter, getter
    return None


def blas_threads(n: int | None = None) -> int | None:
    """Set NumPy's OpenBLAS to ``n`` threads (None: leave it); return the count before, None if unknown."""
    functions = _openblas()
    if functions is None:
        return None
    setter, getter = functions
    before = int(getter())
    if n is not None:
        setter(int(n))
    return before


def step_lr(step: int, config: TrainConfig) -> float:
    """Learning rate of step ``step`` (0-based) under the step schedule (see the module doc)."""
    if step < config.steps // 2:
        return config.lr
    if step < (3 * config.steps) // 4:
        return max(config.lr / 2, config.min_lr)
    return config.min_lr


def learning_rate(step: int, config: TrainConfig, schedule: str) -> float:
    return step_lr(step, config) if schedule == "step" else lr_at(step, config)


def make_optimizer(model: NumpyLanguageModel, name: str, config: TrainConfig) -> SGD | Adam:
    """The NumPy optimizer; its weight decay is 0 because decay is applied, decoupled, by the loop."""
    if name == "sgd":
        return SGD(model.params, model.grads, lr=config.lr)
    if name == "adam":
        return Adam(model.params, model.grads, lr=config.lr, betas=(config.beta1, config.beta2))
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")


def clip_gradients(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient so that their global L2 norm is at most ``max_norm``; return the norm before."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    scale = max_norm / (norm + 1e-6)  # torch's epsilon: a zero gradient stays zero
    if scale < 1.0:
        for g in grads.values():
            g *= scale
    return norm


def train_numpy(
    model: NumpyLanguageModel,
    data: Any,
    config: TrainConfig,
    resume: str | Path | None = None,
    optimizer: str | None = None,
    schedule: str | None = None,
) -> History:
    """Train a NumPy model on ``data`` (a ``TrainingData``); see the module doc. Returns the history.

    ``optimizer`` ("sgd" or "adam") and ``schedule`` ("cosine" or "step") default to the model's own
    (``default_optimizer``, ``default_schedule``). On return the model holds the best weights seen by
    validation (the final ones when nothing was evaluated).
    """
    if resume is not None:
        raise ValueError(
            f"{model.family} runs cannot be resumed (their checkpoints hold no optimizer state); start anew"
        )
    optimizer = optimizer or model.default_optimizer
    schedule = schedule or model.default_schedule
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    if config.threads is not None:
        blas_threads(config.threads)
    opt = make_optimizer(model, optimizer, config)
    decayed = [name for name in model.params if model.decays(name)]
    validation = data.validation[: config.eval_sequences]
    out_dir = Path(config.out_dir) if config.out_dir else None
    batches = model.training_batches(data, config.batch_size, config.seed)

    def save(path: Path) -> None:
        ckpt.save_model(
            path,
            model,
            data.tokenizer,
            data.config,
            train_config=asdict(config),
            history=history.to_dict(),
            optimizer_name=optimizer,
            schedule=schedule,
        )

    history = History()
    best: dict[str, np.ndarray] | None = None
    bad_evals, tokens_seen, step = 0, 0, 0
    start = time.perf_counter()
    bar = tqdm(total=config.steps, disable=not config.progress, dynamic_ncols=True)
    while step < config.steps:
        lr = learning_rate(step, config, schedule)
        model.zero_grad()
        loss, tokens = model.loss_and_backward(next(batches))
        if config.grad_clip > 0:
            clip_gradients(model.grads, config.grad_clip)
        if config.weight_decay > 0:
            for name in decayed:
                model.params[name] *= 1.0 - lr * config.weight_decay
        opt.lr = lr
        opt.step()
        step += 1
        tokens_seen += tokens
        history.steps.append(step)
        history.train_loss.append(loss)
        history.lr.append(lr)
        history.tokens.append(tokens_seen)
        history.seconds.append(time.perf_counter() - start)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)
        if not math.isfinite(loss):
            bar.close()
            raise FloatingPointError(f"the training loss became {loss} at step {step}; lower the lr")

        stop = False
        if validation and (step % config.eval_every == 0 or step == config.steps):
            val_loss = model.cross_entropy(validation)
            history.eval_steps.append(step)
            history.val_loss.append(val_loss)
            improved = history.best_val_loss is None or val_loss < history.best_val_loss
            if improved:
                history.best_step, history.best_val_loss, bad_evals = step, val_loss, 0
                best = model.copy_params()
                if out_dir is not None:
                    save(out_dir / "model.pt")
            else:
                bad_evals += 1
                stop = history.stopped_early = config.patience is not None and bad_evals >= config.patience
            if config.progress:
                bar.write(f"step {step:6d}  train {loss:.4f}  val {val_loss:.4f}{' *' if improved else ''}")
        if stop:
            break
    bar.close()
    if best is not None and history.best_step != step:
        model.set_params(best)
    if out_dir is not None and not validation:
        save(out_dir / "model.pt")
    return history


def fit_sequences(
    model: NumpyLanguageModel,
    sequences: Sequence[Sequence[int]],
    validation: Sequence[Sequence[int]] = (),
    optimizer: str | None = None,
    schedule: str | None = None,
    **options: Any,
) -> History:
    """Train on a list of framed token sequences (a fixed set, shuffled each epoch by ``seed``).

    ``options`` are ``TrainConfig`` fields, defaulting to the model's ``train_defaults`` and then to
    ``TrainConfig``'s; this is ``model.fit``. Shows no progress bar unless ``progress=True``.
    """
    if options.get("out_dir"):
        raise ValueError("fit() on bare sequences has no tokenizer to save; train with train_numpy() instead")
    config = TrainConfig(**{**model.train_defaults, "progress": False, **options})
    data = FixedSet([list(s) for s in sequences], [list(s) for s in validation], None, {}, seed=config.seed)
    return train_numpy(model, data, config, optimizer=optimizer, schedule=schedule)
