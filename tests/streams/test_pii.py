import pytest

from streams.pii import is_valid_tc_kimlik_no, mask_personal_data


@pytest.mark.parametrize("number", ["10000000146", "12345678950"])
def test_valid_tc_kimlik_numbers(number: str) -> None:
    assert is_valid_tc_kimlik_no(number)


@pytest.mark.parametrize("number", ["10000000147", "02345678950", "1234567895", "abcdefghijk"])
def test_invalid_tc_kimlik_numbers(number: str) -> None:
    assert not is_valid_tc_kimlik_no(number)


def test_masks_phones_emails_tckn_and_iban() -> None:
    text = (
        "Beni 0532 123 45 67 ya da +90 (322) 555 12 34 numarasından arayın. "
        "E-posta: ali.veli@example.com, TC: 10000000146, IBAN TR33 0006 1005 1978 6457 8413 26"
    )
    masked = mask_personal_data(text)
    for secret in ("123 45", "555 12", "ali.veli", "10000000146", "6457 8413"):
        assert secret not in masked
    assert "67" in masked and "@example.com" in masked  # shape kept for staff
    assert masked.startswith("Beni ")


def test_leaves_ordinary_numbers_alone() -> None:
    text = "62012 Sokak no 14, 3 gündür su yok; 11 haneli ama geçersiz 10000000147"
    assert mask_personal_data(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("arayın (532)-123 45 67 lütfen", "123 45"),  # two separators after the area code
        ("tel:5321234567", "5321234567"),
        ("0.532.123.45.67 numaram", "123.45"),
        ("+90 322 555 12 34", "555 12"),
        ("no su TR33 0006 1005 1978 6457 8413 26 iban", "6457 8413"),
        ("tc kimlik 10000000146 dir", "10000000146"),
        ("yalnız e-posta: ayse@ornek.com.tr", "ayse@"),
    ],
)
def test_masks_each_kind_alone_in_every_separator_shape(text: str, secret: str) -> None:
    # Each kind of personal data, alone in a text: the cheap check that lets most texts
    # skip the number patterns must not let any of these through.
    assert secret not in mask_personal_data(text)
