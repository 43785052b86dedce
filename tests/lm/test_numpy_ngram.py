"""The NumPy n-gram network: its hand-written gradients against torch autograd (float64) and finite
differences, its BOS-padded contexts, the averaging ablation that loses word order, SGD with a step
schedule, and the top-k display."""

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simplellm.lm.floors import conditional_entropy
from simplellm.lm.models.base import LanguageModel
from simplellm.lm.models.numpy_ngram import NumpyNGram, NumpyNGramConfig, text_bar, top_predictions
from simplellm.lm.numpy_train import blas_threads
from simplellm.lm.tokenizers import BOS, EOS, WordTokenizer

V = 12


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One OpenBLAS thread, as torch gets one: small products on two busy cores run far faster so."""
    before = blas_threads(1)
    yield
    blas_threads(before)


def model(position_specific=True, **options):
    config = NumpyNGramConfig(vocab_size=V, position_specific=position_specific, **options)
    net = NumpyNGram(config)
    # non-zero biases and a larger output layer: a gradient that ignored them would show
    rng = np.random.default_rng(7)
    for name in ("b1", "W2", "b2"):
        net.params[name][...] = rng.normal(0.0, 0.5, net.params[name].shape)
    return net


def batch(k=3, n=20, seed=0):
    rng = np.random.default_rng(seed)
    contexts = rng.integers(0, V, size=(n, k))
    contexts[0] = [5, 5, 5]  # one word three times in one context
    contexts[1] = [BOS, BOS, 5]
    targets = rng.integers(0, V, size=n)
    return contexts, targets


def torch_loss(net, contexts, targets):
    """The same network in torch autograd: the reference for every gradient."""
    p = {name: torch.tensor(value, requires_grad=True) for name, value in net.params.items()}
    idx = torch.as_tensor(contexts)
    B, k = idx.shape
    if net.config.position_specific:
        x = p["emb"][torch.arange(k), idx].reshape(B, -1)
    else:
        x = p["emb"][0][idx].mean(dim=1)
    h = torch.tanh(x @ p["W1"] + p["b1"])
    loss = F.cross_entropy(h @ p["W2"] + p["b2"], torch.as_tensor(targets))
    loss.backward()
    return loss.item(), {name: t.grad.numpy() for name, t in p.items()}


def relative_error(ours, reference):
    return np.abs(ours - reference).max() / np.abs(reference).max()


@pytest.mark.parametrize("position_specific", [True, False])
def test_every_gradient_equals_torch_autograd_in_float64(position_specific):
    net = model(position_specific)
    contexts, targets = batch()
    net.zero_grad()
    loss, n = net.loss_and_backward((contexts, targets))
    torch_value, torch_grads = torch_loss(net, contexts, targets)
    assert n == len(targets) and loss == pytest.approx(torch_value, rel=1e-14)
    assert set(net.grads) == set(torch_grads) == {"emb", "W1", "b1", "W2", "b2"}
    for name, reference in torch_grads.items():
        assert relative_error(net.grads[name], reference) < 1e-12, name
    # the repeated word received the sum of its gradients, slot by slot
    if position_specific:
        assert np.abs(net.grads["emb"][:, 5]).min(axis=-1).min() > 0


def test_a_repeated_word_needs_add_at_an_indexed_assignment_would_keep_one_gradient():
    # the bug this test guards against: g[slots, contexts] += dx keeps one of several updates to a row
    net = model(position_specific=False)
    contexts, targets = batch()
    net.zero_grad()
    net.loss_and_backward((contexts, targets))
    _, reference = torch_loss(net, contexts, targets)
    lossy = np.zeros_like(net.grads["emb"][0])
    lossy[contexts] += 1  # how many gradients a row gets with indexed assignment: at most 1 per call
    counts = np.zeros_like(lossy)
    np.add.at(counts, contexts, 1)
    assert (counts > lossy).any()  # the batch does repeat words, so the two would differ
    assert relative_error(net.grads["emb"], reference["emb"]) < 1e-12


@pytest.mark.parametrize("position_specific", [True, False])
def test_gradients_agree_with_central_finite_differences(position_specific):
    net = model(position_specific, embedding_dim=4, hidden=6)
    contexts, targets = batch(n=6)
    net.zero_grad()
    net.loss_and_backward((contexts, targets))
    rng = np.random.default_rng(3)
    for name, p in net.params.items():
        for _ in range(4):
            i = tuple(rng.integers(s) for s in p.shape)
            if name == "emb":  # pick a row that is used, or both sides are 0
                i = (0 if not position_specific else 2, contexts[2, -1], i[2])
            saved, h = p[i], 1e-6
            p[i] = saved + h
            up = net.loss_fn(net.forward(contexts), targets)
            p[i] = saved - h
            down = net.loss_fn(net.forward(contexts), targets)
            p[i] = saved
            numeric = (up - down) / (2 * h)
            assert net.grads[name][i] == pytest.approx(numeric, rel=1e-6, abs=1e-9), (name, i)


def test_examples_are_every_word_after_bos_with_a_bos_padded_context():
    net = NumpyNGram(NumpyNGramConfig(vocab_size=V, context=3))
    X, Y = net.examples([[BOS, 5, 6, EOS], [BOS, EOS]])
    np.testing.assert_array_equal(X, [[BOS, BOS, BOS], [BOS, BOS, 5], [BOS, 5, 6], [BOS, BOS, BOS]])
    np.testing.assert_array_equal(Y, [5, 6, EOS, EOS])
    # k is a real parameter: k = 1 is a bigram network, k = 5 reads five words back
    X1, _ = NumpyNGram(NumpyNGramConfig(vocab_size=V, context=1)).examples([[BOS, 5, 6, EOS]])
    np.testing.assert_array_equal(X1, [[BOS], [5], [6]])
    X5, _ = NumpyNGram(NumpyNGramConfig(vocab_size=V, context=5)).examples([[BOS, 5, 6, 7, 8, 9, EOS]])
    np.testing.assert_array_equal(X5[-1], [5, 6, 7, 8, 9])


def test_next_token_and_sequence_scores_are_one_distribution_read_two_ways():
    net = model(context=2)
    logp = net.next_token_logprobs([[BOS], [BOS, 5], [BOS, 4, 5, 6]])
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-12)
    # only the last k tokens matter; a short context reads BOS in the empty slots
    # (to rounding: a matrix product over 3 rows and over 1 may sum in another order)
    np.testing.assert_allclose(logp[2], net.next_token_logprobs([[5, 6]])[0], rtol=1e-14)
    np.testing.assert_allclose(logp[1], net.next_token_logprobs([[BOS, BOS, 5]])[0], rtol=1e-14)
    seqs = [[BOS, 4, 5, 6, EOS], [BOS, EOS], [BOS, 7, 7, 7, 7, 7, 7, EOS]]
    np.testing.assert_allclose(
        net.sequence_logprobs(seqs), LanguageModel.sequence_logprobs(net, seqs), rtol=1e-12
    )
    with pytest.raises(ValueError, match="at least one token"):
        net.next_token_logprobs([[]])


def test_averaging_the_embeddings_loses_word_order():
    averaged, ordered = model(position_specific=False), model(position_specific=True)
    contexts = [[BOS, 4, 5, 6], [BOS, 6, 5, 4], [BOS, 5, 6, 4]]  # permutations of one another
    same = averaged.next_token_logprobs(contexts)
    # identical up to the rounding of summing three vectors in another order
    np.testing.assert_allclose(same[1:], np.broadcast_to(same[0], (2, V)), rtol=0, atol=1e-13)
    differ = ordered.next_token_logprobs(contexts)
    assert np.abs(differ[0] - differ[1]).max() > 0.05
    # the averaged model has one table, a k-th of the embedding parameters
    assert averaged.params["emb"].shape == (1, V, 16) and ordered.params["emb"].shape == (3, V, 16)


def test_after_training_only_the_position_aware_model_tells_two_orders_apart():
    # "4 5 -> 8" and "5 4 -> 9": the same words, the order decides the next one
    corpus = [[BOS, 4, 5, 8, EOS], [BOS, 5, 4, 9, EOS]] * 4
    options = dict(steps=300, batch_size=8, lr=0.5, min_lr=0.1, seed=0)
    results = {}
    for position_specific in (True, False):
        net = NumpyNGram(NumpyNGramConfig(vocab_size=V, context=2, position_specific=position_specific))
        net.fit(corpus, **options)
        p = np.exp(net.next_token_logprobs([[BOS, 4, 5], [BOS, 5, 4]]))
        results[position_specific] = p[:, 8]
        # each is held above the floor of what it can see: the ordered context, or the words' multiset
        floor = conditional_entropy(corpus, 2, ordered=position_specific)
        assert floor - 1e-9 < net.cross_entropy(corpus) < floor + 0.1
    assert conditional_entropy(corpus, 2, ordered=False) > conditional_entropy(corpus, 2) + 0.1
    assert results[True][0] > 0.9 and results[True][1] < 0.1
    assert results[False][0] == pytest.approx(results[False][1], abs=1e-12)
    assert 0.3 < results[False][0] < 0.7  # the best it can do: half and half


@pytest.mark.parametrize("batch_size", [1, 16])
def test_sgd_on_one_example_or_a_mini_batch_lowers_the_loss_towards_the_floor(batch_size):
    rng = np.random.default_rng(0)
    corpus = [[BOS, *rng.integers(4, V, size=rng.integers(2, 6)).tolist(), EOS] for _ in range(30)]
    net = NumpyNGram(NumpyNGramConfig(vocab_size=V, context=2, hidden=32))
    before = net.cross_entropy(corpus)
    assert before == pytest.approx(math.log(V), abs=0.1)  # small output weights: near uniform at first
    history = net.fit(corpus, validation=corpus[:5], steps=3000, batch_size=batch_size, eval_every=1000)
    after = net.cross_entropy(corpus)
    floor = conditional_entropy(corpus, 2)
    assert history.lr[0] == 0.1 and history.lr[-1] == 0.02 and len(history.steps) == 3000
    assert history.tokens[-1] == 3000 * batch_size  # one step: batch_size (context, word) examples
    assert floor <= after < before - 1.0
    assert after - floor < 0.2 * (before - floor)


def test_weights_survive_a_weights_only_round_trip():
    net = model()
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    rebuilt = NumpyNGram(NumpyNGramConfig(vocab_size=V, init_seed=99))
    rebuilt.load_state_dict(torch.load(buffer, weights_only=True))
    contexts = [[BOS, 4, 5], [BOS]]
    np.testing.assert_array_equal(rebuilt.next_token_logprobs(contexts), net.next_token_logprobs(contexts))
    with pytest.raises(ValueError, match="do not fit"):
        rebuilt.load_state_dict({"emb": torch.zeros(3, V, 16)})
    with pytest.raises(ValueError, match="expected"):
        NumpyNGram(NumpyNGramConfig(vocab_size=V, context=2)).load_state_dict(net.state_dict())
    assert net.num_parameters() == 3 * V * 16 + 48 * 64 + 64 + 64 * V + V


def test_bars_are_drawn_to_scale_in_eighths_of_a_cell():
    assert text_bar(1.0, 10) == "█" * 10
    assert text_bar(0.5, 10) == "█████"
    assert text_bar(0.0625, 10) == "▋"  # 0.625 of a cell: five eighths
    assert text_bar(0.0, 10) == "" and text_bar(0.28, 4) == "█▏"


def test_the_display_lists_the_likeliest_next_words_with_their_probabilities():
    tokenizer = WordTokenizer(["the", "cat", "dog", "sleeps", "runs", "."])
    net = NumpyNGram(NumpyNGramConfig(vocab_size=tokenizer.vocab_size, context=2))
    # a model whose output ignores its input: known probabilities for every context
    wanted = np.full(tokenizer.vocab_size, 1e-9)
    wanted[tokenizer.stoi["cat"]], wanted[tokenizer.stoi["dog"]], wanted[tokenizer.stoi["runs"]] = (
        0.6,
        0.3,
        0.1,
    )
    net.params["W2"][...] = 0.0
    net.params["b2"][...] = np.log(wanted / wanted.sum())
    text = top_predictions(net, tokenizer, ["", "the"], top=2, width=10)
    assert text.splitlines() == [
        "(start of a sentence) ...",
        "  cat  0.600  ██████",
        "  dog  0.300  ███",
        "the ...",
        "  cat  0.600  ██████",
        "  dog  0.300  ███",
    ]


def test_generation_goes_through_the_shared_sampler():
    corpus = [[BOS, 4, 5, 6, 7, EOS]] * 4
    net = NumpyNGram(NumpyNGramConfig(vocab_size=V, context=3))
    net.fit(corpus, steps=400, batch_size=8, lr=0.5, min_lr=0.1)
    assert net.generate(1, greedy=True) == [[4, 5, 6, 7, EOS]]
    samples = net.generate(20, seed=1, temperature=1.0)
    assert sum(s == [4, 5, 6, 7, EOS] for s in samples) >= 18
    assert net.generate(20, seed=1) == samples


def test_on_the_shipped_word_corpus_every_run_stays_above_its_floor():
    from simplellm.lm import numpy_demo

    rows, shown, data = numpy_demo.ngram_rows([(300, True), (300, False)])
    assert shown is not None and rows[0]["floor"] < rows[1]["floor"]  # losing the order costs
    for row in rows:
        assert row["floor"] < row["train_loss"] < math.log(data.tokenizer.vocab_size)
    table = numpy_demo.markdown(rows)
    assert table.count("\n") == 3 and "as a multiset" in table
    assert top_predictions(shown, data.tokenizer, ["the baker"]).startswith("the baker ...")
