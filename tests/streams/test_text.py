from streams.text import collapse_whitespace, fold_ascii, turkish_casefold


def test_turkish_casefold_maps_dotted_and_dotless_i() -> None:
    assert turkish_casefold("IĞDIR") == "ığdır"
    assert turkish_casefold("İSTANBUL") == "istanbul"
    assert turkish_casefold("ISPARTA İLİ") == "ısparta ili"
    # Python's own lower() gets this wrong (İ → i + combining dot, I → i):
    assert "İ".lower() != "i" and turkish_casefold("İ") == "i"


def test_casefold_normalizes_decomposed_letters() -> None:
    decomposed = "S\u0327EHI\u0307R"  # Ş and İ typed as base letter + combining mark
    assert turkish_casefold(decomposed) == "şehir"


def test_fold_ascii_matches_text_typed_without_turkish_letters() -> None:
    assert fold_ascii(turkish_casefold("ÇÖPLER ALINMADI, Şikâyet")) == "copler alinmadi, sikayet"
    assert fold_ascii(turkish_casefold("Yüreğir")) == fold_ascii(turkish_casefold("YUREGIR"))


def test_collapse_whitespace() -> None:
    assert collapse_whitespace("  su\n\n kesik\t  ") == "su kesik"
