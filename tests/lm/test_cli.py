"""The command lines: train writes a model, a config and a plot; sample prints samples and nothing else."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from simplellm.data import grammar
from simplellm.lm import sample as sample_cli
from simplellm.lm import train as train_cli
from simplellm.lm.checkpoint import load_model, read_checkpoint
from simplellm.lm.models import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
# small and short: these tests check the plumbing; the defaults' quality is measured in train.py's notes
FAST = ["--steps", "6", "--batch-size", "8", "--eval-every", "3", "--eval-sequences", "16", "--quiet"]
SMALL = {
    "ngram": ["--steps", "1", "--batch-size", "50"],
    "bigram": [],
    "mlp": ["--hidden", "16", "--embedding-dim", "4"],
    "rnn": ["--hidden", "16", "--embedding-dim", "8"],
    "gru": ["--hidden", "16", "--embedding-dim", "8"],
    "transformer": ["--n-layer", "1", "--n-embd", "16", "--n-head", "2"],
}


def train(tmp_path, *args, name="run"):
    out = tmp_path / name
    code = train_cli.main([*FAST, *args, "--out", str(out)])
    return code, out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny transformer on sticky n=2, trained once for the sampling tests."""
    tmp = tmp_path_factory.mktemp("trained")
    code, out = train(tmp, "--grammar", "sticky", "--n", "2", "--model", "transformer", *SMALL["transformer"])
    assert code == 0
    return out


def test_training_writes_the_model_its_config_and_a_plot_and_reports(tmp_path, capsys):
    code, out = train(tmp_path, "--grammar", "sticky", "--n", "3", "--model", "gru", *SMALL["gru"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "last.pt", "loss.png", "model.pt"]
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["family"] == "gru" and config["model"]["config"]["hidden"] == 16
    assert config["data"]["grammar"] == grammar("sticky", n=3).config and config["data"]["train_size"] is None
    assert config["train"]["steps"] == 6 and config["train"]["lr"] == train_cli.FAMILY_DEFAULTS["gru"]["lr"]
    results = config["results"]
    assert results["steps"] == 6 and results["entropy_rate"] == pytest.approx(3.4739, abs=1e-4)
    assert results["best_val_loss"] == min(config["history"]["val_loss"])
    report = capsys.readouterr().out
    assert f"{results['parameters']:,} parameters" in report
    assert re.search(r"val loss +\d\.\d{4} nats/token", report) and "entropy     3.4739" in report
    model, tokenizer, metadata = load_model(out / "model.pt")
    assert model.family == "gru" and metadata["data"] == config["data"]


def test_an_infinite_validation_loss_is_explained_and_add_k_smoothing_makes_it_finite(tmp_path, capsys):
    # order 3 on sticky n=3 with maximum-likelihood counts: some fresh validation token was never counted
    code, out = train(tmp_path, "--grammar", "sticky", "--model", "ngram", *SMALL["ngram"], name="ml")
    assert code == 0
    assert math.isinf(json.loads((out / "config.json").read_text())["results"]["best_val_loss"])
    assert "inf: a validation token got probability 0" in capsys.readouterr().out
    code, out = train(tmp_path, "--grammar", "sticky", "--model", "ngram", "--k", "0.1", *SMALL["ngram"])
    assert code == 0
    assert math.isfinite(json.loads((out / "config.json").read_text())["results"]["best_val_loss"])
    assert "inf: a validation token" not in capsys.readouterr().out


@pytest.mark.parametrize("family", sorted(SMALL))
def test_every_model_trains_on_every_language_and_on_a_text(tmp_path, family):
    assert set(SMALL) <= set(FAMILIES)
    text = tmp_path / "lines.txt"
    text.write_text("the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n" * 5, encoding="utf-8")
    sources = [
        ["--grammar", "sticky"],
        ["--grammar", "counting", "--n", "2", "--max-count", "4"],
        ["--grammar", "arithmetic", "--n", "1", "--reverse-answer"],
        ["--text", str(text), "--tokenizer", "word", "--min-frequency", "1"],
    ]
    for i, source in enumerate(sources):
        code, out = train(tmp_path, *source, "--model", family, *SMALL[family], name=f"{family}-{i}")
        assert code == 0, source
        model, tokenizer, _ = load_model(out / "model.pt")
        assert model.family == family
        (sample,) = model.generate(1, max_new_tokens=20, seed=0)
        assert isinstance(tokenizer.decode(sample), str)


def test_the_transformer_window_follows_the_language():
    parser = train_cli.build_parser()

    def window(*args):
        family, options, _, _ = train_cli.resolve(
            parser.parse_args(["--model", "transformer", *args]), parser
        )
        return options.get("block_size")

    assert window("--grammar", "arithmetic") == grammar("arithmetic").max_length() + 1 == 10
    assert window("--grammar", "counting") == 32  # samples of at most 31 characters
    assert window("--grammar", "sticky") == 32 and window("--grammar", "sticky", "--n", "20") == 42
    assert window("--text", "animals") is None  # the model's own default
    assert window("--grammar", "sticky", "--block-size", "7") == 7  # an explicit option wins


def test_text_training_reports_perplexity_against_the_uniform_baseline(tmp_path, capsys):
    code, out = train(tmp_path, "--text", "animals", "--tokenizer", "char", "--model", "bigram")
    assert code == 0
    results = json.loads((out / "config.json").read_text())["results"]
    _, tokenizer, _ = load_model(out / "model.pt")
    assert results["uniform_loss"] == pytest.approx(math.log(tokenizer.vocab_size))
    assert results["perplexity"] == pytest.approx(math.exp(results["best_val_loss"]))
    assert results["best_val_loss"] < results["uniform_loss"]
    report = capsys.readouterr().out
    assert "perplexity" in report and "a uniform guess over" in report


def test_options_that_do_not_apply_are_refused(tmp_path, capsys):
    cases = [
        (["--model", "gru", "--n-head", "2"], "--n-head does not apply to --model gru"),
        (
            ["--grammar", "arithmetic", "--max-count", "3"],
            "--max-count does not apply to --grammar arithmetic",
        ),
        (["--text", "animals", "--n", "3"], "--n apply to --grammar, not to --text"),
        (["--grammar", "sticky", "--tokenizer", "word"], "--tokenizer apply to --text"),
        (["--grammar", "sticky", "--n", "0"], "n must be"),
        (["--steps", "0"], "steps must be >= 1"),
        (["--model", "lstm"], "invalid choice"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit:
            train_cli.main([*argv, "--out", str(tmp_path / "x")])
        assert exit.value.code == 2
        assert message in capsys.readouterr().err, argv
    assert not (tmp_path / "x").exists()


def test_help_lists_every_option_with_its_default(capsys):
    for module in (train_cli, sample_cli):
        parser = module.build_parser()
        with pytest.raises(SystemExit):
            parser.parse_args(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.option_strings[0] in text
                assert re.search(r"\((default|required)", action.help), action.option_strings[0]
                assert " ".join(action.help.split()) in text


def test_a_run_resumed_from_the_command_line_continues_exactly(tmp_path):
    args = ["--grammar", "sticky", "--model", "mlp", *SMALL["mlp"], "--checkpoint-every", "3"]
    code, straight = train(tmp_path, *args, name="straight")
    assert code == 0
    code, short = train(tmp_path, *args, "--steps", "3", name="short")
    # resuming takes every setting from the checkpoint; only the length changes (back to the full run)
    resumed = tmp_path / "resumed"
    code = train_cli.main(
        ["--resume", str(short / "last.pt"), "--steps", "6", "--quiet", "--out", str(resumed)]
    )
    assert code == 0
    first = json.loads((straight / "config.json").read_text())["history"]
    again = json.loads((resumed / "config.json").read_text())["history"]
    # the 3-step run decayed its learning rate over 3 steps, so only its first steps agree with the 6-step run
    assert again["steps"] == first["steps"] and again["train_loss"][:2] == first["train_loss"][:2]


def test_resuming_into_another_model_says_what_differs(tmp_path, capsys):
    code, out = train(tmp_path, "--grammar", "sticky", "--model", "rnn", *SMALL["rnn"])
    assert code == 0
    code = train_cli.main(
        ["--resume", str(out / "last.pt"), "--model", "gru", "--quiet", "--out", str(tmp_path)]
    )
    assert code == 2 and "holds a rnn model, but the model to resume is a gru" in capsys.readouterr().err
    code = train_cli.main(["--resume", str(tmp_path / "nope.pt"), "--quiet"])
    assert code == 2 and "no checkpoint at" in capsys.readouterr().err


def test_sampling_prints_one_sample_per_line_and_nothing_else(trained, capsys):
    assert sample_cli.main(["--checkpoint", str(trained / "model.pt"), "--num", "50", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    model, tokenizer, _ = load_model(trained / "model.pt")
    expected = [tokenizer.decode(s) for s in model.generate(50, seed=3)]
    assert out == "".join(line + "\n" for line in expected)
    sample_cli.main(["--checkpoint", str(trained / "model.pt"), "--num", "50", "--seed", "3"])
    assert capsys.readouterr().out == out  # seeded


def test_sampling_options_greedy_beam_and_prompt(trained, capsys):
    path = str(trained / "model.pt")
    sample_cli.main(["--checkpoint", path, "--num", "3", "--greedy", "--max-new-tokens", "5"])
    greedy = capsys.readouterr().out.split("\n")[:-1]
    assert len(greedy) == 3 and len(set(greedy)) == 1
    sample_cli.main(["--checkpoint", path, "--beam", "4"])
    beams = capsys.readouterr().out.split("\n")[:-1]
    assert len(beams) == 4 and len(set(beams)) == 4
    sample_cli.main(["--checkpoint", path, "--beam", "4", "--num", "2"])
    assert capsys.readouterr().out.split("\n")[:-1] == beams[:2]
    sample_cli.main(
        ["--checkpoint", path, "--num", "5", "--prompt", "abc", "--top-k", "3", "--temperature", "0.5"]
    )
    assert all(line.startswith("abc") for line in capsys.readouterr().out.split("\n")[:-1])


def test_sampling_errors_go_to_stderr_with_exit_code_2(trained, tmp_path, capsys):
    path = str(trained / "model.pt")
    bad = [
        ["--checkpoint", path, "--temperature", "0"],
        ["--checkpoint", path, "--top-p", "1.5"],
        ["--checkpoint", path, "--beam", "2", "--num", "3"],
        ["--checkpoint", path, "--prompt", "a+b"],
        ["--num", "3"],
    ]
    for argv in bad:
        with pytest.raises(SystemExit) as exit:
            sample_cli.main(argv)
        assert exit.value.code == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "" and "error" in captured.err, argv
    (tmp_path / "broken.pt").write_bytes(Path(path).read_bytes()[:1000])
    assert sample_cli.main(["--checkpoint", str(tmp_path / "broken.pt")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "not a readable checkpoint" in captured.err


def run_module(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_the_modules_run_as_programs(tmp_path):
    done = run_module("simplellm.lm.train", "--model", "bigram", *FAST, "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "val loss" in done.stdout and (tmp_path / "run" / "model.pt").exists()
    assert read_checkpoint(tmp_path / "run" / "model.pt")["data"]["grammar"]["name"] == "sticky"  # default
    done = run_module("simplellm.lm.sample", "--checkpoint", "run/model.pt", "--num", "7", cwd=tmp_path)
    assert done.returncode == 0 and len(done.stdout.split("\n")) == 8
    done = run_module("simplellm.lm.sample", "--checkpoint", "missing.pt", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "" and "no checkpoint at" in done.stderr
