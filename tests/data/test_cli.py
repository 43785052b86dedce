"""python -m simplellm.data: sample, prompt, score, info."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import simplellm.data
from simplellm.data import grammar
from simplellm.data.__main__ import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sample_prints_the_training_samples(capsys):
    code, out, _ = run(capsys, "sample", "sticky", "--n", "3", "--num", "10", "--seed", "5")
    g = grammar("sticky", n=3)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 10 and all(map(g.is_valid, lines))
    assert lines == g.splits(seed=5, train_size=10).train


def test_sample_passes_every_language_option(capsys):
    _, out, _ = run(capsys, "sample", "sticky", "--n", "2", "--strict", "--max-len", "6", "--min-len", "2",
                    "--p-stop", "0.5", "--p-switch", "0.1", "--num", "50")  # fmt: skip
    g = grammar("sticky", n=2, strict=True, max_len=6, min_len=2, p_stop=0.5, p_switch=0.1)
    assert out.splitlines() == g.splits(seed=0, train_size=50).train
    _, out, _ = run(capsys, "sample", "arithmetic", "--n", "1", "--reverse-answer", "--num", "20")
    assert all(map(grammar("arithmetic", n=1, reverse_answer=True).is_valid, out.splitlines()))
    _, out, _ = run(capsys, "sample", "counting", "--n", "1", "--max-count", "3", "--num", "20")
    assert all(len(line.split(",")) <= 3 for line in out.splitlines())


def test_an_option_of_another_language_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sample", "counting", "--strict"])
    assert exit_.value.code == 2
    assert "--strict does not apply to counting; its options are --n, --max-count" in capsys.readouterr().err


def test_a_bad_value_is_an_error_that_says_what_is_allowed(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "sticky", "--n", "0"])
    assert "n must be an integer >= 1, got 0" in capsys.readouterr().err


def test_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ["--n", "--strict", "--p-stop", "--p-switch", "--min-len", "--max-len", "--max-count",
                   "--reverse-answer", "--train", "--seed", "--num-train"]:  # fmt: skip
        assert option in text
    assert "default: arithmetic 2, counting 3, sticky 3" in text
    assert "(default: 100)" in text and "blank lines are ignored" in text


def test_prompt_shows_the_training_samples_and_asks_for_more(capsys):
    code, out, err = run(capsys, "prompt", "sticky", "--n", "3", "--num", "100", "--ask", "40", "--seed", "2")
    train = grammar("sticky", n=3).splits(seed=2, train_size=100).train
    assert code == 0
    assert "\n".join(train) in out
    assert "Here are 100 strings" in out and "Write 40 more strings" in out
    assert "score sticky --n 3 --seed 2 --num-train 100" in err  # how to score the reply, kept off stdout


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_score_counts_valid_new_and_duplicated(capsys, tmp_path):
    train = grammar("arithmetic", n=1).splits(seed=0, train_size=100).train
    unseen = next(s for s, _ in grammar("arithmetic", n=1).enumerate_support() if s not in train)
    reply = f"{train[0]}\n  {unseen}  \n\n{unseen}\n1+1=3\nhello\n"
    path = write(tmp_path, "reply.txt", reply)
    code, out, _ = run(capsys, "score", "arithmetic", "--n", "1", path)
    assert code == 0
    assert "scored:          5 samples (1 blank lines ignored)" in out
    assert "valid:           3\n" in out
    assert "invalid:         2\n" in out
    assert "new:             2 (66.7% of valid" in out
    assert "duplicated:      1\n" in out
    assert "in-distribution: 60.0% (95% Wilson interval 23.1% to 88.2%)" in out


def test_score_reads_stdin_and_a_training_file(capsys, tmp_path, monkeypatch):
    train_path = write(tmp_path, "train.txt", "ab\ncd\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("ab\nxy\nA\n"))
    code, out, _ = run(capsys, "score", "sticky", "--n", "2", "--train", train_path, "-")
    assert code == 0
    assert "training set:    2 samples (from" in out
    assert "valid:           3" in out and "new:             2" in out


def test_score_of_a_missing_or_broken_file_is_an_error(capsys, tmp_path):
    code, _, err = run(capsys, "score", "sticky", str(tmp_path / "nothing.txt"))
    assert code == 2 and "no such text file" in err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ab\n\xff\n")
    code, _, err = run(capsys, "score", "sticky", str(bad))
    assert code == 2 and "not UTF-8" in err


def test_info_prints_the_exact_figures(capsys):
    code, out, _ = run(capsys, "info", "counting", "--n", "2", "--train-sizes", "10")
    g = grammar("counting", n=2)
    assert code == 0
    assert f"entropy rate:  {g.entropy_rate().value:.4f}" in out
    assert f"ideal novelty: {g.ideal_novelty(10).value:.4f} with 10 training samples" in out
    assert "support size:  672" in out


def test_the_module_runs_as_a_program():
    root = Path(simplellm.data.__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "simplellm.data", "sample", "sticky", "--n", "3", "--num", "5"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and all(map(grammar("sticky", n=3).is_valid, lines))
