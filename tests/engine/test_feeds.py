"""Topic feeds (RSS and Atom into the topic bank) and the starter topic bank."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from agents.engine.feeds import FeedError, parse_feed, refresh_feed, refresh_feeds
from agents.engine.models import Topic, TopicFeed, TopicSource
from agents.engine.topics import STARTER_TOPICS, ensure_starter_topics
from agents.engine.writer import BANNED_CLAIMS

FEED_URL = "https://news.example.com/mf/rss.xml"

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>MF News</title>
    <link>https://news.example.com/</link>
    <item>
      <title>SEBI tweaks &lt;b&gt;nomination&lt;/b&gt; rules</title>
      <link>https://news.example.com/a/1</link>
      <guid isPermaLink="false">news-1</guid>
      <description><![CDATA[<p>Investors must <b>add</b> a nominee &amp; update KYC.</p><script>track()</script>]]></description>
      <pubDate>Tue, 10 Nov 2026 08:30:00 +0530</pubDate>
    </item>
    <item>
      <title>SIP inflows hit a record</title>
      <link>/a/2</link>
      <description>Monthly SIP flows rose again.</description>
      <pubDate>not a date</pubDate>
    </item>
  </channel>
</rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>AMFI Updates</title>
  <entry>
    <title type="html">Debt funds &amp;amp; rate cuts</title>
    <id>tag:amfi.example,2026:42</id>
    <link rel="self" href="https://amfi.example/feed/42"/>
    <link rel="alternate" href="https://amfi.example/posts/42"/>
    <updated>2026-11-12T10:00:00Z</updated>
    <summary type="html">&lt;p&gt;When rates fall, bond prices rise.&lt;/p&gt;</summary>
  </entry>
  <entry>
    <title>मुद्रास्फीति और निवेश</title>
    <id>tag:amfi.example,2026:43</id>
    <published>2026-11-13T09:15:00+05:30</published>
    <content type="html">{long}</content>
  </entry>
</feed>""".replace("{long}", "word " * 300).encode()


# --- parsing ------------------------------------------------------------------------------------


def test_rss_items_are_parsed_with_html_stripped():
    first, second = parse_feed(RSS, base_url=FEED_URL)
    assert first.external_id == "news-1"
    assert first.title == "SEBI tweaks nomination rules"
    assert first.summary == "Investors must add a nominee & update KYC."
    assert first.link == "https://news.example.com/a/1"
    assert first.published_at == datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
    # No guid: the link (made absolute) identifies the item.
    assert second.external_id == second.link == "https://news.example.com/a/2"
    assert second.published_at is None


def test_atom_entries_are_parsed():
    first, second = parse_feed(ATOM)
    assert first.external_id == "tag:amfi.example,2026:42"
    assert first.title == "Debt funds & rate cuts"
    assert first.summary == "When rates fall, bond prices rise."
    assert first.link == "https://amfi.example/posts/42"  # the alternate link, not self
    assert first.published_at == datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
    assert second.title == "मुद्रास्फीति और निवेश"
    assert second.published_at == datetime(2026, 11, 13, 9, 15, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert len(second.summary) <= 500 and second.summary.endswith("…")


def test_rss_1_0_items_are_parsed():
    rdf = b"""<?xml version="1.0"?>
    <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
             xmlns:dc="http://purl.org/dc/elements/1.1/">
      <item rdf:about="https://x.example/1"><title>One</title><link>https://x.example/1</link>
        <dc:date>2026-11-01T00:00:00Z</dc:date></item>
    </rdf:RDF>"""
    (item,) = parse_feed(rdf)
    assert (item.title, item.external_id, item.published_at) == ("One", "https://x.example/1", datetime(2026, 11, 1, tzinfo=UTC))


def test_an_item_without_id_or_link_gets_a_stable_digest_id():
    xml = b"<rss><channel><item><title>Only a title</title></item></channel></rss>"
    (first,), (again,) = parse_feed(xml), parse_feed(xml)
    assert first.external_id.startswith("sha256:") and first.external_id == again.external_id


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<rss><channel><item><title>&lol2;</title></item></channel></rss>",
        b'<!DOCTYPE rss SYSTEM "http://evil.example/x.dtd"><rss><channel/></rss>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><rss/>'.encode("utf-16"),
    ],
)
def test_doctype_and_entity_declarations_are_refused(xml):
    with pytest.raises(FeedError, match="DOCTYPE"):
        parse_feed(xml)


def test_html_doctype_inside_cdata_is_not_a_declaration():
    xml = b"<rss><channel><item><title>T</title><description><![CDATA[<!DOCTYPE html><p>Hi</p>]]></description></item></channel></rss>"
    (item,) = parse_feed(xml)
    assert item.summary == "Hi"


@pytest.mark.parametrize("xml", [b"<html><body>Not a feed</body></html>", b"<rss><channel>", b""])
def test_something_that_is_not_a_feed_is_refused(xml):
    with pytest.raises(FeedError):
        parse_feed(xml)


# --- refreshing ---------------------------------------------------------------------------------


@pytest.fixture
def feed(db, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["news.example.com", "mirror.example.com"]
    return TopicFeed.objects.create(name="MF News", url=FEED_URL, category="News")


def client_for(handler) -> tuple[httpx.Client, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    return httpx.Client(transport=httpx.MockTransport(record)), sent


def test_refresh_creates_topics_once(feed):
    client, sent = client_for(lambda request: httpx.Response(200, content=RSS))

    assert refresh_feed(feed, client=client) == 2
    assert refresh_feed(feed, client=client) == 0

    assert [(r.method, str(r.url)) for r in sent] == [("GET", FEED_URL)] * 2
    assert sent[0].headers["User-Agent"].startswith("OpsCenter-FeedReader")
    topic = Topic.objects.get(external_id="news-1")
    assert (topic.feed, topic.source, topic.category, topic.enabled) == (feed, TopicSource.FEED, "News", True)
    assert topic.title == "SEBI tweaks nomination rules"
    assert topic.source_url == "https://news.example.com/a/1"
    assert topic.published_at == datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
    assert Topic.objects.filter(feed=feed).count() == 2
    feed.refresh_from_db()
    assert feed.items_added == 0 and feed.last_error == "" and feed.last_fetched_at is not None


def test_refresh_adds_only_the_new_items(feed):
    client, _ = client_for(lambda request: httpx.Response(200, content=RSS))
    refresh_feed(feed, client=client)
    newer = RSS.replace(b"<channel>", b"<channel><item><title>Fresh</title><guid>news-3</guid></item>", 1)
    client, _ = client_for(lambda request: httpx.Response(200, content=newer))
    assert refresh_feed(feed, client=client) == 1
    feed.refresh_from_db()
    assert feed.items_added == 1


def test_the_same_item_id_in_another_feed_is_a_separate_topic(feed):
    other = TopicFeed.objects.create(name="Mirror", url="https://mirror.example.com/rss", category="News")
    client, _ = client_for(lambda request: httpx.Response(200, content=RSS))
    assert refresh_feed(feed, client=client) == 2
    assert refresh_feed(other, client=client) == 2


def test_an_http_error_is_recorded_on_the_feed(feed):
    client, _ = client_for(lambda request: httpx.Response(503, text="down"))
    assert refresh_feed(feed, client=client) == 0
    feed.refresh_from_db()
    assert "HTTP 503" in feed.last_error
    assert feed.items_added == 0 and feed.last_fetched_at is not None
    assert not Topic.objects.exists()


def test_a_network_error_is_recorded_and_a_later_success_clears_it(feed):
    def fail(request):
        raise httpx.ConnectError("connection refused", request=request)

    client, _ = client_for(fail)
    assert refresh_feed(feed, client=client) == 0
    feed.refresh_from_db()
    assert feed.last_error.startswith("ConnectError")
    client, _ = client_for(lambda request: httpx.Response(200, content=RSS))
    assert refresh_feed(feed, client=client) == 2
    feed.refresh_from_db()
    assert feed.last_error == "" and feed.items_added == 2


def test_a_malicious_feed_is_recorded_not_parsed(feed):
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><rss><channel><item><title>&a;</title></item></channel></rss>'
    client, _ = client_for(lambda request: httpx.Response(200, content=bomb))
    assert refresh_feed(feed, client=client) == 0
    feed.refresh_from_db()
    assert "DOCTYPE" in feed.last_error
    assert not Topic.objects.exists()


def test_a_feed_larger_than_two_megabytes_is_refused(feed):
    huge = b"<rss><channel>" + b"<item><title>x</title></item>" * 80_000 + b"</channel></rss>"
    assert len(huge) > 2 * 1024 * 1024
    client, _ = client_for(lambda request: httpx.Response(200, content=huge))
    assert refresh_feed(feed, client=client) == 0
    feed.refresh_from_db()
    assert "larger than 2 MB" in feed.last_error


def test_a_private_feed_url_is_refused_without_a_request(db, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.OUTBOUND_ALLOW_PRIVATE = False
    feed = TopicFeed.objects.create(name="Internal", url="http://127.0.0.1:8000/rss")
    client, sent = client_for(lambda request: httpx.Response(200, content=RSS))
    assert refresh_feed(feed, client=client) == 0
    assert sent == []
    feed.refresh_from_db()
    assert "non-public address 127.0.0.1" in feed.last_error


def test_a_redirect_to_a_private_address_is_refused(feed):
    def handler(request):
        if request.url.host == "news.example.com":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data"})
        return httpx.Response(200, content=RSS)

    client, sent = client_for(handler)
    assert refresh_feed(feed, client=client) == 0
    assert [r.url.host for r in sent] == ["news.example.com"]
    feed.refresh_from_db()
    assert "169.254.169.254" in feed.last_error


def test_an_allowed_redirect_is_followed(feed):
    def handler(request):
        if request.url.host == "news.example.com":
            return httpx.Response(301, headers={"Location": "https://mirror.example.com/rss"})
        return httpx.Response(200, content=RSS)

    client, sent = client_for(handler)
    assert refresh_feed(feed, client=client) == 2
    assert [str(r.url) for r in sent] == [FEED_URL, "https://mirror.example.com/rss"]
    # Relative links resolve against where the feed was finally read from.
    assert Topic.objects.filter(source_url="https://mirror.example.com/a/2").exists()


def test_refresh_feeds_covers_every_enabled_feed(feed, monkeypatch):
    disabled = TopicFeed.objects.create(name="Off", url="https://mirror.example.com/off", enabled=False)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=ATOM))
    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kwargs: real_client(transport=transport, **kwargs))
    assert refresh_feeds() == {feed.pk: 2}
    disabled.refresh_from_db()
    assert disabled.last_fetched_at is None


# --- the starter bank ---------------------------------------------------------------------------


def test_starter_topics_are_substantive():
    assert len(STARTER_TOPICS) >= 20
    assert len({t["title"] for t in STARTER_TOPICS}) == len(STARTER_TOPICS)
    for topic in STARTER_TOPICS:
        assert topic["title"] and topic["category"] and len(topic["summary"]) > 60
        assert len(topic["key_points"]) == 3
        assert set(topic["segments"]) <= {"retail", "HNI", "NRI"}
        text = " ".join([topic["title"], topic["summary"], *topic["key_points"]])
        assert not BANNED_CLAIMS.search(text)
        assert "%" not in text  # no rates that go stale


def test_starter_topics_are_created_only_in_an_empty_bank(db):
    assert ensure_starter_topics() == len(STARTER_TOPICS)
    assert Topic.objects.filter(source=TopicSource.MANUAL, enabled=True).count() == len(STARTER_TOPICS)
    elss = Topic.objects.get(title__startswith="ELSS")
    assert elss.segments == ["retail", "HNI"] and len(elss.key_points) == 3
    assert ensure_starter_topics() == 0
    Topic.objects.exclude(pk=elss.pk).delete()
    assert ensure_starter_topics() == 0  # people's edits to the bank are never undone
