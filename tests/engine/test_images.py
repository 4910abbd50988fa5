"""The image card: a valid square image, text that fits, no empty boxes for scripts the font lacks."""

from __future__ import annotations

import io
from datetime import date
from unittest import mock

import pytest
from PIL import Image

from agents.engine import images
from agents.engine.images import Brand, can_render, card_filename, fit_text, load_font, render_card
from agents.engine.models import EngineSettings

BRAND = Brand(name="Sharma Wealth", primary="#1f4e79", accent="#f2a900", text="#ffffff")


def open_card(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_card_is_a_square_jpeg_of_the_requested_size():
    card = open_card(render_card(headline="Why SIPs work", advisor_name="Priya Sharma", arn="ARN-123456", brand=BRAND))
    assert (card.format, card.size, card.mode) == ("JPEG", (1080, 1080), "RGB")
    small = open_card(render_card(headline="Why SIPs work", advisor_name="P", arn="ARN-1", brand=BRAND, size=540))
    assert small.size == (540, 540)


def test_card_uses_the_brand_colours():
    card = open_card(
        render_card(headline="x", advisor_name="A", arn="ARN-1", brand=Brand("B", "#c00000", "#00c000", "#ffffff"))
    )
    red, green, blue = card.getpixel((20, 540))  # the gradient's light edge: the primary colour
    assert red > 150 and green < 60 and blue < 60
    red, green, blue = card.getpixel((1075, 5))  # the accent circle in the corner
    assert green > 150 and red < 60


def test_a_long_headline_is_wrapped_and_shrunk_inside_the_card():
    headline = "Investing in Indian mutual funds as an NRI: NRE and NRO accounts, repatriation, FEMA and KYC " * 4
    data = render_card(headline=headline, advisor_name="Priya Sharma", arn="ARN-123456", brand=BRAND, topic="NRI")
    assert open_card(data).size == (1080, 1080)

    font, lines, line_height = fit_text(headline, width=920, height=580, largest=86, smallest=40)
    assert 40 <= font.size < 86
    assert len(lines) > 4 and len(lines) * line_height <= 580
    assert all(font.getlength(line) <= 920 for line in lines)
    assert " ".join(lines) == " ".join(headline.split())  # shrunk until all of it fits

    font, lines, line_height = fit_text(headline * 3, width=920, height=580, largest=86, smallest=40)
    assert font.size == 40 and len(lines) * line_height <= 580
    assert all(font.getlength(line) <= 920 for line in lines)
    assert lines[-1].endswith("…")  # too long even at the smallest size: cut, and says so


def test_a_word_wider_than_the_card_is_broken():
    url = "https://example.com/" + "a" * 300
    font, lines, _ = fit_text(url, width=920, height=580, largest=86, smallest=40)
    assert len(lines) > 1
    assert all(font.getlength(line) <= 920 for line in lines)


def test_devanagari_is_detected_as_not_renderable_and_latin_as_renderable():
    assert can_render("Why SIPs work — a guide for 2026 (₹500/month)")
    assert not can_render("एसआईपी क्यों काम करता है")
    assert not can_render("வணக்கம்")


def test_a_devanagari_headline_falls_back_to_the_english_one():
    drawn: list[str] = []
    real_text = images.ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):
        drawn.append(text)
        return real_text(self, xy, text, *args, **kwargs)

    with mock.patch.object(images.ImageDraw.ImageDraw, "text", spy):
        data = render_card(
            headline="एसआईपी अनुशासन",
            fallback_headline="SIP discipline",
            advisor_name="राहुल शर्मा",
            arn="ARN-42",
            brand=BRAND,
            topic="SIP",
        )
    assert open_card(data).size == (1080, 1080)
    assert "SIP discipline" in drawn
    assert not any(can_render(text) is False for text in drawn)
    assert "ARN: ARN-42" in drawn
    assert "राहुल शर्मा" not in drawn  # a name the font cannot draw is left off, the ARN stays


def test_without_a_usable_fallback_the_topic_is_the_headline():
    drawn: list[str] = []
    real_text = images.ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):
        drawn.append(text)
        return real_text(self, xy, text, *args, **kwargs)

    with mock.patch.object(images.ImageDraw.ImageDraw, "text", spy):
        render_card(headline="கட்டுரை", advisor_name="A", arn="ARN-1", brand=BRAND, topic="Tax saving")
    assert "Tax saving" in drawn and "TAX SAVING" in drawn
    assert "கட்டுரை" not in drawn


def test_fonts_are_loaded_once_per_size():
    assert load_font(40, bold=True) is load_font(40, bold=True)
    assert load_font(40) is not load_font(40, bold=True)


def test_builtin_font_is_used_when_dejavu_is_missing(tmp_path):
    load_font.cache_clear()
    try:
        with mock.patch.object(images, "FONT_DIR", tmp_path):
            data = render_card(headline="Fallback font", advisor_name="A", arn="ARN-1", brand=BRAND)
            font = load_font(30)
        assert "DejaVu" not in str(getattr(font, "path", ""))
        assert open_card(data).size == (1080, 1080)
    finally:
        load_font.cache_clear()


@pytest.mark.django_db
def test_brand_comes_from_the_engine_settings():
    settings = EngineSettings.load()
    settings.brand_name, settings.brand_primary = "Acme Advisors", "#123456"
    assert Brand.from_settings(settings) == Brand("Acme Advisors", "#123456", "#f2a900", "#ffffff")


def test_card_filename_names_date_arn_and_content():
    assert card_filename("ARN-123456", date(2026, 11, 22), 42) == "20261122-ARN-123456-42.jpg"
    assert card_filename("ARN-1", date(2026, 1, 2), None) == "20260102-ARN-1-draft.jpg"
    assert card_filename("../ARN 9/x", date(2026, 1, 2), 7) == "20260102-ARN9x-7.jpg"
