"""Text for the word-level track: small corpora shipped with the package, and a loader for any UTF-8 file.

Shipped corpora, written for this project (original text, free of anyone else's copyright):

* ``animals``: short, simple sentences about animals and daily life, one per line;
* ``story``: a longer original story in plain words, with the repetition a tiny model can learn from.

Two ways to read a text, because a model either learns from many short samples or from one running text:

* ``mode="lines"``: one sample per line (names, words, sentences). Surrounding whitespace is stripped
  from each line and blank lines are dropped, so a trailing newline or an indented line adds nothing.
* ``mode="text"``: the whole text as one string, line endings normalised to ``\\n``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CORPORA: tuple[str, ...] = ("animals", "story")
MODES = ("lines", "text")


def load_corpus(name: str, mode: str = "lines") -> list[str] | str:
    """A shipped corpus: a list of lines (``mode="lines"``) or one string (``mode="text"``)."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; choose one of: {', '.join(CORPORA)}")
    source = resources.files("simplellm.data").joinpath("corpora", f"{name}.txt")
    return _split(source.read_text(encoding="utf-8"), mode)


def load_text(path: str | Path, mode: str = "lines") -> list[str] | str:
    """Any UTF-8 text file (a byte-order mark is allowed): a list of lines, or one string.

    Raises FileNotFoundError for a missing file and ValueError, with the offset of the first bad byte,
    for a file that is not UTF-8.
    """
    _check_mode(mode)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such text file: {path}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text: cannot decode byte 0x{data[error.start]:02x} at offset {error.start}"
        ) from None
    return _split(text, mode)


def split_lines(text: str) -> list[str]:
    """One sample per line: each line stripped of surrounding whitespace, blank lines dropped."""
    return [line.strip() for line in _normalise_newlines(text).split("\n") if line.strip()]


def _normalise_newlines(text: str) -> str:
    # \r\n and \r are line ends too; str.splitlines would also split on \x0c, \x1c, \u2028 and others,
    # which inside one sample are characters, not line ends.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split(text: str, mode: str) -> list[str] | str:
    _check_mode(mode)
    return _normalise_newlines(text) if mode == "text" else split_lines(text)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
