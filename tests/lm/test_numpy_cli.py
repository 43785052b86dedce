"""Both NumPy models train and sample through the lm command line, on a language and on a text, like every
other model: the same options, the same checkpoint format, the loss floor beside the training loss."""

import pytest

from simplellm.data import grammar
from simplellm.lm import checkpoint as ckpt
from simplellm.lm import sample, train
from simplellm.lm.models.numpy_ngram import NumpyNGram
from simplellm.lm.models.numpy_transformer import NumpyTransformer


@pytest.mark.parametrize(
    ("family", "options"),
    [
        ("numpy-ngram", ["--context", "2", "--hidden", "16"]),
        ("numpy-transformer", ["--n-embd", "16", "--n-layer", "1"]),
    ],
)
def test_training_on_a_language_then_sampling_from_the_checkpoint(tmp_path, capsys, family, options):
    out = tmp_path / family
    code = train.main(
        [
            "--grammar",
            "sticky",
            "--n",
            "2",
            "--model",
            family,
            *options,
            "--steps",
            "30",
            "--batch-size",
            "8",
            "--eval-every",
            "15",
            "--eval-sequences",
            "16",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    report = capsys.readouterr().out
    assert code == 0 and f"model       {family}" in report and "entropy " in report
    saved = ckpt.read_checkpoint(out / "model.pt")  # weights only
    assert saved["family"] == family and saved["train_config"]["steps"] == 30
    model, tokenizer, _ = ckpt.load_model(out / "model.pt")
    assert isinstance(model, {"numpy-ngram": NumpyNGram, "numpy-transformer": NumpyTransformer}[family])
    assert sample.main(["--checkpoint", str(out / "model.pt"), "--num", "4", "--max-new-tokens", "30"]) == 0
    lines = capsys.readouterr().out.splitlines()  # 30 steps: an untrained model may still say <unk>
    assert len(lines) == 4 and all(
        set(line.replace("<unk>", "")) <= set(grammar("sticky", n=2).alphabet) for line in lines
    )
    assert (
        sample.main(
            ["--checkpoint", str(out / "model.pt"), "--num", "1", "--greedy", "--max-new-tokens", "5"]
        )
        == 0
    )


def test_training_on_a_text_prints_the_floor_beside_the_training_loss(tmp_path, capsys):
    text = tmp_path / "tiny.txt"
    text.write_text("the cat sat on the mat .\nthe dog sat on the log .\na cat ran .\n" * 4)
    out = tmp_path / "run"
    code = train.main(
        [
            "--text",
            str(text),
            "--tokenizer",
            "word",
            "--min-frequency",
            "1",
            "--model",
            "numpy-ngram",
            "--steps",
            "400",
            "--eval-every",
            "200",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    report = capsys.readouterr().out
    assert code == 0
    line = next(line for line in report.splitlines() if line.startswith("train set"))
    assert "floor" in line and "3 previous tokens" in line
    assert sample.main(["--checkpoint", str(out / "model.pt"), "--num", "2", "--prompt", "the"]) == 0
    assert all(s.startswith("the") for s in capsys.readouterr().out.splitlines())


def test_a_numpy_run_cannot_be_resumed_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "--grammar",
        "sticky",
        "--model",
        "numpy-ngram",
        "--steps",
        "5",
        "--eval-every",
        "5",
        "--eval-sequences",
        "4",
        "--out",
        str(out),
        "--quiet",
    ]
    assert train.main(args) == 0
    assert train.main([*args, "--resume", str(out / "model.pt")]) == 2
    assert "resume" in capsys.readouterr().err
