"""How fast is the scalar engine, and what makes it so?

``python -m benchmarks.autograd_engine``

1. The MLP recipe: a 2-16-16-1 ReLU MLP on 100 two-moons points, max-margin (hinge) loss plus L2,
   100 full-batch SGD steps. Seconds per step and graph nodes per second, for
   * our engine with ``Value.dot`` neurons (what ``simplellm.nn.stage1_value`` uses),
   * our engine with textbook neurons, ``sum(wi * xi) + b`` as separate ``*`` and ``+`` nodes,
   * a closure-based engine (the common teaching design, written here to be measured) in which each
     op's backward is a closure that refers to its own output node: a reference cycle per node.
2. A deep chain: 100,000 nodes, forward and backward.
3. Overhead per operation against plain Python floats on the same expression.

Every comparison is measured in this one run, on the same data; each figure is the median of
several repeats. Results are machine-dependent: read the ratios.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time

from simplellm.autograd import Value, topological_order
from simplellm.nn import make_moons
from simplellm.nn.stage1_value import MLP


class ClosureValue:
    """The design we did not choose, kept minimal to measure its cost.

    ``_backward`` is a closure over ``out``, and ``out`` holds the closure: every node is a
    reference cycle, so no graph is freed until the cycle collector finds it, and the collector
    is triggered again and again by the allocations of the next step.
    """

    __slots__ = ("data", "grad", "_prev", "_backward")

    def __init__(self, data, _prev=()):
        self.data = data
        self.grad = 0.0
        self._prev = _prev
        self._backward = None

    def __add__(self, other):
        other = other if isinstance(other, ClosureValue) else ClosureValue(other)
        out = ClosureValue(self.data + other.data, (self, other))

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    __radd__ = __add__

    def __mul__(self, other):
        other = other if isinstance(other, ClosureValue) else ClosureValue(other)
        out = ClosureValue(self.data * other.data, (self, other))

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def relu(self):
        out = ClosureValue(self.data if self.data > 0 else 0.0, (self,))

        def _backward():
            self.grad += (out.data > 0) * out.grad

        out._backward = _backward
        return out

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p in node._prev)
        self.grad = 1.0
        for node in reversed(order):
            if node._backward is not None:
                node._backward()


def moons_data(seed: int = 0) -> tuple[list[list[float]], list[float]]:
    X, labels = make_moons(100, noise=0.1, seed=seed)
    return X, [2.0 * t - 1.0 for t in labels]


def dot_forward(model: MLP, x):
    return model(x)


def textbook_forward(model: MLP, x):
    """The same network, with each neuron as a chain of 2n separate ``*`` and ``+`` nodes."""
    for i, layer in enumerate(model.layers):
        outs = []
        for neuron in layer.neurons:
            act = neuron.b
            for wi, xi in zip(neuron.w, x, strict=True):
                act = act + wi * xi
            outs.append(act.relu() if i < len(model.layers) - 1 else act)
        x = outs
    return x[0]


def closure_model(model: MLP):
    """A copy of ``model``'s weights as ClosureValues: (weights, biases) per layer."""
    return [
        (
            [[ClosureValue(w.data) for w in n.w] for n in layer.neurons],
            [ClosureValue(n.b.data) for n in layer.neurons],
        )
        for layer in model.layers
    ]


def closure_forward(layers, x):
    for i, (weights, biases) in enumerate(layers):
        outs = []
        for row, b in zip(weights, biases, strict=True):
            act = b
            for wi, xi in zip(row, x, strict=True):
                act = act + wi * xi
            outs.append(act.relu() if i < len(layers) - 1 else act)
        x = outs
    return x[0]


def train_mlp(variant: str, steps: int, seed: int = 0) -> dict:
    """The recipe; returns per-step seconds, nodes per step and the final accuracy."""
    X, y = moons_data(seed)
    model = MLP(2, [16, 16, 1], seed=seed)
    if variant == "closure":
        layers = closure_model(model)
        params = [p for weights, biases in layers for row in weights for p in row] + [
            b for _, biases in layers for b in biases
        ]
        forward = lambda x: closure_forward(layers, x)  # noqa: E731
    else:
        params = model.parameters()
        fwd = dot_forward if variant == "dot" else textbook_forward
        forward = lambda x: fwd(model, x)  # noqa: E731
    times, nodes = [], 0
    for k in range(steps):
        start = time.perf_counter()
        scores = [forward(x) for x in X]
        hinge = sum(((1 + -yi * s).relu() for yi, s in zip(y, scores, strict=True)), 0.0) * (1.0 / len(X))
        loss = hinge + 1e-4 * sum((p * p for p in params), 0.0)
        for p in params:
            p.grad = 0.0
        loss.backward()
        lr = 1.0 - 0.9 * k / steps
        for p in params:
            p.data -= lr * p.grad
        times.append(time.perf_counter() - start)
        if k == 0 and variant != "closure":
            nodes = len(topological_order(loss))
    accuracy = sum((s.data > 0) == (yi > 0) for s, yi in zip(scores, y, strict=True)) / len(y)
    return {
        "seconds_per_step": statistics.median(times),
        "nodes": nodes,
        "accuracy": accuracy,
        "steps": steps,
    }


def train_mlp_without_gc(variant: str, steps: int) -> dict:
    """The same, with Python's cycle collector paused: what is left of the cost is our own work."""
    gc.disable()
    try:
        return train_mlp(variant, steps)
    finally:
        gc.enable()


def deep_chain(n: int = 100_000) -> dict:
    start = time.perf_counter()
    x = Value(0.5)
    y = x
    for _ in range(n):
        y = (y * 0.999999).tanh()
    forward = time.perf_counter() - start
    start = time.perf_counter()
    y.backward()
    backward = time.perf_counter() - start
    return {"nodes": 2 * n + 1, "forward_s": forward, "backward_s": backward, "grad": x.grad}


def expression(a, b, c):
    """Twelve operations on three inputs, written once for floats and Values alike."""
    d = a * b + c
    e = d * d - a / (b + 2.0)
    return (e * 0.5 + d) * (c - 1.0) + e * a


def per_op_overhead(repeats: int = 20000) -> dict:
    start = time.perf_counter()
    for i in range(repeats):
        expression(1.5 + i * 1e-9, -0.5, 2.0)
    plain = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for i in range(repeats):
        expression(Value(1.5 + i * 1e-9), Value(-0.5), Value(2.0))
    forward = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for i in range(repeats):
        expression(Value(1.5 + i * 1e-9), Value(-0.5), Value(2.0)).backward()
    both = (time.perf_counter() - start) / repeats
    ops = 12
    return {
        "plain_ns_per_op": plain / ops * 1e9,
        "forward_ns_per_op": forward / ops * 1e9,
        "forward_backward_ns_per_op": both / ops * 1e9,
    }


def run(steps: int = 100, compare_steps: int = 10, repeats: int = 3, chain: int = 100_000) -> list[dict]:
    """Each measurement ``repeats`` times; the median of each figure is reported."""

    def median_of(fn, *args):
        results = [fn(*args) for _ in range(repeats)]
        return {
            key: statistics.median(r[key] for r in results)
            if isinstance(results[0][key], float)
            else results[0][key]
            for key in results[0]
        }

    gc.collect()
    ours = median_of(train_mlp, "dot", steps)
    textbook = median_of(train_mlp, "textbook", compare_steps)
    closure = median_of(train_mlp, "closure", compare_steps)
    textbook_no_gc = median_of(train_mlp_without_gc, "textbook", compare_steps)
    chain = median_of(deep_chain, chain)
    overhead = median_of(per_op_overhead)
    rows = [
        {
            "benchmark": "MLP recipe, Value.dot neurons (stage 1)",
            "s/step": ours["seconds_per_step"],
            "nodes/step": ours["nodes"],
            "nodes/s": ours["nodes"] / ours["seconds_per_step"],
            "note": f"{ours['steps']} steps, train accuracy {ours['accuracy']:.0%}; target < 0.1 s/step",
        },
        {
            "benchmark": "MLP recipe, textbook neurons",
            "s/step": textbook["seconds_per_step"],
            "nodes/step": textbook["nodes"],
            "nodes/s": textbook["nodes"] / textbook["seconds_per_step"],
            "note": f"{textbook['seconds_per_step'] / ours['seconds_per_step']:.1f}x the dot version",
        },
        {
            "benchmark": "MLP recipe, textbook neurons, cycle collector paused",
            "s/step": textbook_no_gc["seconds_per_step"],
            "nodes/step": textbook_no_gc["nodes"],
            "nodes/s": textbook_no_gc["nodes"] / textbook_no_gc["seconds_per_step"],
            "note": "no cycles to find, yet the collector still scans live nodes: "
            f"{textbook['seconds_per_step'] / textbook_no_gc['seconds_per_step']:.1f}x of the time",
        },
        {
            "benchmark": "MLP recipe, closure engine (reference cycles)",
            "s/step": closure["seconds_per_step"],
            "nodes/step": textbook["nodes"],
            "nodes/s": textbook["nodes"] / closure["seconds_per_step"],
            "note": f"{closure['seconds_per_step'] / textbook['seconds_per_step']:.1f}x the textbook "
            "version on our engine",
        },
        {
            "benchmark": f"deep chain, {chain['nodes'] // 2:,} tanh(x*c) steps",
            "s/step": chain["forward_s"] + chain["backward_s"],
            "nodes/step": chain["nodes"],
            "nodes/s": chain["nodes"] / chain["backward_s"],
            "note": f"forward {chain['forward_s']:.3f} s, backward {chain['backward_s']:.3f} s, no recursion",
        },
        {
            "benchmark": "per-op overhead vs plain floats",
            "s/step": float("nan"),
            "nodes/step": 12,
            "nodes/s": 1e9 / overhead["forward_backward_ns_per_op"],
            "note": (
                f"floats {overhead['plain_ns_per_op']:.0f} ns/op; Value forward "
                f"{overhead['forward_ns_per_op']:.0f} ns/op "
                f"({overhead['forward_ns_per_op'] / overhead['plain_ns_per_op']:.0f}x); forward+backward "
                f"{overhead['forward_backward_ns_per_op']:.0f} ns/op"
            ),
        },
    ]
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| benchmark | s/step | graph nodes | nodes/s (backward for the chain) | note |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        s = "" if math.isnan(r["s/step"]) else f"{r['s/step']:.4f}"
        lines.append(f"| {r['benchmark']} | {s} | {r['nodes/step']:,} | {r['nodes/s']:,.0f} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=100, help="SGD steps of the recipe on our engine")
    parser.add_argument("--compare-steps", type=int, default=10, help="steps for the slower variants")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per figure (median reported)")
    args = parser.parse_args(argv)
    print(markdown(run(args.steps, args.compare_steps, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
