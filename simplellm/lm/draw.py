"""Draw what a trained model has learned: ``python -m simplellm.lm.draw attention|embeddings``.

    python -m simplellm.lm.draw attention --checkpoint runs/story/model.pt --prompt "the baker and his dog"
    python -m simplellm.lm.draw embeddings --checkpoint runs/story/model.pt

writes ``attention.png`` and ``embeddings.png`` beside the checkpoint (or where ``--out`` says) and prints
the path. The pictures are explained in ``simplellm.lm.pictures``; the loss curves are drawn by
``simplellm.lm.train`` itself (``loss.png``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from simplellm.lm.checkpoint import load_model
from simplellm.lm.pictures import attention_grid, embedding_map


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simplellm.lm.draw",
        description="Draw a trained model's attention maps or token embeddings to a PNG.",
        epilog=__doc__.split("\n\n", 2)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pictures = parser.add_subparsers(dest="picture", required=True, metavar="attention|embeddings")
    attention = pictures.add_parser(
        "attention", help="every layer's and head's attention weights on a prompt (transformers)"
    )
    embeddings = pictures.add_parser(
        "embeddings", help="the token embeddings on their two principal components, coloured by kind"
    )
    for sub, name in ((attention, "attention.png"), (embeddings, "embeddings.png")):
        sub.add_argument("--checkpoint", required=True, help="a model.pt from simplellm.lm.train (required)")
        sub.add_argument(
            "--out", metavar="FILE", help=f"the PNG to write (default: {name} beside the checkpoint)"
        )
        sub.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    attention.add_argument("--prompt", required=True, help="the text whose attention is drawn (required)")
    embeddings.add_argument(
        "--labels", type=int, default=150, metavar="N", help="label the first N tokens' points (default: 150)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    default = Path(args.checkpoint).parent / f"{args.picture}.png"
    out = Path(args.out) if args.out else default
    try:
        model, tokenizer, _ = load_model(args.checkpoint, device=args.device)
        if args.picture == "attention":
            path = attention_grid(model, tokenizer, args.prompt, out)
        else:
            path = embedding_map(model, tokenizer, out, labels=args.labels)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
