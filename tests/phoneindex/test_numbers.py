"""Tests for phoneindex.numbers: typed text -> E.164, refusals, masking."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

from phoneindex.errors import UnusableNumber, WhoisError
from phoneindex.numbers import (
    _fast_e164,
    _slow_e164,
    is_masked,
    last4,
    mask,
    to_e164,
    to_e164_or_none,
)

CI = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
REGIONS = ["US", "GB", "DE", "FR", "IT", "ES", "BR", "IN", "AU", "JP", "MX", "NL", "SE", "ZA"]
TYPES = [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE]
# Default regions whose own international prefix does not swallow a following `1` (AU: 0014).
DIALLING_REGIONS = ["US", "CA", "GB", "DE", "FR", "IT", "JP", "IN", "ZA"]
FULL_WIDTH = str.maketrans("+0123456789 ", "＋０１２３４５６７８９\u3000")


def digits_of(text: str) -> set[str]:
    """Return the ASCII digits in `text` (after NFKC, so full-width digits count too)."""
    return {c for c in unicodedata.normalize("NFKC", text) if c in "0123456789"}


def refusal(text: str, region: str = "US") -> str:
    """Return the reason to_e164 gives for refusing `text`; fail if it accepts it."""
    with pytest.raises(UnusableNumber) as caught:
        to_e164(text, region)
    return caught.value.reason


# Accepted forms ------------------------------------------------------------------------------

ACCEPTED = [
    ("+14155550100", "US", "+14155550100"),
    ("+1 (415) 555-0100", "US", "+14155550100"),
    ("415.555.0100", "US", "+14155550100"),
    ("415-555-0100", "US", "+14155550100"),
    ("(415) 555-0100", "US", "+14155550100"),
    ("1 415 555 0100", "US", "+14155550100"),
    ("  +1 415 555 0100\n", "US", "+14155550100"),
    ("00 44 20 7946 0958", "US", "+442079460958"),
    ("00 44 20 7946 0958", "GB", "+442079460958"),
    ("00 44 20 7946 0958", "JP", "+442079460958"),
    ("011 44 20 7946 0958", "US", "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("+44 (0)20 7946 0958", "US", "+442079460958"),
    ("tel:+14155550100", "US", "+14155550100"),
    ("TEL:+1-415-555-0100", "GB", "+14155550100"),
    ("tel:+1-415-555-0100;ext=123", "US", "+14155550100"),
    ("tel:555-0100;phone-context=+1-415", "GB", "+14155550100"),
    ("tel:415-555-0100;phone-context=example.com", "US", "+14155550100"),
    ("<tel:+14155550100|(415) 555-0100>", "GB", "+14155550100"),
    ("<tel:+14155550100>", "GB", "+14155550100"),
    ("＋１ ４１５ ５５５ ０１００", "US", "+14155550100"),
    ("（４１５）５５５－０１００", "US", "+14155550100"),
    ("+١ ٤١٥ ٥٥٥ ٠١٠٠", "US", "+14155550100"),  # Arabic-Indic digits
    ("+१ ४१५ ५५५ ०१००", "US", "+14155550100"),  # Devanagari digits
    ("\u202a+1 415 555 0100\u202c", "US", "+14155550100"),  # bidi marks from a phone's copy
    ("+1\u00a0415\u00a0555\u00a00100", "US", "+14155550100"),
    ("+1 415–555–0100", "US", "+14155550100"),
    ("+1 4155550100", "US", "+14155550100"),  # Guardian
    ("415-555-0100 x123", "US", "+14155550100"),
    ("415-555-0100 ext. 123", "US", "+14155550100"),
    ("415-555-0100 extension 9", "US", "+14155550100"),
    ("+14155550100;ext=123", "US", "+14155550100"),
    ("415-555-0100#123", "US", "+14155550100"),
    ("415-555-0100#", "US", "+14155550100"),
    ("'+1 415 555 0100'", "US", "+14155550100"),
    ("+39 06 6982 0000", "US", "+390669820000"),
    ("06 6982 0000", "IT", "+390669820000"),
    ("+4402079460958", "US", "+442079460958"),  # national prefix after the country code
    ("+49 30 901820", "US", "+4930901820"),
    ("+33 1 23 45 67 89", "US", "+33123456789"),
    ("+50012345", "US", "+50012345"),  # Falkland Islands: five-digit numbers are real
]


@pytest.mark.parametrize(("text", "region", "expected"), ACCEPTED)
def test_accepts_typed_forms(text: str, region: str, expected: str) -> None:
    assert to_e164(text, region) == expected


def test_default_region_is_us() -> None:
    assert to_e164("(415) 555-0100") == "+14155550100"


def test_region_code_is_case_insensitive() -> None:
    assert to_e164("020 7946 0958", "gb") == "+442079460958"


def test_unknown_default_region_is_a_programming_error_not_a_refusal() -> None:
    with pytest.raises(ValueError, match="unknown default region") as caught:
        to_e164("020 7946 0958", "ZZ")
    assert not isinstance(caught.value, UnusableNumber)


def test_possible_but_invalid_numbers_are_kept() -> None:
    # Validity policy: metadata may lag new ranges, so only possibility is required.
    number = phonenumbers.parse("+10555550100")
    assert phonenumbers.is_possible_number(number) and not phonenumbers.is_valid_number(number)
    assert to_e164("+1 055 555 0100") == "+10555550100"


def test_fast_path_does_not_call_libphonenumber_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> PhoneNumber:
        raise AssertionError("phonenumbers.parse called on strict E.164")

    monkeypatch.setattr(phonenumbers, "parse", refuse)
    assert to_e164("+442079460958") == "+442079460958"
    assert to_e164("+390669820000") == "+390669820000"


# Refusals ------------------------------------------------------------------------------------

REFUSED = [
    ("anonymous", "withheld caller id"),
    ("Anonymous", "withheld caller id"),
    ("ANONYMOUS", "withheld caller id"),
    ("restricted", "withheld caller id"),
    ("Private", "withheld caller id"),
    ("unavailable", "withheld caller id"),
    ("unknown", "withheld caller id"),
    ('"<unknown>"', "withheld caller id"),
    ("<Withheld>", "withheld caller id"),
    ("blocked", "withheld caller id"),
    ("Private Number", "withheld caller id"),
    ("anonymous@anonymous.invalid", "withheld caller id"),
    ("", "empty: no number given"),
    ("   ", "empty: no number given"),
    ("\t\n", "empty: no number given"),
    ("12345", "short codes are not indexed"),
    ("911", "short codes are not indexed"),
    ("112", "short codes are not indexed"),
    ("55555", "short codes are not indexed"),
    ("555-0100", "missing its area code"),
    ("+112", "too short to be a phone number"),
    ("+1 415 555", "too short to be a phone number"),
    ("+1 415 555 0100 9", "too long to be a phone number"),
    ("+44 20 7946 0958 1234 5678", "too long to be a phone number"),
    ("+1234567890123456", "too long to be a phone number"),
    ("1" * 65, "too long to be a phone number"),
    ("+1 415 555 0100" + " " * 60, "too long to be a phone number"),
    ("hello", "contains no digits"),
    ("---", "contains no digits"),
    ("1-800-FLOWERS", "contains letters; vanity numbers are not matched"),
    ("call 415 555 0100", "contains letters; vanity numbers are not matched"),
    ("415*555*0100", "contains characters that are not part of a phone number"),
    ("415?555?0100", "contains characters that are not part of a phone number"),
    ("+999 1234 5678", "unknown country calling code"),
    ("+0 415 555 0100", "unknown country calling code"),
    ("415 555 0100; 12", "contains characters that are not part of a phone number"),
    ("XXXXXXXX0100", "masked number"),
    ("+1 XXX-XXX-0100", "masked number"),
    ("+14•••••0100", "masked number"),
    ("+1 415 555 0100 / +1 415 555 0199", "not recognised as a phone number"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refuses_with_reason(text: str, reason: str) -> None:
    assert refusal(text) == reason


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refusal_never_repeats_input_digits(text: str, reason: str) -> None:
    with pytest.raises(UnusableNumber) as caught:
        to_e164(text)
    assert not re.search(r"[0-9]", str(caught.value))
    assert not digits_of(str(caught.value)) & digits_of(text)


def test_refusal_is_a_project_error_and_a_value_error() -> None:
    with pytest.raises(WhoisError):
        to_e164("anonymous")
    with pytest.raises(ValueError):
        to_e164("anonymous")


def test_refusal_without_default_region_needs_country_code() -> None:
    assert to_e164_or_none("415 555 0100") is None
    with pytest.raises(UnusableNumber, match="no country calling code"):
        _raise_from_slow("415 555 0100", None)


def _raise_from_slow(text: str, region: str | None) -> None:
    """Raise the refusal the slow path records for `text`."""
    e164, reason = _slow_e164(text, region)
    if e164 is None:
        raise UnusableNumber(reason)


# Lenient variant for Auth0 data --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+14155550100", None, "+14155550100"),
        ("+1 4155550100", None, "+14155550100"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("00 44 20 7946 0958", None, "+442079460958"),
        ("4155550100", None, None),
        ("4155550100", "US", "+14155550100"),
        (None, None, None),
        (None, "US", None),
        ("", None, None),
        ("anonymous", None, None),
        ("+1 XXX-XXX-0100", None, None),
        ("XXXXXXXX0100", "US", None),
        ("******0100", None, None),
        ("+14•••••0100", None, None),
        ("+1 ••• ••• 0100", None, None),
        ("not a number", None, None),
    ],
)
def test_to_e164_or_none(text: str | None, region: str | None, expected: str | None) -> None:
    assert to_e164_or_none(text, region) == expected


# Masks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "XXXXXXXX0100",
        "xxxxxxxx0100",
        "+1 XXX-XXX-0100",
        "******0100",
        "+14•••••0100",
        "+1 ••• ••• 0100",
        "+44 ••• ••• 0958",
        "+1 ###-###-0100",
        "…0100",
        "＊＊＊＊＊＊0100",
        "XXXXXXXXXX",
    ],
)
def test_is_masked(text: str) -> None:
    assert is_masked(text)


@pytest.mark.parametrize(
    "text",
    [
        "+14155550100",
        "(415) 555-0100",
        "415-555-0100 x123",
        "415-555-0100 #12",
        "hello",
        "anonymous",
        "",
        "+1 XXX-XXX-0100 (mobile)",
        "0100",
    ],
)
def test_is_not_masked(text: str) -> None:
    assert not is_masked(text)


@pytest.mark.parametrize(
    ("e164", "masked", "short"),
    [
        ("+14155550100", "+1 ••• ••• 0100", "…0100"),
        ("+442079460958", "+44 ••• ••• 0958", "…0958"),
        ("+390669820000", "+39 ••• ••• 0000", "…0000"),
        ("+3545512345", "+354 ••• ••• 345", "…345"),  # short numbers show at most half
        ("+50012345", "+500 ••• ••• 45", "…45"),
        ("(415) 555-0100", "•••0100", "…0100"),
        ("not a number", "•••", "…"),
        ("", "•••", "…"),
    ],
)
def test_mask_and_last4(e164: str, masked: str, short: str) -> None:
    assert mask(e164) == masked
    assert last4(e164) == short


def test_mask_output_reads_as_masked() -> None:
    assert is_masked(mask("+14155550100"))
    assert is_masked(last4("+14155550100"))


# Properties ----------------------------------------------------------------------------------


@st.composite
def valid_numbers(draw: st.DrawFn) -> tuple[str, PhoneNumber]:
    """Draw (region, number): an example number of the region with random last digits."""
    region = draw(st.sampled_from(REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(TYPES)))
    assume(example is not None)
    assert example is not None
    national = phonenumbers.national_significant_number(example)
    size = draw(st.integers(min_value=1, max_value=4))
    tail = draw(st.text("0123456789", min_size=size, max_size=size))
    number = phonenumbers.parse(f"+{example.country_code}{national[:-size]}{tail}")
    assume(phonenumbers.is_valid_number(number))
    assume(phonenumbers.region_code_for_number(number) == region)
    return region, number


def e164_of(number: PhoneNumber) -> str:
    """Return the E.164 form libphonenumber gives `number`."""
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


@st.composite
def separated(draw: st.DrawFn, number: PhoneNumber) -> str:
    """Write `number` as +CC followed by digit groups with dots, dashes, spaces, parentheses."""
    national = phonenumbers.national_significant_number(number)
    sep = draw(st.sampled_from([" ", ".", "-", " - ", ""]))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(national) - 1), max_size=4))))
    groups = [national[a:b] for a, b in zip([0, *cuts], [*cuts, len(national)], strict=True)]
    if draw(st.booleans()):
        groups[0] = f"({groups[0]})"
    return f"+{number.country_code} " + sep.join(groups)


@st.composite
def written(draw: st.DrawFn) -> tuple[str, str, str]:
    """Draw (text, default region, expected E.164) for a valid number written some common way."""
    region, number = draw(valid_numbers())
    e164 = e164_of(number)
    intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    caller = draw(st.sampled_from(DIALLING_REGIONS))
    forms = [
        (e164, caller),
        (intl, caller),
        (national, region),
        (phonenumbers.format_number(number, PhoneNumberFormat.RFC3966), caller),
        (draw(separated(number)), caller),
        (f"00 {intl[1:]}", caller),
        (f"00{e164[1:]}", caller),
        (f"<tel:{e164}|{national}>", caller),
        (intl.translate(FULL_WIDTH), caller),
        (national.translate(FULL_WIDTH), region),
        (f"{intl} ext. 42", caller),
    ]
    text, default = draw(st.sampled_from(forms))
    return text, default, e164


@CI
@given(written())
def test_every_common_form_gives_back_the_same_e164(case: tuple[str, str, str]) -> None:
    text, region, e164 = case
    assert to_e164(text, region) == e164


@CI
@given(written())
def test_to_e164_is_idempotent(case: tuple[str, str, str]) -> None:
    text, region, _ = case
    once = to_e164(text, region)
    assert to_e164(once, region) == once
    assert to_e164(once, "JP") == once
    assert to_e164_or_none(once) == once


@CI
@given(valid_numbers())
def test_fast_path_agrees_with_slow_path_on_valid_numbers(case: tuple[str, PhoneNumber]) -> None:
    e164 = e164_of(case[1])
    assert _fast_e164(e164) in (None, e164)
    assert _slow_e164(e164, "US") == (e164, "")


@CI
@given(st.from_regex(re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII), fullmatch=True))
def test_fast_path_never_disagrees_with_slow_path(text: str) -> None:
    quick = _fast_e164(text)
    if quick is not None:
        assert quick == text
        assert _slow_e164(text, "US") == (text, "")


@CI
@given(st.from_regex(re.compile(r"\+[0-9]{1,20}", re.ASCII), fullmatch=True))
def test_e164_like_input_is_answered_or_refused_without_digits(text: str) -> None:
    result = to_e164_or_none(text)
    if result is None:
        assert not re.search(r"[0-9]", refusal(text))
    else:
        assert re.fullmatch(r"\+[1-9][0-9]{6,14}", result)


@CI
@given(st.text(alphabet=st.sampled_from("0123456789+-.() xX*•#;:=<>|tel"), max_size=40))
def test_refusals_never_contain_digits(text: str) -> None:
    try:
        result = to_e164(text)
    except UnusableNumber as refused:
        assert not re.search(r"[0-9]", str(refused))
    else:
        assert re.fullmatch(r"\+[1-9][0-9]{6,14}", result)


def shown_digits(masked: str) -> str:
    """Return the subscriber digits a masked form shows (the country code is not counted)."""
    return re.sub(r"[^0-9]", "", re.sub(r"^\+[0-9]+ ", "", masked))


@CI
@given(valid_numbers())
def test_mask_never_leaks_more_than_four_digits(case: tuple[str, PhoneNumber]) -> None:
    e164 = e164_of(case[1])
    for short in (mask(e164), last4(e164)):
        shown = shown_digits(short)
        assert len(shown) <= 4
        assert e164.endswith(shown)
    assert mask(e164).startswith(f"+{case[1].country_code} ")


@CI
@given(st.text(max_size=30))
def test_mask_of_anything_shows_at_most_four_digits(text: str) -> None:
    assert len(shown_digits(mask(text))) <= 4
    assert len(shown_digits(last4(text))) <= 4
