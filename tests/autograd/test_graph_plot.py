"""plot_graph: the computation graph drawn with matplotlib, for readers without Graphviz."""

import io
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from simplellm.autograd import Value, topological_order  # noqa: E402
from simplellm.autograd.graph import plot_graph  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def twenty_nodes() -> Value:
    x, y = Value(0.5, label="x"), Value(-1.5, label="y")
    h = x * y + x * x  # x is read three times, twice by one operation
    for k in range(2):  # 6 nodes each: two constants and four operations
        h = (h * 0.5 + y).tanh() + k
    out = h.relu() + x.exp()
    out.label = "out"
    return out


def arrows(ax: Axes) -> list[FancyArrowPatch]:
    return [p for p in ax.patches if isinstance(p, FancyArrowPatch)]


def test_one_text_label_per_node_of_a_20_node_graph():
    root = twenty_nodes()
    root.backward()
    nodes = topological_order(root)
    assert len(nodes) == 20
    ax = plot_graph(root)
    assert isinstance(ax, Axes)
    assert len(ax.texts) == 20
    for node, text in zip(nodes, ax.texts, strict=True):
        assert f"data {node.data:.4g}" in text.get_text()
        assert f"grad {node.grad:.4g}" in text.get_text()
    assert "out = +" in ax.texts[-1].get_text()  # the root: its label and its operation
    ax.figure.savefig(io.BytesIO(), format="png")  # renders (arrows are clipped to the boxes at draw time)


def test_one_arrow_per_input_so_a_value_used_twice_has_two():
    x = Value(3.0, label="x")
    ax = plot_graph(x * x)
    assert len(ax.texts) == 2
    assert len(arrows(ax)) == 2
    ax = plot_graph(twenty_nodes())
    assert len(arrows(ax)) == sum(len(node.parents) for node in topological_order(twenty_nodes()))


def test_every_arrow_points_from_left_to_right():
    root = twenty_nodes()
    ax = plot_graph(root)
    x_of = {
        id(node): text.get_position()[0] for node, text in zip(topological_order(root), ax.texts, strict=True)
    }
    for node in topological_order(root):
        for parent in node.parents:
            assert x_of[id(parent)] < x_of[id(node)]


def test_draws_into_a_given_axes_and_a_lone_leaf_works():
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_graph(Value(1.0, label="a") + 2, ax=left) is left
    assert plot_graph(Value(7.0), ax=right) is right
    assert len(right.texts) == 1 and not arrows(right)
    fig.savefig(io.BytesIO(), format="png")


def test_the_engine_still_imports_without_matplotlib_or_numpy():
    code = (
        "import sys, simplellm.autograd; "
        "assert 'matplotlib' not in sys.modules and 'numpy' not in sys.modules, 'imported too much'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
