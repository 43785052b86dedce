"""A scalar autograd engine in pure Python (no NumPy, no PyTorch)."""

from simplellm.autograd.engine import Value, topological_order
from simplellm.autograd.graph import draw, plot_graph, to_dot

__all__ = ["Value", "draw", "plot_graph", "to_dot", "topological_order"]
