"""Draw the computation graph behind a Value, with Graphviz."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from simplellm.autograd.engine import Value, topological_order

INSTALL_HINT = (
    "Graphviz's 'dot' program was not found, so only the DOT source was made. "
    "Install it with 'apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' (macOS) "
    "or 'conda install graphviz', or paste the source into any online Graphviz viewer."
)


def to_dot(root: Value, rankdir: str = "LR") -> str:
    """Graphviz source for the graph that produced ``root``: a box per value, an oval per operation."""
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be one of LR, TB, RL, BT, not {rankdir!r}")
    lines = ["digraph computation {", f"  rankdir={rankdir};", '  node [fontname="Helvetica"];']
    names: dict[Value, str] = {}
    for i, node in enumerate(topological_order(root)):
        names[node] = f"v{i}"
    for node, name in names.items():
        label = f"{_escape(node.label)} | " if node.label else ""
        fields = f"{label}data {node.data:.4g} | grad {node.grad:.4g}"
        lines.append(f'  {name} [shape=record, label="{{ {fields} }}"];')
        if node._op:
            lines.append(f'  {name}_op [shape=ellipse, label="{_escape(node._op)}"];')
            lines.append(f"  {name}_op -> {name};")
            for parent in node._prev:
                lines.append(f"  {names[parent]} -> {name}_op;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(root: Value, filename: str | Path | None = None, rankdir: str = "LR") -> str:
    """Return the Graphviz source of ``root``'s graph; if ``filename`` is given, also render it.

    The image format follows the file's suffix (``graph.svg``, ``graph.png``). Rendering needs the
    ``dot`` program; without it the source is still returned and a message says how to get ``dot``.
    """
    source = to_dot(root, rankdir)
    if filename is None:
        return source
    path = Path(filename)
    fmt = path.suffix.lstrip(".").lower() or "svg"
    dot = shutil.which("dot")
    if dot is None:
        print(INSTALL_HINT)
        return source
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=source, text=True, check=True)
    return source


def _escape(text: str) -> str:
    out = text
    for ch in '\\"{}|<>':
        out = out.replace(ch, "\\" + ch)
    return out
