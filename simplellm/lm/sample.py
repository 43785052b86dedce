"""Generate from a trained model: ``python -m simplellm.lm.sample --checkpoint DIR/model.pt --num 10``.

Prints one sample per line on stdout and nothing else there, so the output can be piped into a file or
a validator; messages go to stderr. The checkpoint alone rebuilds the model and its tokenizer.
A sample that reaches ``--max-new-tokens`` without the end token is printed as far as it got and
counted in a note on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from simplellm.lm.checkpoint import load_model
from simplellm.lm.sampling import beam_search
from simplellm.lm.tokenizers import BOS, EOS, UNK

DEFAULT_NUM = 1000


def add_generation_options(parser: argparse.ArgumentParser, num_help: str, max_new_tokens: int) -> None:
    """The options ``sample`` and ``generate`` share: checkpoint, prompt and the sampler's settings."""
    parser.add_argument("--checkpoint", required=True, help="a model.pt from simplellm.lm.train (required)")
    parser.add_argument("--num", type=int, default=None, help=num_help)
    parser.add_argument(
        "--temperature", type=float, default=1.0, help="below 1 sharpens, above 1 flattens (default: 1.0)"
    )
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest (default: all)")
    parser.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="sample from the smallest set of mass >= p (default: 1)",
    )
    parser.add_argument("--greedy", action="store_true", help="always the likeliest token (default: off)")
    parser.add_argument(
        "--beam",
        type=int,
        metavar="K",
        default=None,
        help="the K likeliest by beam search (default: off)",
    )
    parser.add_argument("--prompt", default="", help="text every sample starts with (default: none)")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help=f"cut a sample after this many tokens (default: {max_new_tokens})",
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same samples (default: 0)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")


def check_generation_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (exit 2, via ``parser.error``) combinations the sampler cannot honour."""
    if args.num is not None and args.num < 0:
        parser.error(f"--num must be >= 0, not {args.num}")
    if args.beam is not None:
        if args.beam < 1:
            parser.error(f"--beam must be >= 1, not {args.beam}")
        if args.num is not None and args.num > args.beam:
            parser.error(f"--beam {args.beam} finds at most {args.beam} sequences; ask for fewer with --num")
        if args.greedy or args.top_k is not None or args.top_p is not None or args.temperature != 1.0:
            parser.error("--beam searches for the likeliest sequences; it takes no sampling options")


def continuations(
    model: Any,
    prompt: list[int],
    num: int | None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    beam: int | None = None,
    max_new_tokens: int = 256,
    seed: int = 0,
) -> list[list[int]]:
    """The new tokens of ``num`` continuations of ``prompt`` (ids, BOS first), each ending with EOS if
    the model emitted it: sampled, or with ``beam`` the likeliest found by beam search, best first.
    Raises ValueError for settings that define no distribution."""
    if beam is not None:
        found = beam_search(model, prompt, beam_width=beam, max_new_tokens=max_new_tokens, num=num)
        return [b.tokens for b in found]
    return model.generate(
        DEFAULT_NUM if num is None else num,
        prompt=prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        greedy=greedy,
        seed=seed,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simplellm.lm.sample", description="Print samples of a trained model, one per line."
    )
    num_help = f"how many samples (default: {DEFAULT_NUM}; with --beam K: K)"
    add_generation_options(parser, num_help, max_new_tokens=256)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_generation_options(parser, args)
    try:
        model, tokenizer, _ = load_model(args.checkpoint, device=args.device)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    prompt_ids = tokenizer.encode(args.prompt, frame=False)
    if UNK in prompt_ids:
        unknown = [p for p in tokenizer.split(args.prompt) if p not in tokenizer.stoi]
        parser.error(f"the prompt holds tokens the model does not know: {unknown}")
    try:
        samples = continuations(model, [BOS, *prompt_ids], args.num, **sampler_settings(args))
    except ValueError as error:  # temperature, top-k or top-p out of range
        parser.error(str(error))
    unfinished = sum(1 for s in samples if not s or s[-1] != EOS)
    out = sys.stdout
    for tokens in samples:
        out.write(tokenizer.decode(prompt_ids + tokens) + "\n")
    out.flush()
    if unfinished:
        print(f"note: {unfinished} sample(s) reached --max-new-tokens without ending", file=sys.stderr)
    return 0


def sampler_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`continuations` that the options set."""
    keys = ("temperature", "top_k", "top_p", "greedy", "beam", "max_new_tokens", "seed")
    return {key: getattr(args, key) for key in keys}


if __name__ == "__main__":
    sys.exit(main())
