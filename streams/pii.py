"""Recognise personal data in free text (phone, e-mail, T.C. kimlik no, IBAN) and mask it.

KVKK: units, the console and logs get the problem, not the citizen's identity. Masking keeps
enough of the shape ("+90 5** *** ** 67") for staff to see that something was there.
"""

from __future__ import annotations

import re

__all__ = ["is_valid_tc_kimlik_no", "mask_email", "mask_personal_data", "mask_phone"]

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)", re.UNICODE)
_IBAN = re.compile(r"\bTR\s?\d{2}(?:\s?\d{4}){5}\s?\d{2}\b", re.IGNORECASE)
_TCKN = re.compile(r"(?<!\d)([1-9]\d{10})(?!\d)")
# Turkish phone numbers: +90 / 0090 / 0 prefix, mobile 5xx or landline area code, any separators.
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)\s?90[\s.-]?|0[\s.-]?)?\(?[2-5]\d{2}\)?[\s.-]?\d{3}[\s.-]?\d{2}[\s.-]?\d{2}(?!\d)"
)
# What each of the three number patterns contains: ten digits with at most two separators
# between two of them. Most texts have none, and this one scan (it starts at a digit) is far
# cheaper than the phone pattern, which is tried at every position.
_TEN_DIGITS = re.compile(r"\d(?:[\s.()-]{0,2}\d){9}")


def is_valid_tc_kimlik_no(value: str) -> bool:
    """Whether ``value`` is a T.C. kimlik no: 11 digits, no leading 0, both check digits right."""
    if not re.fullmatch(r"[1-9]\d{10}", value):
        return False
    d = [int(c) for c in value]
    tenth = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
    return tenth == d[9] and sum(d[:10]) % 10 == d[10]


def mask_phone(phone: str) -> str:
    """Keep the last two digits of a phone number."""
    digits = re.sub(r"\D", "", phone)
    return "*" * max(len(digits) - 2, 0) + digits[-2:] if digits else phone


def mask_email(email: str) -> str:
    """Keep the first letter of the local part and the domain."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_personal_data(text: str) -> str:
    """``text`` with e-mail addresses, IBANs, T.C. kimlik numbers and phone numbers masked."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    if not _TEN_DIGITS.search(text):
        return text
    text = _IBAN.sub("TR** **** **** **** **** **** **", text)
    text = _TCKN.sub(
        lambda m: "***********" if is_valid_tc_kimlik_no(m.group(1)) else m.group(1), text
    )
    return _PHONE.sub(lambda m: _mask_phone_match(m.group(0)), text)


def _mask_phone_match(found: str) -> str:
    kept = 2
    out = []
    digits_seen = sum(c.isdigit() for c in found)
    for char in found:
        if char.isdigit():
            digits_seen -= 1
            out.append(char if digits_seen < kept else "*")
        else:
            out.append(char)
    return "".join(out)
