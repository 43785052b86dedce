"""The generate command: continuations of a prompt, temperature sweeps, --explain and the interactive loop."""

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simplellm.lm import generate
from simplellm.lm import train as train_cli
from simplellm.lm.checkpoint import load_model
from simplellm.lm.sampling import beam_search
from simplellm.lm.tokenizers import BOS, EOS

ROOT = Path(__file__).resolve().parents[2]
LINES = [
    "the cat sat on the mat .",
    "the dog lay on the rug .",
    "a bird sang in the tree .",
    "the cat saw a bird .",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A one-layer word transformer trained (about a second) on four lines until it knows them."""
    tmp = tmp_path_factory.mktemp("generate")
    text = tmp / "lines.txt"
    text.write_text("\n".join(LINES * 5) + "\n", encoding="utf-8")
    argv = ["--text", str(text), "--tokenizer", "word", "--min-frequency", "1", "--model", "transformer"]
    argv += ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--dropout", "0", "--lr", "1e-2"]
    argv += [
        "--steps",
        "80",
        "--batch-size",
        "16",
        "--eval-every",
        "20",
        "--quiet",
        "--out",
        str(tmp / "run"),
    ]
    assert train_cli.main(argv) == 0
    return tmp / "run" / "model.pt"


@pytest.fixture(scope="module")
def loaded(checkpoint):
    model, tokenizer, _ = load_model(checkpoint)
    return model, tokenizer


def run(capsys, checkpoint, *argv):
    code = generate.main(["--checkpoint", str(checkpoint), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ continuing a prompt
def test_the_trained_model_continues_a_prompt_it_has_learned(checkpoint, capsys):
    code, out, err = run(capsys, checkpoint, "--prompt", "The cat sat on the", "--greedy")
    assert code == 0 and err == ""
    assert (
        out == "the cat sat on the mat.\n"
    )  # the prompt (lower-cased, as the word tokenizer reads it) + more


def test_continuations_are_the_shared_samplers_from_bos_and_the_prompt(checkpoint, loaded, capsys):
    model, tokenizer = loaded
    code, out, _ = run(capsys, checkpoint, "--prompt", "the", "--num", "6", "--seed", "4")
    prompt = [BOS, *tokenizer.encode("the", frame=False)]
    expected = [
        tokenizer.decode(prompt + t) for t in model.generate(6, prompt=prompt, seed=4, max_new_tokens=100)
    ]
    assert code == 0 and out.splitlines() == expected
    assert all(line.startswith("the ") for line in expected) and len(set(expected)) > 1
    options = ["--top-k", "2", "--top-p", "0.9", "--temperature", "0.7", "--max-new-tokens", "3"]
    code, out, err = run(capsys, checkpoint, "--num", "4", *options)
    tokens = model.generate(4, prompt=[BOS], seed=0, max_new_tokens=3, temperature=0.7, top_k=2, top_p=0.9)
    assert out.splitlines() == [tokenizer.decode(t) for t in tokens]
    unfinished = sum(t[-1] != EOS for t in tokens)
    assert unfinished > 0 and f"note: {unfinished} continuation(s) reached --max-new-tokens" in err


def test_beam_search_prints_the_likeliest_continuations_best_first(checkpoint, loaded, capsys):
    model, tokenizer = loaded
    code, out, _ = run(capsys, checkpoint, "--prompt", "the", "--beam", "3", "--num", "2")
    prompt = [BOS, *tokenizer.encode("the", frame=False)]
    beams = beam_search(model, prompt, beam_width=3, max_new_tokens=100, num=2)
    assert code == 0 and out.splitlines() == [tokenizer.decode(prompt + b.tokens) for b in beams]


def test_unknown_words_are_read_as_unk_and_named(checkpoint, capsys):
    code, out, err = run(capsys, checkpoint, "--prompt", "the zebra sat on a sofa")
    assert code == 0
    assert out.startswith("the <unk> sat on a <unk>")
    assert "note: the model does not know ['zebra', 'sofa']; it reads them as <unk>" in err


def test_a_prompt_longer_than_the_window_is_kept_whole_and_continued_from_its_end(checkpoint, loaded, capsys):
    model, tokenizer = loaded
    text = " ".join(["the cat sat on the mat ."] * 30) + " the dog lay on the"  # 215 words; the window: 128
    code, out, _ = run(capsys, checkpoint, "--prompt", text, "--greedy")
    prompt = [BOS, *tokenizer.encode(text, frame=False)]
    assert len(prompt) > model.config.block_size
    (tokens,) = model.generate(1, prompt=prompt, greedy=True, max_new_tokens=100)  # the model crops
    assert code == 0 and out == tokenizer.decode(prompt + tokens) + "\n"
    assert out.startswith(tokenizer.decode(prompt)) and tokens


# ------------------------------------------------------------------ temperature sweep
def test_the_sweep_prints_one_continuation_per_temperature_with_one_seed(checkpoint, loaded, capsys):
    model, tokenizer = loaded
    argv = [
        "--prompt",
        "a",
        "--seed",
        "7",
        "--sweep-temperature",
        "0.1,0.5,1,3",
    ]
    code, out, _ = run(capsys, checkpoint, *argv)
    lines = out.splitlines()
    assert code == 0 and [line.split()[0] for line in lines] == ["T=0.1", "T=0.5", "T=1", "T=3"]
    prompt = [BOS, *tokenizer.encode("a", frame=False)]
    for line, t in zip(lines, (0.1, 0.5, 1.0, 3.0), strict=True):
        (tokens,) = model.generate(1, prompt=prompt, seed=7, temperature=t, max_new_tokens=100)
        assert line.split(maxsplit=1)[1] == tokenizer.decode(prompt + tokens)
    assert lines[0].endswith("a bird sang in the tree.")  # cold: the likeliest line


def test_the_sweep_refuses_what_it_cannot_sweep(checkpoint, capsys):
    cases = [
        (["--sweep-temperature", "0.5,1", "--greedy"], "--sweep-temperature sets the temperature"),
        (["--sweep-temperature", "0.5,hot"], "expected numbers separated by commas"),
        (["--sweep-temperature", "0.5,0"], "temperatures must be > 0"),
        (["--sweep-temperature", "1", "--interactive"], "in --interactive, use :temp"),
        (["--interactive", "--prompt", "the"], "--interactive reads its prompts as you type them"),
        (["--beam", "2", "--temperature", "0.5"], "--beam searches for the likeliest sequences"),
        (["--top-k", "0"], "top_k must be between 1"),
    ]
    for argv, message in cases:
        try:
            code = generate.main(["--checkpoint", str(checkpoint), *argv])
        except SystemExit as exit:
            code = exit.code
        assert code == 2, argv
        assert message in capsys.readouterr().err, argv


def test_a_missing_checkpoint_is_an_error_not_a_traceback(tmp_path, capsys):
    code, out, err = run(capsys, tmp_path / "none.pt")
    assert code == 2 and out == "" and "no checkpoint at" in err


# ------------------------------------------------------------------ explain
def parse_explanation(text: str) -> list[list[tuple[bool, str, float]]]:
    """Per step: (chosen, token, probability) of each candidate line."""
    steps: list[list[tuple[bool, str, float]]] = []
    for line in text.splitlines():
        if line.startswith("step "):
            steps.append([])
        match = re.match(r"  ([▶ ]) (\S+) +(\d+\.\d)%", line)
        if match:
            steps[-1].append((match[1] == "▶", match[2], float(match[3]) / 100))
    return steps


def test_explain_shows_the_model_top_five_with_the_greedy_choice_first(checkpoint, loaded, capsys):
    model, tokenizer = loaded
    code, out, _ = run(capsys, checkpoint, "--prompt", "the dog", "--greedy", "--explain")
    text, explanation = out.split("\n", 1)
    assert code == 0 and text == "the dog lay on the rug."
    steps = parse_explanation(explanation)
    generated = tokenizer.encode("lay on the rug .", frame=False) + [EOS]
    assert len(steps) == len(generated)
    context = [BOS, *tokenizer.encode("the dog", frame=False)]
    for step, token in zip(steps, generated, strict=True):
        probs = np.exp(model.next_token_logprobs([context])[0])
        top5 = np.argsort(-probs)[:5]
        assert [t for _, t, _ in step] == [generate.show_token(tokenizer, int(t)) for t in top5]
        assert [p for _, _, p in step] == pytest.approx(probs[top5], abs=5e-4)  # printed to 0.1%
        assert [chosen for chosen, _, _ in step] == [True, False, False, False, False]
        context.append(token)


def test_explain_shows_the_distribution_sampled_from_and_marks_a_tail_choice(loaded):
    model, tokenizer = loaded
    prompt = [BOS, *tokenizer.encode("the", frame=False)]
    settings = generate.Settings(temperature=0.5, top_k=3)
    (tokens,) = model.generate(1, prompt=prompt, temperature=0.5, top_k=3)
    steps = parse_explanation("\n".join(generate.explain(model, tokenizer, prompt, tokens, settings)))
    assert len(steps) == len(tokens)
    for step in steps:
        assert [chosen for chosen, _, _ in step].count(True) == 1
        assert [p for _, _, p in step[3:]] == [0.0, 0.0]  # top-k 3: nothing else can be drawn
        assert sum(p for _, _, p in step) == pytest.approx(1.0, abs=2e-3)
    # a token drawn from outside the top five gets its own line, with its rank
    unlikely = [int(np.argsort(-model.next_token_logprobs([prompt])[0], kind="stable")[7])]
    lines = generate.explain(model, tokenizer, prompt, unlikely, generate.Settings())
    assert len(lines) == 2 + 6 and lines[-1].startswith("  ▶ ") and lines[-1].endswith("(rank 8)")


def test_bars_are_drawn_to_an_eighth_of_a_character():
    assert generate.bar(1.0, 20) == "█" * 20
    assert generate.bar(0.5, 4) == "██"
    assert generate.bar(0.31, 10) == "███▏"  # 24.8 eighths: 3 full cells and 1/8
    assert generate.bar(0.0) == "" and generate.bar(1.5, 3) == "███"


# ------------------------------------------------------------------ interactive
def interact(monkeypatch, capsys, checkpoint, typed, *argv):
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    code = generate.main(["--checkpoint", str(checkpoint), "--interactive", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_interactive_continues_prompts_and_changes_settings(monkeypatch, capsys, checkpoint, loaded):
    model, tokenizer = loaded
    typed = "the cat sat on the\n:greedy on\nthe dog\n:temp 0\n:temp 0.5\n:topk 2\n:max 2\n:seed 9\nthe\n"
    typed += "quit\nthe cat\n"
    code, out, err = interact(monkeypatch, capsys, checkpoint, typed)
    assert code == 0 and err == ""
    replies = re.split(r"^> ", out, flags=re.MULTILINE)[1:]  # what follows each prompt
    # input piped in is echoed, so the output reads as the session it was
    assert [r.split("\n")[0] for r in replies] == typed.split("\n")[:10]
    prompt = [BOS, *tokenizer.encode("the cat sat on the", frame=False)]
    (first,) = model.generate(1, prompt=prompt, seed=0, max_new_tokens=100)  # the first reply: seed 0
    assert replies[0].split("\n")[1] == tokenizer.decode(prompt + first)
    assert replies[1].split("\n")[1] == "greedy; at most 100 new tokens; seed 1"
    assert replies[2].split("\n")[1] == "the dog lay on the rug."
    assert "error: temperature must be > 0" in replies[3]  # refused, and the loop goes on
    assert replies[4].split("\n")[1] == "temperature 0.5; at most 100 new tokens; seed 2"  # sampling again
    prompt = [BOS, *tokenizer.encode("the", frame=False)]
    (last,) = model.generate(1, prompt=prompt, seed=9, temperature=0.5, top_k=2, max_new_tokens=2)
    assert replies[8].split("\n")[1] == tokenizer.decode(prompt + last)
    assert "(stopped at 2 new tokens" in replies[8]
    assert len(replies) == 10  # nothing after quit is read


def test_bad_settings_say_why_and_change_nothing():
    settings = generate.Settings()
    before = generate.Settings(**vars(settings))
    for line, message in [
        (":temp hot", "could not convert string to float"),
        (":temp -1", "temperature must be > 0"),
        (":topk 99999", "top_k must be between 1 and the vocabulary size"),
        (":topp 1.5", "top_p must be in (0, 1]"),
        (":greedy yes", "expected on or off"),
        (":max 0", "max must be >= 1"),
        (":num 0", "num must be between 1"),
        (":beam 0", "beam width must be >= 1"),
        (":temp", ":temp needs a value"),
        (":warp 9", "unknown command :warp"),
    ]:
        assert message in generate.apply_command(settings, line, vocab_size=20), line
        assert settings == before, line
    assert generate.apply_command(settings, ":topk 5", 20).startswith("temperature 1, top-k 5;")
    assert generate.apply_command(settings, ":topk off", 20).startswith("temperature 1;")
    assert generate.apply_command(settings, ":beam 3", 20).startswith("beam search, width 3")
    assert ":temp X" in generate.apply_command(settings, ":help", 20)


def test_interactive_ends_cleanly_at_end_of_input_and_on_ctrl_c(monkeypatch, capsys, checkpoint):
    code, out, _ = interact(monkeypatch, capsys, checkpoint, "the cat\n")  # Ctrl-D: the input ends
    assert code == 0 and out.endswith("> \n")

    class CtrlC(io.StringIO):
        def readline(self, *args):
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdin", CtrlC())
    assert generate.main(["--checkpoint", str(checkpoint), "--interactive"]) == 0
    assert capsys.readouterr().out.endswith("> \n")

    def interrupted(*args, **kwargs):  # Ctrl-C while a continuation is being generated
        raise KeyboardInterrupt

    monkeypatch.setattr(generate, "continuations", interrupted)
    code, out, _ = interact(monkeypatch, capsys, checkpoint, "the cat\nthe dog\n")
    assert code == 0 and out.count("> ") == 1


@pytest.mark.slow
def test_interactive_through_a_real_pipe_and_a_real_ctrl_c(checkpoint):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    module = [sys.executable, "-m", "simplellm.lm.generate"]
    command = [*module, "--interactive", "--checkpoint", str(checkpoint)]
    done = subprocess.run(
        command, input="the cat sat on the\n:greedy on\nthe dog\n", env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == ""
    assert "> the dog\nthe dog lay on the rug.\n> \n" in done.stdout
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    ) as process:
        assert "Type a prompt" in process.stdout.readline() + process.stdout.readline()
        process.send_signal(signal.SIGINT)  # Ctrl-C at the prompt
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in err, err
