"""Generation, written once for every model: greedy, temperature, top-k, top-p and beam search.

A model only has to say, one step at a time, how likely each next token is (``start`` /
``advance`` / ``select``, see ``simplellm.lm.models.base``). Turning that distribution into a choice
is the sampler's job, and it is the same job for a count table, a NumPy network or a transformer.

* temperature T divides the log-probabilities before renormalising: T < 1 sharpens, T > 1 flattens;
* top-k keeps the k most likely tokens (Fan et al. 2018, "Hierarchical Neural Story Generation");
* top-p keeps the smallest set of tokens whose probability reaches p (Holtzman et al. 2020,
  "The Curious Case of Neural Text Degeneration");
* greedy always takes the most likely token; beam search keeps the k most likely *sequences*.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simplellm.lm.tokenizers import BOS, EOS


def check_options(
    vocab_size: int, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> None:
    """Raise ValueError for options that cannot define a distribution."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use greedy=True for the argmax), not {temperature}")
    if top_k is not None and not 1 <= top_k <= vocab_size:
        raise ValueError(f"top_k must be between 1 and the vocabulary size {vocab_size}, not {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], not {top_p}")


def filter_logprobs(
    logprobs: np.ndarray, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> np.ndarray:
    """(B, V) probabilities to sample from, after temperature, top-k and top-p, in that order."""
    z = logprobs / temperature
    if top_k is not None and top_k < z.shape[-1]:
        # exactly k survivors per row, even with ties at the k-th value
        drop = np.argpartition(-z, top_k, axis=-1)[:, top_k:]
        z = z.copy()
        np.put_along_axis(z, drop, -np.inf, axis=-1)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1:
        order = np.argsort(-p, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=-1)
        # keep a token if the mass strictly before it is below top_p: the first token always stays
        before = np.cumsum(sorted_p, axis=-1) - sorted_p
        keep_sorted = before < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=-1, keepdims=True)
    return p


def choose(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row, drawn from each row's probabilities (inverse transform sampling)."""
    cumulative = np.cumsum(probs, axis=-1)
    # u in [0, total): the chosen i has cumulative[i-1] <= u < cumulative[i], so probs[i] > 0 always
    # (a total a rounding error below 1, or u = 0 before a zero, can never pick a filtered-out token)
    u = rng.random((probs.shape[0], 1)) * cumulative[:, -1:]
    return (cumulative <= u).sum(axis=-1)


def sample(
    model: Any,
    num: int,
    *,
    prompt: Sequence[int] = (BOS,),
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    seed: int = 0,
    batch_size: int = 256,
) -> list[list[int]]:
    """``num`` continuations of ``prompt``: the new token ids, ending with EOS if the model emitted it.

    A sample that reaches ``max_new_tokens`` without EOS is returned as it stands (it is then not a
    finished sample: callers that score samples should check for the final EOS). Samples are
    generated ``batch_size`` at a time; finished ones leave the batch. The same seed and batch size
    give the same samples.
    """
    if num < 0:
        raise ValueError(f"num must be >= 0, not {num}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, not {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    if len(prompt) == 0:
        raise ValueError("the prompt needs at least one token (BOS)")
    if not greedy:
        check_options(model.vocab_size, temperature, top_k, top_p)
    rng = np.random.default_rng(seed)

    def pick(logp: np.ndarray) -> np.ndarray:
        if greedy:
            return logp.argmax(axis=-1)
        return choose(filter_logprobs(logp, temperature, top_k, top_p), rng)

    results: list[list[int]] = []
    for first in range(0, num, batch_size):
        rows = min(batch_size, num - first)
        results.extend(continue_batch(model, [list(prompt)] * rows, max_new_tokens, pick))
    return results


def continue_batch(
    model: Any,
    contexts: Sequence[Sequence[int]],
    max_new_tokens: int,
    pick: Callable[[np.ndarray], np.ndarray],
) -> list[list[int]]:
    """Continue every context together, ``pick`` choosing the next tokens from the log-probabilities
    (rows, V); a row leaves the batch at EOS (kept as its last token) or after ``max_new_tokens``."""
    outputs: list[list[int]] = [[] for _ in contexts]
    alive = np.arange(len(contexts))  # which outputs the state's rows belong to
    state, logp = model.start([list(c) for c in contexts])
    for step in range(max_new_tokens):
        tokens = pick(logp)
        for row, token in zip(alive, tokens, strict=True):
            outputs[row].append(int(token))
        running = tokens != EOS
        if step == max_new_tokens - 1 or not running.any():
            break
        if not running.all():
            state = model.select(state, np.flatnonzero(running))
            alive, tokens = alive[running], tokens[running]
        state, logp = model.advance(state, tokens)
    return outputs


@dataclass
class Beam:
    tokens: list[int]  # generated tokens, EOS included when finished
    logprob: float  # log q(tokens | prompt)
    finished: bool


def beam_search(
    model: Any,
    prompt: Sequence[int] = (BOS,),
    beam_width: int = 5,
    max_new_tokens: int = 256,
    num: int | None = None,
) -> list[Beam]:
    """The ``num`` (default ``beam_width``) most likely continuations found by beam search, best first.

    Keeps the ``beam_width`` best partial sequences; a sequence that emits EOS is set aside as a
    finished hypothesis. Stops when no running beam can still beat the ``num``-th finished one
    (log-probabilities only fall as a sequence grows), or at ``max_new_tokens``.
    """
    num = beam_width if num is None else num
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, not {beam_width}")
    if not 1 <= num <= beam_width:
        raise ValueError(f"num must be between 1 and beam_width ({beam_width}), not {num}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, not {max_new_tokens}")
    state, logp = model.start([list(prompt)])
    beams: list[tuple[list[int], float]] = [([], 0.0)]
    finished: list[Beam] = []
    for step in range(max_new_tokens):
        scores = np.array([score for _, score in beams])[:, None] + logp  # (beams, V)
        flat = np.argsort(-scores, axis=None, kind="stable")[: 2 * beam_width]
        keep_rows, next_beams, next_tokens = [], [], []
        for index in flat:
            row, token = divmod(int(index), scores.shape[1])
            score = float(scores[row, token])
            if score == -np.inf:
                break
            tokens = beams[row][0] + [token]
            if token == EOS:
                finished.append(Beam(tokens, score, True))
            else:
                keep_rows.append(row)
                next_beams.append((tokens, score))
                next_tokens.append(token)
            if len(next_beams) == beam_width:
                break
        finished.sort(key=lambda b: -b.logprob)
        best_running = next_beams[0][1] if next_beams else -np.inf
        if not next_beams or (len(finished) >= num and finished[num - 1].logprob >= best_running):
            break
        if step == max_new_tokens - 1:
            finished.extend(Beam(tokens, score, False) for tokens, score in next_beams)
            break
        state = model.select(state, np.array(keep_rows))
        state, logp = model.advance(state, np.array(next_tokens))
        beams = next_beams
    finished.sort(key=lambda b: -b.logprob)
    return finished[:num]
