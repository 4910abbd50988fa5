"""The fatigue checker's similarity: identical, near-duplicate, same-topic and unrelated posts,
Indian scripts, ignored boiler-plate, the closest of the recent posts, and empty inputs."""

from __future__ import annotations

import itertools

import pytest

from agents.engine.fatigue import most_similar, similarity, words

DISCLAIMER = "Mutual fund investments are subject to market risks, read all scheme related documents carefully."
ARN = "ARN-123456"

SIP = (
    "Starting a SIP early is the simplest way to build wealth. When you invest a fixed amount every month, "
    "you buy more units when markets fall and fewer when they rise, which lowers your average cost over time. "
    "Many investors wait for the right moment, but time in the market matters more than timing the market. "
    "A monthly SIP of five thousand rupees started at twenty-five can grow into a meaningful retirement corpus. "
    "Review your goals once a year, step up the amount when your income grows, and stay invested through the "
    "ups and downs."
)
SIP_NEAR_COPY = (
    SIP.replace("simplest", "easiest")
    .replace("A monthly SIP", "A regular SIP")
    .replace("meaningful", "large")
    .replace("once a year", "every year")
)
SIP_REWRITTEN = (
    "Why should you begin investing through systematic plans as soon as possible? Regular monthly investing "
    "averages out the purchase price of your units across market cycles. Rather than trying to predict highs and "
    "lows, let discipline and compounding work for you. Even small amounts, invested consistently for decades, add "
    "up to a large retirement fund. Increase your contribution whenever your salary rises."
)
INSURANCE = (
    "Term insurance protects your family if something happens to you. Buy a cover of at least ten times your annual "
    "income, choose a policy term that lasts until your children are independent, and disclose your health history "
    "honestly so claims are paid without dispute. Compare claim settlement ratios before choosing an insurer."
)
TAX = (
    "ELSS schemes qualify for deduction under section 80C and carry the shortest lock-in among tax-saving options, "
    "three years. File your declaration with your employer before the deadline, and keep the statement handy "
    "when you submit proofs in January."
)

HINDI_SIP = (
    "म्यूचुअल फंड में नियमित निवेश से लंबी अवधि में संपत्ति बनती है। हर महीने एसआईपी करें और बाज़ार के "
    "उतार-चढ़ाव से न घबराएं। जल्दी शुरुआत करने से चक्रवृद्धि का लाभ ज़्यादा मिलता है और लक्ष्य आसानी से पूरे होते हैं।"
)
HINDI_SIP_NEAR_COPY = HINDI_SIP.replace("संपत्ति", "धन").replace("आसानी से", "समय पर")
HINDI_INSURANCE = (
    "टर्म बीमा आपके परिवार को आर्थिक सुरक्षा देता है। अपनी वार्षिक आय का कम से कम दस गुना कवर लें और "
    "स्वास्थ्य की जानकारी सही दें ताकि दावा बिना परेशानी के मिले।"
)


def with_boilerplate(text: str) -> str:
    return f"{text}\n\n{DISCLAIMER}\n{ARN}"


def test_identical_texts_score_one():
    assert similarity(SIP, SIP) == 1.0


def test_case_punctuation_and_spacing_do_not_matter():
    shouted = SIP.upper().replace(",", "").replace(". ", " ... ").replace(" ", "  \n")

    assert similarity(SIP, shouted) == 1.0


def test_near_duplicate_with_a_few_words_changed_scores_high():
    assert similarity(SIP, SIP_NEAR_COPY) > 0.8


def test_unrelated_posts_score_low():
    assert similarity(SIP, INSURANCE) < 0.3
    assert similarity(SIP, TAX) < 0.3
    assert similarity(INSURANCE, TAX) < 0.3


def test_same_topic_written_differently_scores_well_below_a_near_copy():
    rewritten = similarity(SIP, SIP_REWRITTEN)

    assert rewritten < 0.5
    assert similarity(SIP, SIP_NEAR_COPY) - rewritten > 0.4


def test_reordered_paragraphs_still_count_as_the_same_post():
    first, second = SIP.split(". Many investors")
    reordered = f"Many investors{second}\n\n{first}."

    assert similarity(SIP, reordered) > 0.8


def test_similarity_is_symmetric_and_between_zero_and_one():
    texts = [SIP, SIP_NEAR_COPY, SIP_REWRITTEN, INSURANCE, TAX, HINDI_SIP, "", "SIP"]
    for a, b in itertools.product(texts, repeat=2):
        score = similarity(a, b)
        assert 0.0 <= score <= 1.0
        assert score == similarity(b, a)


def test_devanagari_words_keep_their_vowel_signs():
    # Python's \w alone would cut "निवेश" into "न", "व", "श".
    assert words("नियमित निवेश करें।") == ["नियमित", "निवेश", "करें"]
    assert words("முதலீடுகள் செய்யுங்கள்") == ["முதலீடுகள்", "செய்யுங்கள்"]


def test_hindi_posts_are_compared_like_english_ones():
    assert similarity(HINDI_SIP, HINDI_SIP) == 1.0
    assert similarity(HINDI_SIP, HINDI_SIP_NEAR_COPY) > 0.7
    assert similarity(HINDI_SIP, HINDI_INSURANCE) < 0.3


def test_shared_boilerplate_makes_unrelated_posts_look_alike_unless_ignored():
    plain = similarity(with_boilerplate(INSURANCE), with_boilerplate(TAX))
    ignored = similarity(with_boilerplate(INSURANCE), with_boilerplate(TAX), ignore=[DISCLAIMER, ARN])

    assert plain > ignored
    assert ignored == pytest.approx(similarity(INSURANCE, TAX))


def test_ignored_phrases_are_removed_whatever_their_case_and_punctuation():
    written = f"{TAX}\nMUTUAL FUND INVESTMENTS ARE SUBJECT TO MARKET RISKS; read all scheme-related documents carefully!\nARN: 123456"

    assert similarity(written, TAX, ignore=[DISCLAIMER, ARN]) == 1.0


def test_a_text_that_is_only_boilerplate_has_nothing_to_compare():
    assert similarity(with_boilerplate(""), with_boilerplate(""), ignore=[DISCLAIMER, ARN]) == 0.0


@pytest.mark.parametrize(("a", "b"), [("", ""), ("", SIP), (SIP, ""), ("!!! …", "?? --")])
def test_texts_without_words_score_zero(a, b):
    assert similarity(a, b) == 0.0


def test_short_texts_are_compared_too():
    assert similarity("SIP", "sip!") == 1.0
    assert 0.0 < similarity("Start a SIP", "Start an SIP today") < 1.0


def test_most_similar_returns_the_closest_previous_post_and_its_index():
    previous = [with_boilerplate(INSURANCE), with_boilerplate(SIP_REWRITTEN), with_boilerplate(SIP), with_boilerplate(TAX)]

    score, index = most_similar(with_boilerplate(SIP_NEAR_COPY), previous, ignore=[DISCLAIMER, ARN])

    assert index == 2
    assert score == similarity(SIP_NEAR_COPY, SIP)


def test_most_similar_prefers_the_earliest_of_equal_scores():
    assert most_similar(SIP, [INSURANCE, SIP, SIP.upper()]) == (1.0, 1)


def test_most_similar_with_no_previous_posts_is_fresh():
    assert most_similar(SIP, []) == (0.0, None)


def test_most_similar_names_no_post_when_none_shares_a_word():
    assert most_similar(SIP, ["", "!!!", "Namaste"]) == (0.0, None)
    assert most_similar("", [SIP, TAX]) == (0.0, None)
