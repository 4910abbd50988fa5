"""Topic feeds: refresh the topic bank from RSS 2.0, RSS 1.0 and Atom feeds.

Feeds are fetched with httpx (outbound URL check on the feed and on every redirect, 10 s
time-out, 2 MB cap) and parsed with the standard library. Documents declaring a DOCTYPE or
an ENTITY are refused before parsing: expat expands internal entities, so a small "billion
laughs" document could otherwise eat the worker's memory.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import urljoin
from xml.parsers import expat

import httpx
from django.db import transaction
from django.utils import timezone

from opscenter.net import check_outbound_url

from .models import Topic, TopicFeed, TopicSource

FETCH_TIMEOUT_SECONDS = 10.0
MAX_FEED_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
SUMMARY_MAX = 500
USER_AGENT = "OpsCenter-FeedReader/1"

_TITLE_MAX = Topic._meta.get_field("title").max_length
_EXTERNAL_ID_MAX = Topic._meta.get_field("external_id").max_length
_URL_MAX = Topic._meta.get_field("source_url").max_length


class FeedError(Exception):
    """The feed could not be fetched or read."""


@dataclass(frozen=True)
class FeedItem:
    """One item of a feed, reduced to what the topic bank keeps."""

    external_id: str
    title: str
    summary: str
    link: str
    published_at: datetime | None


# --- parsing ------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("p", "br", "div", "li", "h1", "h2", "h3", "h4", "tr"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """Return the visible text of an HTML fragment, entities decoded and whitespace collapsed."""
    if "<" not in text and "&" not in text:
        return " ".join(text.split())
    extractor = _TextExtractor()
    extractor.feed(text)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"


def _local(tag: object) -> str:
    # Namespaced tags look like "{http://www.w3.org/2005/Atom}entry"; comments have no str tag.
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _text(element: ET.Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def _parse_date(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)  # RSS: RFC 822
    except (TypeError, ValueError, IndexError):
        try:
            parsed = datetime.fromisoformat(value)  # Atom, dc:date: RFC 3339
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _link(item: ET.Element, children: dict[str, list[ET.Element]]) -> str:
    for link in children.get("link", []):
        href = link.get("href")
        if href is None:  # RSS: the URL is the element's text
            if _text(link):
                return _text(link)
            continue
        if link.get("rel", "alternate") == "alternate":
            return href.strip()
    links = [link.get("href", "").strip() for link in children.get("link", []) if link.get("href")]
    return links[0] if links else ""


def _item(element: ET.Element, base_url: str) -> FeedItem | None:
    children: dict[str, list[ET.Element]] = {}
    for child in element:
        children.setdefault(_local(child.tag), []).append(child)

    def first(*names: str) -> str:
        for name in names:
            for child in children.get(name, []):
                if value := _text(child):
                    return value
        return ""

    title = strip_html(first("title"))
    summary = strip_html(first("description", "summary", "encoded", "content"))
    if not title and not summary:
        return None
    link = _link(element, children)
    if link and base_url:
        link = urljoin(base_url, link)
    if not link.startswith(("http://", "https://")):
        link = ""
    external_id = first("guid", "id") or link
    if not external_id or len(external_id) > _EXTERNAL_ID_MAX:
        # No id, or one too long to store: a digest is stable across refreshes and fits.
        basis = external_id or f"{title}\n{summary}"
        external_id = "sha256:" + hashlib.sha256(basis.encode()).hexdigest()
    return FeedItem(
        external_id=external_id,
        title=_trim(title or summary, _TITLE_MAX),
        summary=_trim(summary, SUMMARY_MAX),
        link=link if len(link) <= _URL_MAX else "",
        published_at=_parse_date(first("pubdate", "published", "updated", "date", "issued", "modified")),
    )


class _RootReached(Exception):
    pass


def refuse_declarations(xml: bytes) -> None:
    """Raise FeedError when the document's prolog has a DOCTYPE (and so possibly ENTITY declarations)."""

    def refuse(*args: object) -> None:
        raise FeedError("the feed declares a DOCTYPE or ENTITY, which is refused")

    def stop(*args: object) -> None:
        raise _RootReached

    # Expat reads the prolog exactly as ElementTree will (encodings included) and stops at the
    # root element, so this costs nothing on a real feed and HTML inside CDATA cannot trip it.
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = stop
    try:
        parser.Parse(xml, True)
    except _RootReached:
        return
    except expat.ExpatError as exc:
        raise FeedError(f"not well-formed XML: {exc}") from None
    raise FeedError("the document has no root element")


def parse_feed(xml: bytes, *, base_url: str = "") -> list[FeedItem]:
    """Return the items of an RSS or Atom document; raise FeedError for anything else."""
    refuse_declarations(xml)
    try:
        root = ET.fromstring(xml)  # noqa: S314 - declarations refused above, so no entity expansion
    except ET.ParseError as exc:
        raise FeedError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) not in ("rss", "feed", "rdf"):
        raise FeedError(f"not an RSS or Atom feed (root element <{_local(root.tag)}>)")
    items = []
    for element in root.iter():
        if _local(element.tag) in ("item", "entry") and (item := _item(element, base_url)):
            items.append(item)
    return items


# --- fetching ------------------------------------------------------------------------------------


def fetch_feed(url: str, client: httpx.Client) -> tuple[bytes, str]:
    """Fetch a feed document, checking the URL and every redirect; return (body, final URL)."""
    for _ in range(MAX_REDIRECTS + 1):
        check_outbound_url(url)
        with client.stream(
            "GET",
            url,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5",
            },
            timeout=FETCH_TIMEOUT_SECONDS,
            follow_redirects=False,
        ) as response:
            if response.is_redirect:
                location = response.headers.get("location", "")
                if not location:
                    raise FeedError(f"HTTP {response.status_code} without a Location header")
                url = urljoin(url, location)
                continue
            if response.status_code != 200:
                raise FeedError(f"HTTP {response.status_code} from {url}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_FEED_BYTES:
                raise FeedError(f"the feed is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    raise FeedError(f"the feed is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB")
            return bytes(body), url
    raise FeedError(f"more than {MAX_REDIRECTS} redirects")


def _store(feed: TopicFeed, items: list[FeedItem]) -> int:
    unique = {item.external_id: item for item in items}
    known = set(
        Topic.objects.filter(feed=feed, external_id__in=list(unique)).values_list("external_id", flat=True)
    )
    new = [
        Topic(
            title=item.title,
            category=feed.category,
            summary=item.summary,
            source=TopicSource.FEED,
            feed=feed,
            source_url=item.link,
            external_id=item.external_id,
            published_at=item.published_at,
            enabled=True,
        )
        for external_id, item in unique.items()
        if external_id not in known
    ]
    if not new:
        return 0
    before = Topic.objects.filter(feed=feed).count()
    # ignore_conflicts: a concurrent refresh of the same feed may have added some of them;
    # the unique constraint (feed, external_id) keeps one row, and the count says what we added.
    Topic.objects.bulk_create(new, ignore_conflicts=True)
    return Topic.objects.filter(feed=feed).count() - before


def refresh_feed(feed: TopicFeed, *, client: httpx.Client | None = None) -> int:
    """Add the feed's new items to the topic bank; return how many were added.

    Never raises: a failure is recorded in `feed.last_error` (and 0 returned), so one broken
    feed does not stop the strategist or the other feeds.
    """
    own_client = client is None
    http = client or httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False)
    try:
        body, final_url = fetch_feed(feed.url, http)
        items = parse_feed(body, base_url=final_url)
        # A savepoint, so a database error here leaves the connection usable to record it.
        with transaction.atomic():
            added = _store(feed, items)
        error = ""
    except Exception as exc:  # noqa: BLE001 - any failure is the feed's state, shown in the admin
        added, error = 0, f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        if own_client:
            http.close()
    feed.last_fetched_at = timezone.now()
    feed.last_error = error
    feed.items_added = added
    feed.save(update_fields=["last_fetched_at", "last_error", "items_added"])
    return added


def refresh_feeds() -> dict[int, int]:
    """Refresh every enabled feed; return {feed id: topics added}."""
    with httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client:
        return {feed.pk: refresh_feed(feed, client=client) for feed in TopicFeed.objects.filter(enabled=True)}
