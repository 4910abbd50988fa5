"""The content writer: turns a brief (advisor + topic + rules) into a post.

Two providers sit behind one interface: `LocalTemplateProvider` (offline, deterministic,
the default) and `OpenAICompatibleProvider` (any server speaking the OpenAI chat
completions API). `get_provider()` picks one from the settings.
"""

from __future__ import annotations

import json
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import httpx
from django.conf import settings

from opscenter.net import OutboundRefused, check_outbound_url

TITLE_MAX = 120

LANGUAGE_NAMES = {
    "en": "English",
    "hi": "Hindi",
    "mr": "Marathi",
    "gu": "Gujarati",
    "ta": "Tamil",
    "te": "Telugu",
    "bn": "Bengali",
    "kn": "Kannada",
    "ml": "Malayalam",
}

# Claims SEBI/AMFI advertising rules forbid a distributor to make. The local writer drops any
# topic sentence containing one (feed items are written by others) and its own phrases never
# contain one; the compliance validator checks again with the admin's rules.
BANNED_CLAIMS = re.compile(
    r"guarantee|risk[\s-]*free|\bno[\s-]+risk|zero[\s-]+risk|\bassured|sure[\s-]*shot|double\s+your\s+money"
    r"|fixed\s+returns?|गारंटी|गारण्टी|जोखिम[\s-]*मुक्त|बिना\s+जोखिम|सुनिश्चित",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"\d\s*%|%|\bper\s*cent\b|\bpercent(age)?s?\b", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_SENTENCE_END = re.compile(r"(?<=[.!?।])\s+")


@dataclass(frozen=True)
class Brief:
    """Everything the writer needs for one post."""

    advisor_name: str
    arn: str
    language: str
    segment: str
    topic_title: str
    topic_category: str
    summary: str
    key_points: tuple[str, ...]
    cycle_date: date
    disclaimer: str
    variation: int = 0
    instruction: str = ""
    avoid: tuple[str, ...] = ()


@dataclass
class Draft:
    """A written post. `revision_notes` says what the writer did with a reviewer's instruction
    (empty when there was none) so the reviewer can check it was acted on."""

    title: str
    body: str
    provider: str
    tokens: int = 0
    revision_notes: tuple[str, ...] = field(default=())


class ProviderError(Exception):
    """The provider could not write the post; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class ContentProvider(ABC):
    """Writes one post for one brief."""

    name: str = ""

    @abstractmethod
    def write(self, brief: Brief) -> Draft:
        """Write the post described by `brief`; raise ProviderError when that fails."""


# --- shared helpers ----------------------------------------------------------------------------


def segment_key(segment: str) -> str:
    """Return the tone family for an advisor segment: retail, hni, nri or neutral."""
    seg = (segment or "").strip().lower()
    if "nri" in seg:
        return "nri"
    if "hni" in seg:
        return "hni"
    if "retail" in seg:
        return "retail"
    return "neutral"


def clip(text: str, limit: int) -> str:
    """Return `text` shortened to `limit` characters at a word boundary, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:—-") + "…"


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]


def _clean(sentences: Sequence[str], *, drop: Sequence[re.Pattern]) -> list[str]:
    return [s for s in sentences if not BANNED_CLAIMS.search(s) and not any(p.search(s) for p in drop)]


def _clean_title(title: str) -> str:
    return " ".join(BANNED_CLAIMS.sub("", title).split()).strip(" :—-,")


# --- the local provider's phrasebooks ------------------------------------------------------------


@dataclass(frozen=True)
class _Phrases:
    """One language's template parts. `{t}` is the topic title, `{x}` a reviewer's term."""

    titles: tuple[str, ...]
    openings: dict[str, tuple[str, ...]]
    angles: dict[str, tuple[str, ...]]
    ctas: tuple[str, ...]
    closings: tuple[str, ...]
    list_heads: tuple[str, ...]
    checklist_head: str
    question: str
    answer: str
    connectors: tuple[str, str, str]
    why: tuple[str, ...]
    mention_generic: str
    mentions: dict[str, str]
    regards: str
    distributor: str
    greeting: str = ""


_EN_GENERIC_OPENINGS = (
    "Here is a topic worth a few minutes of your time: {t}.",
    "A question I am often asked is about {t}. Let me keep it simple.",
    "Good financial decisions start with understanding the basics. Today: {t}.",
)
_HI_GENERIC_OPENINGS = (
    "आज बात करते हैं एक ज़रूरी विषय की: {t}।",
    "निवेश में कुछ बातें समझ लेना बहुत काम आता है। आज का विषय है — {t}।",
    "क्या आपने {t} के बारे में सोचा है? आइए इसे आसान शब्दों में समझें।",
)

_ENGLISH = _Phrases(
    titles=(
        "{t}",
        "{t}: what it means for you",
        "Understanding {t}",
        "{t} — what to know",
        "In simple words: {t}",
    ),
    openings={
        "neutral": (
            *_EN_GENERIC_OPENINGS,
            "Every investor benefits from getting this right: {t}.",
            "Let's look at {t} and why it deserves a place in your planning.",
        ),
        "retail": (
            "Here is something simple that can make a real difference to your family's savings: {t}.",
            "You don't need to be a market expert to get this right. Today: {t}.",
            *_EN_GENERIC_OPENINGS,
        ),
        "hni": (
            "For a larger portfolio, returns are only half the story — structure and tax efficiency matter too. Today: {t}.",
            "A useful topic for your next portfolio review: {t}.",
            *_EN_GENERIC_OPENINGS,
        ),
        "nri": (
            "For our NRI friends investing back home: {t}.",
            "Living abroad and investing in India? Here is what to know about {t}.",
            *_EN_GENERIC_OPENINGS,
        ),
    },
    angles={
        "neutral": (
            "Every investor's situation is different, so weigh this against your own goals and time horizon.",
            "What suits one family may not suit another; your goals, time horizon and comfort with ups and downs decide.",
            "It is worth reviewing how this applies to your own plan before making changes.",
        ),
        "retail": (
            "You don't need a big amount to begin — start with what fits your monthly budget and keep at it.",
            "Write your goals down; it makes staying on track much easier when life gets busy.",
            "Think of it like a monthly bill you pay to your future self.",
        ),
        "hni": (
            "In a larger portfolio, asset allocation, tax efficiency and periodic rebalancing matter as much as fund selection.",
            "Before any large move, look at the tax impact and how it changes your overall portfolio mix.",
            "Consolidating holdings and reviewing them against benchmarks keeps a big portfolio efficient.",
        ),
        "nri": (
            "Check how this works with your NRE/NRO accounts, repatriation and FEMA rules, and keep your KYC and overseas address updated.",
            "As an NRI, look at taxation in both countries and whether the investment is repatriable before you invest.",
            "Some fund houses have extra requirements for NRIs in certain countries, so check before you invest.",
        ),
    },
    ctas=(
        "Reply to this message and let's look at how this fits your plan.",
        "Have questions? Message me and we can review your portfolio together.",
        "Book a 15-minute call with me this week to review your goals.",
        "Share this with someone who would find it useful.",
    ),
    closings=(
        "Invest with patience and stay disciplined.",
        "Small, steady steps make a difference over time.",
        "Here to help you make informed decisions.",
    ),
    list_heads=("Key points:", "Things to remember:", "What to keep in mind:"),
    checklist_head="Before you decide, check:",
    question="Q: What is {t}, and why does it matter?",
    answer="A: ",
    connectors=("First,", "Also,", "Finally,"),
    why=(
        "Why it matters: choices like this compound over years, so a little attention now can make a meaningful difference later.",
        "Why it matters: the earlier a plan is in place, the more time works in your favour.",
    ),
    mention_generic="Ask me about {x} as well and we can see how it fits your plan.",
    mentions={
        "sip": "A SIP lets you invest a fixed amount every month, so the habit does the hard work for you.",
        "elss": "ELSS funds can also help with tax planning under Section 80C in the old tax regime, with a three-year lock-in.",
        "stp": "An STP can move a lump sum into equity in instalments instead of all at once.",
        "swp": "An SWP can turn your investments into a regular payout while the rest stays invested.",
        "index fund": "Low-cost index funds can form a simple core for many portfolios.",
        "asset allocation": "Your asset allocation — the mix of equity, debt and other assets — shapes your portfolio more than any single fund.",
        "nominee": "Make sure every folio has a nominee registered.",
        "nomination": "Make sure every folio has a nominee registered.",
        "kyc": "Keep your KYC details — mobile, email and address — up to date with the fund houses.",
        "goal": "Linking each investment to a goal with an amount and a date makes it easier to stay on course.",
        "tax": "Look at the tax treatment before you invest or redeem, and check the current rules with your tax adviser.",
        "insurance": "Adequate term and health insurance should come before long-term investing.",
    },
    regards="Warm regards,",
    distributor="AMFI-registered Mutual Fund Distributor",
)

_HINDI = _Phrases(
    titles=(
        "{t}",
        "{t}: आपके लिए इसका मतलब",
        "समझिए: {t}",
        "{t} — जानने लायक बातें",
        "आसान भाषा में: {t}",
    ),
    openings={
        "neutral": (
            *_HI_GENERIC_OPENINGS,
            "हर निवेशक के लिए यह समझना ज़रूरी है: {t}।",
            "आइए देखें कि {t} आपकी वित्तीय योजना में क्यों जगह पाने लायक है।",
        ),
        "retail": (
            "परिवार की बचत को सही दिशा देने के लिए एक आसान-सी बात: {t}।",
            "छोटी-छोटी आदतें बड़ा फ़र्क लाती हैं। आज समझते हैं {t}।",
            *_HI_GENERIC_OPENINGS,
        ),
        "hni": (
            "बड़े पोर्टफ़ोलियो में सिर्फ़ रिटर्न नहीं, टैक्स-कुशलता और संतुलन भी उतने ही ज़रूरी हैं। आज का विषय: {t}।",
            "आपके पोर्टफ़ोलियो की अगली समीक्षा के लिए एक उपयोगी विषय: {t}।",
            *_HI_GENERIC_OPENINGS,
        ),
        "nri": (
            "विदेश में रहते हुए भारत में निवेश करने वाले साथियों के लिए: {t}।",
            "NRI निवेशकों के लिए एक ज़रूरी बात: {t}।",
            *_HI_GENERIC_OPENINGS,
        ),
    },
    angles={
        "neutral": (
            "हर निवेशक की स्थिति अलग होती है, इसलिए इसे अपने लक्ष्यों और निवेश की अवधि के हिसाब से परखें।",
            "जो एक परिवार के लिए सही है, ज़रूरी नहीं कि दूसरे के लिए भी हो; आपके लक्ष्य ही तय करते हैं।",
            "कोई भी बदलाव करने से पहले देखें कि यह आपकी अपनी योजना पर कैसे लागू होता है।",
        ),
        "retail": (
            "शुरुआत के लिए बड़ी रकम ज़रूरी नहीं — अपने मासिक बजट के हिसाब से राशि तय करें और नियमित रहें।",
            "अपने लक्ष्य लिखकर रखें; इससे निवेश पर टिके रहना आसान हो जाता है।",
            "इसे अपने भविष्य के लिए हर महीने चुकाए जाने वाले एक बिल की तरह समझें।",
        ),
        "hni": (
            "बड़े पोर्टफ़ोलियो में एसेट एलोकेशन, टैक्स-कुशलता और समय-समय पर रीबैलेंसिंग उतनी ही ज़रूरी है जितना फ़ंड का चुनाव।",
            "किसी भी बड़े बदलाव से पहले उसके टैक्स असर और पूरे पोर्टफ़ोलियो पर प्रभाव को ज़रूर समझें।",
            "होल्डिंग्स को समेकित करना और बेंचमार्क से तुलना करना बड़े पोर्टफ़ोलियो को कुशल रखता है।",
        ),
        "nri": (
            "NRE/NRO खाते, रीपैट्रिएशन और FEMA नियमों के हिसाब से यह आप पर कैसे लागू होता है, ज़रूर जाँचें — और अपना KYC व विदेश का पता अपडेट रखें।",
            "NRI के रूप में दोनों देशों में टैक्स और निवेश की रीपैट्रिएशन सुविधा के बारे में पहले से जान लें।",
            "कुछ फ़ंड हाउस कुछ देशों में रहने वाले NRI से अतिरिक्त घोषणाएँ माँगते हैं, इसलिए निवेश से पहले जाँच लें।",
        ),
    },
    ctas=(
        "अपनी योजना पर बात करने के लिए इस संदेश का जवाब दें।",
        "कोई सवाल हो तो बेझिझक मैसेज करें — मिलकर आपका पोर्टफ़ोलियो देखते हैं।",
        "इस हफ़्ते 15 मिनट की बातचीत तय करें और अपने लक्ष्यों की समीक्षा करें।",
        "यह संदेश उनके साथ साझा करें जिनके लिए यह उपयोगी हो सकता है।",
    ),
    closings=(
        "धैर्य से निवेश करें और अनुशासन बनाए रखें।",
        "छोटे-छोटे नियमित कदम समय के साथ बड़ा फ़र्क लाते हैं।",
        "सोच-समझकर फ़ैसले लेने में हम हमेशा आपके साथ हैं।",
    ),
    list_heads=("मुख्य बातें:", "याद रखने लायक बातें:", "ध्यान देने वाली बातें:"),
    checklist_head="फ़ैसला लेने से पहले देखें:",
    question="सवाल: {t} क्या है और यह क्यों ज़रूरी है?",
    answer="जवाब: ",
    connectors=("पहली बात,", "दूसरी बात,", "और आख़िर में,"),
    why=(
        "यह क्यों ज़रूरी है: ऐसे फ़ैसलों का असर सालों तक जुड़ता जाता है, इसलिए आज थोड़ा ध्यान देना आगे चलकर बड़ा फ़र्क ला सकता है।",
        "यह क्यों ज़रूरी है: योजना जितनी जल्दी बने, समय उतना ही आपके पक्ष में काम करता है।",
    ),
    mention_generic="{x} के बारे में भी जानकारी के लिए संपर्क करें — देखेंगे कि यह आपकी योजना में कैसे फ़िट होता है।",
    mentions={
        "sip": "SIP के ज़रिए हर महीने एक तय राशि निवेश करें — आदत ही सबसे बड़ा काम करती है।",
        "elss": "ELSS फ़ंड पुरानी टैक्स व्यवस्था में धारा 80C के तहत टैक्स प्लानिंग में भी मदद कर सकते हैं; इनमें तीन साल का लॉक-इन होता है।",
        "stp": "STP से एकमुश्त रकम को एक साथ नहीं, किस्तों में इक्विटी में ले जाया जा सकता है।",
        "swp": "SWP से निवेश से नियमित आमदनी ली जा सकती है, जबकि बाकी रकम निवेशित रहती है।",
        "index fund": "कम लागत वाले इंडेक्स फ़ंड कई पोर्टफ़ोलियो का सरल आधार बन सकते हैं।",
        "asset allocation": "एसेट एलोकेशन — इक्विटी, डेट और दूसरी संपत्तियों का मिश्रण — किसी एक फ़ंड से ज़्यादा आपके पोर्टफ़ोलियो को आकार देता है।",
        "nominee": "हर फ़ोलियो में नॉमिनी ज़रूर दर्ज कराएँ।",
        "nomination": "हर फ़ोलियो में नॉमिनी ज़रूर दर्ज कराएँ।",
        "kyc": "अपना KYC — मोबाइल, ईमेल और पता — फ़ंड हाउस के पास अपडेट रखें।",
        "goal": "हर निवेश को राशि और तारीख़ वाले किसी लक्ष्य से जोड़ने पर उस पर टिके रहना आसान होता है।",
        "tax": "निवेश या रिडेम्प्शन से पहले टैक्स के असर को देखें और मौजूदा नियम अपने टैक्स सलाहकार से जाँच लें।",
        "insurance": "लंबी अवधि के निवेश से पहले पर्याप्त टर्म और हेल्थ इंश्योरेंस ज़रूरी है।",
    },
    regards="शुभकामनाओं सहित,",
    distributor="म्यूचुअल फ़ंड वितरक (AMFI पंजीकृत)",
    greeting="नमस्ते!",
)


@dataclass(frozen=True)
class _Wrap:
    """Native-script parts put around the English body for languages without full templates."""

    greeting: str
    cta: str
    regards: str


_WRAPS = {
    "mr": _Wrap("नमस्कार!", "अधिक माहितीसाठी माझ्याशी संपर्क साधा.", "शुभेच्छांसह,"),
    "gu": _Wrap("નમસ્તે!", "વધુ માહિતી માટે મારો સંપર્ક કરો.", "શુભેચ્છાઓ સાથે,"),
    "ta": _Wrap("வணக்கம்!", "மேலும் விவரங்களுக்கு என்னைத் தொடர்பு கொள்ளுங்கள்.", "அன்புடன்,"),
    "te": _Wrap("నమస్కారం!", "మరిన్ని వివరాల కోసం నన్ను సంప్రదించండి.", "ధన్యవాదాలు,"),
    "bn": _Wrap("নমস্কার!", "আরও জানতে আমার সঙ্গে যোগাযোগ করুন।", "শুভেচ্ছাসহ,"),
    "kn": _Wrap("ನಮಸ್ಕಾರ!", "ಹೆಚ್ಚಿನ ಮಾಹಿತಿಗಾಗಿ ನನ್ನನ್ನು ಸಂಪರ್ಕಿಸಿ.", "ಧನ್ಯವಾದಗಳು,"),
    "ml": _Wrap("നമസ്കാരം!", "കൂടുതൽ വിവരങ്ങൾക്ക് എന്നെ ബന്ധപ്പെടുക.", "ആശംസകളോടെ,"),
}

_STRUCTURES = ("prose", "list", "qa", "checklist")


# --- reviewer instructions -----------------------------------------------------------------------


@dataclass
class RevisionPlan:
    """What a reviewer's instruction asks of the rewrite."""

    shorter: bool = False
    longer: bool = False
    structure: str | None = None
    tone: str | None = None
    no_percent: bool = False
    no_numbers: bool = False
    mentions: list[str] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    new_title: bool = False
    notes: list[str] = field(default_factory=list)


_TERM_END = r"(?=[.,;:!?\n]|\s+(?:and|but|instead|too|also|please|in\s+the|to\s+the)\b|$)"
_MENTION = re.compile(
    r"\b(?:mention|include|add|talk\s+about|cover|highlight|emphasi[sz]e|focus\s+on)\s+"
    r"(?:the\s+|a\s+|an\s+|some\s+|about\s+)?(.+?)" + _TERM_END,
    re.IGNORECASE,
)
_REMOVE = re.compile(
    r"\b(?:remove|drop|delete|omit|cut|without|(?:don[’']?t|do\s*not|never)\s+(?:mention|use|say|include))\s+"
    r"(?:the\s+|any\s+|all\s+|a\s+|an\s+)?(.+?)" + _TERM_END,
    re.IGNORECASE,
)
_NO_TERM = re.compile(r"\bno\s+(?:more\s+)?(percent\w*|numbers|figures|statistics|%)", re.IGNORECASE)
_PERCENT_WORDS = re.compile(r"percent|per\s*cent|%", re.IGNORECASE)
_NUMBER_WORDS = re.compile(r"number|figure|statistic|digit", re.IGNORECASE)
_SHORTER = re.compile(r"\b(short|shorter|shorten|concise|brief|too\s+long|trim|fewer\s+words|छोटा)", re.IGNORECASE)
_LONGER = re.compile(r"\b(longer|more\s+detail|expand|elaborate|too\s+short|more\s+depth)", re.IGNORECASE)
_SIMPLER = re.compile(r"\b(simple|simpler|plain|jargon|easy|easier)\b", re.IGNORECASE)
# "add more detail", "include bullet points": requests about form, not subjects to mention.
_FORM_WORDS = re.compile(
    r"^(?:more\s+|some\s+)?(?:detail|details|depth|bullet|bullets|points|list|paragraphs?|questions?|checklist|"
    r"examples?|structure|variety|context|a\s+title|title|headline)\b",
    re.IGNORECASE,
)
_TITLE = re.compile(r"\b(title|headline|heading)\b", re.IGNORECASE)
_STRUCTURE_WORDS = (
    ("checklist", re.compile(r"\bcheck\s*list\b", re.IGNORECASE)),
    ("list", re.compile(r"\b(bullet|bullets|bulleted|list|points)\b", re.IGNORECASE)),
    ("qa", re.compile(r"\b(question|q\s*&\s*a|faq)\b", re.IGNORECASE)),
    ("prose", re.compile(r"\b(paragraph|paragraphs|prose|flowing|narrative)\b", re.IGNORECASE)),
)


def _term(raw: str) -> str:
    return raw.strip().strip("\"'“”‘’").strip()[:60]


def _term_pattern(term: str) -> re.Pattern:
    # "SIP instalments" should also find "SIP instalment in": each word with or without a plural.
    words = [w[:-1] if len(w) > 3 and w.lower().endswith("s") and not w.lower().endswith("ss") else w for w in term.split()]
    return re.compile(r"\b" + r"\s+".join(re.escape(w) + r"(?:s|es)?" for w in words) + r"\b", re.IGNORECASE)


def plan_revision(instruction: str) -> RevisionPlan:
    """Read a reviewer's revision note into the changes the local writer can make."""
    plan = RevisionPlan()
    text = " ".join(instruction.split())
    if not text:
        return plan
    for match in _REMOVE.finditer(text):
        term = _term(match.group(1))
        if _PERCENT_WORDS.search(term):
            plan.no_percent = True
        elif _NUMBER_WORDS.search(term):
            plan.no_numbers = True
        elif term:
            plan.removals.append(term)
    for match in _NO_TERM.finditer(text):
        if _PERCENT_WORDS.search(match.group(1)):
            plan.no_percent = True
        else:
            plan.no_numbers = True
    removal_spans = [m.span() for m in _REMOVE.finditer(text)]
    for match in _MENTION.finditer(text):
        if any(start <= match.start() < end for start, end in removal_spans):
            continue
        term = _term(match.group(1))
        if term and not _FORM_WORDS.match(term):
            plan.mentions.append(term)
    plan.shorter = bool(_SHORTER.search(text))
    plan.longer = bool(_LONGER.search(text)) and not plan.shorter
    if _SIMPLER.search(text):
        plan.tone = "retail"
    for name, pattern in _STRUCTURE_WORDS:
        if pattern.search(text):
            plan.structure = name
            break
    plan.new_title = bool(_TITLE.search(text))
    return plan


# --- the local provider ------------------------------------------------------------------------


class LocalTemplateProvider(ContentProvider):
    """Write posts offline from templates: deterministic for a brief, varied across briefs.

    English and Hindi (Devanagari) have full templates: several titles, openings, structures
    (prose, bulleted list, question and answer, checklist), calls to action and closings,
    with the tone set by the advisor's segment (retail: simple and everyday; HNI: portfolio
    and tax efficiency; NRI: NRE/NRO, repatriation and FEMA; anything else: neutral).
    Marathi, Gujarati, Tamil, Telugu, Bengali, Kannada and Malayalam get a native-script
    greeting, call to action and sign-off around the English body — a known limitation until
    full templates are written. The topic's summary and key points are used as written in the
    topic bank (so a Hindi post quotes English topic text unless the topic is written in Hindi).

    Each part is chosen by (seed + variation) modulo the number of choices, so consecutive
    variations differ in every part and a whole post repeats only after 60 variations.
    A reviewer's instruction is read by `plan_revision`: "shorter"/"longer", "mention X",
    "remove X" (percentages and numbers too), "simpler", a structure (list, paragraphs,
    questions, checklist) and "title". Unless it names a structure, the rewrite takes a different
    structure from the unrevised text, and `Draft.revision_notes` lists what was done (or that nothing specific
    was recognised) with the note itself.
    """

    name = "local"

    def write(self, brief: Brief) -> Draft:
        """Write the post for `brief` from the templates."""
        phrases = _HINDI if brief.language == "hi" else _ENGLISH
        wrap = _WRAPS.get(brief.language)
        plan = plan_revision(brief.instruction) if brief.instruction else RevisionPlan()
        segment = plan.tone or segment_key(brief.segment)
        # The revision must not come out as the text the reviewer just rejected: shift every part.
        v = brief.variation + (1 if brief.instruction else 0)
        seed = zlib.crc32(
            f"{brief.arn}|{brief.topic_title}|{brief.cycle_date.isoformat()}|{brief.language}|{segment}".encode()
        )

        def pick(options: Sequence[str], salt: int) -> str:
            return options[(seed // salt + v) % len(options)]

        drop: list[re.Pattern] = []
        if plan.no_percent:
            drop.append(_PERCENT)
        if plan.no_numbers:
            drop.append(_DIGIT)
        removed = []
        removal_patterns = [_term_pattern(term) for term in plan.removals]
        drop.extend(removal_patterns)
        topic = _clean_title(brief.topic_title) or _clean_title(brief.topic_category) or "Investing"
        summary = _clean(_sentences(brief.summary), drop=drop)
        points = _clean([" ".join(p.split()) for p in brief.key_points if p and p.strip()], drop=drop)
        for term, pattern in zip(plan.removals, removal_patterns, strict=True):
            if pattern.search(brief.summary) or any(pattern.search(p) for p in brief.key_points):
                removed.append(term)
        if points:
            shift = v % len(points)
            points = points[shift:] + points[:shift]
        if plan.shorter:
            summary, points = summary[:1], points[:2]

        # With an instruction v is one more than the rejected text's, so the structure differs.
        structure = plan.structure or pick(_STRUCTURES, 7)
        if plan.shorter and structure == "qa" and plan.structure is None:
            # The question repeats the title: the wrong shape for a short post. Not "list": that is
            # the structure just before "qa", i.e. the unrevised text's.
            structure = "checklist"

        parts: list[str] = []
        if wrap:
            parts.append(wrap.greeting)
        openings = phrases.openings[segment]
        if plan.shorter:
            openings = sorted(openings, key=len)[:2]
        opening = pick(openings, 1).format(t=topic)
        if phrases.greeting and v % 2 and not plan.shorter:
            opening = f"{phrases.greeting} {opening}"
        parts.append(opening)
        parts.extend(_compose(structure, phrases, topic, summary, points, pick))
        notes: list[str] = []
        for term in plan.mentions:
            if BANNED_CLAIMS.search(term):
                notes.append(f"not added: “{term}” is a banned claim")
                continue
            parts.append(_mention(phrases, term))
            notes.append(f"mentioned {term}")
        if not plan.shorter:
            angles = phrases.angles[segment]
            parts.append(pick(angles, 11))
            if plan.longer:
                parts.append(angles[(seed // 11 + v + 1) % len(angles)])
                parts.append(pick(phrases.why, 13))
        ctas = phrases.ctas
        if plan.no_numbers:
            ctas = tuple(c for c in ctas if not _DIGIT.search(c))
        parts.append(wrap.cta if wrap else pick(ctas, 17))
        if not plan.shorter:
            parts.append(pick(phrases.closings, 19))
        regards = wrap.regards if wrap else phrases.regards
        distributor = _ENGLISH.distributor if wrap else phrases.distributor
        parts.append(f"{regards}\n— {brief.advisor_name}\n{distributor} | ARN: {brief.arn}")
        if brief.disclaimer:
            parts.append(brief.disclaimer)

        title_shift = 1 if plan.new_title else 0
        title = _choose_title(phrases.titles, topic, (seed // 23 + v + title_shift), brief)

        if brief.instruction:
            notes = _revision_notes(brief.instruction, plan, structure, removed, notes)
        return Draft(title=title, body="\n\n".join(parts), provider=self.name, revision_notes=tuple(notes))


def _compose(structure, phrases: _Phrases, topic, summary, points, pick) -> list[str]:
    summary_text = " ".join(summary)
    parts: list[str] = []
    if structure == "qa":
        question = phrases.question.format(t=topic)
        parts.append(f"{question}\n{phrases.answer}{summary_text}" if summary_text else question)
        if points:
            parts.append(pick(phrases.list_heads, 3) + "\n" + "\n".join(f"{i}. {p}" for i, p in enumerate(points, 1)))
        return parts
    if summary_text:
        parts.append(summary_text)
    if not points:
        return parts
    if structure == "prose":
        connectors = phrases.connectors
        linked = []
        for i, point in enumerate(points):
            connector = connectors[0] if i == 0 else connectors[2] if i == len(points) - 1 else connectors[1]
            linked.append(f"{connector} {_lower_first(point)}" if len(points) > 1 else point)
        parts.append(" ".join(linked))
    elif structure == "checklist":
        parts.append(phrases.checklist_head + "\n" + "\n".join(f"✔ {p}" for p in points))
    else:
        parts.append(pick(phrases.list_heads, 3) + "\n" + "\n".join(f"• {p}" for p in points))
    return parts


def _lower_first(text: str) -> str:
    # Keep acronyms (SIP, ELSS, NRI) as written: only a capitalised ordinary word is lowered.
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower():
        return text[0].lower() + text[1:]
    return text


def _mention(phrases: _Phrases, term: str) -> str:
    key = term.lower().rstrip("s")
    for name, sentence in phrases.mentions.items():
        if key == name or key.endswith(" " + name) or key.startswith(name + " "):
            return sentence
    return phrases.mention_generic.format(x=term)


def _choose_title(patterns: Sequence[str], topic: str, start: int, brief: Brief) -> str:
    avoid = {" ".join(a.split()).casefold() for a in brief.avoid}
    for i in range(len(patterns)):
        title = clip(patterns[(start + i) % len(patterns)].format(t=topic), TITLE_MAX)
        if title.casefold() not in avoid:
            return title
    return clip(f"{topic} ({brief.cycle_date:%d %b %Y})", TITLE_MAX)


def _revision_notes(instruction: str, plan: RevisionPlan, structure: str, removed: list[str], notes: list[str]) -> list[str]:
    done = [f"reviewer's note: {' '.join(instruction.split())}"]
    if plan.shorter:
        done.append("made shorter (one summary sentence, two key points, no closing)")
    if plan.longer:
        done.append("made longer (a second angle and why it matters)")
    if plan.no_percent:
        done.append("removed sentences with percentages")
    if plan.no_numbers:
        done.append("removed sentences with numbers")
    for term in plan.removals:
        done.append(f"removed sentences mentioning {term}" if term in removed else f"{term} was not in the topic text")
    if plan.tone:
        done.append("used the simple, everyday tone")
    if plan.new_title:
        done.append("changed the title")
    done.extend(notes)
    recognised = len(done) > 1 or plan.structure is not None
    done.append(f"structure: {structure}" + ("" if recognised else " (no specific request recognised; rewritten differently)"))
    return done


# --- the OpenAI-compatible provider --------------------------------------------------------------

_TONES = {
    "retail": "Retail investors: simple, warm, everyday language; no jargon.",
    "hni": "High-net-worth investors: portfolio construction, asset allocation and tax-efficiency language.",
    "nri": "Non-resident Indians: mention the NRE/NRO, repatriation and FEMA angle where relevant.",
    "neutral": "General investors: clear and neutral.",
}


def build_messages(brief: Brief) -> list[dict[str, str]]:
    """Return the chat messages (system + user) asking a model to write the post for `brief`."""
    language = LANGUAGE_NAMES.get(brief.language, brief.language or "English")
    system = (
        "You write short social-media and WhatsApp posts that Indian mutual-fund distributors "
        "(AMFI-registered, each with an ARN) send to their clients. Follow SEBI and AMFI advertising rules: "
        "never promise or predict returns, never use words like 'guaranteed', 'assured', 'risk-free' or "
        "'sure-shot', do not recommend specific schemes, keep facts general and accurate. "
        f"Write in {language}, in its native script. Keep the body under 180 words. "
        f"Sign off with the advisor's name and 'ARN: {brief.arn}'. "
        f"End the body with this disclaimer, verbatim: {brief.disclaimer}\n"
        'Answer with a JSON object only: {"title": "<at most 120 characters>", "body": "<the post>"}.'
    )
    lines = [
        f"Advisor: {brief.advisor_name}",
        f"ARN: {brief.arn}",
        f"Audience: {_TONES[segment_key(brief.segment)]}",
        f"Language: {language}",
        f"Topic: {brief.topic_title}",
        f"Category: {brief.topic_category}",
        f"Summary: {brief.summary}",
        "Key points:",
        *[f"- {point}" for point in brief.key_points],
        f"Date: {brief.cycle_date.isoformat()}",
    ]
    if brief.variation:
        lines.append(f"This is rewrite number {brief.variation}: make it noticeably different from earlier versions.")
    if brief.instruction:
        lines.append(f"The reviewer asked for this revision: {brief.instruction}")
    if brief.avoid:
        lines.append("Do not reuse these recent titles: " + "; ".join(brief.avoid))
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


class OpenAICompatibleProvider(ContentProvider):
    """Write posts with a model behind an OpenAI-compatible `/chat/completions` endpoint."""

    name = "openai"

    def __init__(
        self, url: str, api_key: str, model: str, timeout: float = 30.0, *, client: httpx.Client | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout = timeout
        self._client = client
        self._url_checked = False

    def _http(self) -> httpx.Client:
        if self._client is None:
            # One client per provider: a cycle writes hundreds of posts over one connection pool.
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        return self._client

    def write(self, brief: Brief) -> Draft:
        """Ask the model for the post; raise ProviderError (retryable or not) when that fails."""
        if not self._url_checked:
            try:
                check_outbound_url(self.url)
            except OutboundRefused as exc:
                raise ProviderError(str(exc), retryable=False) from None
            self._url_checked = True
        payload = {"model": self.model, "messages": build_messages(brief), "temperature": 0.7}
        try:
            response = self._http().post(
                f"{self.url}/chat/completions",
                json=payload,
                headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"},
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            raise ProviderError(f"timed out: {exc}", retryable=True) from None
        except httpx.TransportError as exc:
            raise ProviderError(f"{type(exc).__name__}: {exc}", retryable=True) from None
        status = response.status_code
        if status != 200:
            retryable = status in (408, 409, 425, 429) or status >= 500
            raise ProviderError(f"HTTP {status}: {response.text[:300]}", retryable=retryable)
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError):
            raise ProviderError(f"malformed answer: {response.text[:300]}", retryable=False) from None
        if not isinstance(content, str) or not content.strip():
            raise ProviderError("the model returned no text", retryable=False)
        title, body = parse_answer(content)
        if not body:
            raise ProviderError(f"the answer has no body: {content[:300]}", retryable=False)
        if brief.arn not in body:
            body = f"{body}\n\n— {brief.advisor_name}\nARN: {brief.arn}"
        if brief.disclaimer and brief.disclaimer not in body:
            body = f"{body}\n\n{brief.disclaimer}"
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else 0
        return Draft(
            title=clip(title or brief.topic_title, TITLE_MAX),
            body=body,
            provider=self.name,
            tokens=tokens if isinstance(tokens, int) else 0,
        )


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_TITLE_PREFIX = re.compile(r"^(?:#+\s*|\*\*|title\s*:\s*)+", re.IGNORECASE)


def parse_answer(content: str) -> tuple[str, str]:
    """Split a model's answer into (title, body): a JSON object, or plain text titled by its first line."""
    text = _FENCE.sub("", content.strip()).strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("body"), str):
            title = data.get("title") if isinstance(data.get("title"), str) else ""
            return " ".join(title.split()), data["body"].strip()
    lines = text.splitlines()
    title = _TITLE_PREFIX.sub("", lines[0]).strip().strip("*\"'“” ")
    return title, "\n".join(lines[1:]).strip()


def get_provider() -> ContentProvider:
    """Return the configured provider: the OpenAI-compatible one when a URL and key are set, else local."""
    if settings.CONTENT_LLM_URL and settings.CONTENT_LLM_API_KEY:
        return OpenAICompatibleProvider(
            settings.CONTENT_LLM_URL,
            settings.CONTENT_LLM_API_KEY,
            settings.CONTENT_LLM_MODEL,
            settings.CONTENT_LLM_TIMEOUT_SECONDS,
        )
    return LocalTemplateProvider()
