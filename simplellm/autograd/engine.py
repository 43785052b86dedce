"""A scalar reverse-mode automatic differentiation engine.

Every arithmetic operation on a ``Value`` makes a new node that remembers its inputs (``_prev``),
the name of the operation (``_op``) and the function that sends the output's gradient back to the
inputs (``_backward``). ``backward()`` visits the graph in reverse topological order and applies the
chain rule once per node.

Two engineering choices make this engine fast and unbreakable, and are worth a learner's attention:

* The backward rules are plain module-level functions that receive the node, not closures created
  inside each operation. A closure that refers to its own output node is a reference cycle; with
  thousands of nodes per step Python's cycle collector keeps rescanning the whole graph.
  Without cycles, reference counting frees a graph as soon as the last name for it goes away.
* The topological sort uses an explicit stack, so a chain of 100,000 nodes needs no recursion.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable

_LOG_MAX_FLOAT = math.log(1.7976931348623157e308)  # about 709.78: exp() above this overflows float64


class Value:
    """A scalar that remembers how it was computed, so that gradients can flow back to its inputs.

    ``backward()`` follows PyTorch's convention: gradients *accumulate* into ``.grad`` of leaf
    values (values you created yourself), so call ``zero_grad`` (or set ``v.grad = 0.0``) between
    steps. A second ``backward()`` on the same graph adds the same gradient again, exactly as
    ``torch.Tensor.backward(retain_graph=True)`` does. The ``.grad`` of an intermediate node holds
    the gradient from the most recent ``backward()`` only.
    """

    __slots__ = ("data", "grad", "_prev", "_op", "_backward", "_aux", "label")

    # Tells NumPy not to treat a Value as an array element: ``np.float32(2) * v`` then falls back
    # to ``v.__rmul__`` and returns a Value instead of a 0-d object array.
    __array_ufunc__ = None

    def __init__(self, data: float, label: str = "") -> None:
        self.data = _number(data, "Value")
        self.grad = 0.0
        self._prev: tuple[Value, ...] = ()
        self._op = ""
        self._backward: Callable[[Value], None] | None = None
        self.label = label

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _node(data: float, prev: tuple[Value, ...], op: str, backward: Callable[[Value], None]) -> Value:
        out = _new_value(Value)
        out.data = data
        out.grad = 0.0
        out._prev = prev
        out._op = op
        out._backward = backward
        out.label = ""
        return out

    # ------------------------------------------------------------------ binary operations
    def __add__(self, other: Value | float) -> Value:
        other = other if type(other) is Value else _constant(other, "+")
        return Value._node(self.data + other.data, (self, other), "+", _add_backward)

    def __mul__(self, other: Value | float) -> Value:
        other = other if type(other) is Value else _constant(other, "*")
        return Value._node(self.data * other.data, (self, other), "*", _mul_backward)

    def __truediv__(self, other: Value | float) -> Value:
        other = other if type(other) is Value else _constant(other, "/")
        if other.data == 0.0:
            raise ZeroDivisionError(f"/: division of {self.data!r} by zero")
        return Value._node(self.data / other.data, (self, other), "/", _div_backward)

    def __pow__(self, exponent: float) -> Value:
        if isinstance(exponent, Value):
            raise TypeError("**: the exponent must be a number, not a Value (write (k * x.log()).exp())")
        k = _number(exponent, "**")
        x = self.data
        if x == 0.0 and k < 0:
            raise ZeroDivisionError(f"**: 0.0 ** {k!r} divides by zero")
        if x < 0.0 and not float(k).is_integer():
            raise ValueError(f"**: {x!r} ** {k!r} is not a real number (negative base, fractional exponent)")
        try:
            data = x**k
        except OverflowError:
            raise OverflowError(f"**: {x!r} ** {k!r} overflows float64") from None
        out = Value._node(float(data), (self,), f"**{k:g}", _pow_backward)
        out._aux = k
        return out

    def __sub__(self, other: Value | float) -> Value:
        other = other if type(other) is Value else _constant(other, "-")
        return Value._node(self.data - other.data, (self, other), "-", _sub_backward)

    def __neg__(self) -> Value:
        return Value._node(-self.data, (self,), "neg", _neg_backward)

    # Reflected operations: ``2 * v`` and ``1 - v`` reach these after ``int.__mul__`` gives up.
    def __radd__(self, other: float) -> Value:
        return _constant(other, "+") + self

    def __rmul__(self, other: float) -> Value:
        return _constant(other, "*") * self

    def __rsub__(self, other: float) -> Value:
        return _constant(other, "-") - self

    def __rtruediv__(self, other: float) -> Value:
        return _constant(other, "/") / self

    def __rpow__(self, other: float) -> Value:
        raise TypeError("**: a Value in the exponent is not supported; write (v * math.log(k)).exp()")

    # ------------------------------------------------------------------ unary functions
    def exp(self) -> Value:
        x = self.data
        if x > _LOG_MAX_FLOAT:
            raise OverflowError(f"exp: exp({x!r}) overflows float64 (largest argument {_LOG_MAX_FLOAT:.2f})")
        return Value._node(math.exp(x), (self,), "exp", _exp_backward)

    def log(self) -> Value:
        x = self.data
        if not x > 0.0:  # also catches nan
            raise ValueError(f"log: log({x!r}) is undefined; log needs a positive number")
        return Value._node(math.log(x), (self,), "log", _log_backward)

    def tanh(self) -> Value:
        # math.tanh saturates cleanly (tanh(400) == 1.0); the textbook (e^2x - 1)/(e^2x + 1) overflows.
        return Value._node(math.tanh(self.data), (self,), "tanh", _tanh_backward)

    def relu(self) -> Value:
        x = self.data
        return Value._node(x if x > 0.0 else 0.0, (self,), "relu", _relu_backward)

    def sigmoid(self) -> Value:
        x = self.data
        # Only ever exponentiate a non-positive number, so neither branch can overflow.
        if x >= 0.0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        return Value._node(s, (self,), "sigmoid", _sigmoid_backward)

    # ------------------------------------------------------------------ n-ary operations
    @staticmethod
    def sum(values: Iterable[Value | float]) -> Value:
        """One node for ``v1 + v2 + ... + vn``: same value and gradients as chained ``+``, fewer nodes."""
        prev = tuple(v if type(v) is Value else _constant(v, "sum") for v in values)
        data = 0.0
        for v in prev:  # left to right, so the result is bit-identical to chained +
            data += v.data
        return Value._node(data, prev, "sum", _sum_backward)

    @staticmethod
    def dot(weights: Iterable[Value], inputs: Iterable[Value | float]) -> Value:
        """One node for ``w1*x1 + ... + wn*xn``, the heart of a neuron.

        Same value and gradients as the chain of ``*`` and ``+`` it replaces, in 1 node instead of 2n.
        """
        w = tuple(weights)
        x = tuple(v if type(v) is Value else _constant(v, "dot") for v in inputs)
        if len(w) != len(x):
            raise ValueError(f"dot: {len(w)} weights but {len(x)} inputs")
        data = 0.0
        for wi, xi in zip(w, x, strict=True):
            data += wi.data * xi.data
        return Value._node(data, w + x, "dot", _dot_backward)

    # ------------------------------------------------------------------ backward pass
    def backward(self) -> None:
        """Add d(self)/d(leaf) to ``.grad`` of every leaf that ``self`` depends on.

        Leaves accumulate across calls (as in PyTorch); intermediate nodes are reset first, so
        their ``.grad`` is the gradient of this call alone.
        """
        order = topological_order(self)
        for node in order:
            if node._prev:
                node.grad = 0.0
        self.grad += 1.0
        for node in reversed(order):
            backward = node._backward
            if backward is not None:
                backward(node)

    # ------------------------------------------------------------------ display
    @property
    def op(self) -> str:
        """The operation that made this value ('' for a leaf)."""
        return self._op

    @property
    def parents(self) -> tuple[Value, ...]:
        """The values this one was computed from."""
        return self._prev

    def __repr__(self) -> str:
        parts = [f"{self.data:.6g}", f"grad={self.grad:.6g}"]
        if self._op:
            parts.append(f"op={self._op!r}")
        if self.label:
            parts.append(f"label={self.label!r}")
        return f"Value({', '.join(parts)})"


_new_value = object.__new__


def topological_order(root: Value) -> list[Value]:
    """Every node that ``root`` depends on, each after all of its inputs (iterative depth-first search)."""
    order: list[Value] = []
    visited: set[Value] = set()
    stack: list[tuple[Value, bool]] = [(root, False)]
    push = stack.append
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        push((node, True))
        for parent in node._prev:
            if parent not in visited:
                push((parent, False))
    return order


def _number(x: object, op: str) -> float:
    if isinstance(x, (int, float)) or (isinstance(x, numbers.Real) and not isinstance(x, Value)):
        return float(x)
    raise TypeError(f"{op}: unsupported operand of type {type(x).__name__!r}; use a Value, int or float")


def _constant(x: object, op: str) -> Value:
    """A leaf for a Python or NumPy number on the other side of an operator."""
    if type(x) is Value:
        return x
    return Value(_number(x, op))


# --------------------------------------------------------------------------- backward rules
# Each rule receives the output node and adds (local derivative * out.grad) into its inputs.
# "+=" rather than "=" is what makes a value used twice (x * x) receive both contributions.


def _add_backward(out: Value) -> None:
    a, b = out._prev
    a.grad += out.grad
    b.grad += out.grad


def _sub_backward(out: Value) -> None:
    a, b = out._prev
    a.grad += out.grad
    b.grad -= out.grad


def _mul_backward(out: Value) -> None:
    a, b = out._prev
    a.grad += b.data * out.grad
    b.grad += a.data * out.grad


def _div_backward(out: Value) -> None:
    a, b = out._prev
    a.grad += out.grad / b.data
    b.grad -= out.grad * a.data / (b.data * b.data)


def _neg_backward(out: Value) -> None:
    out._prev[0].grad -= out.grad


def _pow_backward(out: Value) -> None:
    (a,) = out._prev
    k = out._aux
    if k == 0.0:
        return
    if a.data == 0.0 and k < 1.0:
        raise ZeroDivisionError(f"**: the derivative of x ** {k:g} at x = 0 is infinite")
    a.grad += k * a.data ** (k - 1.0) * out.grad


def _exp_backward(out: Value) -> None:
    out._prev[0].grad += out.data * out.grad


def _log_backward(out: Value) -> None:
    a = out._prev[0]
    a.grad += out.grad / a.data


def _tanh_backward(out: Value) -> None:
    out._prev[0].grad += (1.0 - out.data * out.data) * out.grad


def _relu_backward(out: Value) -> None:
    if out.data > 0.0:
        out._prev[0].grad += out.grad


def _sigmoid_backward(out: Value) -> None:
    s = out.data
    out._prev[0].grad += s * (1.0 - s) * out.grad


def _sum_backward(out: Value) -> None:
    g = out.grad
    for v in out._prev:
        v.grad += g


def _dot_backward(out: Value) -> None:
    g = out.grad
    prev = out._prev
    n = len(prev) // 2
    for i in range(n):
        w = prev[i]
        x = prev[n + i]
        w.grad += x.data * g
        x.grad += w.data * g
