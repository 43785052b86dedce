"""Pictures of what a trained model has learned: attention maps and token embeddings.

* ``attention_grid``: for a prompt, every layer's and every head's attention weights, one heat map each
  (rows: layers, columns: heads). Row t of a map is how much position t reads each earlier position;
  the grey triangle above the diagonal is the causal mask, the future no position may see.
* ``embedding_map``: the token embedding table projected on its two principal components (PCA, with
  NumPy's SVD), every point labelled with its token and coloured by its kind. Tokens the model treats
  alike get similar vectors, so kinds it has learned to tell apart form separate clusters.

``python -m simplellm.lm.draw`` draws both from a checkpoint.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simplellm.lm.tokenizers import BOS, SPECIAL_TOKENS, Tokenizer

# one colour per kind of token, the same in every picture
KIND_COLOURS = {
    "special": "tab:gray",
    "lower": "tab:blue",
    "upper": "tab:orange",
    "digit": "tab:green",
    "space": "tab:purple",
    "punctuation": "tab:red",
    "other": "tab:brown",
    "pronoun": "tab:orange",
    "preposition": "tab:purple",
    "determiner": "tab:pink",
    "conjunction": "tab:olive",
    "auxiliary verb": "tab:brown",
    "number": "tab:green",
    "word": "tab:cyan",
}
# English closed-class words: few, frequent, and each kind used in its own places in a sentence, so a
# model that has learned some grammar gives each kind its own region. Every other word is a "word".
FUNCTION_WORDS = {
    "pronoun": "i me my mine you your yours he him his she her hers it its we us our they them their who "
    "whom whose what this that these those myself yourself himself herself itself ourselves themselves "
    "nobody somebody someone something anyone anything everyone everything nothing",
    "preposition": "in on at by for from to of with into onto across over under through about after before "
    "between behind beside near without within up down out off along around past toward towards until "
    "upon against among during",
    "determiner": "the a an every each some any no all both many much more most few several another other",
    "conjunction": "and but or nor so because if when while than then as though although unless whether",
    "auxiliary verb": "is was are were be been being am has had have having do did does done will would "
    "can could cannot shall should may might must",
}
WORD_KINDS = {word: kind for kind, words in FUNCTION_WORDS.items() for word in words.split()}


# ------------------------------------------------------------------ PCA
def pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``x`` (N, D) on its top ``k`` principal components (N, k), and the share of the total
    variance each component explains (k,).

    With ``x - mean = U S Vt`` (the SVD), the principal directions are the rows of Vt, ordered by the
    singular values, and the coordinates are ``(x - mean) Vt[:k].T = U[:, :k] S[:k]``. A direction's
    sign is arbitrary; it is fixed so that the largest coordinate along it is positive, so the same
    table always gives the same picture.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or not 1 <= k <= min(x.shape):
        raise ValueError(
            f"pca needs an (N, D) array with N >= 2 and 1 <= k <= min(N, D); got {x.shape}, k={k}"
        )
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:k].T
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(k)])
    coords *= np.where(signs == 0, 1.0, signs)
    variance = s**2
    total = variance.sum()
    explained = variance[:k] / total if total > 0 else np.zeros(k)
    return coords, explained


# ------------------------------------------------------------------ what to draw
def embedding_table(model: Any) -> np.ndarray:
    """(V, E) token embeddings of a model: the torch ``nn.Embedding`` with one row per token (the GPT's
    ``tok_emb`` first), or a NumPy model's ``tok_emb``. ValueError for a model that has none."""
    vocab = model.vocab_size
    if isinstance(model, torch.nn.Module):
        modules = dict(model.named_modules())
        ordered = [modules["tok_emb"]] if "tok_emb" in modules else []
        ordered += list(modules.values())
        for module in ordered:
            if isinstance(module, torch.nn.Embedding) and module.num_embeddings == vocab:
                return module.weight.detach().cpu().double().numpy()
    else:
        table = getattr(getattr(model, "tok_emb", None), "params", {}).get("W")
        if table is not None and table.shape[0] == vocab:
            return np.asarray(table, dtype=np.float64)
    raise ValueError(
        f"a {getattr(model, 'family', type(model).__name__)} model has no token embedding table (one vector "
        "per token) to draw; the transformer, MLP, RNN and GRU have one"
    )


def token_kind(tokenizer: Tokenizer, token: int) -> str:
    """What kind of token this is: special; for characters lower, upper, digit, space or punctuation; for
    words punctuation, number, one of the English function-word kinds (FUNCTION_WORDS) or word."""
    text = tokenizer.itos[token]
    if text in SPECIAL_TOKENS:
        return "special"
    if tokenizer.kind == "char":
        if text.islower():
            return "lower"
        if text.isupper():
            return "upper"
        if text.isdigit():
            return "digit"
        if text.isspace():
            return "space"
        return "punctuation" if not text.isalpha() else "other"
    if not any(c.isalnum() for c in text):
        return "punctuation"
    if text.isdigit():
        return "number"
    return WORD_KINDS.get(text, "word")


def show_token(tokenizer: Tokenizer, token: int) -> str:
    """A token as a learner can read it: special tokens by name, a space as ␣, control characters escaped."""
    text = tokenizer.itos[token]
    if text == " ":
        return "␣"
    return text if text.isprintable() else repr(text)[1:-1]


def pyplot() -> Any:
    """matplotlib.pyplot, drawing off-screen (Agg) unless a backend is already chosen.

    A notebook kernel chooses its inline backend through MPLBACKEND; switching it to Agg would make
    every later ``plt.show()`` of the notebook draw nothing.
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------ the pictures
def attention_grid(model: Any, tokenizer: Tokenizer, prompt: str, path: str | Path) -> Path:
    """Draw every layer's and head's attention weights on ``prompt`` (read as BOS + its tokens) to ``path``.

    A prompt longer than the model's window is cut to its last ``block_size`` tokens, as generation does.
    """
    if not hasattr(model, "attention_maps"):
        raise ValueError(
            f"a {getattr(model, 'family', type(model).__name__)} model has no attention to draw; "
            "attention maps need a transformer (--model transformer)"
        )
    ids = model.crop([BOS, *tokenizer.encode(prompt, frame=False)])
    device = next(model.parameters()).device
    maps = [m[0].float().cpu().numpy() for m in model.attention_maps(torch.tensor([ids], device=device))]
    layers, heads, T = len(maps), maps[0].shape[0], len(ids)
    labels = [show_token(tokenizer, t) for t in ids]
    future = np.triu(np.ones((T, T), dtype=bool), k=1)

    plt = pyplot()
    cell = min(4.5, max(2.2, 0.16 * T + 0.9))  # inches per heat map
    font = min(9.0, max(4.0, 10 - T / 8))
    fig, axes = plt.subplots(
        layers,
        heads,
        figsize=(cell * heads + 1.6, cell * layers + 0.9),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")  # grey: the masked future
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer][head]
            image = ax.imshow(np.ma.masked_array(maps[layer][head], future), cmap=cmap, vmin=0.0, vmax=1.0)
            ax.set_xticks(range(T))
            ax.set_yticks(range(T))
            ax.set_xticklabels(labels, rotation=90, fontsize=font)
            ax.set_yticklabels(labels, fontsize=font)
            ax.tick_params(length=0)
            if layer == 0:
                ax.set_title(f"head {head + 1}", fontsize=10)
            if head == 0:
                ax.set_ylabel(f"layer {layer + 1}\nquery (reading)", fontsize=9)
            if layer == layers - 1:
                ax.set_xlabel("key (read)", fontsize=9)
    fig.suptitle(f"attention of a {layers}-layer, {heads}-head transformer on “{prompt}”", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    bar_ax = fig.add_axes((0.945, 0.15, 0.012, 0.7))
    fig.colorbar(image, cax=bar_ax, label="attention weight")
    return save(fig, path, plt)


def embedding_map(model: Any, tokenizer: Tokenizer, path: str | Path, labels: int = 150) -> Path:
    """Draw the token embeddings on their top two principal components, coloured by kind, to ``path``.

    ``labels``: how many tokens get their text beside the point (the first ids: a word tokenizer's
    commonest words); every token is drawn as a point.
    """
    table = embedding_table(model)
    if table.shape[0] != tokenizer.vocab_size:
        raise ValueError(f"the embedding table has {table.shape[0]} rows for {tokenizer.vocab_size} tokens")
    coords, explained = pca(table, 2)
    kinds = [token_kind(tokenizer, t) for t in range(tokenizer.vocab_size)]

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 7.5))
    for kind in dict.fromkeys(kinds):
        rows = [t for t, k in enumerate(kinds) if k == kind]
        ax.scatter(
            coords[rows, 0], coords[rows, 1], s=18, color=KIND_COLOURS[kind], label=f"{kind} ({len(rows)})"
        )
    font = 9 if min(labels, tokenizer.vocab_size) <= 80 else 7
    for t in range(min(labels, tokenizer.vocab_size)):
        ax.annotate(
            show_token(tokenizer, t),
            coords[t],
            xytext=(3, 2),
            textcoords="offset points",
            fontsize=font,
            color=KIND_COLOURS[kinds[t]],
        )
    family = getattr(model, "family", type(model).__name__)
    ax.set_title(
        f"{family} token embeddings ({table.shape[1]} dimensions, {tokenizer.kind} tokens), "
        f"first two principal components"
    )
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of the variance)")
    ax.legend(loc="best", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path, plt)


def save(fig: Any, path: str | Path, plt: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
