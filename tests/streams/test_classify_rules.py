"""The classifier's phrase rules: folding, cue matching, urgency, districts, Law 5216 bodies."""

from pathlib import Path

import pytest

from schemas.case import Responsible, Urgency
from schemas.taxonomy import taxonomy
from streams.classify.rules import TAXONOMY_PATH, TaxonomyError, fold_text, load_rules

RULES = load_rules()


def test_fold_text_turkish_casefolding_and_ascii_letters() -> None:
    assert fold_text("İSKELE'DE IŞIKLAR YANMIYOR") == "iskele de isiklar yanmiyor"
    assert fold_text("Çöp, ŞİKÂYET; Güzelyalı’da ığdır") == "cop sikayet guzelyali da igdir"
    assert fold_text("  çok\n\n  kötü \t") == "cok kotu"


def test_fold_text_drops_urls_mentions_emoji_and_personal_data() -> None:
    text = (
        "@AdanaBld #çöp toplanmadı 😡🗑️ bakın https://t.co/abc123 ve bit.ly/x1 "
        "ali.veli@example.com 0532 000 11 22 TR33 0006 1005 1978 6457 8413 26 10000000146"
    )
    assert fold_text(text) == "cop toplanmadi bakin ve"


def test_fold_text_cuts_quoted_reply_and_signature() -> None:
    mail = (
        "Sokak lambası hâlâ yanmıyor.\n\n"
        "-- \nAyşe Örnek\nYurt Mah. 1 Sk.\n\n"
        "> 12 Mart tarihinde Alo 153 yazdı:\n> Talebiniz alınmıştır."
    )
    assert fold_text(mail) == "sokak lambasi hala yanmiyor"
    reply = "Teşekkürler, su geldi.\n\n2 Mart 2026 tarihinde Alo 153 <a@b.tr> şunu yazdı:\nKayıt"
    assert fold_text(reply) == "tesekkurler su geldi"
    assert fold_text("Çukur duruyor\niPhone'umdan gönderildi") == "cukur duruyor"


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("Sular kesildi, iki gündür suyumuz yok", "su-kanalizasyon"),
        ("sular kesildi iki gundur suyumuz yok", "su-kanalizasyon"),
        ("ÇÖPLER TOPLANMIYOR, KONTEYNER TAŞTI", "temizlik"),
        ("copler toplanmiyor konteyner tasti", "temizlik"),
        ("Otobüs şoförü durakta durmadı", "ulasim"),
        ("parkın salıncağı kırık", "park-bahce"),
        ("lambalar yanmiyo zifiri karanlik", "aydinlatma"),
        ("sivrisinekten uyuyamıyoruz, ilaçlama yapılsın", "ilaclama"),
    ],
)
def test_unit_phrases_match_with_or_without_turkish_letters(text: str, unit: str) -> None:
    counts = RULES.unit_counts(fold_text(text))
    assert counts.most_common(1)[0][0] == unit


def test_word_end_marker_and_ignore_list_keep_false_friends_out() -> None:
    assert "park-bahce" not in RULES.unit_counts(fold_text("Parke taşları yerinden çıkmış"))
    assert "park-bahce" not in RULES.unit_counts(fold_text("Araçlar kaldırıma park ediyor"))
    assert "park-bahce" in RULES.unit_counts(fold_text("Park'ta banklar kırık"))
    assert "yol-altyapi" not in RULES.unit_counts(fold_text("Kazım Karabekir'de su yok"))


def test_first_named_unit_gets_the_main_problem_bonus() -> None:
    counts = RULES.unit_counts(fold_text("Çöp toplanmıyor, bir de lamba yanmıyor"))
    assert counts["temizlik"] > counts["aydinlatma"]


@pytest.mark.parametrize(
    ("text", "urgency"),
    [
        ("Merdivenlerde yoğun doğalgaz kokusu var, herkes dışarıda", Urgency.ACIL),
        ("apartmanin catisi yaniyor alevler yukseliyor", Urgency.ACIL),
        ("Direkten kopan kablo yerde kıvılcım saçıyor", Urgency.ACIL),
        ("Bodrum katımızı su bastı, eşyalar yüzüyor", Urgency.ACIL),
        ("Yan dairede adam karısını dövüyor, kadın bağırıyor", Urgency.ALO_183),
        ("yasli teyzeyi gelini eve kilitleyip ac birakiyor", Urgency.ALO_183),
        ("Çok şükür yangın yok ama sokak lambası yanmıyor", Urgency.NORMAL),
        ("Kuru otlar temizlenmezse yangın çıkabilir", Urgency.NORMAL),
        ("Yangın söndürüldü, ekibe teşekkürler", Urgency.NORMAL),
        ("Sokak köpeklerini dövüyorlar, hayvana şiddet var", Urgency.NORMAL),
        ("Lambalar gündüz de yanıyor, israf", Urgency.NORMAL),
    ],
)
def test_urgency_cues_with_negation_and_victims(text: str, urgency: Urgency) -> None:
    assert RULES.urgency_of(fold_text(text)) is urgency


@pytest.mark.parametrize(
    ("text", "district"),
    [
        ("Reşatbey'de su yok", "seyhan"),
        ("resatbeyde su yok", "seyhan"),
        ("Döşeme Mahallesi 5. sokak", "seyhan"),
        ("Beyazevler'de çukur var", "cukurova"),
        ("Mahfesığmaz mahallesinde lamba yanmıyor", "cukurova"),
        ("kiremithane de cop toplanmiyo", "yuregir"),
        ("Akıncılar'da köpek sürüsü", "yuregir"),
        ("Gültepe'de su kesik", "saricam"),
        ("Çukurova Üniversitesi Balcalı kampüsü önünde", "saricam"),
        ("Ceyhan Konakoğlu Mahallesi'nde", "ceyhan"),
        ("Kozan Tufanpaşa'da yol bozuk", "kozan"),
        ("Pozantı Akçatekir yolu kapandı", "pozanti"),
        ("KARATAŞ SAHİLİNDE ÇÖP", "karatas"),
        ("Yumurtalık'ta plaj temizlenmiyor", "yumurtalik"),
    ],
)
def test_district_from_place_names(text: str, district: str) -> None:
    assert RULES.district_of(fold_text(text)) == district


def test_district_none_for_unknown_places_rivers_and_signature_addresses() -> None:
    assert RULES.district_of(fold_text("Sokak lambası yanmıyor")) is None
    assert RULES.district_of(fold_text("Seyhan Nehri kıyısında sivrisinek çok")) is None
    petition = (
        "4982 sayılı Kanun kapsamında 2024 yılı ilaçlama programı hakkında bilgi verilmesini "
        "arz ederim. Ayşe Örnek, Yurt Mah. 1 Sk. No:3 Çukurova"
    )
    assert RULES.district_of(fold_text(petition)) is None
    # a tie goes to the place named first
    assert RULES.district_of(fold_text("Seyhan'dan Yüreğir'e giden otobüs")) == "seyhan"


@pytest.mark.parametrize(
    ("unit", "text", "responsible", "body"),
    [
        ("itfaiye", "Mutfakta doğalgaz kokusu var", Responsible.EXTERNAL, "dogalgaz"),
        ("itfaiye", "Çatıdan alevler çıkıyor", Responsible.METROPOLITAN, None),
        ("diger", "Elektrikler 6 saattir yok", Responsible.EXTERNAL, "elektrik"),
        ("diger", "Sokakta iki grup kavga ediyor", Responsible.EXTERNAL, "emniyet"),
        ("diger", "Hastane randevusu alamıyorum", Responsible.EXTERNAL, "saglik"),
        ("aydinlatma", "Sokak lambası yanmıyor", Responsible.EXTERNAL, "elektrik"),
        ("aydinlatma", "Parktaki lambalar yanmıyor", Responsible.DISTRICT, None),
        ("aydinlatma", "Turgut Özal Bulvarı'nda lambalar sönük", Responsible.METROPOLITAN, None),
        ("yol-altyapi", "Sokağımızda çukur var", Responsible.DISTRICT, None),
        ("yol-altyapi", "Ziyapaşa Bulvarı'nda asfalt çöktü", Responsible.METROPOLITAN, None),
        ("yol-altyapi", "D-400 üzerinde büyük çukur", Responsible.METROPOLITAN, None),
        ("temizlik", "Çöpler toplanmıyor", Responsible.DISTRICT, None),
        ("temizlik", "Sofulu çöp döküm sahası koku yapıyor", Responsible.METROPOLITAN, None),
        ("su-kanalizasyon", "Su kesik", Responsible.METROPOLITAN, None),
        ("ulasim", "Otobüs gelmedi", Responsible.METROPOLITAN, None),
    ],
)
def test_responsible_body_by_law_5216(
    unit: str, text: str, responsible: Responsible, body: str | None
) -> None:
    assert RULES.responsible_for(unit, fold_text(text)) == (responsible, body)


def test_taxonomy_covers_every_unit_and_district() -> None:
    codes = taxonomy()
    assert set(RULES.default_responsible) == set(codes.units)
    for unit in codes.units:
        assert len(RULES.units.phrases(unit)) >= 10, unit
    for code, name in codes.districts.items():
        assert RULES.district_of(fold_text(f"{name}'da sorun var")) == code
    for big in ("seyhan", "cukurova", "yuregir", "saricam", "ceyhan", "kozan"):
        assert len(RULES.districts.phrases(big)) >= 9, big


def test_taxonomy_refuses_unfolded_phrases_and_unknown_codes(tmp_path: Path) -> None:
    text = TAXONOMY_PATH.read_text(encoding="utf-8")
    unfolded = tmp_path / "unfolded.toml"
    unfolded.write_text(text.replace('"susuz",', '"susuz", "çöp",'), encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not in folded ASCII form"):
        load_rules(unfolded)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(text.replace("[units]\n", '[units]\nkutuphane = ["kitap"]\n'), "utf-8")
    with pytest.raises(TaxonomyError, match="kutuphane"):
        load_rules(unknown)
    bad_body = tmp_path / "bad_body.toml"
    bad_body.write_text(text.replace('"dis-kurum:elektrik"', '"dis-kurum:su"'), "utf-8")
    with pytest.raises(TaxonomyError, match="bodies"):
        load_rules(bad_body)
