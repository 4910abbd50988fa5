"""The image card: a square, branded social card with the post's headline, drawn with Pillow.

Cards are JPEG (quality 85, 4:4:4 chroma so coloured text stays crisp): on this machine a
1080 px card encodes several times faster as JPEG than as PNG and is a fraction of the size.

Fonts: DejaVu Sans from /usr/share/fonts/truetype/dejavu when installed, else Pillow's
built-in font. Neither has Indic scripts (Devanagari, Tamil, Bengali, …): a headline the font
cannot draw would come out as empty boxes, so `render_card` falls back to `fallback_headline`
(the Latin/English one), then to the topic, then to the brand name; an advisor name or topic
it cannot draw is left off (the ARN, always Latin, is always shown).
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

from .models import EngineSettings

CARD_FORMAT = "JPEG"
CARD_EXTENSION = "jpg"
CARD_CONTENT_TYPE = "image/jpeg"
JPEG_QUALITY = 85

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
REGULAR = "DejaVuSans.ttf"
BOLD = "DejaVuSans-Bold.ttf"

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _rgb(colour: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    match = _HEX.match(colour or "")
    if not match:
        return default
    value = int(match.group(1), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


@dataclass(frozen=True)
class Brand:
    """The card's colours (#rrggbb) and the name printed on it."""

    name: str
    primary: str = "#1f4e79"
    accent: str = "#f2a900"
    text: str = "#ffffff"

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> Brand:
        """Return the brand configured in the engine settings."""
        return cls(
            name=settings.brand_name,
            primary=settings.brand_primary,
            accent=settings.brand_accent,
            text=settings.brand_text,
        )


@functools.lru_cache(maxsize=64)
def load_font(size: int, *, bold: bool = False) -> Font:
    """Return DejaVu Sans (bold or regular) at `size` px, or Pillow's built-in font; cached."""
    path = FONT_DIR / (BOLD if bold else REGULAR)
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=4096)
def _renders(font: Font, char: str) -> bool:
    # A glyph missing from the font is drawn as the font's .notdef box; compare with the
    # rendering of a private-use character, which no font we load defines.
    return _mask_of(font, char) != _mask_of(font, "\ue000")


def _mask_of(font: Font, char: str) -> tuple:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


def can_render(text: str, font: Font | None = None) -> bool:
    """Return True when every visible character of `text` has a glyph in `font` (default: the card font)."""
    font = font or load_font(32, bold=True)
    for char in set(text):
        # ASCII and Latin-1 are in every font we load; only the rest is worth a look.
        if ord(char) < 0x250 or char.isspace():
            continue
        if not _renders(font, char):
            return False
    return True


def _wrap(text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        # A single word wider than the box (a long URL) is cut where it fits.
        while len(word) > 1 and font.getlength(word) > width:
            cut = max(1, int(len(word) * width / font.getlength(word)))
            while cut > 1 and font.getlength(word[:cut]) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines


def fit_text(text: str, *, width: int, height: int, largest: int, smallest: int) -> tuple[Font, list[str], int]:
    """Return (font, lines, line height) for the largest bold size at which `text` fits the box.

    At the smallest size lines that still overflow are dropped and the last one ends in "…".
    """
    size = largest
    while True:
        font = load_font(size, bold=True)
        lines = _wrap(text, font, width)
        line_height = int(size * 1.22)
        if len(lines) * line_height <= height or size <= smallest:
            break
        size = max(smallest, int(size * 0.9))
    max_lines = max(1, height // line_height)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return font, lines, line_height


@functools.lru_cache(maxsize=16)
def _background(size: int, primary: tuple[int, int, int], accent: tuple[int, int, int]) -> Image.Image:
    # The gradient and shapes depend only on the brand and size: drawn once, copied per card.
    dark = tuple(int(c * 0.55) for c in primary)
    vertical = Image.linear_gradient("L")
    diagonal = ImageChops.add(vertical, vertical.transpose(Image.Transpose.ROTATE_90), scale=2.0)
    mask = diagonal.resize((size, size), Image.Resampling.BILINEAR)
    image = Image.composite(Image.new("RGB", (size, size), dark), Image.new("RGB", (size, size), primary), mask)
    draw = ImageDraw.Draw(image)
    unit = size / 1080
    r = int(300 * unit)
    draw.ellipse((size - r, -r, size + r, r), fill=_mix(primary, (255, 255, 255), 0.18))
    draw.ellipse((size - int(r * 0.55), -int(r * 0.55), size + int(r * 0.55), int(r * 0.55)), fill=accent)
    draw.rectangle((int(80 * unit), int(250 * unit), int(200 * unit), int(262 * unit)), fill=accent)
    draw.rectangle((0, size - int(150 * unit), size, size), fill=dark)
    draw.rectangle((0, size - int(156 * unit), size, size - int(150 * unit)), fill=accent)
    return image


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b, strict=True))


def render_card(
    *,
    headline: str,
    advisor_name: str,
    arn: str,
    brand: Brand,
    topic: str = "",
    size: int = 1080,
    fallback_headline: str = "",
) -> bytes:
    """Render the square social card and return it as JPEG bytes.

    A headline in a script the font lacks is replaced by `fallback_headline` (then the
    topic, then the brand name) so the card never shows empty boxes.
    """
    primary = _rgb(brand.primary, (0x1F, 0x4E, 0x79))
    accent = _rgb(brand.accent, (0xF2, 0xA9, 0x00))
    ink = _rgb(brand.text, (0xFF, 0xFF, 0xFF))
    unit = size / 1080
    margin = int(80 * unit)

    image = _background(size, primary, accent).copy()
    draw = ImageDraw.Draw(image)

    label_font = load_font(max(10, int(30 * unit)), bold=True)
    text = next(
        (t for t in (headline, fallback_headline, topic, brand.name) if t.strip() and can_render(t)),
        "",
    )
    if topic.strip() and can_render(topic):
        label = _fit_line(topic.upper(), label_font, size - 2 * margin - int(200 * unit))
        draw.text((margin, int(180 * unit)), label, font=label_font, fill=accent)

    top, bottom = int(300 * unit), size - int(200 * unit)
    font, lines, line_height = fit_text(
        " ".join(text.split()),
        width=size - 2 * margin,
        height=bottom - top,
        largest=max(12, int(86 * unit)),
        smallest=max(10, int(40 * unit)),
    )
    y = top + max(0, (bottom - top - len(lines) * line_height) // 3)
    for line in lines:
        draw.text((margin, y), line, font=font, fill=ink)
        y += line_height

    name_font = load_font(max(10, int(36 * unit)), bold=True)
    small_font = load_font(max(10, int(26 * unit)))
    footer_top = size - int(128 * unit)
    name = advisor_name if advisor_name.strip() and can_render(advisor_name, name_font) else ""
    if name:
        draw.text((margin, footer_top), _fit_line(name, name_font, size - 2 * margin), font=name_font, fill=ink)
    if arn:
        y_arn = footer_top + (int(50 * unit) if name else int(14 * unit))
        draw.text((margin, y_arn), f"ARN: {arn}", font=small_font, fill=ink)
    if brand.name.strip() and can_render(brand.name, label_font):
        # Top left, clear of the corner circles.
        brand_text = _fit_line(brand.name, label_font, size - 2 * margin - int(330 * unit))
        draw.text((margin, int(90 * unit)), brand_text, font=label_font, fill=ink)

    out = io.BytesIO()
    image.save(out, CARD_FORMAT, quality=JPEG_QUALITY, subsampling=0)
    return out.getvalue()


def _fit_line(text: str, font: Font, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def card_filename(advisor_arn: str, cycle_date: date, content_id: int | None) -> str:
    """Return the card's file name: cycle date, ARN and content id (or "draft"), e.g. 20261122-ARN-1234-42.jpg."""
    arn = _UNSAFE.sub("", advisor_arn) or "advisor"
    suffix = str(content_id) if content_id is not None else "draft"
    return f"{cycle_date:%Y%m%d}-{arn}-{suffix}.{CARD_EXTENSION}"
