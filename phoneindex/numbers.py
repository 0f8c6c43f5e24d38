"""Text a person or a phone system typed -> E.164, or a clear refusal; masking for display."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumber, ValidationResult

from phoneindex.errors import UnusableNumber

__all__ = ["is_masked", "last4", "mask", "to_e164", "to_e164_or_none"]

MAX_INPUT_CHARS = 64
MIN_E164_DIGITS = 7
MAX_E164_DIGITS = 15
# Fewer digits than this, typed without a country code, is a short code (911, 112, 12345).
MIN_NATIONAL_DIGITS = 7

# ASCII only: in a str pattern `\d` would also match full-width and other Unicode digits.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_EXTENSION = re.compile(
    r"(?:[\s,;]*(?:e?xt(?:ension|n)?\.?[:=]?|x|#|~)\s*[0-9]{1,7}#?|#)\s*\Z", re.IGNORECASE
)
_WORDS = re.compile(r"[^\W\d_]+")
_NOT_DIGITS = re.compile(r"[^0-9]")
_FIRST_DIGIT_OR_PLUS = re.compile(r"[+0-9]")
# What may sit between the digits of a number once extensions and URIs are gone.
_PUNCTUATION = frozenset("+-./()[] \t\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_WITHHELD = frozenset(
    "anonymous anon restricted private unavailable available unknown withheld blocked hidden"
    " suppressed unlisted payphone area callerid clid none null".split()
)
_MASK_CHARS = "Xx*•●·∙⋅∗#"
_MASK_RUN = re.compile(f"[{re.escape(_MASK_CHARS)}]{{2,}}")
_MASK_ALLOWED = frozenset(_MASK_CHARS + "0123456789+-.() \t")
_DOTS = "•••"

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short to be a phone number",
    NumberParseException.TOO_SHORT_NSN: "too short to be a phone number",
    NumberParseException.TOO_LONG: "too long to be a phone number",
}
_LENGTH_REASONS = {
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "missing its area code",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    ValidationResult.TOO_SHORT: "too short to be a phone number",
    ValidationResult.TOO_LONG: "too long to be a phone number",
    ValidationResult.INVALID_LENGTH: "not a valid number for its country",
}

_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@dataclass(frozen=True, slots=True)
class _Rule:
    """What the fast path needs to know about one country calling code."""

    lengths: frozenset[int]
    national_prefix: re.Pattern[str] | None


_RULES: dict[str, _Rule] = {}


def to_e164(text: str, default_region: str = "US") -> str:
    """Return the E.164 form of `text`, or raise UnusableNumber saying why it is not usable."""
    quick = _fast_e164(text)
    if quick is not None:
        return quick
    e164, reason = _slow_e164(text, default_region)
    if e164 is None:
        raise UnusableNumber(reason)
    return e164


def to_e164_or_none(text: str | None, default_region: str | None = None) -> str | None:
    """Return the E.164 form of a number from Auth0 data, or None if it is absent or unusable."""
    if text is None:
        return None
    quick = _fast_e164(text)
    if quick is not None:
        return quick
    return _slow_e164(text, default_region)[0]


def is_masked(text: str) -> bool:
    """Tell whether `text` is a number Auth0 masked, such as `+1 XXX-XXX-0100` or `******0100`."""
    cleaned = unicodedata.normalize("NFKC", text.replace("…", _DOTS)).strip()
    if _MASK_RUN.search(cleaned) is None:
        return False
    return all(char in _MASK_ALLOWED for char in cleaned)


def mask(e164: str) -> str:
    """Return a display form keeping the country code and at most the last four digits."""
    country_code, subscriber = _split(e164)
    tail = _tail(subscriber)
    if country_code is None:
        return _DOTS + tail
    return f"+{country_code} {_DOTS} {_DOTS} {tail}"


def last4(e164: str) -> str:
    """Return the short `…0100` form used in log lines."""
    return "…" + _tail(_split(e164)[1])


# Fast path ------------------------------------------------------------------------------------
#
# Strict E.164 is returned as it is when libphonenumber would return the very same string: the
# country code is known, the national number has a length `is_possible_number` accepts (not a
# local-only length), and it does not start with something `parse` might strip as a national
# prefix. Anything else is not refused here but handed to the slow path, so both paths give the
# same answer on every input; tests check this on generated numbers and random digit strings.


def _fast_e164(text: str) -> str | None:
    """Return `text` if it is strict E.164 that parsing would leave unchanged, else None."""
    if _E164.fullmatch(text) is None:
        return None
    for end in (2, 3, 4):
        code = text[1:end]
        if code in _COUNTRY_CODES:
            rule = _RULES.get(code) or _load_rule(code)
            national = text[end:]
            if len(national) not in rule.lengths:
                return None
            if rule.national_prefix is not None and rule.national_prefix.match(national):
                return None
            return text
    return None


def _load_rule(code: str) -> _Rule:
    """Build and remember the fast-path rule for one country calling code."""
    region = phonenumbers.region_code_for_country_code(int(code))
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(int(code), region)
    lengths: frozenset[int] = frozenset()
    prefix = None
    if metadata is not None and metadata.general_desc is not None:
        desc = metadata.general_desc
        local_only = frozenset(desc.possible_length_local_only or ())
        lengths = frozenset(n for n in desc.possible_length or () if n > 0) - local_only
        if metadata.national_prefix_for_parsing:
            prefix = re.compile(metadata.national_prefix_for_parsing)
    rule = _RULES[code] = _Rule(lengths, prefix)
    return rule


# Slow path ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _slow_e164(text: str, region: str | None) -> tuple[str | None, str]:
    """Return (E.164, "") or (None, reason); cached, as refusals are as common as answers."""
    try:
        return _parse(text, _checked_region(region)), ""
    except UnusableNumber as refusal:
        return None, refusal.reason


def _checked_region(region: str | None) -> str | None:
    """Return the region code in upper case; an unknown one is a programming error."""
    if region is None:
        return None
    upper = region.upper()
    if upper not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default region {region!r}")
    return upper


def _parse(text: str, region: str | None) -> str:
    """Turn any typed form into E.164 or raise UnusableNumber."""
    cleaned = _clean(text)
    _refuse_non_numbers(cleaned)
    candidate = _with_country_code(cleaned, region)
    try:
        number = phonenumbers.parse(candidate, region)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "not recognised as a phone number")
        raise UnusableNumber(reason) from None
    return _possible_e164(number)


def _clean(text: str) -> str:
    """Normalise Unicode and peel off quotes, Slack markup, tel: URIs and extensions."""
    if len(text) > MAX_INPUT_CHARS:
        raise UnusableNumber("too long to be a phone number")
    normal = unicodedata.normalize("NFKC", text)
    # Other decimal digits (Arabic-Indic, Devanagari, ...) become ASCII; format characters such
    # as the bidi marks phones add when copying a number are dropped.
    chars = (
        str(unicodedata.decimal(char)) if char.isdecimal() else char
        for char in normal
        if unicodedata.category(char) != "Cf"
    )
    cleaned = _strip_tel_uri(_unwrap_slack("".join(chars).strip().strip("\"'`").strip()))
    return _EXTENSION.sub("", cleaned).strip()


def _unwrap_slack(text: str) -> str:
    """Return `tel:+1...` from Slack's `<tel:+1...|(415) 555-0100>` markup."""
    if text.startswith("<") and text.endswith(">"):
        return text[1:-1].split("|", 1)[0].strip()
    return text


def _strip_tel_uri(text: str) -> str:
    """Return the number of a `tel:` URI, prefixed with its global phone-context if any."""
    if text[:4].lower() != "tel:":
        return text
    number, *params = text[4:].split(";")
    for param in params:
        name, _, value = param.partition("=")
        context = value.strip()
        if name.strip().lower() == "phone-context" and context.startswith("+"):
            if not number.strip().startswith("+"):
                number = context + number
    return number.strip()


def _refuse_non_numbers(text: str) -> None:
    """Refuse empty, withheld, masked, lettered and otherwise non-number text."""
    if not text:
        raise UnusableNumber("empty: no number given")
    if is_masked(text):
        raise UnusableNumber("masked number")
    if not any(char.isdigit() for char in text):
        if _WITHHELD.intersection(_WORDS.findall(text.lower())):
            raise UnusableNumber("withheld caller id")
        raise UnusableNumber("contains no digits")
    if any(char.isalpha() for char in text):
        raise UnusableNumber("contains letters; vanity numbers are not matched")
    if not all(char.isdigit() or char in _PUNCTUATION for char in text):
        raise UnusableNumber("contains characters that are not part of a phone number")


def _with_country_code(text: str, region: str | None) -> str:
    """Refuse short codes and make `00` an international prefix where the region does not."""
    first = _FIRST_DIGIT_OR_PLUS.search(text)
    if first is not None and first.group() == "+":
        return text
    digits = _NOT_DIGITS.sub("", text)
    if len(digits) < MIN_NATIONAL_DIGITS:
        raise UnusableNumber("short codes are not indexed")
    # `00` dials abroad in most of the world. Where the region's own international prefix is
    # something else (US 011, JP 010, AU 0011), no national number starts with 00 either, so
    # `00 44 20 ...` still means +44. Regions that do use 00 are left to libphonenumber.
    if digits.startswith("00") and not _dials_abroad(region, digits):
        return "+" + digits[2:]
    if region is None:
        raise UnusableNumber("no country calling code")
    return text


def _dials_abroad(region: str | None, digits: str) -> bool:
    """Tell whether `digits` starts with the region's own international prefix."""
    metadata = PhoneMetadata.metadata_for_region(region) if region else None
    if metadata is None or not metadata.international_prefix:
        return False
    return re.match(metadata.international_prefix, digits) is not None


def _possible_e164(number: PhoneNumber) -> str:
    """Return the E.164 form of a parsed number whose length is possible for its country."""
    # Validity policy: we require `is_possible_number` (a full, not local-only, length for the
    # country) but do not refuse numbers `is_valid_number` rejects. Unknown country codes never
    # get here (`parse` refuses them). Matching is exact, so an invalid number costs nothing but
    # an empty answer, while refusing it would lose real matches whenever libphonenumber's
    # metadata lags a newly opened range.
    result = phonenumbers.is_possible_number_with_reason(number)
    if result != ValidationResult.IS_POSSIBLE:
        raise UnusableNumber(_LENGTH_REASONS.get(result, "not a valid number for its country"))
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) - 1 > MAX_E164_DIGITS:
        raise UnusableNumber("too long to be a phone number")
    if len(e164) - 1 < MIN_E164_DIGITS:
        raise UnusableNumber("too short to be a phone number")
    return e164


# Masking --------------------------------------------------------------------------------------


def _split(text: str) -> tuple[str | None, str]:
    """Return (country code, subscriber digits) of E.164, or (None, all digits) otherwise."""
    if _E164.fullmatch(text) is not None:
        for end in (2, 3, 4):
            if text[1:end] in _COUNTRY_CODES:
                return text[1:end], text[end:]
    normal = unicodedata.normalize("NFKC", text)
    return None, "".join(str(unicodedata.decimal(c)) for c in normal if c.isdecimal())


def _tail(digits: str) -> str:
    """Return the last four digits, but never more than half of them (short numbers)."""
    shown = min(4, len(digits) // 2)
    return digits[-shown:] if shown else ""
