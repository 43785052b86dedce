"""Pictures: PCA against the SVD identities, embedding tables, the PNGs, and the draw command."""

import struct

import numpy as np
import pytest
import torch

from simplellm.lm import draw
from simplellm.lm import train as train_cli
from simplellm.lm.checkpoint import load_model, save_model
from simplellm.lm.models import build_model
from simplellm.lm.pictures import attention_grid, embedding_map, embedding_table, pca, token_kind
from simplellm.lm.tokenizers import CharTokenizer, WordTokenizer

STICKY = CharTokenizer("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# ------------------------------------------------------------------ PCA
def test_pca_is_the_centred_data_on_its_top_singular_directions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)) * [5.0, 3.0, 1.0, 0.5, 0.2, 0.1] + 7.0
    coords, explained = pca(x, 2)
    u, s, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    # (x - mean) V = U S, column by column up to the sign PCA leaves open
    for k in range(2):
        assert np.allclose(np.abs(coords[:, k]), np.abs(u[:, k] * s[k]))
    assert np.allclose(explained, s[:2] ** 2 / (s**2).sum())
    assert np.allclose(coords.mean(axis=0), 0.0)  # centred
    assert abs(coords[:, 0] @ coords[:, 1]) < 1e-9  # uncorrelated components
    assert np.var(coords[:, 0]) >= np.var(coords[:, 1])  # ordered by variance


def test_pca_of_two_dimensional_data_keeps_every_distance_and_has_a_fixed_sign():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(30, 2)) @ rng.normal(size=(2, 8)) + rng.normal(size=8)  # rank 2 after centring
    coords, explained = pca(plane, 2)
    assert explained.sum() == pytest.approx(1.0)

    def distances(points):
        return np.linalg.norm(points[:, None] - points[None], axis=-1)

    assert np.allclose(distances(coords), distances(plane))
    # the sign is a function of the data: the largest coordinate along each component is positive
    assert (coords[np.abs(coords).argmax(axis=0), [0, 1]] > 0).all()
    assert np.allclose(pca(-plane, 2)[0], coords)
    with pytest.raises(ValueError, match="pca needs"):
        pca(np.ones((1, 3)))


# ------------------------------------------------------------------ embedding tables and token kinds
def test_every_model_with_an_embedding_table_gives_it_and_others_say_why_not():
    torch.manual_seed(0)
    gpt = build_model("transformer", vocab_size=30, block_size=30, n_layer=1, n_embd=8, n_head=2)
    assert np.array_equal(embedding_table(gpt), gpt.tok_emb.weight.detach().double().numpy())  # not pos_emb
    for family in ("mlp", "rnn", "gru"):
        model = build_model(family, vocab_size=30)
        assert embedding_table(model).shape == (30, model.config.embedding_dim)
    numpy_gpt = build_model("numpy-transformer", vocab_size=30)
    assert np.array_equal(embedding_table(numpy_gpt), numpy_gpt.tok_emb.params["W"])
    for family in ("bigram", "ngram"):
        with pytest.raises(ValueError, match=f"a {family} model has no token embedding table"):
            embedding_table(build_model(family, vocab_size=30))


def test_tokens_are_sorted_into_kinds():
    chars = CharTokenizer("aZ7 .é")
    kinds = {chars.itos[t]: token_kind(chars, t) for t in range(chars.vocab_size)}
    assert kinds == {
        "<pad>": "special",
        "<unk>": "special",
        "<bos>": "special",
        "<eos>": "special",
        " ": "space",
        ".": "punctuation",
        "7": "digit",
        "Z": "upper",
        "a": "lower",
        "é": "lower",
    }
    words = WordTokenizer.from_texts(["The cat, the dog; 42 cats and she would walk into it"])
    kind = {words.itos[t]: token_kind(words, t) for t in range(4, words.vocab_size)}
    assert kind == {
        ",": "punctuation",
        ";": "punctuation",
        "42": "number",
        "the": "determiner",
        "she": "pronoun",
        "it": "pronoun",
        "into": "preposition",
        "and": "conjunction",
        "would": "auxiliary verb",
        "cat": "word",
        "cats": "word",
        "dog": "word",
        "walk": "word",
    }


# ------------------------------------------------------------------ the pictures
def test_the_attention_grid_has_a_map_per_layer_and_head(tmp_path):
    torch.manual_seed(0)
    wide = build_model(
        "transformer", vocab_size=STICKY.vocab_size, block_size=16, n_layer=1, n_head=4, n_embd=16
    )
    tall = build_model(
        "transformer", vocab_size=STICKY.vocab_size, block_size=16, n_layer=3, n_head=1, n_embd=16
    )
    w, h = png_size(attention_grid(wide, STICKY, "abcAB12", tmp_path / "wide.png"))
    assert w > 2 * h  # four maps side by side
    w, h = png_size(attention_grid(tall, STICKY, "abcAB12", tmp_path / "tall.png"))
    assert h > 1.5 * w  # three maps stacked (and a colour bar beside them)
    long = "abc" * 20  # longer than the window: the last 16 tokens are drawn
    assert attention_grid(wide, STICKY, long, tmp_path / "long.png").exists()
    with pytest.raises(ValueError, match="attention maps need a transformer"):
        attention_grid(build_model("gru", vocab_size=STICKY.vocab_size), STICKY, "ab", tmp_path / "gru.png")
    assert not (tmp_path / "gru.png").exists()


def test_the_embedding_map_is_drawn_for_chars_and_words(tmp_path):
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=STICKY.vocab_size, block_size=8, n_layer=1, n_embd=16)
    w, h = png_size(embedding_map(model, STICKY, tmp_path / "chars.png"))
    assert (w, h) == (990, 825)  # 9 x 7.5 inches at 110 dots per inch
    words = WordTokenizer.from_texts([" ".join(f"w{i}" for i in range(300))])
    model = build_model("gru", vocab_size=words.vocab_size, embedding_dim=8, hidden=8)
    assert png_size(embedding_map(model, words, tmp_path / "words.png", labels=40)) == (990, 825)
    with pytest.raises(ValueError, match="rows for"):
        embedding_map(model, STICKY, tmp_path / "wrong.png")


def class_separation(table: np.ndarray) -> float:
    """Mean distance between the centroids of the sticky classes over the mean distance of a character
    to its own class's centroid: large when lower, upper and digits form three tight clusters."""
    groups = [table[4:14], table[14:40], table[40:66]]  # digits, upper, lower (after the 4 special tokens)
    centroids = [g.mean(axis=0) for g in groups]
    spread = np.mean([np.linalg.norm(g - c, axis=1).mean() for g, c in zip(groups, centroids, strict=True)])
    between = np.mean([np.linalg.norm(a - b) for i, a in enumerate(centroids) for b in centroids[i + 1 :]])
    return float(between / spread)


@pytest.mark.slow
def test_training_on_sticky_gathers_each_class_of_characters_and_draw_draws_it(tmp_path, capsys):
    """Sticky's characters are uniform within their class, so a trained model needs one vector per class:
    the embeddings gather into three clusters that were not there at initialisation."""
    out = tmp_path / "sticky"
    argv = ["--grammar", "sticky", "--n", "3", "--model", "transformer", "--n-layer", "1", "--n-head", "2"]
    argv += ["--n-embd", "16", "--steps", "150", "--batch-size", "32", "--eval-every", "150", "--quiet"]
    assert train_cli.main([*argv, "--out", str(out)]) == 0
    model, tokenizer, _ = load_model(out / "model.pt")
    assert tokenizer == STICKY
    torch.manual_seed(0)  # the same initialisation the run started from
    untrained = build_model("transformer", **{**model.config.__dict__})
    before, after = class_separation(embedding_table(untrained)), class_separation(embedding_table(model))
    assert before < 0.6 and after > 2.0, (before, after)
    capsys.readouterr()  # the training report

    assert draw.main(["embeddings", "--checkpoint", str(out / "model.pt")]) == 0
    assert draw.main(["attention", "--checkpoint", str(out / "model.pt"), "--prompt", "abcdEFGH12"]) == 0
    assert capsys.readouterr().out.split() == [
        "wrote",
        str(out / "embeddings.png"),
        "wrote",
        str(out / "attention.png"),
    ]
    w, h = png_size(out / "attention.png")
    assert w > 1.5 * h  # one layer, two heads (and a colour bar)


def test_draw_says_what_it_cannot_draw(tmp_path, capsys):
    path = save_model(tmp_path / "bigram.pt", build_model("bigram", vocab_size=STICKY.vocab_size), STICKY)
    assert draw.main(["embeddings", "--checkpoint", str(path)]) == 2
    assert "a bigram model has no token embedding table" in capsys.readouterr().err
    assert draw.main(["attention", "--checkpoint", str(path), "--prompt", "ab"]) == 2
    assert "attention maps need a transformer" in capsys.readouterr().err
    assert draw.main(["embeddings", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        draw.main(["attention", "--checkpoint", str(path)])  # a prompt is required
    assert "--prompt" in capsys.readouterr().err
    out = tmp_path / "pictures" / "gru.png"
    path = save_model(tmp_path / "gru.pt", build_model("gru", vocab_size=STICKY.vocab_size), STICKY)
    assert draw.main(["embeddings", "--checkpoint", str(path), "--out", str(out)]) == 0 and out.exists()
