"""The shared sampler on a model whose distributions are known exactly."""

import itertools

import numpy as np
import pytest

from simplellm.lm.models.base import LanguageModel
from simplellm.lm.sampling import beam_search, filter_logprobs, sample
from simplellm.lm.tokenizers import BOS, EOS


class TableModel(LanguageModel):
    """A fixed bigram: the next token's distribution depends on the last token only."""

    family = "table"

    def __init__(self, table: np.ndarray, context_window: int | None = None):
        self.table = np.log(table / table.sum(axis=1, keepdims=True))
        self.vocab_size = table.shape[0]
        self.context_window = context_window
        self.contexts_seen: list[int] = []

    def next_token_logprobs(self, contexts):
        self.contexts_seen.extend(len(c) for c in contexts)
        return np.stack([self.table[self.crop(c)[-1]] for c in contexts])


def chain_model(p_stop=0.2):
    # tokens 4, 5, 6 are "letters"; BOS -> letters; each letter -> letters or EOS
    table = np.full((7, 7), 1e-300)
    table[BOS, 4:] = [0.5, 0.3, 0.2]
    for t in (4, 5, 6):
        table[t, 4:] = np.array([0.5, 0.3, 0.2]) * (1 - p_stop)
        table[t, EOS] = p_stop
    table[EOS, EOS] = 1.0
    table[0, EOS] = table[1, EOS] = 1.0
    return TableModel(table)


def test_bad_options_raise_value_error_naming_them():
    model = chain_model()
    for kwargs, word in [
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 8}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ]:
        with pytest.raises(ValueError, match=word):
            sample(model, 3, **kwargs)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(model, beam_width=0)


def test_samples_stop_at_eos_and_follow_the_distribution():
    model = chain_model(p_stop=0.25)
    out = sample(model, 4000, seed=1, batch_size=500)
    assert all(s[-1] == EOS and EOS not in s[:-1] for s in out)
    lengths = np.array([len(s) - 1 for s in out])  # letters before EOS: geometric with mean 1/0.25
    assert lengths.mean() == pytest.approx(4.0, abs=0.15)
    first = np.bincount([s[0] for s in out], minlength=7)[4:] / len(out)
    assert first == pytest.approx([0.5, 0.3, 0.2], abs=0.03)


def test_same_seed_same_samples_and_different_seed_different_samples():
    model = chain_model()
    assert sample(model, 50, seed=3) == sample(model, 50, seed=3)
    assert sample(model, 50, seed=3) != sample(model, 50, seed=4)


def test_greedy_takes_the_argmax_every_step():
    model = chain_model(p_stop=0.9)
    assert sample(model, 2, greedy=True) == [[4, EOS], [4, EOS]]
    model = chain_model(p_stop=0.05)
    assert sample(model, 1, greedy=True, max_new_tokens=6) == [[4] * 6]  # never stops: cut at max


def test_temperature_reshapes_the_distribution():
    logp = np.log(np.array([[0.6, 0.3, 0.1]]))
    for t in (0.5, 2.0):
        expected = np.array([0.6, 0.3, 0.1]) ** (1 / t)
        assert filter_logprobs(logp, temperature=t)[0] == pytest.approx(expected / expected.sum())


def test_top_k_and_top_p_keep_the_right_tokens():
    logp = np.log(np.array([[0.05, 0.4, 0.1, 0.3, 0.15]]))
    assert filter_logprobs(logp, top_k=2)[0] == pytest.approx([0, 0.4 / 0.7, 0, 0.3 / 0.7, 0])
    assert filter_logprobs(logp, top_p=0.7)[0] == pytest.approx([0, 0.4 / 0.7, 0, 0.3 / 0.7, 0])
    # 0.4 + 0.3 = 0.7 < 0.71, so the third token (0.15) joins
    assert np.count_nonzero(filter_logprobs(logp, top_p=0.71)[0]) == 3
    assert np.count_nonzero(filter_logprobs(logp, top_p=0.01)[0]) == 1
    assert filter_logprobs(logp, top_p=1.0)[0] == pytest.approx(np.exp(logp[0]))


def test_sampled_tokens_respect_top_k():
    model = chain_model()
    out = sample(model, 300, top_k=1, seed=0, max_new_tokens=5)
    assert all(set(s) == {4} for s in out)


def test_long_prompts_are_cropped_to_the_window_not_crashing():
    table = np.ones((7, 7))
    model = TableModel(table, context_window=3)
    out = sample(model, 4, prompt=[BOS] + [4] * 50, max_new_tokens=10, seed=0)
    assert len(out) == 4
    assert max(model.contexts_seen) > 3  # contexts grew, and crop() handled them


def enumerate_best(model, max_len):
    best = {}
    for n in range(0, max_len):
        for letters in itertools.product([4, 5, 6], repeat=n):
            seq = [BOS, *letters, EOS]
            best[tuple(seq[1:])] = model.sequence_logprobs([seq])[0]
    return sorted(best.items(), key=lambda kv: -kv[1])


def test_a_wide_beam_finds_the_most_likely_sequences():
    model = chain_model(p_stop=0.3)
    exact = enumerate_best(model, 6)
    beams = beam_search(model, beam_width=16, max_new_tokens=10, num=4)
    assert [tuple(b.tokens) for b in beams] == [seq for seq, _ in exact[:4]]
    assert [b.logprob for b in beams] == pytest.approx([lp for _, lp in exact[:4]])
    assert all(b.finished for b in beams)


def test_a_narrow_beam_is_approximate_but_its_scores_are_exact():
    # Width 4 prunes (6, EOS): it ranks 9th among the 2 * 4 candidates of step 2. Beam search is a
    # heuristic; what it returns must still be sorted and scored exactly.
    model = chain_model(p_stop=0.3)
    beams = beam_search(model, beam_width=4, max_new_tokens=10)
    assert tuple(beams[0].tokens) == enumerate_best(model, 6)[0][0]
    scores = [b.logprob for b in beams]
    assert scores == sorted(scores, reverse=True)
    exact = model.sequence_logprobs([[BOS, *b.tokens] for b in beams])
    assert scores == pytest.approx(list(exact))


def test_beam_width_one_is_greedy():
    model = chain_model(p_stop=0.45)
    (beam,) = beam_search(model, beam_width=1)
    assert beam.tokens == sample(model, 1, greedy=True)[0]


class _FixedDraw:
    """A generator stand-in whose uniform draws are all one value."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self, shape):
        return np.full(shape, self.u)


def test_choose_never_picks_a_token_of_probability_zero_at_either_end():
    from simplellm.lm.sampling import choose

    # a total a rounding error below 1 and a draw just under 1: the last *possible* token, not a filtered one
    probs = np.array([[0.3, 0.7 - 1e-15, 0.0, 0.0]])
    assert choose(probs, _FixedDraw(np.nextafter(1.0, 0.0))).tolist() == [1]
    # a draw of exactly 0 before a zero: the first possible token
    assert choose(np.array([[0.0, 0.0, 1.0]]), _FixedDraw(0.0)).tolist() == [2]
    # and in between, inverse transform sampling as before
    assert choose(np.array([[0.25, 0.25, 0.5]] * 3), _FixedDraw(0.6)).tolist() == [2, 2, 2]
    assert choose(np.array([[0.25, 0.25, 0.5]]), _FixedDraw(0.3)).tolist() == [1]
