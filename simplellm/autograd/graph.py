"""Draw the computation graph behind a Value: Graphviz source (``to_dot``, ``draw``) or a matplotlib
figure that needs no Graphviz (``plot_graph``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from simplellm.autograd.engine import Value, topological_order

if TYPE_CHECKING:  # matplotlib only for type checkers: the engine must import without it
    from matplotlib.axes import Axes

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


def plot_graph(root: Value, ax: Axes | None = None, fontsize: float = 8.0) -> Axes:
    """Draw ``root``'s graph with matplotlib, inputs on the left and ``root`` on the right.

    One box per value (its label and the operation that made it, its data and its grad; blue for leaves,
    yellow for operations, green for ``root``) and one arrow per input of an operation: a value used
    twice by one operation (``x * x``) gets two arrows. Returns the Axes; pass ``ax`` to draw
    into an existing one. Needs matplotlib (imported here, so the engine itself never needs it).

    Layout by layers: an operation's column is the length of the longest path from a leaf to it, so every
    arrow points right; a leaf sits just left of the first operation that reads it. Within a column,
    values are stacked in the order of the mean height of their inputs, which keeps most arrows short.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    order = topological_order(root)
    column: dict[Value, int] = {}
    for node in order:
        if node._prev:
            column[node] = 1 + max(column.get(p, 0) for p in node._prev)  # leaves count as 0 here
    readers: dict[Value, list[Value]] = {}
    for node in order:
        for parent in node._prev:
            readers.setdefault(parent, []).append(node)
    for node in order:
        if not node._prev:
            column[node] = min((column[r] for r in readers.get(node, [])), default=1) - 1

    layers: dict[int, list[Value]] = {}
    for node in order:
        layers.setdefault(column[node], []).append(node)
    height: dict[Value, float] = {}

    def stack(nodes: list[Value]) -> None:
        for i, node in enumerate(nodes):
            height[node] = (len(nodes) - 1) / 2 - i

    for nodes in layers.values():
        stack(nodes)

    # Sweeps right then left (the barycentre heuristic of layered drawing): sort each column by the mean
    # height of the neighbours in the column just placed. Stable sorts: ties keep the previous order.
    def mean_height(node: Value, near: tuple[Value, ...] | list[Value]) -> float:
        return sum(height[m] for m in near) / len(near) if near else height[node]

    for sweep in range(4):
        inputs_side = sweep % 2 == 0
        for c in sorted(layers, reverse=not inputs_side):
            if inputs_side:
                layers[c].sort(key=lambda node: -mean_height(node, node._prev))
            else:
                layers[c].sort(key=lambda node: -mean_height(node, readers.get(node, [])))
            stack(layers[c])

    n_columns, n_rows = len(layers), max(len(nodes) for nodes in layers.values())
    if ax is None:
        _, ax = plt.subplots(figsize=(min(2.0 + 1.7 * n_columns, 16), min(0.8 + 0.6 * n_rows, 12)))
    boxes = {}
    for node in order:
        if node is root:
            colour = "#c7e9c0"
        elif node._prev:
            colour = "#fdf0c2"
        else:
            colour = "#d6e6f5"
        title = " = ".join(part for part in (node.label, node._op) if part)  # "x", "*", "b = *" or ""
        lines = [title] if title else []
        lines += [f"data {node.data:.4g}", f"grad {node.grad:.4g}"]
        boxes[node] = ax.text(
            column[node],
            height[node],
            "\n".join(lines),
            ha="center",
            va="center",
            fontsize=fontsize,
            family="monospace",
            bbox={"boxstyle": "round,pad=0.3", "facecolor": colour, "edgecolor": "0.4"},
            zorder=2,
        )
    for node in order:
        seen: dict[Value, int] = {}
        for parent in node._prev:
            k = seen[parent] = seen.get(parent, -1) + 1
            uses = node._prev.count(parent)
            bend = 0.4 * (k / (uses - 1) - 0.5) if uses > 1 else 0.0  # x * x: two arcs, side by side
            ax.add_patch(
                FancyArrowPatch(
                    (column[parent], height[parent]),
                    (column[node], height[node]),
                    patchA=boxes[parent].get_bbox_patch(),
                    patchB=boxes[node].get_bbox_patch(),
                    arrowstyle="-|>",
                    mutation_scale=10,
                    connectionstyle=f"arc3,rad={bend}",
                    color="0.35",
                    lw=1.0,
                    zorder=3,  # drawn after the boxes, whose outlines the arrows are clipped to
                )
            )
    ax.set_xlim(-0.6, n_columns - 0.4)
    ax.set_ylim(-n_rows / 2, n_rows / 2)
    ax.axis("off")
    return ax


def _escape(text: str) -> str:
    out = text
    for ch in '\\"{}|<>':
        out = out.replace(ch, "\\" + ch)
    return out
