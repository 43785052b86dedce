"""Continue a prompt with a trained model, and look at how it chose each token.

    python -m simplellm.lm.generate --checkpoint runs/story/model.pt --prompt "the baker"
    python -m simplellm.lm.generate --checkpoint runs/story/model.pt --prompt "the baker" --explain
    python -m simplellm.lm.generate --checkpoint runs/story/model.pt --sweep-temperature 0.1,0.5,0.8,1.2
    python -m simplellm.lm.generate --checkpoint runs/story/model.pt --interactive

Every line printed is the prompt followed by its continuation, decoded as the model's tokenizer decodes
(a word model lower-cases). The prompt is read like the start of a training sample: BOS, then its tokens,
and no EOS, so the model continues it rather than starting a new sample. Words the model never saw are
read as <unk>; a note on stderr names them. ``simplellm.lm.sample`` prints bare samples for programs;
this command is for people, and shares that command's options and sampler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import numpy as np

from simplellm.lm.checkpoint import load_model
from simplellm.lm.pictures import show_token
from simplellm.lm.sample import add_generation_options, check_generation_options, continuations
from simplellm.lm.sampling import check_options, filter_logprobs
from simplellm.lm.tokenizers import BOS, EOS, Tokenizer

BLOCKS = " ▏▎▍▌▋▊▉█"  # eighths of a character cell, for bars finer than one character


@dataclass
class Settings:
    """How continuations are drawn; the interactive mode changes these between prompts."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    beam: int | None = None
    max_new_tokens: int = 100
    seed: int = 0
    num: int = 1
    explain: bool = False

    def sampler(self) -> dict[str, Any]:
        """The keyword arguments of ``sample.continuations``."""
        out = asdict(self)
        del out["num"], out["explain"]
        return out

    def how(self) -> str:
        """``temperature 0.8, top-k 5``, ``greedy`` or ``beam search, width 4``."""
        if self.beam is not None:
            how = f"beam search, width {self.beam}"
        elif self.greedy:
            how = "greedy"
        else:
            how = f"temperature {self.temperature:g}"
            how += f", top-k {self.top_k}" if self.top_k is not None else ""
            how += f", top-p {self.top_p:g}" if self.top_p is not None else ""
        return how

    def describe(self) -> str:
        explain = ", explain on" if self.explain else ""
        num = f"{self.num} continuations; " if self.num > 1 else ""
        return f"{num}{self.how()}; at most {self.max_new_tokens} new tokens; seed {self.seed}{explain}"


# ------------------------------------------------------------------ prompt in, text out
def encode_prompt(tokenizer: Tokenizer, text: str) -> tuple[list[int], list[str]]:
    """The prompt's token ids (unknown pieces as UNK, no BOS), and the pieces the model does not know."""
    ids = tokenizer.encode(text, frame=False)
    unknown = [piece for piece in tokenizer.split(text) if piece not in tokenizer.stoi]
    return ids, list(dict.fromkeys(unknown))


def bar(p: float, width: int = 20) -> str:
    """``p`` in [0, 1] as a bar of ``width`` characters for p = 1, to an eighth of a character."""
    eighths = round(max(0.0, min(1.0, p)) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (BLOCKS[part] if part else "")


def explain(
    model: Any, tokenizer: Tokenizer, prompt: list[int], tokens: list[int], settings: Settings, top: int = 5
) -> list[str]:
    """For every generated token, the ``top`` candidates with their probabilities; ▶ marks the chosen one.

    The probabilities are those the token was drawn from: after temperature, top-k and top-p when
    sampling; the model's own for greedy decoding and beam search, which take no such settings. They are
    recomputed from the finished text, one context per generated token, in one batch.
    """
    if not tokens:
        return []
    logp = model.next_token_logprobs([prompt + tokens[:i] for i in range(len(tokens))])
    if settings.greedy or settings.beam is not None:
        probs, source = np.exp(logp), "the model's own probabilities"
    else:
        probs = filter_logprobs(logp, settings.temperature, settings.top_k, settings.top_p)
        source = f"probabilities to draw from at {settings.how()}"
    shown = [show_token(tokenizer, t) for t in range(tokenizer.vocab_size)]
    lines = [f"each step's {top} likeliest next tokens ({source}); ▶ the one chosen"]
    for step, (chosen, p) in enumerate(zip(tokens, probs, strict=True)):
        so_far = tokenizer.decode(prompt + tokens[:step])
        context = so_far if len(so_far) <= 40 else "…" + so_far[-39:]
        lines.append(f"step {step + 1}, after “{context}”:")
        order = [int(t) for t in np.argsort(-p, kind="stable")]
        candidates = order[:top]
        if chosen not in candidates:  # drawn from the tail: show it too, with its rank
            candidates.append(chosen)
        width = max(len(shown[t]) for t in candidates)
        for t in candidates:
            mark = "▶" if t == chosen else " "
            rank = "" if t in order[:top] else f"  (rank {order.index(t) + 1})"
            lines.append(f"  {mark} {shown[t]:<{width}}  {p[t]:6.1%}  {bar(float(p[t]))}{rank}")
    return lines


def read_prompt(tokenizer: Tokenizer, text: str, err: TextIO) -> list[int]:
    """The prompt as the model reads it, BOS first; a note on ``err`` names the pieces it does not know."""
    ids, unknown = encode_prompt(tokenizer, text)
    if unknown:
        print(f"note: the model does not know {unknown}; it reads them as <unk>", file=err)
    return [BOS, *ids]


def continue_prompt(
    model: Any, tokenizer: Tokenizer, prompt: list[int], settings: Settings, out: TextIO, label: str = ""
) -> int:
    """Print ``settings.num`` continuations of ``prompt`` (ids, BOS first), each after ``label``, and with
    ``settings.explain`` their explanations; return how many did not reach EOS within ``max_new_tokens``.
    Raises ValueError for settings that define no distribution."""
    unfinished = 0
    for tokens in continuations(model, prompt, settings.num, **settings.sampler()):
        print(label + tokenizer.decode(prompt + tokens), file=out)
        if settings.explain:
            print("\n".join(explain(model, tokenizer, prompt, tokens, settings)), file=out)
        unfinished += not tokens or tokens[-1] != EOS
    return unfinished


# ------------------------------------------------------------------ interactive
HELP = """\
Type a prompt and press Enter for its continuation (an empty line: a sample from nothing).
Settings, changed for the prompts that follow (a sampling setting turns greedy and beam off):
  :temp X        temperature, X > 0 (below 1 sharpens, above 1 flattens)
  :topk K|off    sample among the K likeliest tokens
  :topp P|off    sample from the smallest set of tokens with probability >= P
  :greedy on|off always the likeliest token
  :beam K|off    the likeliest continuation by beam search of width K
  :max N         at most N new tokens
  :seed S        the next reply's seed (each reply uses the next one: S, S+1, ...)
  :num N         continuations per prompt
  :explain on|off  the top-5 candidates of every generated token
  :settings      show the settings       :help  this text
quit, exit, Ctrl-D or Ctrl-C: leave."""


def parse_setting(text: str, kind: Callable[[str], Any], optional: bool = False) -> Any:
    if optional and text == "off":
        return None
    return kind(text)


def on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise ValueError(f"expected on or off, not {text!r}")
    return text == "on"


COMMANDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    ":temp": ("temperature", float),
    ":topk": ("top_k", lambda s: parse_setting(s, int, optional=True)),
    ":topp": ("top_p", lambda s: parse_setting(s, float, optional=True)),
    ":greedy": ("greedy", on_off),
    ":beam": ("beam", lambda s: parse_setting(s, int, optional=True)),
    ":max": ("max_new_tokens", int),
    ":seed": ("seed", int),
    ":num": ("num", int),
    ":explain": ("explain", on_off),
}


def apply_command(settings: Settings, line: str, vocab_size: int) -> str:
    """Change ``settings`` as a ``:name value`` line says; return the message to print.

    A value that is malformed or out of range leaves the settings as they were and says why.
    """
    name, _, value = line.partition(" ")
    value = value.strip()
    if name == ":help":
        return HELP
    if name == ":settings":
        return settings.describe()
    if name not in COMMANDS:
        return f"unknown command {name}; :help lists the commands"
    field, parse = COMMANDS[name]
    if not value:
        return f"{name} needs a value; :help lists the commands"
    try:
        changes = {field: parse(value)}
    except ValueError as error:
        return f"error: {error}"
    # the decoding methods exclude one another: a sampling setting means sampling, and so on
    if field in ("temperature", "top_k", "top_p"):
        changes.update(greedy=False, beam=None)
    elif field == "greedy" and changes["greedy"] or field == "beam" and changes["beam"] is not None:
        changes.update({"beam": None} if field == "greedy" else {"greedy": False, "num": 1})
    new = Settings(**{**asdict(settings), **changes})
    try:
        check_settings(new, vocab_size)
    except ValueError as error:
        return f"error: {error}"
    for name, value in asdict(new).items():
        setattr(settings, name, value)
    return settings.describe()


def check_settings(settings: Settings, vocab_size: int) -> None:
    """ValueError for settings no continuation can be drawn with."""
    if settings.beam is None:
        check_options(vocab_size, settings.temperature, settings.top_k, settings.top_p)
    elif settings.beam < 1:
        raise ValueError(f"beam width must be >= 1, not {settings.beam}")
    if settings.max_new_tokens < 1:
        raise ValueError(f"max must be >= 1, not {settings.max_new_tokens}")
    if settings.num < 1 or (settings.beam is not None and settings.num > settings.beam):
        raise ValueError(f"num must be between 1 and {settings.beam or 'any'}, not {settings.num}")


def read_line(stdin: TextIO, out: TextIO, echo: bool) -> str | None:
    """The next line typed after the ``> `` prompt, stripped; None at the end of the input."""
    if stdin is sys.stdin and stdin.isatty():
        try:
            return input("> ").strip()  # through readline: arrow keys and history
        except EOFError:
            return None
    out.write("> ")
    out.flush()
    line = stdin.readline()
    if not line:
        return None
    if echo:
        out.write(line.strip() + "\n")
    return line.strip()


def interactive(
    model: Any, tokenizer: Tokenizer, settings: Settings, stdin: TextIO, out: TextIO, err: TextIO
) -> int:
    """A prompt loop; returns 0 on quit, exit, end of input (Ctrl-D) and Ctrl-C."""
    echo = not stdin.isatty()  # input piped in: print it, so the output reads as a session
    if not echo:
        try:
            import readline  # noqa: F401  (line editing and history for input(), where Python has it)
        except ImportError:
            pass
    vocabulary = f"{tokenizer.kind} tokens ({tokenizer.vocab_size})"
    try:
        print(f"{model.family}, {vocabulary}. {settings.describe()}", file=out)
        print("Type a prompt; :help for settings; quit, Ctrl-D or Ctrl-C to leave.", file=out)
        while True:
            line = read_line(stdin, out, echo)
            if line is None:  # end of input (Ctrl-D)
                out.write("\n")
                return 0
            if line in ("quit", "exit"):
                return 0
            if line.startswith(":"):
                print(apply_command(settings, line, tokenizer.vocab_size), file=out)
                continue
            prompt = read_prompt(tokenizer, line, err)
            unfinished = continue_prompt(model, tokenizer, prompt, settings, out)
            if unfinished:
                print(f"(stopped at {settings.max_new_tokens} new tokens; :max N for longer)", file=out)
            settings.seed += 1
    except KeyboardInterrupt:
        out.write("\n")
        return 0


# ------------------------------------------------------------------ the command line
def temperatures(text: str) -> list[float]:
    """``"0.1,0.5,0.8"`` -> [0.1, 0.5, 0.8] (argparse type: a bad list is a usage error)."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not {text!r}") from None
    if not values or any(not t > 0 for t in values):
        raise argparse.ArgumentTypeError(f"temperatures must be > 0, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simplellm.lm.generate",
        description="Continue a prompt with a trained model; explore its choices.",
        epilog=__doc__.split("\n\n", 2)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_generation_options(parser, "continuations per prompt (default: 1)", max_new_tokens=100)
    parser.add_argument(
        "--sweep-temperature",
        type=temperatures,
        metavar="T1,T2,...",
        help="one continuation per temperature, all with the same seed (default: off)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="after each continuation, each token's top-5 candidates and their probabilities (default: off)",
    )
    parser.add_argument(
        "--interactive",
        action="store_true",
        help="a prompt loop: type a prompt, get a continuation; :help lists the settings (default: off)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_generation_options(parser, args)
    if args.sweep_temperature is not None:
        if args.greedy or args.beam is not None or args.temperature != 1.0:
            parser.error(
                "--sweep-temperature sets the temperature; it takes no --temperature, --greedy or --beam"
            )
        if args.interactive:
            parser.error("--sweep-temperature prints and ends; in --interactive, use :temp")
    if args.interactive and args.prompt:
        parser.error("--interactive reads its prompts as you type them; it takes no --prompt")
    if args.num == 0:
        parser.error("--num must be >= 1 here")
    settings = Settings(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        greedy=args.greedy,
        beam=args.beam,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        num=args.num or 1,
        explain=args.explain,
    )
    try:
        model, tokenizer, _ = load_model(args.checkpoint, device=args.device)
        check_settings(settings, tokenizer.vocab_size)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if args.interactive:
        return interactive(model, tokenizer, settings, sys.stdin, sys.stdout, sys.stderr)
    prompt = read_prompt(tokenizer, args.prompt, sys.stderr)
    unfinished = 0
    if args.sweep_temperature is None:
        unfinished = continue_prompt(model, tokenizer, prompt, settings, sys.stdout)
    else:
        width = max(len(f"{t:g}") for t in args.sweep_temperature)
        for t in args.sweep_temperature:
            settings.temperature = t
            label = f"T={t:<{width}g}  "
            unfinished += continue_prompt(model, tokenizer, prompt, settings, sys.stdout, label)
    sys.stdout.flush()
    if unfinished:
        print(f"note: {unfinished} continuation(s) reached --max-new-tokens without ending", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
