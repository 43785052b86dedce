"""Our Elman and GRU cells against torch.nn.RNN / torch.nn.GRU, and generation that carries the state."""

import numpy as np
import pytest
import torch

from simplellm.lm.models import build_model
from simplellm.lm.models.rnn import GRUCell, GRUThroughTime, RecurrentCell
from simplellm.lm.sampling import beam_search, sample
from simplellm.lm.tokenizers import BOS


def twin(family, num_layers):
    """Our model in float64 with random weights, and a torch module holding the same recurrent weights."""
    torch.manual_seed(0)
    model = build_model(family, vocab_size=10, embedding_dim=5, hidden=7, num_layers=num_layers).double()
    reference = model.to_torch()
    assert isinstance(reference, torch.nn.GRU if family == "gru" else torch.nn.RNN)
    return model, reference


@pytest.mark.parametrize("family", ["gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_our_cells_equal_torch_outputs_hidden_states_and_gradients(family, num_layers):
    model, reference = twin(family, num_layers)
    idx = torch.randint(0, 10, (3, 9), generator=torch.Generator().manual_seed(1))
    h0 = torch.randn(num_layers, 3, 7, dtype=torch.float64)
    ours = model.layer_outputs(idx, h0)
    x = model.embedding(idx)
    theirs, h_n = reference(x, h0)
    torch.testing.assert_close(ours[-1], theirs, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.stack([out[:, -1] for out in ours]), h_n, rtol=0, atol=1e-12)
    assert theirs.abs().max() > 0.1  # a real comparison, not one of two vanishing signals

    # the same scalar of both outputs: gradients of every weight and of the inputs must agree
    weights = torch.randn(3, 9, 7, dtype=torch.float64)
    (ours[-1] * weights).sum().backward()
    x2 = x.detach().requires_grad_()
    (reference(x2, h0)[0] * weights).sum().backward()
    for layer, cell in enumerate(model.cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            torch.testing.assert_close(
                getattr(cell, name).grad, getattr(reference, f"{name}_l{layer}").grad, rtol=0, atol=1e-12
            )
    # input gradients: our embedding's gradient is the scatter of dL/dx over the token ids
    expected = torch.zeros_like(model.embedding.weight).index_add_(0, idx.reshape(-1), x2.grad.reshape(-1, 5))
    torch.testing.assert_close(model.embedding.weight.grad, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("steps", [1, 2, 9])
def test_gru_backprop_through_time_written_out_equals_autograd_through_each_step(steps):
    torch.manual_seed(3)
    cell = GRUCell(5, 7).double()
    with torch.no_grad():  # gates away from 1/2, so that a wrong sigmoid' or tanh' shows
        for p in cell.parameters():
            p.mul_(4)
    gi0 = torch.randn(3, steps, 21, dtype=torch.float64)
    h00 = torch.randn(3, 7, dtype=torch.float64)
    upstream = torch.randn(3, steps, 7, dtype=torch.float64)
    results = []
    for run in (GRUCell.sequence, RecurrentCell.sequence):  # written out; autograd through step()
        gi, h0 = gi0.clone().requires_grad_(), h00.clone().requires_grad_()
        cell.zero_grad()
        hs = run(cell, gi, h0)
        (hs * upstream).sum().backward()
        results.append([hs, gi.grad, h0.grad, cell.weight_hh.grad, cell.bias_hh.grad])
    for ours, reference in zip(*results, strict=True):
        torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)
    assert results[1][3].abs().max() > 0.1  # gradients that matter, not two vanishing ones


def test_gru_backprop_through_time_passes_finite_differences():
    torch.manual_seed(4)
    gi = torch.randn(2, 5, 9, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(GRUThroughTime.apply, (gi, h0, weight, bias), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("family", ["gru", "rnn"])
def test_weights_convert_both_ways(family):
    model, reference = twin(family, 2)
    torch.manual_seed(5)
    other = build_model(family, vocab_size=10, embedding_dim=5, hidden=7, num_layers=2).double()
    idx = torch.randint(0, 10, (2, 6))
    assert not torch.allclose(other.layer_outputs(idx)[-1], model.layer_outputs(idx)[-1])
    other.embedding.load_state_dict(model.embedding.state_dict())
    other.load_from_torch(reference)
    torch.testing.assert_close(other.layer_outputs(idx)[-1], model.layer_outputs(idx)[-1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="shape"):
        build_model(family, vocab_size=10, embedding_dim=5, hidden=8, num_layers=2).load_from_torch(reference)
    with pytest.raises(ValueError, match="expected"):
        model.load_from_torch(torch.nn.LSTM(5, 7, num_layers=2, batch_first=True))


@pytest.mark.parametrize("family", ["gru", "rnn"])
def test_carrying_the_hidden_state_generates_exactly_what_re_reading_generates(family, rereading):
    torch.manual_seed(0)
    model = build_model(family, vocab_size=10, hidden=16, num_layers=2).double()
    slow = rereading(model)
    for options in [{"seed": 1}, {"seed": 2, "temperature": 2.0, "top_k": 5}, {"greedy": True}]:
        out = sample(model, 20, max_new_tokens=15, batch_size=7, **options)
        assert out == sample(slow, 20, max_new_tokens=15, batch_size=7, **options)
        if not options.get("greedy"):  # samples finished at different steps: select() dropped rows
            assert len({len(s) for s in out}) > 3
    ours = beam_search(model, beam_width=4, max_new_tokens=10, prompt=[BOS, 4, 5])
    theirs = beam_search(slow, beam_width=4, max_new_tokens=10, prompt=[BOS, 4, 5])
    assert [b.tokens for b in ours] == [b.tokens for b in theirs]
    np.testing.assert_allclose([b.logprob for b in ours], [b.logprob for b in theirs], rtol=1e-12)


def test_the_carried_state_gives_the_same_distributions_as_the_full_forward():
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=10, hidden=16, num_layers=2).double()
    contexts = [[BOS, 4], [BOS, 5, 6, 7], [BOS]]  # different lengths: start() must read each to its end
    state, logp = model.start(contexts)
    np.testing.assert_allclose(logp, model.next_token_logprobs(contexts), rtol=1e-12)
    state = model.select(state, np.array([1, 1, 0]))  # repeat and reorder rows, as beam search does
    state, logp = model.advance(state, np.array([8, 9, 4]))
    expected = model.next_token_logprobs([[BOS, 5, 6, 7, 8], [BOS, 5, 6, 7, 9], [BOS, 4, 4]])
    np.testing.assert_allclose(logp, expected, rtol=1e-12)
