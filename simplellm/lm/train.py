"""Train a language model from the command line.

    python -m simplellm.lm.train --grammar sticky --n 3 --model transformer --out runs/train/sticky
    python -m simplellm.lm.train --text animals --tokenizer word --model gru
    torchrun --nproc_per_node=2 -m simplellm.lm.train --grammar sticky --model transformer

writes ``OUT/model.pt`` (the best weights, with their training state), ``OUT/last.pt`` (the final
training state, to ``--resume`` from), ``OUT/config.json`` (every setting and the results) and
``OUT/loss.png``, then prints a short report. Every option has a default that trains a good model;
``--help`` lists them. Options of the languages and of the models are read from their configuration
dataclasses, so a new parameter there is a new option here, and an option that does not apply to the
chosen language or model is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import textwrap
import time
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from simplellm.data import GRAMMARS, grammar, language_parameters
from simplellm.lm import checkpoint as ckpt
from simplellm.lm.datasets import FixedSet, TrainingData, data_from_config
from simplellm.lm.device import DEVICES, DTYPES, init_distributed, shutdown_distributed
from simplellm.lm.floors import conditional_entropy, context_length, floor_report
from simplellm.lm.models import FAMILIES, build_model
from simplellm.lm.models.numpy_base import NumpyLanguageModel
from simplellm.lm.numpy_train import train_numpy
from simplellm.lm.trainer import History, TrainConfig, fit

# Training defaults per family, measured on sticky n=3 with fresh samples, batch 64, one CPU thread
# (validity of 4000 samples at temperature 1; excess: mean of log p(x) - log q(x) per token over 4000
# fresh samples, p the language):
#   transformer  5000 steps  431 s  val 3.4739  excess 0.0003  valid 99.7% (8000 samples)
#   gru          3000 steps  126 s  val 3.4742  excess 0.0015  valid 98.6%
#   rnn          3000 steps   55 s  val 3.4763  excess 0.0025  valid 99.1%
#   mlp          3000 steps   76 s  val 3.4751  excess 0.0018  valid 98.4%
#   bigram       1000 steps    2 s  val 3.6596  (its floor: one character of context cannot count a run)
# (sticky's entropy rate is 3.4739.) No weight decay: what these languages reward is exact probabilities,
# zero where a character is not allowed, and decay holds the logits back from them (transformer, 1500
# steps: 97.8% valid with decay 0.1, 98.3% without). A learning rate of 1e-2 beat 3e-3 (98.9% against
# 98.3% valid at 1500 steps) and 2e-2 diverged. Counting models read steps * batch_size fresh samples.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "ngram": {"steps": 1, "batch_size": 20_000},
    "bigram": {"steps": 1000, "lr": 3e-2, "min_lr": 3e-4, "weight_decay": 0.0},
    "mlp": {"steps": 3000, "lr": 1e-2, "min_lr": 1e-4, "weight_decay": 0.0},
    "rnn": {"steps": 3000, "lr": 1e-2, "min_lr": 1e-4, "weight_decay": 0.0},
    "gru": {"steps": 3000, "lr": 1e-2, "min_lr": 1e-4, "weight_decay": 0.0},
    "transformer": {"steps": 5000, "lr": 1e-2, "min_lr": 3e-5, "weight_decay": 0.0},
    # the NumPy models' own recipes (SGD with a step schedule; AdamW with warm-up + cosine): numpy_train.py
    **{name: cls.train_defaults for name, cls in FAMILIES.items() if issubclass(cls, NumpyLanguageModel)},
}

# Text: a shipped corpus holds a few thousand training tokens (story: 4,400 words or 17,000 characters),
# which a transformer memorises within a few hundred steps: with the grammar recipe (lr 1e-2, batch 64),
# story's validation loss was best at step 100 (4.62) and 9.17 at step 1200. So text runs evaluate often
# and stop early, and the transformer trains gently, with dropout 0.1 and weight decay. Measured with
# patience 6, evaluations every 25 steps, batch 32, dropout 0.1, decay 0.1, one thread on 2 cores shared
# with other jobs (load 3-5; times are wall clock); best validation nats/token at (step):
#                          lr 1e-3          lr 2e-3          lr 3e-3
#   story word sentence    3.347 (225) 24s  3.367 (175) 27s  3.427 (125) 19s   (dropout 0.2: 3.333 at 1e-3)
#   story char sentence    1.688 (1425)785s 1.701 (950) 479s 1.663 (750) 649s  (1e-3: a 2000-step run)
#   animals char                            2.099 (125) 35s  2.118 (125) 33s
#   animals word           2.137 (125) 12s
#   story word line                         3.605 (100) 121s  (a line of story is a paragraph)
# 2e-3 is within 0.02 nats of the best rate measured for words and 0.04 for characters; 1000 steps bound
# a character run, still improving slowly there, to minutes. Prose reads better by --unit sentence.
TEXT_DEFAULTS: dict[str, dict[str, Any]] = {
    "all": {"eval_every": 25, "patience": 6},
    "transformer": {"steps": 1000, "batch_size": 32, "lr": 2e-3, "weight_decay": 0.1},
}
TEXT_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {"transformer": {"dropout": 0.1}}

# Options of TrainConfig offered on the command line, in --help order. ``out_dir`` is --out.
TRAIN_OPTIONS = (
    "steps",
    "batch_size",
    "lr",
    "min_lr",
    "warmup_steps",
    "weight_decay",
    "beta1",
    "beta2",
    "grad_clip",
    "eval_every",
    "eval_sequences",
    "patience",
    "checkpoint_every",
    "seed",
    "device",
    "threads",
    "dtype",
    "compile",
)
TRAIN_HELP = {
    "steps": "optimizer steps",
    "batch_size": "sequences per step (all processes together)",
    "lr": "peak learning rate, after warm-up",
    "min_lr": "the floor the cosine decays to",
    "warmup_steps": "steps of linear warm-up",
    "weight_decay": "AdamW decay of matrices and embeddings",
    "beta1": "Adam's first-moment decay",
    "beta2": "Adam's second-moment decay",
    "grad_clip": "clip the gradient norm to this; 0: no clipping",
    "eval_every": "steps between validation measurements",
    "eval_sequences": "validation sequences",
    "patience": "stop after this many evaluations without improvement; 0: never",
    "checkpoint_every": "also write OUT/last.pt every this many steps",
    "seed": "seed of the data, the initial weights and dropout",
    "threads": "torch CPU threads",
    "compile": "torch.compile the training step",
}
TEXT_OPTIONS = {"tokenizer": "char", "unit": "line", "val_fraction": 0.1, "min_frequency": 2}


# ------------------------------------------------------------------ options read from dataclasses
def scalar_type(hint: Any) -> type | None:
    """int, float, bool or str for a field annotated with one of them (or ``X | None``); else None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else None
    return hint if hint in (int, float, bool, str) else None


def config_options(cls: type) -> dict[str, tuple[type, Any]]:
    """Field name -> (type, default) of a config dataclass, for the fields a command line can set."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        kind = scalar_type(hints[f.name])
        if f.init and f.name != "vocab_size" and kind is not None and not f.name.startswith("_"):
            default = f.default if f.default is not dataclasses.MISSING else None
            out[f.name] = (kind, default)
    return out


def language_options() -> dict[str, dict[str, tuple[type, Any]]]:
    """Language name -> its parameters as (type, default)."""
    return {name: config_options(type(grammar(name))) for name in GRAMMARS}


def model_options() -> dict[str, dict[str, tuple[type, Any]]]:
    out = {}
    for family, cls in FAMILIES.items():
        options = config_options(cls.Config)
        out[family] = options
    return out


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_option(group: Any, name: str, kind: type, dest: str, help: str, option: str | None = None) -> None:
    """An option whose default is None, so the program can tell 'not given' from any value."""
    option = option or flag(name)
    if kind is bool:
        group.add_argument(option, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help)
    else:
        metavar = {int: "INT", float: "FLOAT", str: "STR"}[kind]
        group.add_argument(option, dest=dest, type=kind, default=None, metavar=metavar, help=help)


def defaults_text(defaults: dict[str, Any]) -> str:
    """``sticky: 3, counting: 3`` -- or one value when all agree."""
    values = set(map(repr, defaults.values()))
    if len(values) == 1:
        return f"default: {next(iter(defaults.values()))!r}"
    return "default: " + ", ".join(f"{owner} {value!r}" for owner, value in defaults.items())


# ------------------------------------------------------------------ the parser
class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps option help without breaking a hyphenated model name (numpy-ngram) across two lines."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simplellm.lm.train",
        description="Train a language model on a synthetic language or a text.",
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=HelpFormatter,
    )
    data = parser.add_argument_group("data (one of --grammar or --text)")
    source = data.add_mutually_exclusive_group()
    source.add_argument("--grammar", choices=GRAMMARS, help="a synthetic language (default: sticky)")
    source.add_argument(
        "--text", metavar="FILE|CORPUS", help="a UTF-8 text file or a shipped corpus (default: none)"
    )
    data.add_argument(
        "--train-size",
        type=int,
        metavar="K",
        help="grammars: train on a fixed set of K samples (default: a fresh sample for every sequence)",
    )
    languages = language_options()
    owners: dict[str, dict[str, Any]] = {}
    kinds: dict[str, type] = {}
    for name, options in languages.items():
        for option, (kind, default) in options.items():
            owners.setdefault(option, {})[name] = default
            kinds[option] = kind
    for option, defaults in owners.items():
        add_option(
            data,
            option,
            kinds[option],
            f"grammar.{option}",
            f"{'/'.join(defaults)} ({defaults_text(defaults)})",
        )
    data.add_argument("--tokenizer", choices=("char", "word"), help="text: tokens (default: char)")
    data.add_argument(
        "--unit", choices=("line", "sentence"), help="text: one sample per line or sentence (default: line)"
    )
    data.add_argument(
        "--val-fraction", type=float, metavar="FLOAT", help="text: share of samples held out (default: 0.1)"
    )
    data.add_argument(
        "--min-frequency",
        type=int,
        metavar="INT",
        help="text, word tokenizer: rarer words become <unk> (default: 2)",
    )

    model = parser.add_argument_group(
        "model",
        "Defaults are the model's own, except the transformer's --block-size on a grammar: the longest "
        "sample + 1 (at most 128), or 32 on sticky (2(n+1) for n > 15); and on text, the transformer's "
        f"--dropout: {TEXT_MODEL_DEFAULTS['transformer']['dropout']}.",
    )
    model.add_argument("--model", choices=sorted(FAMILIES), help="model family (default: transformer)")
    owners, kinds = {}, {}
    for family, options in model_options().items():
        for option, (kind, default) in options.items():
            owners.setdefault(option, {})[family] = default
            kinds[option] = kind
    # a model field named like a language parameter or a training option gets a --model- prefix
    taken = {o for opts in languages.values() for o in opts} | set(TRAIN_OPTIONS)
    for option, defaults in owners.items():
        name = flag(option) if option not in taken else flag("model_" + option)
        text = f"{'/'.join(defaults)} ({defaults_text(defaults)})"
        add_option(model, option, kinds[option], f"model.{option}", text, name)

    training = parser.add_argument_group("training")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    hints = typing.get_type_hints(TrainConfig)
    for name in TRAIN_OPTIONS:
        kind = scalar_type(hints[name])
        default = fields[name].default
        per_family = {fam: d[name] for fam, d in FAMILY_DEFAULTS.items() if d.get(name, default) != default}
        text = f"default: {default!r}"
        if per_family:
            text = f"default: {default!r}; per model: " + ", ".join(
                f"{k} {v!r}" for k, v in per_family.items()
            )
        on_text = {fam: d[name] for fam, d in TEXT_DEFAULTS.items() if name in d}
        if on_text:
            text += "; on text: " + ", ".join(
                f"{k.replace('all', 'every model')} {v!r}" for k, v in on_text.items()
            )
        if name == "threads":
            text = "default: 1; measured 7-13x faster than 2 on 2 busy cores, see TrainConfig"
        if name == "device":
            training.add_argument("--device", help=f"{', '.join(DEVICES)} or cuda:N ({text})")
        elif name == "dtype":
            training.add_argument("--dtype", choices=DTYPES, help=f"autocast precision ({text})")
        else:
            add_option(training, name, kind, f"train.{name}", f"{TRAIN_HELP[name]} ({text})")
    training.add_argument("--out", metavar="DIR", help="output folder (default: runs/train/MODEL-DATA)")
    training.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue a run from its checkpoint; options default to the checkpoint's (default: a new run)",
    )
    training.add_argument(
        "--quiet", action="store_true", help="no progress bar or evaluation lines (default: off)"
    )
    return parser


def given(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """Options under ``prefix.`` that were given on the command line."""
    return {
        k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith(prefix + ".") and v is not None
    }


# ------------------------------------------------------------------ from options to objects
def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, dict, dict, TrainConfig]:
    """(family, model options, data config, train config) from the options (and the --resume checkpoint).

    Precedence: an option given on the command line; else, resuming, the checkpoint's value; else the
    defaults (FAMILY_DEFAULTS and data_model_defaults, then the dataclasses' own).
    """
    saved: dict[str, Any] = {}
    if args.resume:
        saved = ckpt.read_checkpoint(args.resume)
        if "train_config" not in saved:
            raise ValueError(f"{args.resume} holds a model but no training state; it cannot be resumed")
    family = args.model or saved.get("family") or "transformer"

    train_given = given(args, "train")
    for name in ("device", "dtype"):
        if getattr(args, name) is not None:
            train_given[name] = getattr(args, name)
    base = dict(saved["train_config"]) if saved else {**FAMILY_DEFAULTS.get(family, {})}
    if not saved and args.text is not None:
        base.update({**TEXT_DEFAULTS["all"], **TEXT_DEFAULTS.get(family, {})})
    base.update(train_given)
    if base.get("patience") == 0:  # --patience 0: never stop early
        base["patience"] = None
    base["out_dir"] = args.out or (saved["train_config"].get("out_dir") if saved else None)
    base["progress"] = not args.quiet
    defaults = TrainConfig()
    seed, val_size = base.get("seed", defaults.seed), base.get("eval_sequences", defaults.eval_sequences)
    data_config = data_options(args, parser, saved, seed, val_size)

    allowed = model_options()[family]
    model_opts = given(args, "model")
    wrong = sorted(set(model_opts) - set(allowed))
    if wrong:
        parser.error(
            f"{', '.join(flag(w) for w in wrong)} does not apply to --model {family}; "
            f"its options are {', '.join(flag(a) for a in allowed) or 'none'}"
        )
    if saved and family == saved["family"]:
        model_opts = {**saved["model_config"], **model_opts}
        model_opts.pop("vocab_size", None)
    else:
        model_opts = {**data_model_defaults(family, data_config), **model_opts}

    if base["out_dir"] is None:
        source = data_config["source"]
        name = data_config["grammar"]["name"] if source == "grammar" else Path(data_config["text"]).stem
        base["out_dir"] = str(Path("runs") / "train" / f"{family}-{name}")
    try:
        config = TrainConfig(**base)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    return family, model_opts, data_config, config


def data_model_defaults(family: str, data_config: dict) -> dict[str, Any]:
    """Model options the command line sets from the data, where the model's own default would be wasteful.

    The transformer's window: every training row is padded to the longest in its batch, so a window
    longer than the samples costs time for nothing. On a language whose samples are bounded, the window
    is the longest sample plus BOS (at most the model's default); on sticky, whose samples are not, 32
    tokens, well above the n + 1 characters its next character depends on. Measured on sticky n=3, batch
    64, one thread: 12.1 steps/s with 32 tokens against 7.1 with 64; in another session, 5.7 against 1.9
    with the default 128.

    On text, the transformer's dropout (TEXT_MODEL_DEFAULTS): a small text is soon memorised.
    """
    if data_config["source"] == "text":
        return dict(TEXT_MODEL_DEFAULTS.get(family, {}))
    if family != "transformer":
        return {}
    language = grammar(**data_config["grammar"])
    model_default = dict(config_options(FAMILIES["transformer"].Config))["block_size"][1]
    longest = language.max_length()
    if longest is not None:
        return {"block_size": min(model_default, longest + 1)}
    n = data_config["grammar"].get("n", 1)
    return {"block_size": min(model_default, max(32, 2 * (n + 1)))}


def data_options(
    args: argparse.Namespace, parser: argparse.ArgumentParser, saved: dict, seed: int, val_size: int
) -> dict:
    """The data configuration (``datasets.data_from_config`` input) the options describe."""
    grammar_opts = given(args, "grammar")
    text_opts = {k: getattr(args, k) for k in TEXT_OPTIONS if getattr(args, k) is not None}
    if saved and args.grammar is None and args.text is None:
        config = dict(saved["data"])  # resuming: the checkpoint's data unless other data is named
        if config["source"] == "grammar":
            config["grammar"] = {**config["grammar"], **grammar_opts}
            if args.train_size is not None:
                config["train_size"] = args.train_size
        else:
            config.update(text_opts)
        return config
    if args.text is not None:
        if grammar_opts or args.train_size is not None:
            wrong = [flag(k) for k in grammar_opts] + (
                ["--train-size"] if args.train_size is not None else []
            )
            parser.error(f"{', '.join(wrong)} apply to --grammar, not to --text")
        opts = {**TEXT_OPTIONS, **text_opts}
        return {"source": "text", "text": args.text, **opts, "seed": seed}
    if text_opts:
        parser.error(f"{', '.join(flag(k) for k in text_opts)} apply to --text, not to --grammar")
    name = args.grammar or "sticky"
    allowed = language_parameters(name)
    wrong = sorted(set(grammar_opts) - set(allowed))
    if wrong:
        parser.error(
            f"{', '.join(flag(w) for w in wrong)} does not apply to --grammar {name}; "
            f"its parameters are {', '.join(flag(a) for a in allowed)}"
        )
    try:
        language = grammar(name, **grammar_opts)
    except ValueError as error:
        parser.error(str(error))
    if args.train_size is not None and args.train_size < 1:
        parser.error(f"--train-size must be >= 1, not {args.train_size}")
    return {
        "source": "grammar",
        "grammar": dict(language.config),
        "train_size": args.train_size,
        "val_size": val_size,
        "seed": seed,
    }


# ------------------------------------------------------------------ outputs
@dataclass
class Overfitting:
    """Validation loss rose after ``began`` (the best evaluation) while the training loss fell."""

    began: int  # the step of the best validation loss
    seen: int  # the first evaluation at which the rise exceeded the tolerance
    last: int  # the last evaluation
    best_val: float
    last_val: float
    train_at_best: float  # mean training loss of the steps since the evaluation before the best
    train_at_last: float  # the same for the last evaluation


def overfitting(history: History, rise: float = 0.01) -> Overfitting | None:
    """Where overfitting began, if it did.

    It did when, at some evaluation after the best one (the lowest validation loss, the first if tied),
    the validation loss is more than ``rise`` (relative: 1%) above the best while the training loss is
    below its value at the best. The training loss at an evaluation is the mean of the batch losses since
    the previous evaluation, so one lucky batch does not count. Validation sets are fixed, so the
    validation loss itself has no sampling noise; the tolerance covers the optimiser's wobble.
    """
    if len(history.val_loss) < 2 or not history.train_loss:
        return None
    spans = [0, *history.eval_steps]

    def train_loss(evaluation: int) -> float:  # steps count from 1: step s's loss is train_loss[s - 1]
        losses = history.train_loss[spans[evaluation] : spans[evaluation + 1]]
        return sum(losses) / len(losses)

    best = history.val_loss.index(min(history.val_loss))
    for j in range(best + 1, len(history.val_loss)):
        risen = history.val_loss[j] > history.val_loss[best] * (1 + rise)
        if risen and train_loss(j) < train_loss(best):
            last = len(history.val_loss) - 1
            return Overfitting(
                began=history.eval_steps[best],
                seen=history.eval_steps[j],
                last=history.eval_steps[last],
                best_val=history.val_loss[best],
                last_val=history.val_loss[last],
                train_at_best=train_loss(best),
                train_at_last=train_loss(last),
            )
    return None


def plot_history(
    history: History, path: Path, floor: float | None = None, title: str = "", overfit_from: int | None = None
) -> None:
    """Training and validation loss by step, learning rate on a second axis; where overfitting began."""
    from simplellm.lm.pictures import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if len(history.steps) > 1:
        ax.plot(
            history.steps, history.train_loss, color="tab:blue", alpha=0.35, lw=0.8, label="train (batch)"
        )
        ax.plot(history.steps, smooth(history.train_loss), color="tab:blue", lw=1.5, label="train (smoothed)")
    ax.plot(history.eval_steps, history.val_loss, "o-", color="tab:orange", ms=3, label="validation")
    if floor is not None:
        ax.axhline(floor, color="black", ls="--", lw=1, label=f"entropy rate {floor:.4f}")
    if overfit_from is not None:
        ax.axvline(
            overfit_from, color="tab:red", ls="--", lw=1, label=f"overfitting from step {overfit_from}"
        )
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(title)
    lr_ax = ax.twinx()
    lr_ax.plot(history.steps, history.lr, color="tab:gray", lw=1, ls=":", label="learning rate")
    lr_ax.set_ylabel("learning rate")
    lines = ax.get_legend_handles_labels()
    more = lr_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def smooth(values: list[float], beta: float = 0.95) -> list[float]:
    """Exponential moving average with bias correction (as in Adam), so the start is not pulled to 0."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def describe_data(config: dict, short: bool = False) -> str:
    """``sticky (n=3, ...), fresh samples``; ``short`` names n and the parameters set away from defaults."""
    if config["source"] == "grammar":
        name = config["grammar"]["name"]
        defaults = language_parameters(name)
        params = ", ".join(
            f"{k}={v}"
            for k, v in config["grammar"].items()
            if k != "name" and (not short or k == "n" or v != defaults.get(k))
        )
        size = config["train_size"]
        how = "fresh samples" if size is None else f"a fixed set of {size} samples"
        return f"{name} ({params}), {how}"
    return f"{config['text']} ({config['tokenizer']} tokens, one sample per {config['unit']})"


def report(
    family: str,
    model: Any,
    data: TrainingData,
    history: History,
    seconds: float,
    floor: float | None,
) -> tuple[list[str], dict[str, Any]]:
    """The lines printed at the end, and the same figures for config.json."""
    val = history.best_val_loss
    results: dict[str, Any] = {
        "parameters": model.num_parameters(),
        "steps": history.steps[-1] if history.steps else 0,
        "seconds": round(seconds, 2),
        "tokens": history.tokens[-1] if history.tokens else 0,
        "final_train_loss": history.train_loss[-1] if history.train_loss else None,
        "final_val_loss": history.val_loss[-1] if history.val_loss else None,
        "best_val_loss": val,
        "best_step": history.best_step,
        "stopped_early": history.stopped_early,
    }
    lines = [
        f"model       {family}, {results['parameters']:,} parameters",
        f"data        {describe_data(data.config)}",
        f"training    {results['steps']} steps, {results['tokens']:,} tokens, {seconds:.1f} s"
        + (" (stopped early)" if history.stopped_early else ""),
    ]
    if results["final_train_loss"] is not None:
        lines.append(f"train loss  {results['final_train_loss']:.4f} nats/token (last batch)")
    if val is not None:
        lines.append(f"val loss    {val:.4f} nats/token (best, step {history.best_step})")
    if floor is not None and val is not None:
        results["entropy_rate"] = floor
        results["excess"] = val - floor
        lines.append(f"entropy     {floor:.4f} nats/token: the language's floor; gap {val - floor:+.4f}")
    if val is not None and math.isinf(val):
        lines.append(
            "            inf: a validation token got probability 0 (never seen after its context)"
            + ("; --k 0.1 smooths the counts" if family == "ngram" else "")
        )
    train_set_loss = model.cross_entropy(data.train) if isinstance(data, FixedSet) else None
    if floor is None and val is not None:
        vocab = data.tokenizer.vocab_size
        results["perplexity"] = math.exp(val)
        results["uniform_loss"] = math.log(vocab)
        on_train = ""
        if train_set_loss is not None:
            results["train_set_perplexity"] = math.exp(train_set_loss)
            on_train = f", {math.exp(train_set_loss):.2f} on the training set"
        lines.append(
            f"perplexity  {math.exp(val):.2f} on validation{on_train}; a uniform guess over {vocab} tokens "
            f"scores {math.log(vocab):.4f} nats (perplexity {vocab})"
        )
    if train_set_loss is not None:  # a fixed training set: its floor tells learning from memorising
        k = context_length(model)
        results["train_set_loss"] = train_set_loss
        results["train_set_floor"] = conditional_entropy(data.train, k)
        lines.append(f"train set   {floor_report(data.train, k, train_set_loss)}")
    found = overfitting(history)
    if found is not None:
        results["overfitting_from"] = found.began
        lines.append(
            f"warning     overfitting from step {found.began}: validation loss rose {found.best_val:.4f} -> "
            f"{found.last_val:.4f} (step {found.last}) while training loss fell {found.train_at_best:.4f} -> "
            f"{found.train_at_last:.4f}"
        )
        lines.append(
            f"{'':12}the model is memorising its training set; model.pt holds step {history.best_step}'s "
            "weights, the best on validation"
        )
    return lines, results


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        family, model_opts, data_config, config = resolve(args, parser)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    ddp = init_distributed(config.device)
    try:
        return run(args, family, model_opts, data_config, config, ddp.is_main, argv)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        shutdown_distributed()


def run(
    args: argparse.Namespace,
    family: str,
    model_opts: dict,
    data_config: dict,
    config: TrainConfig,
    main: bool,
    argv: list[str] | None,
) -> int:
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    data = data_from_config(data_config)
    torch.manual_seed(config.seed)  # the initial weights
    model = build_model(family, vocab_size=data.tokenizer.vocab_size, **model_opts)
    start = time.perf_counter()
    trainer = train_numpy if isinstance(model, NumpyLanguageModel) else fit  # NumPy: its own loop
    history = trainer(model, data, config, resume=args.resume)
    seconds = history.seconds[-1] if history.seconds else time.perf_counter() - start
    floor = None
    if data_config["source"] == "grammar":
        floor = float(grammar(**data_config["grammar"]).entropy_rate())
    if not main:
        return 0
    lines, results = report(family, model, data, history, seconds, floor)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "command": ["python", "-m", "simplellm.lm.train", *(sys.argv[1:] if argv is None else argv)],
        "model": {"family": family, "config": ckpt.model_config(model)},
        "data": data_config,
        "train": dataclasses.asdict(config),
        "results": results,
        "history": history.to_dict(),
    }
    (out / "config.json").write_text(json.dumps(summary, indent=1))
    title = f"{family} on {describe_data(data_config, short=True)}"
    plot_history(history, out / "loss.png", floor, title, results.get("overfitting_from"))
    written = ", ".join(
        str(out / f) for f in ("model.pt", "last.pt", "config.json", "loss.png") if (out / f).exists()
    )
    print("\n".join(lines))
    print(f"wrote       {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
