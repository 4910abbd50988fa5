"""The compliance validator: every rule kind, exact offsets, tolerance of case and spacing,
verdicts, rule validation (also through the admin's full_clean) and the starter rules."""

from __future__ import annotations

import logging
import time

import pytest
from django.core.exceptions import ValidationError

from advisors.review.highlight import highlight
from agents.engine.compliance import (
    DEFAULT_RULES,
    MAX_FINDINGS_PER_RULE,
    STANDARD_DISCLAIMER,
    ComplianceResult,
    check_post,
    ensure_default_rules,
    rule_problems,
    verdict_for,
)
from agents.engine.models import ComplianceRule, RuleKind, Severity

ARN = "ARN-123456"


def rule(kind: str, value: str = "", *, name: str | None = None, severity: str = Severity.HIGH, **fields) -> ComplianceRule:
    """An unsaved rule: the validator takes rules as given, so most tests need no database."""
    return ComplianceRule(name=name or f"{kind} {value}".strip(), kind=kind, value=value, severity=severity, **fields)


def located(result: ComplianceResult, body: str) -> list[str]:
    return [body[f["start"] : f["end"]] for f in result.findings if f["start"] is not None]


def default_rules() -> list[ComplianceRule]:
    return [ComplianceRule(**spec) for spec in DEFAULT_RULES]


# --- banned phrases ----------------------------------------------------------------------------


def test_banned_phrase_is_found_at_every_occurrence_with_exact_offsets():
    body = "Guaranteed returns here. Not guaranteed? Yes: GUARANTEED RETURNS again."
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "guaranteed returns")])

    assert [(f["start"], f["end"]) for f in result.findings] == [(0, 18), (46, 64)]
    assert located(result, body) == ["Guaranteed returns", "GUARANTEED RETURNS"]


def test_banned_phrase_matches_across_line_breaks_and_runs_of_spaces():
    body = "We offer guaranteed\n   returns and\tguaranteed\u00a0returns."
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "Guaranteed  Returns")])

    assert located(result, body) == ["guaranteed\n   returns", "guaranteed\u00a0returns"]


def test_banned_phrase_matches_whole_words_only():
    body = "There is no risky shortcut, piano risks aside, and no risks either."
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "no risk")])

    assert result.findings == []
    assert result.verdict == "pass"


def test_hyphenated_phrase_matches_spaced_joined_and_dashed_spellings():
    body = "A risk-free, risk free, riskfree and risk\u2013free plan."
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "risk-free")])

    assert located(result, body) == ["risk-free", "risk free", "riskfree", "risk\u2013free"]


def test_phrase_ending_in_a_symbol_matches_before_punctuation():
    body = "It is 100% safe. Really 100%  safe!"
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "100% safe")])

    assert located(result, body) == ["100% safe", "100%  safe"]
    assert result.findings[0]["start"] == 6


def test_banned_phrase_in_devanagari_matches_whole_words():
    phrase = "गारंटीड रिटर्न"
    body = f"यह {phrase} वाली योजना है, {phrase}ों की नहीं।"
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, phrase)])

    # The second one runs on into a vowel sign: part of a longer word, not the phrase.
    assert located(result, body) == [phrase]
    assert result.findings[0]["start"] == 3


def test_offsets_stay_exact_when_lower_case_would_change_the_texts_length():
    # "İ" lower-cases to two characters; matching must still report offsets into the body as written.
    body = "İSTANBUL İ: Guaranteed Returns, guaranteed returns."
    result = check_post(
        body, title="İ guaranteed returns", arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "guaranteed returns")]
    )

    assert located(result, body) == ["Guaranteed Returns", "guaranteed returns"]
    assert result.findings[0]["start"] == 12
    assert "in the title" in result.findings[-1]["message"]


def test_generated_phrase_message_quotes_the_text_as_written():
    body = "Enjoy Assured  Returns today."
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "assured returns", name="Assured")])

    assert result.findings == [
        {"rule": "Assured", "severity": "high", "message": "Banned phrase: “Assured Returns”.", "start": 6, "end": 22}
    ]


def test_rule_message_is_used_when_the_rule_has_one():
    body = "Double your money in five years."
    result = check_post(
        body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "double your money", message="Never promise doubling.")]
    )

    assert [f["message"] for f in result.findings] == ["Never promise doubling."]


def test_banned_phrase_in_the_title_is_a_finding_without_position_that_says_so():
    body = "A calm post about asset allocation."
    result = check_post(
        body,
        title="Guaranteed returns, guaranteed returns!",
        arn=ARN,
        rules=[rule(RuleKind.BANNED_PHRASE, "guaranteed returns", severity=Severity.CRITICAL)],
    )

    assert len(result.findings) == 1
    finding = result.findings[0]
    assert (finding["start"], finding["end"]) == (None, None)
    assert "in the title" in finding["message"]
    assert "“Guaranteed returns”" in finding["message"]
    assert result.verdict == "fail"


def test_title_finding_keeps_the_rule_message_and_says_it_is_in_the_title():
    result = check_post(
        "Body.", title="Risk-free growth", arn=ARN,
        rules=[rule(RuleKind.BANNED_PHRASE, "risk-free", message="No fund is risk-free.")],
    )

    assert [f["message"] for f in result.findings] == ["No fund is risk-free. (in the title)"]


# --- banned patterns ---------------------------------------------------------------------------


def test_banned_pattern_locates_every_match_in_any_case():
    body = "Returns of 12% are likely. RETURN OF 9 % too, and returns of about 7%."
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PATTERN, r"returns? of \d+\s?%")])

    assert located(result, body) == ["Returns of 12%", "RETURN OF 9 %"]
    assert all(f["message"].startswith("Banned wording: “") for f in result.findings)


def test_banned_pattern_findings_are_capped_per_rule():
    body = "best fund " * (MAX_FINDINGS_PER_RULE + 15)
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.BANNED_PATTERN, r"best\s+fund", severity=Severity.MEDIUM)])

    assert len(result.findings) == MAX_FINDINGS_PER_RULE
    assert located(result, body) == ["best fund"] * MAX_FINDINGS_PER_RULE


@pytest.mark.parametrize(
    "pattern",
    ["(unclosed", r"x*", r"\b", r"(a+)+$", "   "],
    ids=["invalid", "matches-empty", "zero-width", "nested-repeat", "blank"],
)
def test_unusable_pattern_is_skipped_at_check_time_with_a_warning(pattern, caplog):
    # A rule can reach the table without the admin form (bulk imports, a shell): never crash.
    bad = rule(RuleKind.BANNED_PATTERN, pattern, name=f"bad {pattern!r}")
    good = rule(RuleKind.BANNED_PHRASE, "no risk", name="no risk")
    body = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa! There is no risk."

    with caplog.at_level(logging.WARNING, logger="agents.engine.compliance"):
        result = check_post(body, arn=ARN, rules=[bad, good])

    assert located(result, body) == ["no risk"]
    assert [f["rule"] for f in result.findings] == ["no risk"]
    assert any(f"bad {pattern!r}" in r.getMessage() for r in caplog.records)


# --- required disclaimer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        STANDARD_DISCLAIMER,
        "MUTUAL FUND INVESTMENTS ARE SUBJECT TO MARKET RISKS. Read all scheme-related documents carefully!",
        "Mutual fund investments are subject\n to market   risks; read all scheme related documents carefully",
        "“Mutual fund investments are subject to market risks,” read all scheme related documents carefully…",
    ],
    ids=["exact", "case-and-punctuation", "spacing", "curly-quotes"],
)
def test_disclaimer_passes_whatever_the_case_spacing_and_punctuation(written):
    body = f"Stay invested for the long run.\n\n{written}\n{ARN}"
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.REQUIRED_DISCLAIMER, STANDARD_DISCLAIMER)])

    assert result.findings == []


def test_disclaimer_with_quotes_matches_straight_or_curly_quote_style():
    disclaimer = "Read the ‘Scheme Information Document’ before you invest."
    body = "Read the 'scheme information document' before you invest."

    assert check_post(body, arn=ARN, rules=[rule(RuleKind.REQUIRED_DISCLAIMER, disclaimer)]).findings == []


def test_disclaimer_run_into_another_word_does_not_count():
    body = f"Stay invested.Read{STANDARD_DISCLAIMER.lower()}ly"

    result = check_post(body, arn=ARN, rules=[rule(RuleKind.REQUIRED_DISCLAIMER, STANDARD_DISCLAIMER.rstrip("."))])

    assert len(result.findings) == 1


@pytest.mark.parametrize(
    "written",
    [
        "Mutual fund investments are subject to market risks.",
        "Mutual fund investments are subject to market risks, read all scheme related documents",
        "Mutual fund investments are subject to market risk, read all scheme related documents carefully.",
        "",
    ],
    ids=["first-half", "last-word-cut", "word-changed", "absent"],
)
def test_truncated_or_altered_disclaimer_is_a_finding_without_position(written):
    body = f"Stay invested for the long run. {written}"
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.REQUIRED_DISCLAIMER, STANDARD_DISCLAIMER)])

    assert len(result.findings) == 1
    finding = result.findings[0]
    assert (finding["start"], finding["end"]) == (None, None)
    assert finding["message"] == f"The required disclaimer is missing: “{STANDARD_DISCLAIMER}”"
    assert result.verdict == "fail"


# --- ARN -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shown",
    [
        "ARN-123456", "ARN 123456", "ARN: 123456", "arn-123456", "Arn No. 123456", "ARN \u2013 123456",
        "(ARN:123456)", "İ ARN-123456",
    ],
)
def test_advisors_arn_passes_in_its_usual_spellings(shown):
    body = f"Talk to me before you invest. Priya Sharma, {shown}"

    assert check_post(body, arn=ARN, rules=[rule(RuleKind.ARN_REQUIRED)]).findings == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Talk to me before you invest.", "The advisor's ARN (ARN-123456) does not appear in the post."),
        ("Call 123456 today.", "The advisor's ARN (ARN-123456) does not appear in the post."),
        ("Registered: ARN-1234567.", "The post shows ARN-1234567, not the advisor's ARN (ARN-123456)."),
        ("Registered: ARN-12345.", "The post shows ARN-12345, not the advisor's ARN (ARN-123456)."),
        ("Registered: XARN-123456.", "The advisor's ARN (ARN-123456) does not appear in the post."),
    ],
    ids=["absent", "digits-alone", "longer-number", "shorter-number", "inside-a-word"],
)
def test_missing_or_wrong_arn_is_a_finding_without_position(body, expected):
    result = check_post(body, arn=ARN, rules=[rule(RuleKind.ARN_REQUIRED, name="ARN shown")])

    assert result.findings == [
        {"rule": "ARN shown", "severity": "high", "message": expected, "start": None, "end": None}
    ]


def test_advisor_without_a_known_arn_cannot_pass_the_arn_rule():
    result = check_post("ARN-123456", arn="", rules=[rule(RuleKind.ARN_REQUIRED)])

    assert [f["message"] for f in result.findings] == ["The advisor's ARN is not known, so the post cannot show it."]


# --- length ----------------------------------------------------------------------------------------


def test_length_rules_name_the_actual_length_and_the_limit():
    longest = rule(RuleKind.MAX_LENGTH, limit=1200, severity=Severity.MEDIUM, name="Longest")
    shortest = rule(RuleKind.MIN_LENGTH, limit=120, severity=Severity.LOW, name="Shortest")

    too_long = check_post("x" * 1350, arn=ARN, rules=[longest, shortest])
    too_short = check_post("x" * 80, arn=ARN, rules=[longest, shortest])

    assert too_long.findings == [
        {"rule": "Longest", "severity": "medium", "start": None, "end": None,
         "message": "The post is too long: 1,350 characters; the longest allowed is 1,200."}
    ]
    assert too_short.findings == [
        {"rule": "Shortest", "severity": "low", "start": None, "end": None,
         "message": "The post is too short: 80 characters; the shortest allowed is 120."}
    ]
    assert check_post("x" * 1200, arn=ARN, rules=[longest, shortest]).findings == []
    assert check_post("x" * 120, arn=ARN, rules=[longest, shortest]).findings == []


def test_length_rule_with_its_own_message_still_gives_the_figures():
    result = check_post("x" * 50, arn=ARN, rules=[rule(RuleKind.MIN_LENGTH, limit=120, message="Say more.")])

    assert [f["message"] for f in result.findings] == ["Say more. (50 characters; the shortest allowed is 120)"]


# --- verdicts and order ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severities", "verdict"),
    [
        ([], "pass"),
        (["low"], "warn"),
        (["medium", "low"], "warn"),
        (["high"], "fail"),
        (["low", "critical"], "fail"),
    ],
)
def test_verdict_fails_on_critical_or_high_and_warns_on_the_rest(severities, verdict):
    assert verdict_for([{"severity": s} for s in severities]) == verdict


@pytest.mark.parametrize(
    ("severity", "verdict"),
    [(Severity.LOW, "warn"), (Severity.MEDIUM, "warn"), (Severity.HIGH, "fail"), (Severity.CRITICAL, "fail")],
)
def test_check_post_gives_the_verdict_of_its_findings(severity, verdict):
    result = check_post("No risk at all.", arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "no risk", severity=severity)])

    assert result.verdict == verdict
    assert result.findings[0]["severity"] == str(severity)


def test_findings_list_located_ones_in_text_order_then_whole_post_ones():
    rules = [
        rule(RuleKind.MIN_LENGTH, limit=500, name="short"),
        rule(RuleKind.BANNED_PHRASE, "no risk", name="no risk"),
        rule(RuleKind.ARN_REQUIRED, name="arn"),
        rule(RuleKind.BANNED_PHRASE, "guaranteed returns", name="guaranteed"),
    ]
    body = "Guaranteed returns with no risk, and guaranteed returns."

    result = check_post(body, arn=ARN, rules=rules)

    assert [(f["rule"], f["start"]) for f in result.findings] == [
        ("guaranteed", 0), ("no risk", 24), ("guaranteed", 37), ("short", None), ("arn", None)
    ]


def test_findings_highlight_exactly_the_banned_text_in_the_review_queue():
    body = "Get <b>assured returns</b> & no risk."
    result = check_post(
        body, arn=ARN, rules=[rule(RuleKind.BANNED_PHRASE, "assured returns"), rule(RuleKind.BANNED_PHRASE, "no risk")]
    )

    html = highlight(body, result.findings)

    assert ">assured returns</mark>" in html
    assert ">no risk</mark>" in html
    assert "&lt;b&gt;" in html


@pytest.mark.django_db
def test_rules_default_to_the_enabled_ones_in_the_database_in_one_query(django_assert_num_queries):
    ComplianceRule.objects.create(name="On", kind=RuleKind.BANNED_PHRASE, value="no risk")
    ComplianceRule.objects.create(name="Off", kind=RuleKind.BANNED_PHRASE, value="risk-free", enabled=False)

    with django_assert_num_queries(1):
        result = check_post("No risk, risk-free.", arn=ARN)

    assert [f["rule"] for f in result.findings] == ["On"]


# --- validating rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"kind": RuleKind.BANNED_PHRASE, "value": "  "}, "value", "Enter the banned phrase"),
        ({"kind": RuleKind.BANNED_PHRASE, "value": "!!!"}, "value", "at least one letter or digit"),
        ({"kind": RuleKind.BANNED_PATTERN, "value": ""}, "value", "Enter a regular expression"),
        ({"kind": RuleKind.BANNED_PATTERN, "value": "returns (of"}, "value", "not a valid regular expression"),
        ({"kind": RuleKind.BANNED_PATTERN, "value": "(fund)?"}, "value", "empty string"),
        ({"kind": RuleKind.BANNED_PATTERN, "value": r"\s*"}, "value", "empty string"),
        ({"kind": RuleKind.BANNED_PATTERN, "value": r"(?=fund)"}, "value", "empty string"),
        ({"kind": RuleKind.BANNED_PATTERN, "value": r"(\w+\s?)*!"}, "value", "repeats a group"),
        ({"kind": RuleKind.REQUIRED_DISCLAIMER, "value": ""}, "value", "Enter the disclaimer"),
        ({"kind": RuleKind.ARN_REQUIRED, "value": "ARN-1"}, "value", "leave the value empty"),
        ({"kind": RuleKind.MAX_LENGTH, "limit": None}, "limit", "1 or more"),
        ({"kind": RuleKind.MIN_LENGTH, "limit": 0}, "limit", "1 or more"),
        ({"kind": RuleKind.BANNED_PHRASE, "value": "no risk", "limit": 5}, "limit", "Only the length rules"),
    ],
)
def test_rule_problems_names_the_field_and_what_is_wrong(fields, field, fragment):
    problems = rule_problems(ComplianceRule(name="r", **fields))

    assert field in problems
    assert fragment in problems[field]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": RuleKind.BANNED_PHRASE, "value": "guaranteed returns"},
        {"kind": RuleKind.BANNED_PATTERN, "value": r"returns? of \d+%"},
        {"kind": RuleKind.BANNED_PATTERN, "value": r"(?:\w+\s+){0,3}fund"},
        {"kind": RuleKind.REQUIRED_DISCLAIMER, "value": STANDARD_DISCLAIMER},
        {"kind": RuleKind.ARN_REQUIRED, "value": ""},
        {"kind": RuleKind.MAX_LENGTH, "limit": 1},
    ],
)
def test_rule_problems_accepts_a_usable_rule(fields):
    assert rule_problems(ComplianceRule(name="r", **fields)) == {}


def test_invalid_regex_is_a_value_error_in_full_clean():
    bad = ComplianceRule(name="Broken", kind=RuleKind.BANNED_PATTERN, value="[0-9", severity=Severity.HIGH)

    with pytest.raises(ValidationError) as caught:
        bad.full_clean()

    assert list(caught.value.message_dict) == ["value"]
    assert "not a valid regular expression" in caught.value.message_dict["value"][0]


def test_zero_length_rule_is_a_limit_error_in_full_clean():
    bad = ComplianceRule(name="Short", kind=RuleKind.MIN_LENGTH, limit=0, severity=Severity.LOW)

    with pytest.raises(ValidationError) as caught:
        bad.full_clean()

    assert "limit" in caught.value.message_dict


# --- the starter rules -----------------------------------------------------------------------------


def test_every_default_rule_is_valid():
    for spec in DEFAULT_RULES:
        assert rule_problems(ComplianceRule(**spec)) == {}, spec["name"]


def test_default_rules_pass_a_clean_post():
    body = (
        "A systematic investment plan lets you invest a fixed amount every month, buying more units when "
        "prices fall and fewer when they rise. Over time this averages out your cost. Speak to me about a "
        f"plan that suits your goals.\n\n{STANDARD_DISCLAIMER}\nPriya Sharma, {ARN}"
    )

    result = check_post(body, title="Why a SIP works", arn=ARN, rules=default_rules())

    assert result == ComplianceResult(verdict="pass", findings=[])


@pytest.mark.parametrize(
    ("claim", "rule_name", "flagged"),
    [
        ("You will earn 12% every year.", "Promised percentage return", "will earn 12%"),
        ("Earn over 11% on your savings.", "Promised percentage return", "Earn over 11%"),
        ("This fund can get you up to 15 % a year.", "Promised percentage return", "get you up to 15 %"),
        ("Enjoy 10 percent assured income.", "Promised percentage return", "10 percent assured"),
        ("It gave returns of 18% last year.", "Percentage return mentioned", "returns of 18%"),
        ("A 14.5% CAGR since launch.", "Percentage return mentioned", "14.5% CAGR"),
        ("It delivered 20% annualised returns.", "Percentage return mentioned", "20% annualised returns"),
        ("Pick the best mutual fund for you.", "Superlative claim", "the best mutual fund"),
        ("Our No. 1 scheme this year.", "Superlative claim", "No. 1 scheme"),
        ("It is a top performing ELSS fund.", "Superlative claim", "top performing ELSS fund"),
        ("Guaranteed returns for all.", "Guaranteed returns", "Guaranteed returns"),
        ("Completely risk free investing.", "Risk-free", "risk free"),
        ("Double your money by 2030.", "Double your money", "Double your money"),
    ],
)
def test_default_rules_flag_typical_claims(claim, rule_name, flagged):
    body = f"{claim} {STANDARD_DISCLAIMER} {ARN}"

    result = check_post(body, arn=ARN, rules=default_rules())

    assert (rule_name, flagged) in [(f["rule"], body[f["start"] : f["end"]]) for f in result.findings if f["start"] is not None]


@pytest.mark.parametrize(
    "sentence",
    [
        "Inflation of 6% eats into savings kept idle.",
        "Invest at least 10% of your salary every month.",
        "The fund delivered steady growth over ten years.",
        "The best time to start is today.",
    ],
)
def test_default_rules_leave_ordinary_figures_and_words_alone(sentence):
    body = f"{sentence} Talk to me about a plan that suits your goals and timelines. {STANDARD_DISCLAIMER} {ARN}"

    assert check_post(body, arn=ARN, rules=default_rules()).findings == []


def test_default_rules_check_a_hostile_long_post_quickly():
    # Long runs of digits, percentages and near-miss words are where a careless pattern backtracks.
    body = ("returns of 1234567 " + "9" * 300 + " best best best " + "% " * 200 + "earn " * 200) * 5
    rules = default_rules()

    started = time.perf_counter()
    for _ in range(20):
        check_post(body, title="earn " * 50, arn=ARN, rules=rules)

    assert time.perf_counter() - started < 2.0


@pytest.mark.django_db
def test_ensure_default_rules_creates_the_starter_set_once():
    assert ensure_default_rules() == len(DEFAULT_RULES)
    assert ensure_default_rules() == 0

    assert ComplianceRule.objects.count() == len(DEFAULT_RULES)
    disclaimer = ComplianceRule.objects.get(kind=RuleKind.REQUIRED_DISCLAIMER)
    assert disclaimer.value == STANDARD_DISCLAIMER
    assert disclaimer.severity == Severity.HIGH
    assert ComplianceRule.objects.get(kind=RuleKind.MAX_LENGTH).limit == 1200


@pytest.mark.django_db
def test_ensure_default_rules_leaves_an_admins_own_rules_alone():
    ComplianceRule.objects.create(name="Mine", kind=RuleKind.BANNED_PHRASE, value="jackpot", enabled=False)

    assert ensure_default_rules() == 0
    assert list(ComplianceRule.objects.values_list("name", flat=True)) == ["Mine"]
