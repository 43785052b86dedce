"""The contract every language keeps (DESIGN.md): grammar(name, **params), config, alphabet, sample,
is_valid, logprob, and ValueErrors that say what is allowed."""

import ast
import json
import math
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import simplellm.data
from simplellm.data import GRAMMARS, Estimate, Grammar, grammar, language_parameters

LANGUAGES = [
    ("sticky", dict(n=3)),
    ("sticky", dict(n=2, strict=True, min_len=2, max_len=40, p_stop=0.25, p_switch=0.75)),
    ("counting", dict(n=3)),
    ("counting", dict(n=1, max_count=10)),
    ("arithmetic", dict(n=2)),
    ("arithmetic", dict(n=3, reverse_answer=True)),
]


def test_the_languages():
    assert GRAMMARS == ("arithmetic", "counting", "sticky")
    for name in GRAMMARS:
        g = grammar(name)
        assert isinstance(g, Grammar) and g.name == name


@pytest.mark.parametrize("name, params", LANGUAGES)
def test_config_rebuilds_an_equal_language_and_survives_json(name, params):
    g = grammar(name, **params)
    assert g.config["name"] == name
    again = grammar(**json.loads(json.dumps(g.config)))
    assert again == g and hash(again) == hash(g)
    assert grammar(g.config["name"], **{k: v for k, v in g.config.items() if k != "name"}) == g
    assert again != grammar(name, **{**params, "n": params["n"] + 1})
    # the rebuilt language is the same distribution: same samples from the same seed
    assert [again.sample(random.Random(5)) for _ in range(3)] == [
        g.sample(random.Random(5)) for _ in range(3)
    ]


@pytest.mark.parametrize("name, params", LANGUAGES)
def test_alphabet_is_sorted_and_covers_every_sample(name, params):
    g = grammar(name, **params)
    assert g.alphabet == "".join(sorted(set(g.alphabet)))
    rng = random.Random(0)
    seen = set()
    for _ in range(3000):
        seen.update(g.sample(rng))
    assert seen == set(g.alphabet)  # every character it lists is one it emits


@pytest.mark.parametrize("name, params", LANGUAGES)
def test_samples_are_reproducible_from_the_rng(name, params):
    g = grammar(name, **params)
    a, b = random.Random(42), random.Random(42)
    assert [g.sample(a) for _ in range(50)] == [g.sample(b) for _ in range(50)]


@pytest.mark.parametrize("name, params", LANGUAGES)
def test_is_valid_answers_anything_and_logprob_rejects_non_strings(name, params):
    g = grammar(name, **params)
    for thing in (None, 3, b"1+1=2", ["a"], 1.5):
        assert g.is_valid(thing) is False
        with pytest.raises(TypeError):
            g.logprob(thing)


@pytest.mark.parametrize("name, params", LANGUAGES)
def test_logprob_is_a_log_probability(name, params):
    g = grammar(name, **params)
    rng = random.Random(1)
    for _ in range(200):
        lp = g.logprob(g.sample(rng))
        assert -math.inf < lp <= 0.0


@pytest.mark.parametrize("name, params", LANGUAGES)
def test_estimates_are_exact_where_the_language_can_sum(name, params):
    g = grammar(name, **params)
    rate = g.entropy_rate()
    assert rate.exact and rate.stderr == 0.0 and 0 < rate.value < math.log(len(g.alphabet) + 1)
    novelty = g.ideal_novelty(1000)
    assert novelty.exact and 0.0 <= novelty.value <= 1.0


def test_estimate_prints_its_uncertainty():
    assert f"{Estimate(1.23456):.3f}" == "1.235"
    assert f"{Estimate(1.23456, 0.0012, exact=False):.3f}" == "1.235 ± 0.001"
    assert float(Estimate(2.5)) == 2.5
    assert str(Estimate(0.5, 0.01, exact=False)) == "0.5 ± 0.01"


def test_the_monte_carlo_defaults_of_the_base_class():
    # A language that only samples and scores still gets its numbers, as estimates with an error.
    @dataclass(frozen=True)
    class Coin(Grammar):
        name = "coin"
        alphabet = "HT"

        def sample(self, rng):
            return rng.choice("HT")

        def logprob(self, s):
            return math.log(0.5) if s in ("H", "T") else -math.inf

    rate = Coin().entropy_rate()
    assert not rate.exact and rate.value == pytest.approx(math.log(2) / 2, abs=1e-12) and rate.stderr < 1e-9
    novelty = Coin().ideal_novelty(1)
    assert not novelty.exact and novelty.value == pytest.approx(0.5)
    assert Coin().config == {"name": "coin"} and Coin().max_length() is None and Coin().support_size() is None
    with pytest.raises(ValueError, match="infinite"):
        next(iter(Coin().enumerate_support()))


BAD = [
    (("nonsense",), {}, "unknown language 'nonsense'; choose one of: arithmetic, counting, sticky"),
    (("sticky",), dict(n=0), "n must be an integer >= 1, got 0"),
    (("sticky",), dict(n=2.5), "n must be an integer >= 1, got 2.5"),
    (("sticky",), dict(n=True), "n must be an integer >= 1, got True"),
    (("sticky",), dict(n="3"), "n must be an integer >= 1, got '3'"),
    (("sticky",), dict(strict="yes"), "strict must be True or False"),
    (("sticky",), dict(p_stop=0.0), "p_stop must be > 0 when max_len is None"),
    (("sticky",), dict(p_stop=1.5), "p_stop must be a probability between 0 and 1"),
    (("sticky",), dict(p_switch=-0.1), "p_switch must be a probability between 0 and 1"),
    (("sticky",), dict(p_switch=math.nan), "p_switch must be a probability between 0 and 1"),
    (("sticky",), dict(min_len=0), "min_len must be an integer >= 1"),
    (("sticky",), dict(min_len=5, max_len=4), "max_len must be an integer >= min_len (5), got 4"),
    (("sticky",), dict(max_count=3), "sticky does not take max_count; its parameters are: n=3, strict=False"),
    (("counting",), dict(n=0), "n must be an integer in [1, 100], got 0"),
    (("counting",), dict(n=101), "n must be an integer in [1, 100], got 101"),
    (("counting",), dict(max_count=1), "max_count must be an integer >= 2, got 1"),
    (("counting",), dict(n=1, max_count=11), "max_count must be at most 10**n = 10"),
    (("counting",), dict(strict=True), "counting does not take strict; its parameters are: n=3, max_count=8"),
    (("arithmetic",), dict(n=-1), "n must be an integer in [1, 100], got -1"),
    (("arithmetic",), dict(reverse_answer=1), "reverse_answer must be True or False, got 1"),
]


@pytest.mark.parametrize("args, params, message", BAD, ids=[m[:40] for *_, m in BAD])
def test_bad_parameters_say_what_is_allowed(args, params, message):
    with pytest.raises(ValueError) as error:
        grammar(*args, **params)
    assert message in str(error.value)


def test_language_parameters_lists_the_defaults():
    assert language_parameters("counting") == {"n": 3, "max_count": 8}
    assert language_parameters("arithmetic") == {"n": 2, "reverse_answer": False}
    assert language_parameters("sticky") == dict(
        n=3, strict=False, p_stop=0.0625, p_switch=0.5, min_len=1, max_len=None
    )


def test_probabilities_given_as_integers_make_the_same_config():
    assert grammar("sticky", p_switch=1).config == grammar("sticky", p_switch=1.0).config
    assert isinstance(grammar("sticky", p_switch=1).config["p_switch"], float)


def test_the_tier_is_pure_standard_library():
    # Static: every import in simplellm/data is the standard library or simplellm.data itself.
    package = Path(simplellm.data.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("simplellm.data"), f"{path}: {name}"
    # Dynamic: importing the tier and using it loads no torch, no numpy, no other tier.
    code = (
        "import sys, random; from simplellm.data import grammar; "
        "g = grammar('sticky'); g.sample(random.Random(0)); g.entropy_rate(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy') "
        "or (m.startswith('simplellm.') and not m.startswith('simplellm.data'))))"
    )
    root = Path(simplellm.data.__file__).parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
