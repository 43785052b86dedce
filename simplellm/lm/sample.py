"""Generate from a trained model: ``python -m simplellm.lm.sample --checkpoint DIR/model.pt --num 10``.

Prints one sample per line on stdout and nothing else there, so the output can be piped into a file or
a validator; messages go to stderr. The checkpoint alone rebuilds the model and its tokenizer.
A sample that reaches ``--max-new-tokens`` without the end token is printed as far as it got and
counted in a note on stderr.
"""

from __future__ import annotations

import argparse
import sys

from simplellm.lm.checkpoint import load_model
from simplellm.lm.sampling import beam_search
from simplellm.lm.tokenizers import BOS, EOS, UNK

DEFAULT_NUM = 1000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simplellm.lm.sample", description="Print samples of a trained model, one per line."
    )
    parser.add_argument("--checkpoint", required=True, help="a model.pt from simplellm.lm.train (required)")
    parser.add_argument(
        "--num", type=int, default=None, help=f"how many samples (default: {DEFAULT_NUM}; with --beam K: K)"
    )
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
        "--max-new-tokens", type=int, default=256, help="cut a sample after this many tokens (default: 256)"
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same samples (default: 0)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num is not None and args.num < 0:
        parser.error(f"--num must be >= 0, not {args.num}")
    if args.beam is not None:
        if args.beam < 1:
            parser.error(f"--beam must be >= 1, not {args.beam}")
        if args.num is not None and args.num > args.beam:
            parser.error(f"--beam {args.beam} finds at most {args.beam} sequences; ask for fewer with --num")
        if args.greedy or args.top_k is not None or args.top_p is not None or args.temperature != 1.0:
            parser.error("--beam searches for the likeliest sequences; it takes no sampling options")
    try:
        model, tokenizer, _ = load_model(args.checkpoint, device=args.device)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    prompt_ids = tokenizer.encode(args.prompt, frame=False)
    if UNK in prompt_ids:
        unknown = [p for p in tokenizer.split(args.prompt) if p not in tokenizer.stoi]
        parser.error(f"the prompt holds tokens the model does not know: {unknown}")
    prompt = [BOS, *prompt_ids]
    if args.beam is not None:
        width, limit = args.beam, args.max_new_tokens
        beams = beam_search(model, prompt, beam_width=width, max_new_tokens=limit, num=args.num)
        samples = [b.tokens for b in beams]
    else:
        try:
            samples = model.generate(
                DEFAULT_NUM if args.num is None else args.num,
                prompt=prompt,
                max_new_tokens=args.max_new_tokens,
                temperature=args.temperature,
                top_k=args.top_k,
                top_p=args.top_p,
                greedy=args.greedy,
                seed=args.seed,
            )
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


if __name__ == "__main__":
    sys.exit(main())
