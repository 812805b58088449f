"""Math answers judged right in LaTeX with or without delimiters, boxed or not.

The table holds the cases that were misjudged before (gold as `data=math` stores it: the bare
contents of \\boxed{}); the properties render random values several equivalent ways, which
must all match, and perturb the value, which must not.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1.rewards.accuracy import MATH_VERIFY_TIMEOUT_S, accuracy, gold_is_usable, math_equal
from r1.rewards.types import RewardSample

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same examples every run: a failure is reproducible, never flaky
)


@pytest.mark.parametrize(
    ("answer", "gold", "right"),
    [
        # the cases
        (r"2\sqrt{3}", r"2\sqrt{2}", False),
        ("2", r"2\sqrt{2}", False),
        (r"2\sqrt{2}", r"2\sqrt{2}", True),
        ("(3, 2)", "(1, 2)", False),
        ("(1, 2)", "(1, 2)", True),
        (r"\dfrac{3}{4}", r"\frac{3}{4}", True),
        (r"\pi", r"\pi", True),
        (r"\sqrt{2}", r"\sqrt{2}", True),
        (r"\frac{\pi}{2}", r"\frac{\pi}{2}", True),
        ("x^2+1", "x^2+1", True),
        # radicals, pi, fractions
        (r"\sqrt{8}", r"2\sqrt{2}", True),
        ("1.414", r"\sqrt{2}", False),
        ("3.14", r"\pi", False),
        (r"\pi/2", r"\frac{\pi}{2}", True),
        (r"\tfrac34", r"\frac{3}{4}", True),
        ("0.75", r"\frac{3}{4}", True),
        (r"\frac{1}{3}", "0.333", False),
        # tuples, intervals, sets
        (r"\left( 1, 2 \right)", "(1, 2)", True),
        ("(2, 1)", "(1, 2)", False),
        ("[0, 1)", "[0,1)", True),
        ("[0, 1]", "[0,1)", False),
        (r"(-\infty, 2]", r"(-\infty,2]", True),
        (r"\{2, 1\}", r"\{1,2\}", True),
        (r"\{1, 3\}", r"\{1,2\}", False),
        # polynomials
        ("1+x^2", "x^2+1", True),
        ("x^{2} + 1", "x^2+1", True),
        ("x^2+2", "x^2+1", False),
        # percentages, units-free numbers, decimals and fractions
        (r"50\%", r"50\%", True),
        ("50", r"50\%", True),
        ("51", r"50\%", False),
        (r"2 \text{ cm}", "2", True),
        (r"\$5", "5", True),
        ("1,000", "1000", True),
        ("0.5", "1/2", True),
        ("1/2", "0.5", True),
        ("5.", "5", True),
        ("x = 5", "5", True),
        ("-3", "3", False),
        # delimiters and boxes on either side
        (r"$\frac{1}{2}$", "0.5", True),
        (r"\boxed{\frac{1}{2}}", "0.5", True),
        (r"The answer is $\frac{1}{2}$.", r"\frac12", True),
        (r"\frac{1}{2}", r"$\frac{1}{2}$", True),
        ("0.5", r"\boxed{\dfrac{1}{2}}", True),
        (r"\boxed{2\sqrt{3}}", r"2\sqrt{2}", False),
    ],
)
def test_latex_answers_are_judged_right(answer: str, gold: str, right: bool) -> None:
    assert math_equal(answer, gold) is right


@pytest.mark.parametrize("gold", [r"\pi", r"\sqrt{2}", r"\frac{\pi}{2}", "x^2+1", r"(1, 2)", "7"])
def test_latex_golds_give_a_signal(gold: str) -> None:
    assert gold_is_usable(gold)
    sample = RewardSample(completion=f"<think>t</think><answer>{gold}</answer>", gold=gold)
    assert accuracy(sample) == 1.0


def test_an_unusable_gold_gives_no_signal() -> None:
    assert not gold_is_usable("")
    assert accuracy(RewardSample(completion="<answer>1</answer>", gold="  ")) is None


# ---- properties ----------------------------------------------------------------------

small = st.integers(min_value=1, max_value=60)
signed = st.integers(min_value=-60, max_value=60)
squarefree = st.sampled_from([2, 3, 5, 6, 7, 10, 11, 13])


def spaced(text: str, spaces: bool) -> str:
    return text.replace("{", "{ ").replace("}", " }").replace(",", " , ") if spaces else text


def delimited(text: str, how: str) -> str:
    return {
        "bare": text,
        "dollars": f"${text}$",
        "boxed": f"\\boxed{{{text}}}",
        "prose": f"So the answer is ${text}$.",
        "paren": f"\\({text}\\)",
    }[how]


delimiters = st.sampled_from(["bare", "dollars", "boxed", "prose", "paren"])


def renderings_of_fraction(value: Fraction) -> list[str]:
    p, q = value.numerator, value.denominator
    sign, p = ("-" if p < 0 else ""), abs(p)
    forms = [
        f"{sign}\\frac{{{p}}}{{{q}}}",
        f"{sign}\\dfrac{{{p}}}{{{q}}}",
        f"{sign}\\tfrac{{{p}}}{{{q}}}",
        f"{sign}{p}/{q}",
    ]
    if q == 1:
        forms += [f"{sign}{p}", f"{sign}{p}.0"]
    if 10**6 % q == 0:  # a terminating decimal
        forms.append(f"{float(value):.6f}".rstrip("0").rstrip(".") if q != 1 else f"{sign}{p}")
    return forms


@PROPERTY
@given(p=signed, q=small, pick=st.data(), spaces=st.booleans())
def test_fractions_match_in_every_printing(p: int, q: int, pick, spaces: bool) -> None:
    value = Fraction(p, q)
    forms = renderings_of_fraction(value)
    gold = pick.draw(st.sampled_from(forms))
    answer = delimited(spaced(pick.draw(st.sampled_from(forms)), spaces), pick.draw(delimiters))
    assert math_equal(answer, gold), (answer, gold)
    wrong = pick.draw(st.sampled_from(renderings_of_fraction(value + 1)))
    assert not math_equal(delimited(wrong, pick.draw(delimiters)), gold), (wrong, gold)


@PROPERTY
@given(a=st.integers(2, 9), b=squarefree, pick=st.data())
def test_radicals_match_in_every_printing(a: int, b: int, pick) -> None:
    forms = [
        f"{a}\\sqrt{{{b}}}",
        f"{a} \\sqrt{{{b}}}",
        f"\\sqrt{{{a * a * b}}}",
        f"{a}\\cdot\\sqrt{{{b}}}",
        f"\\sqrt{{{b}}} \\cdot {a}",
    ]
    gold, answer = pick.draw(st.sampled_from(forms)), pick.draw(st.sampled_from(forms))
    assert math_equal(delimited(answer, pick.draw(delimiters)), gold), (answer, gold)
    for wrong in (
        f"{a}\\sqrt{{{b + 1}}}",
        f"{a + 1}\\sqrt{{{b}}}",
        str(a),
        f"{a * math.sqrt(b):.3f}",
    ):
        assert not math_equal(delimited(wrong, pick.draw(delimiters)), gold), (wrong, gold)


@PROPERTY
@given(p=small, q=st.integers(1, 12), pick=st.data())
def test_multiples_of_pi_match(p: int, q: int, pick) -> None:
    value = Fraction(p, q)
    p, q = value.numerator, value.denominator
    forms = [
        f"\\frac{{{p}\\pi}}{{{q}}}",
        f"\\frac{{{p}}}{{{q}}}\\pi",
        f"{p}\\pi/{q}",
        f"\\dfrac{{{p} \\pi}}{{{q}}}",
    ]
    if q == 1:
        forms += [f"{p}\\pi", f"{p} \\cdot \\pi"]
    gold, answer = pick.draw(st.sampled_from(forms)), pick.draw(st.sampled_from(forms))
    assert math_equal(delimited(answer, pick.draw(delimiters)), gold), (answer, gold)
    assert not math_equal(f"\\frac{{{p + 1}\\pi}}{{{q}}}", gold)
    assert not math_equal(f"{float(value) * math.pi:.2f}", gold)  # math-verify accepts ~6 digits


@PROPERTY
@given(x=signed, y=signed, pick=st.data())
def test_tuples_intervals_and_sets(x: int, y: int, pick) -> None:
    lo, hi = sorted((x, y))
    hi += lo == hi
    kind = pick.draw(st.sampled_from(["tuple", "interval", "set"]))
    if kind == "tuple":
        forms = [f"({x},{y})", f"({x}, {y})", f"\\left( {x}, {y} \\right)"]
        wrong = [f"({x + 1}, {y})", f"({x}, {y - 1})"] + ([f"({y}, {x})"] if x != y else [])
    elif kind == "interval":
        forms = [f"[{lo},{hi})", f"[{lo}, {hi})", f"\\left[ {lo}, {hi} \\right)"]
        wrong = [f"[{lo}, {hi}]", f"({lo}, {hi})", f"[{lo - 1}, {hi})"]
    else:
        forms = [f"\\{{{lo},{hi}\\}}", f"\\{{{hi}, {lo}\\}}", f"\\left\\{{ {lo}, {hi} \\right\\}}"]
        wrong = [f"\\{{{lo}, {hi + 1}\\}}"]
    gold, answer = pick.draw(st.sampled_from(forms)), pick.draw(st.sampled_from(forms))
    assert math_equal(delimited(answer, pick.draw(delimiters)), gold), (answer, gold)
    for w in wrong:
        assert not math_equal(delimited(w, pick.draw(delimiters)), gold), (w, gold)


@PROPERTY
@given(a=st.integers(1, 9), b=signed.filter(bool), c=signed.filter(bool), pick=st.data())
def test_polynomials_match_in_any_term_order(a: int, b: int, c: int, pick) -> None:
    terms = [f"+{a}x^{{2}}", f"{b:+d}x", f"{c:+d}"]
    gold = "".join(terms).lstrip("+")
    shuffled = pick.draw(st.permutations(terms))
    answer = " ".join(t if i else t.lstrip("+") for i, t in enumerate(shuffled))
    answer = answer.replace("^{2}", pick.draw(st.sampled_from(["^2", "^{2}"])))
    assert math_equal(delimited(answer, pick.draw(delimiters)), gold), (answer, gold)
    assert not math_equal(gold.replace(f"{c:+d}", f"{c + 1:+d}"), gold)


@PROPERTY
@given(n=st.integers(1, 99), pick=st.data())
def test_percentages_and_plain_numbers(n: int, pick) -> None:
    gold = pick.draw(st.sampled_from([f"{n}\\%", f"{n}%", str(n)]))
    answer = pick.draw(
        st.sampled_from([f"{n}\\%", f"{n}%", str(n), f"{n}.0", f"\\boxed{{{n}\\%}}"])
    )
    assert math_equal(answer, gold), (answer, gold)
    assert not math_equal(f"{n + 1}\\%", gold)


# ---- adversarial answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "10^{10^{10^{10}}}",
        "9**9**9**9",
        r"2^{2^{2^{2^{2^{2}}}}}",
        "(" * 400 + "1" + ")" * 400,
        r"\frac{" * 60 + "1" + "}{2}" * 60,
        r"\sqrt{" * 100 + "2" + "}" * 100,
        "1" * 10_000,
        "x+" * 5_000 + "1",
        r"\boxed{" + "9" * 5_000 + "}",
    ],
)
def test_adversarial_answers_finish_within_the_time_limit(answer: str) -> None:
    # Parsing and comparing each have the limit. It is wall-clock (SIGALRM), so it can only
    # fire earlier in CPU time on a busy machine: CPU seconds make the check independent of
    # what else runs, and an answer that hangs in C code past the alarm still fails it.
    start = time.process_time()
    assert not math_equal(answer, r"2\sqrt{2}")
    assert time.process_time() - start < 2 * MATH_VERIFY_TIMEOUT_S + 1


def test_math_verify_does_not_warn_that_its_own_time_limit_is_off(monkeypatch, caplog) -> None:
    # Off a main thread (and in reward workers) r1 turns math-verify's SIGALRM limit off and
    # bounds the call itself; math-verify's once-per-process warning would tell users otherwise.
    import threading

    import math_verify.grader
    import math_verify.parser

    monkeypatch.setattr(math_verify.parser, "TIMEOUT_WARNING_SHOWN", False)
    monkeypatch.setattr(math_verify.grader, "TIMEOUT_WARNING_SHOWN", False, raising=False)
    results = []
    thread = threading.Thread(target=lambda: results.append(math_equal("\\frac{1}{2}", "0.5")))
    with caplog.at_level("WARNING"):
        thread.start()
        thread.join()
    assert results == [True]
    assert not [r for r in caplog.records if "Timeout is disabled" in r.getMessage()]
