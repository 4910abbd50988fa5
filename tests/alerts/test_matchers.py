"""Label matchers: the syntax rules, silences, routing and maintenance windows share."""

from __future__ import annotations

import pytest

from alerts.matchers import MatcherError, equality_labels, format_matchers, matches_all, parse_matchers


def test_the_four_operators_match_as_in_prometheus():
    labels = {"status": "failed", "host": "web-1"}

    assert matches_all('status="failed"', labels)
    assert not matches_all('status!="failed"', labels)
    assert matches_all('status=~"fail.*|timed_out"', labels)
    assert not matches_all('host!~"web-.*"', labels)


def test_a_regular_expression_must_match_the_whole_value():
    assert not matches_all('host=~"web"', {"host": "web-1"})
    assert matches_all('host=~"web.*"', {"host": "web-1"})


def test_a_missing_label_counts_as_empty():
    assert matches_all('team=""', {"host": "a"})
    assert not matches_all('team="ops"', {"host": "a"})
    assert matches_all('team!="ops"', {"host": "a"})


def test_an_empty_list_matches_everything_and_braces_are_accepted():
    assert matches_all("", {"a": "b"})
    assert parse_matchers('{a="1", b!="2"}') == parse_matchers('a="1",b!="2"')


def test_quotes_and_backslashes_survive_a_round_trip():
    labels = {"message": 'say "hi"\\now', "host": "a b"}

    assert matches_all(format_matchers(labels), labels)


def test_bare_values_are_allowed():
    assert parse_matchers("severity=critical, host!=a")[0].value == "critical"


@pytest.mark.parametrize("text, where", [
    ("status", "status"),
    ('status=="x"', "="),
    ('host=~"(unclosed"', "invalid regular expression"),
    ('1abc="x"', "1abc"),
])
def test_bad_matchers_say_what_is_wrong(text, where):
    with pytest.raises(MatcherError) as caught:
        parse_matchers(text)

    assert where in str(caught.value)


def test_equality_labels_narrow_a_lookup():
    assert equality_labels('a="1", b!="2", c=~"3"') == {"a": "1"}
