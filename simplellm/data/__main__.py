"""Command line for the synthetic languages: ``python -m simplellm.data {sample,score,prompt,info} LANGUAGE``.

    python -m simplellm.data sample sticky --n 3 --num 10 --seed 0     # training samples, one per line
    python -m simplellm.data prompt sticky --n 3 --num 100 > prompt.txt  # show them to a chat model
    python -m simplellm.data score sticky --n 3 reply.txt               # score its reply (or - for stdin)
    python -m simplellm.data info sticky --n 3                           # entropy rate, ideal novelty

``sample``, ``prompt`` and ``score`` share one convention: the training samples for ``--seed S`` are
``grammar(...).splits(S, N).train``. ``sample --num N`` prints exactly the strings that ``prompt --num N``
shows, and ``score --num-train N`` (or ``--train FILE``) counts as *new* the samples not among them, so a
chat model is scored on the same footing as our models.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from simplellm.data import GRAMMARS, grammar, language_parameters
from simplellm.data.corpora import load_text, split_lines
from simplellm.data.grammar import Grammar
from simplellm.data.score import score_samples
from simplellm.data.splits import training_samples

# option name -> (parameter name, argparse keywords, what it means)
LANGUAGE_OPTIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    "--n": ("n", {"type": int}, "size: sticky minimum run length, counting and arithmetic digits"),
    "--strict": ("strict", {"action": "store_true"}, "runs exactly n long, the class always changing"),
    "--p-stop": ("p_stop", {"type": float}, "probability of ending after each character"),
    "--p-switch": ("p_switch", {"type": float}, "probability of changing class once a run is n long"),
    "--min-len": ("min_len", {"type": int}, "shortest string"),
    "--max-len": ("max_len", {"type": int}, "longest string (the length is then bounded)"),
    "--max-count": ("max_count", {"type": int}, "most numbers in a sequence"),
    "--reverse-answer": ("reverse_answer", {"action": "store_true"}, "write the sum's digits lowest first"),
}


def _defaults_text(parameter: str) -> str:
    defaults = [
        f"{name} {language_parameters(name)[parameter]}"
        for name in GRAMMARS
        if parameter in language_parameters(name)
    ]
    return "; default: " + ", ".join(defaults)


def _add_language_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("language", choices=GRAMMARS, help="which synthetic language")
    group = parser.add_argument_group(
        "language parameters (each applies to the languages named in its default)"
    )
    for option, (parameter, keywords, meaning) in LANGUAGE_OPTIONS.items():
        # SUPPRESS: an option not given stays out of the namespace, so the language's own default applies
        group.add_argument(
            option, default=argparse.SUPPRESS, help=meaning + _defaults_text(parameter), **keywords
        )


def _build_grammar(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Grammar:
    allowed = language_parameters(args.language)
    params = {}
    for option, (parameter, _, _) in LANGUAGE_OPTIONS.items():
        if parameter in vars(args):
            if parameter not in allowed:
                usable = [o for o, (p, _, _) in LANGUAGE_OPTIONS.items() if p in allowed]
                parser.error(
                    f"{option} does not apply to {args.language}; its options are {', '.join(usable)}"
                )
            params[parameter] = getattr(args, parameter)
    try:
        return grammar(args.language, **params)
    except ValueError as error:
        parser.error(str(error))


def make_parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m simplellm.data", description=__doc__.splitlines()[0], formatter_class=formatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sample = commands.add_parser(
        "sample", help="print training samples, one per line", formatter_class=formatter
    )
    _add_language_arguments(sample)
    sample.add_argument("--num", type=int, default=10, help="how many samples")
    sample.add_argument("--seed", type=int, default=0, help="which training samples")

    prompt = commands.add_parser(
        "prompt", help="print a prompt showing a chat model training samples", formatter_class=formatter
    )
    _add_language_arguments(prompt)
    prompt.add_argument("--num", type=int, default=100, help="training samples shown")
    prompt.add_argument("--ask", type=int, default=100, help="samples asked for")
    prompt.add_argument("--seed", type=int, default=0, help="which training samples")

    score = commands.add_parser(
        "score",
        help="score samples, one per line, from any source",
        description="Reads FILE (or - for standard input) as UTF-8, one sample per line. Surrounding "
        "whitespace is stripped from each line (none of the languages contains whitespace) and blank lines "
        "are ignored; everything else is scored exactly as written.",
        formatter_class=formatter,
    )
    _add_language_arguments(score)
    score.add_argument("file", metavar="FILE", help="samples, one per line; - reads standard input")
    score.add_argument(
        "--train", metavar="TRAIN_FILE", help="training samples, one per line (overrides --seed)"
    )
    score.add_argument("--seed", type=int, default=0, help="training samples as shown by prompt --seed")
    score.add_argument("--num-train", type=int, default=100, help="how many training samples prompt showed")

    info = commands.add_parser(
        "info", help="print what a perfect model would score", formatter_class=formatter
    )
    _add_language_arguments(info)
    info.add_argument("--train-sizes", type=int, nargs="+", default=[1000, 10000], help="for ideal novelty")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    for name in ("num", "ask", "num_train"):
        if getattr(args, name, 0) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    g = _build_grammar(parser, args)
    if args.command == "sample":
        for x in training_samples(g, args.seed, args.num):
            print(x)
    elif args.command == "prompt":
        print(make_prompt(training_samples(g, args.seed, args.num), args.ask))
        print(
            f"# score the reply with: python -m simplellm.data score {args.language} "
            f"{_options_text(g)}--seed {args.seed} --num-train {args.num} REPLY_FILE",
            file=sys.stderr,
        )
    elif args.command == "score":
        return _score(parser, args, g)
    elif args.command == "info":
        _info(g, args.train_sizes)
    return 0


def make_prompt(examples: list[str], ask: int) -> str:
    """Show a chat model the training samples, and nothing else of the language, and ask for more.

    It is told no rule and not asked for novelty: our models are not either. Both are measured by ``score``.
    """
    shown = "\n".join(examples)
    return (
        f"Here are {len(examples)} strings from an invented language, one per line. The language has rules, "
        "but they are not written down anywhere: work them out from the examples.\n\n"
        f"{shown}\n\n"
        f"Write {ask} more strings of the same language. Put one string on each line and write nothing "
        "else: no numbering, no explanations, no blank lines, no code block."
    )


def _options_text(g: Grammar) -> str:
    defaults = language_parameters(g.name)
    parts = []
    for option, (parameter, keywords, _) in LANGUAGE_OPTIONS.items():
        value = g.config.get(parameter)
        # --n always, so the command reads right even if a default changes; the rest when not default
        if parameter in defaults and (parameter == "n" or value != defaults[parameter]):
            parts.append(option if keywords.get("action") == "store_true" else f"{option} {value}")
    return "".join(part + " " for part in parts)


def _read_lines(path: str) -> tuple[list[str], int]:
    """Samples of a file (or stdin for '-') and how many blank lines were skipped."""
    text = sys.stdin.read() if path == "-" else load_text(path, mode="text")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a blank one
    samples = split_lines(text)
    return samples, len(lines) - len(samples)


def _score(parser: argparse.ArgumentParser, args: argparse.Namespace, g: Grammar) -> int:
    try:
        samples, blank = _read_lines(args.file)
        if args.train is not None:
            train, source = load_text(args.train, mode="lines"), f"from {args.train}"
        else:
            train, source = training_samples(g, args.seed, args.num_train), f"seed {args.seed}"
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = score_samples(g, samples, train)
    low, high = result.in_distribution_interval()
    ideal = g.ideal_novelty(len(train))
    print(f"language:        {g.config}")
    print(f"training set:    {len(train)} samples ({source})")
    print(f"scored:          {result.total} samples ({blank} blank lines ignored)")
    print(f"valid:           {result.valid}")
    print(f"invalid:         {result.invalid}")
    novelty = f"{_percent(result.novelty)} of valid; a perfect model: {ideal.value:.1%}"
    print(f"new:             {result.new} ({novelty})")
    print(f"duplicated:      {result.duplicated}")
    interval = f"95% Wilson interval {low:.1%} to {high:.1%}"
    print(f"in-distribution: {_percent(result.in_distribution)} ({interval})")
    return 0


def _info(g: Grammar, train_sizes: list[int]) -> None:
    print(f"language:      {g.config}")
    print(f"alphabet:      {g.alphabet}")
    print(f"entropy rate:  {g.entropy_rate():.4f} nats per token (end of sequence counted)")
    for size in train_sizes:
        print(f"ideal novelty: {g.ideal_novelty(size):.4f} with {size} training samples")
    print(f"support size:  {g.support_size() or 'infinite'}")
    print(f"max length:    {g.max_length() or 'unbounded'}")


def _percent(x: float) -> str:
    return "n/a" if x != x else f"{x:.1%}"  # x != x only for nan


if __name__ == "__main__":
    sys.exit(main())
