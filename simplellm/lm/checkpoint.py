"""Checkpoints: a model, its configuration and its tokenizer in one file that is data, never code.

A checkpoint is a ``dict`` saved with ``torch.save`` and read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain containers (dict, list, tuple, str, int, float, bool,
None). A pickle can run arbitrary code when it is loaded; this one cannot, so a checkpoint from
anywhere is safe to open. Layout (``version`` 1)::

    format          "simplellm-checkpoint"
    version         1
    family          model family, e.g. "transformer"          -> build_model(family, **model_config)
    model_config    dataclasses.asdict(model.config)
    model           the weights (state_dict)
    tokenizer       tokenizer.to_dict()
    data            the data's configuration (datasets.data_from_config rebuilds it), or None
    # the training state, present in checkpoints written by the trainer:
    train_config    dataclasses.asdict(TrainConfig)
    step            optimizer steps taken
    optimizer       optimizer.state_dict()
    scheduler       scheduler.state_dict()
    data_state      the data's random generators (so the next batches are the ones that would have come)
    rng             one entry per process: its torch CPU (and CUDA) generator states
    history         losses, learning rates, tokens and seconds so far (trainer.History.to_dict())
    best            {"step", "val_loss", "bad_evals"}: early stopping's memory
    best_model      the best weights so far when they are not ``model`` (else None)
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from simplellm.lm.models import LanguageModel, build_model
from simplellm.lm.tokenizers import Tokenizer, tokenizer_from_dict

FORMAT = "simplellm-checkpoint"
VERSION = 1


def unwrap(model: Any) -> Any:
    """The model itself inside ``torch.compile`` (``_orig_mod``) and DistributedDataParallel (``module``)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def model_state(model: Any) -> dict[str, Any]:
    """The weights of any model: a torch state_dict, or a model's own ``state_dict()`` of plain data."""
    model = unwrap(model)
    if not hasattr(model, "state_dict"):
        raise ValueError(
            f"{type(model).__name__} cannot be saved: it needs state_dict() and load_state_dict() "
            "returning tensors and plain Python data"
        )
    return {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in model.state_dict().items()}


def clean_state_keys(state: dict[str, Any]) -> dict[str, Any]:
    """Strip the ``_orig_mod.`` (torch.compile) and ``module.`` (DDP) prefixes a wrapped model's keys carry,
    so weights saved from a compiled or distributed model load into a plain one."""
    out = {}
    for key, value in state.items():
        for prefix in ("_orig_mod.", "module."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def model_config(model: Any) -> dict[str, Any]:
    return asdict(unwrap(model).config)


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` atomically: a crash mid-write leaves the previous file, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)
    return path


def model_checkpoint(
    model: Any, tokenizer: Tokenizer, data_config: dict[str, Any] | None = None, **training: Any
) -> dict[str, Any]:
    """The checkpoint dict of a model; ``training`` adds the trainer's entries (see the module doc)."""
    inner = unwrap(model)
    return {
        "format": FORMAT,
        "version": VERSION,
        "family": inner.family,
        "model_config": model_config(inner),
        "model": model_state(inner),
        "tokenizer": tokenizer.to_dict(),
        "data": data_config,
        **training,
    }


def save_model(
    path: str | Path,
    model: Any,
    tokenizer: Tokenizer,
    data_config: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Save a model that needs no training state (a fitted n-gram, or weights after training)."""
    return save_checkpoint(path, model_checkpoint(model, tokenizer, data_config, **extra))


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path``, loaded as data only. Clear errors for every way a file can be wrong."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train one with `python -m simplellm.lm.train ... --out DIR` "
            "(it writes DIR/model.pt)"
        )
    if path.is_dir():
        hint = f" (did you mean {path / 'model.pt'}?)" if (path / "model.pt").exists() else ""
        raise ValueError(f"{path} is a directory, not a checkpoint file{hint}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's weights-only unpickler names the class or function the file wanted to call
        if "unsupported global" in str(error).lower():
            raise ValueError(
                f"{path} holds Python objects other than tensors and plain data; loading it could run code, "
                "so it is refused. Only load checkpoints written by simplellm."
            ) from None
        raise ValueError(
            f"{path} is not a readable checkpoint (corrupt or truncated?). "
            "Re-run training, or use an intact file."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as error:
        raise ValueError(
            f"{path} is not a readable checkpoint (corrupt or truncated?): {error}. "
            "Re-run training, or pick an intact file."
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(
            f"{path} is a torch file but not a simplellm checkpoint (no format={FORMAT!r} entry); "
            "write checkpoints with simplellm.lm.train or simplellm.lm.checkpoint.save_model"
        )
    if checkpoint.get("version") != VERSION:
        raise ValueError(
            f"{path} is a version {checkpoint.get('version')} checkpoint; this code reads version {VERSION}"
        )
    missing = [k for k in ("family", "model_config", "model", "tokenizer") if k not in checkpoint]
    if missing:
        raise ValueError(f"{path} is an incomplete checkpoint: it lacks {', '.join(missing)}")
    return checkpoint


def load_weights(model: Any, state: dict[str, Any], source: str = "the checkpoint") -> None:
    """Load ``state`` into ``model`` (compiled/DDP prefixes removed), with a readable error on mismatch."""
    inner = unwrap(model)
    state = clean_state_keys(state)
    if isinstance(inner, torch.nn.Module):
        try:
            inner.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ValueError(f"the weights in {source} do not fit the model: {error}") from None
    elif hasattr(inner, "load_state_dict"):
        inner.load_state_dict(state)
    else:
        raise ValueError(f"{type(inner).__name__} cannot load weights: it has no load_state_dict()")


def build_from_checkpoint(checkpoint: dict[str, Any], source: str = "the checkpoint") -> LanguageModel:
    try:
        model = build_model(checkpoint["family"], **checkpoint["model_config"])
    except (ValueError, TypeError) as error:
        raise ValueError(f"{source} describes a model this code cannot build: {error}") from None
    load_weights(model, checkpoint["model"], source)
    return model


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[LanguageModel, Tokenizer, dict[str, Any]]:
    """The model, its tokenizer, and everything else the checkpoint says (``metadata``), from one file.

    ``metadata`` holds ``family``, ``model_config``, ``data``, ``train_config``, ``step``, ``history`` and
    ``best`` when present; weights, optimizer and random states are left out. The model is in eval mode.
    """
    checkpoint = read_checkpoint(path)
    model = build_from_checkpoint(checkpoint, str(path))
    try:
        tokenizer = tokenizer_from_dict(checkpoint["tokenizer"])
    except ValueError as error:
        raise ValueError(f"{path} holds a broken tokenizer: {error}") from None
    if tokenizer.vocab_size != model.vocab_size:
        raise ValueError(
            f"{path} pairs a tokenizer of {tokenizer.vocab_size} tokens with a model of vocabulary "
            f"{model.vocab_size}; the checkpoint is inconsistent"
        )
    if isinstance(model, torch.nn.Module):
        model.to(device)
        model.eval()
    skip = {"model", "optimizer", "scheduler", "rng", "data_state", "best_model", "tokenizer", "format"}
    metadata = {k: v for k, v in checkpoint.items() if k not in skip}
    return model, tokenizer, metadata


def differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: saved -> current`` for every key whose values differ (for error messages)."""
    keys = sorted(set(saved) | set(current))
    return [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]


# Training options that may change when a run is resumed: they say how long and how to run, not what to
# optimise. Changing ``steps`` stretches the cosine schedule from the resumed step on.
RESUMABLE_CHANGES = frozenset(
    {"steps", "eval_every", "patience", "device", "threads", "dtype", "compile", "checkpoint_every"}
    | {"out_dir", "progress"}
)


def check_resumable(
    checkpoint: dict[str, Any],
    model: Any,
    tokenizer: Tokenizer,
    data_config: dict[str, Any] | None,
    train_config: Any,
    source: str = "the checkpoint",
) -> None:
    """Raise ValueError, saying what differs and what to do, unless a run can continue from ``checkpoint``."""
    inner = unwrap(model)
    if "optimizer" not in checkpoint or "step" not in checkpoint:
        raise ValueError(
            f"{source} holds a model but no training state (optimizer, step); it can be sampled from, "
            "not resumed"
        )
    if checkpoint["family"] != inner.family:
        raise ValueError(
            f"{source} holds a {checkpoint['family']} model, but the model to resume is a {inner.family}; "
            f"resume with --model {checkpoint['family']}, or start a new run without --resume"
        )
    if checkpoint["tokenizer"] != tokenizer.to_dict():
        raise ValueError(
            f"{source} was trained with another tokenizer ({checkpoint['tokenizer'].get('kind')}, "
            f"{len(checkpoint['tokenizer'].get('tokens', []))} tokens) than this run's "
            f"({tokenizer.kind}, {tokenizer.vocab_size - 4} tokens); token ids would mean different "
            "things. Resume on the same data and tokenizer."
        )
    changed = differences(checkpoint["model_config"], model_config(inner))
    if changed:
        raise ValueError(
            f"{source} holds a {inner.family} with another configuration ({'; '.join(changed)}); "
            "resume with the checkpoint's model options, or start a new run"
        )
    if checkpoint.get("data") != data_config:
        changed = differences(checkpoint.get("data") or {}, data_config or {})
        raise ValueError(
            f"{source} was trained on other data ({'; '.join(changed)}); resume on the same data, "
            "or start a new run"
        )
    saved = checkpoint.get("train_config") or {}
    current = {f.name: getattr(train_config, f.name) for f in fields(train_config)}
    locked = {k: v for k, v in saved.items() if k not in RESUMABLE_CHANGES}
    changed = differences(locked, {k: v for k, v in current.items() if k in locked})
    if changed:
        raise ValueError(
            f"{source} was trained with other optimisation settings ({'; '.join(changed)}); a resumed run "
            f"may change only {', '.join(sorted(RESUMABLE_CHANGES))}"
        )
