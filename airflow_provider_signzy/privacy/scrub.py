"""Remove customers' personal data from text that Signzy wrote, before it reaches a log or an error.

Signzy runs on LoopBack, whose messages echo the input they reject: ``could not create List from JSON
string: "https://cdn.example/ABCDE1234F/front.jpg"``, ``Items must be an array: {"name":"Asha Verma"}``,
or the path of a call that had a PAN in it. :func:`scrub` keeps what helps a user act (status words,
field names, "can't be blank") and replaces the values with placeholders that say what was there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import quote

REDACTED = "<redacted>"

#: A field name as LoopBack quotes it in backquotes (`type`, `callbackUrl`, `address.city`): kept. It
#: starts lower-case, as fields do and names of people do not ('Asha' is a value).
_FIELD_NAME = re.compile(r"[a-z_$][A-Za-z0-9_$]*(?:\.[a-z_$][A-Za-z0-9_$]*)*")
_FIELD_NAME_MAX = 40

#: "..." with backslash escapes; an opening quote that is never closed runs to the end of the text.
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)', re.DOTALL)
#: '...' and `...`: a quote counts only where a word does not go on through it, so the apostrophe of
#: "can't" opens nothing.
_SINGLE_QUOTED = re.compile(r"(?<![\w'])'(?:[^'\\\n]|\\.)+'(?!\w)")
_BACKQUOTED = re.compile(r"`[^`\n]+`")
_URL = re.compile(r"\b(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)[^\s\"'`<>]+")
_EMAIL = re.compile(r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{5}[0-9]{4}[A-Za-z](?![A-Za-z0-9])")
#: +91 (or 0091, or a trunk 0) optional, then ten digits starting 6-9, in any grouping.
_PHONE = re.compile(r"(?<![\w+])(?:(?:\+|00)91[\s-]?|0)?[6-9](?:[\s-]?\d){9}(?!\d)")
#: Twelve digits, alone or grouped 4-4-4 by spaces or hyphens (the same separator twice).
_AADHAAR = re.compile(r"(?<!\d)\d{4}([ -]?)\d{4}\1\d{4}(?!\d)")
_LONG_NUMBER = re.compile(r"(?<!\d)\d{6,}(?!\d)")
_TRAILING = ".,;:!?)]}"


def _quoted(quote_char: str, keep: Callable[[str], bool] = lambda _content: False) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        content = match.group(0)[1:].removesuffix(quote_char)
        if not content or keep(content) or content == REDACTED:
            return match.group(0)
        return f"{quote_char}{REDACTED}{quote_char}"

    return replace


def _is_field_name(content: str) -> bool:
    return len(content) <= _FIELD_NAME_MAX and _FIELD_NAME.fullmatch(content) is not None


def _url(match: re.Match[str]) -> str:
    text = match.group(0)
    kept = text.rstrip(_TRAILING)  # "see https://x/y." keeps its full stop
    return "<url>" + text[len(kept) :]


def scrub(text: str, *, values: Iterable[str] = ()) -> str:
    """``text`` with every value that may be personal data replaced by a placeholder.

    The rule, in order:

    1. A string in double quotes is always a value: its content becomes ``<redacted>`` (the quotes
       stay: ``JSON string: "<redacted>"``). An opening double quote that is never closed hides the
       rest of the text.
    2. A string in single quotes or backquotes is kept only when it is a field name, as LoopBack quotes
       fields ("`type` can't be blank"): an identifier of at most 40 characters that starts with a
       lower-case letter, ``_`` or ``$`` and holds only letters, digits, ``_`` and ``$`` (dotted parts
       allowed: ``address.city``). Anything else (a capital first, a space, ``@``, ``/``, ...) becomes
       ``<redacted>``, so `Asha Verma` and 'Asha' go, `callbackUrl` stays. An apostrophe inside a word
       ("can't") is not a quote. A kept name still goes through rule 3.
    3. Outside quotes: URLs (``scheme://...`` and ``www....``) become ``<url>``; e-mail addresses
       ``<email>``; PAN shapes (five letters, four digits, a letter) ``<pan>``; Indian phone numbers
       (``+91`` optional, ten digits starting 6-9, any spaces or hyphens) ``<phone>``; Aadhaar shapes
       (twelve digits, optionally grouped 4-4-4 by spaces or hyphens) ``<aadhaar>``; any other run of
       six or more digits ``<number>``.

    ``values``: strings known to have been sent (an item's fields in a call's path, say): each, and its
    percent-encoded form, becomes ``<redacted>`` wherever it stands as a whole word, before the rules
    above.

    Scrubbing twice changes nothing more: the placeholders match no rule.
    """
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        for form in {value, quote(value, safe="")}:
            text = re.sub(rf"(?<![A-Za-z0-9%]){re.escape(form)}(?![A-Za-z0-9])", REDACTED, text)
    text = _DOUBLE_QUOTED.sub(_quoted('"'), text)
    text = _SINGLE_QUOTED.sub(_quoted("'", _is_field_name), text)
    text = _BACKQUOTED.sub(_quoted("`", _is_field_name), text)
    text = _URL.sub(_url, text)
    text = _EMAIL.sub("<email>", text)
    text = _PAN.sub("<pan>", text)
    text = _PHONE.sub("<phone>", text)
    text = _AADHAAR.sub("<aadhaar>", text)
    return _LONG_NUMBER.sub("<number>", text)
