"""How close a new post is to the advisor's recent ones: 0 = fresh, 1 = the same text.

The score blends two measures of the words (case, punctuation and spacing ignored):

- word 3-gram shingles compared with Jaccard: high only when whole phrases are shared in
  the same order, so it tells a copy with a few words changed from a fresh post on the same
  topic;
- a bag-of-words cosine over the content words (common English and Hindi function words
  left out): it rewards the same vocabulary in any order, so a reshuffled post still scores
  high, and it keeps the score smooth for short texts where there are few shingles.

Each weighs half. Typical figures for ~800-character posts: a copy with a few words changed
scores above 0.8, the same topic written afresh around 0.2–0.4, an unrelated post below 0.2.
Boiler-plate every post shares (the disclaimer, the ARN line) is removed before comparing
with `ignore`, or it would make every pair look alike. Texts with no words at all (empty,
or nothing but ignored boiler-plate) score 0: there is nothing to be tired of.

Words are Unicode-aware: Python's \\w leaves out the vowel signs and viramas of Indian
scripts (they are combining marks), which would cut "निवेश" into "न", "व", "श"; the word
class here keeps them, so Devanagari, Tamil, Bengali and the other scripts tokenise whole.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

# \w plus the combining marks Python's \w leaves out: general diacritics, Arabic/Urdu
# harakat, and the Indic blocks (Devanagari to Sinhala) except the danda and double danda,
# which end sentences.
WORD_CHARS = r"\w\u0300-\u036f\u064b-\u065f\u0670\u0900-\u0963\u0966-\u0dff"
_WORD_RE = re.compile(f"[{WORD_CHARS}]+")
# Invisible joiners change how a word is drawn, not which word it is.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))

SHINGLE_SIZE = 3
SHINGLE_WEIGHT = 0.5


def words(text: str) -> list[str]:
    """Return the words of `text`, case-folded, Unicode-normalised and script-aware."""
    text = unicodedata.normalize("NFKC", text or "").translate(_INVISIBLE)
    return _WORD_RE.findall(text.casefold())


# Function words carry no topic; left out of the bag of words (not of the shingles, where
# they are part of how a sentence is phrased).
_STOP_TEXT = """
    a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just let me
    more most my no nor not now of off on once only or other our ours out over own same she
    should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your yours yourself
    का के की को में से है हैं था थी थे और या भी तो ही पर यह वह ये वो एक कि जो इस उस इन उन
    लिए साथ तक कर करें करना करते होता होती होते हो गया गई गए ने
    """
STOP_WORDS = frozenset(words(_STOP_TEXT))  # normalised as the texts are


@dataclass(frozen=True, slots=True)
class _Features:
    key: str  # the words joined: equal keys are the same text
    shingles: frozenset[int]
    bag: dict[str, int]
    norm2: int  # squared length of the bag vector (an int, so the score is exactly symmetric)


def _ignored_keys(ignore: Iterable[str]) -> tuple[str, ...]:
    keys = {" ".join(words(phrase)) for phrase in ignore or ()}
    # Longest first, so a phrase that contains another is removed whole.
    return tuple(sorted((k for k in keys if k), key=len, reverse=True))


@lru_cache(maxsize=512)
def _features(text: str, ignored: tuple[str, ...]) -> _Features:
    # Cached: a post rewritten after a high score is compared with the same previous posts again.
    tokens = words(text)
    if ignored and tokens:
        joined = f" {' '.join(tokens)} "
        for phrase in ignored:
            needle = f" {phrase} "
            while needle in joined:
                joined = joined.replace(needle, " ")
        tokens = joined.split()
    if len(tokens) >= SHINGLE_SIZE:
        grams = zip(*(tokens[i:] for i in range(SHINGLE_SIZE)), strict=False)
    else:
        grams = [tuple(tokens)] if tokens else []
    content = [t for t in tokens if t not in STOP_WORDS] or tokens
    bag = Counter(content)
    return _Features(
        key=" ".join(tokens),
        shingles=frozenset(map(hash, grams)),
        bag=dict(bag),
        norm2=sum(n * n for n in bag.values()),
    )


def _score(a: _Features, b: _Features) -> float:
    if not a.key or not b.key:
        return 0.0
    if a.key == b.key:
        return 1.0
    shared = len(a.shingles & b.shingles)
    jaccard = shared / (len(a.shingles) + len(b.shingles) - shared)
    common = a.bag.keys() & b.bag.keys()
    dot = sum(a.bag[w] * b.bag[w] for w in common)
    cosine = dot / math.sqrt(a.norm2 * b.norm2)
    return min(1.0, SHINGLE_WEIGHT * jaccard + (1 - SHINGLE_WEIGHT) * cosine)


def similarity(a: str, b: str, *, ignore: Iterable[str] = ()) -> float:
    """Return how alike two texts are, from 0 (nothing in common) to 1 (the same words)."""
    ignored = _ignored_keys(ignore)
    return _score(_features(a or "", ignored), _features(b or "", ignored))


def most_similar(text: str, previous: Sequence[str], *, ignore: Iterable[str] = ()) -> tuple[float, int | None]:
    """Return the highest similarity of `text` to any of `previous`, and that text's index.

    The index is None when there is no previous text, or none shares a word with `text`;
    on a tie the earliest wins.
    """
    ignored = _ignored_keys(ignore)
    new = _features(text or "", ignored)
    best, best_index = 0.0, None
    for index, old in enumerate(previous):
        score = _score(new, _features(old or "", ignored))
        if score > best:
            best, best_index = score, index
    return best, best_index
