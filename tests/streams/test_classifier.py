"""The combined classifier: committed model, per-unit/type/urgency/district behaviour, CLI."""

import csv
import io
import json
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sklearn

from schemas.case import Classification, MessageType, Responsible, Urgency
from schemas.common import GeoPoint
from schemas.message import CitizenMessage
from streams.classify import DEFAULT_CORPUS, MODEL_DIR
from streams.classify.classifier import Classifier, ClassifierSettings, needs_review
from streams.classify.cli import body_code, classify_stream, evaluate_csv, run_classify
from streams.classify.model import (
    ARTEFACT,
    SIDECAR,
    ModelArtefactError,
    file_sha256,
    load_model,
    rules_digest,
    train,
)
from streams.text import turkish_casefold

# Held-out macro-F1 floor for the unit. The corpus README's sanity baseline (char n-grams +
# LinearSVC, another 20 % split) reaches 0.862; the committed model measures about 0.91.
# One held-out text is 0.3 points and the standard error of a score near 0.9 on ~330 texts
# is about 1.7 points, so 0.85 leaves two standard errors of room: a retrained model below
# it is worse than the plain baseline, a regression rather than noise.
UNIT_MACRO_F1_FLOOR = 0.85
# Missing an emergency is the expensive error: on ~24 held-out acil texts 0.70 still allows
# for noise (measured about 0.83).
ACIL_RECALL_FLOOR = 0.70


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


def _sidecar() -> dict:
    return json.loads((MODEL_DIR / SIDECAR).read_text(encoding="utf-8"))


# ------------------------------------------------------------------ the committed artefact


def test_committed_model_is_not_stale() -> None:
    info = _sidecar()
    assert info["corpus_sha256"] == file_sha256(DEFAULT_CORPUS), (
        "data/corpus/messages.csv changed: run `intake classify --train` and commit the model"
    )
    assert info["sklearn_version"] == sklearn.__version__
    assert info["rules_sha256"] == rules_digest(), (
        "unit/type/urgency phrases changed: run `intake classify --train` and commit the model"
    )
    assert info["artefact_sha256"] == file_sha256(MODEL_DIR / ARTEFACT)
    assert (MODEL_DIR / ARTEFACT).stat().st_size < 5 * 1024 * 1024


def test_held_out_scores_above_floor() -> None:
    held_out = _sidecar()["held_out"]
    assert held_out["unit"]["n"] >= 300
    assert held_out["unit"]["macro_f1"] >= UNIT_MACRO_F1_FLOOR
    assert held_out["urgency"]["per_label"]["acil"]["recall"] >= ACIL_RECALL_FLOOR


def test_loading_refuses_other_corpus_other_sklearn_and_missing_model(tmp_path: Path) -> None:
    other = tmp_path / "corpus.csv"
    other.write_text("unit,type,urgency,district,text\ndiger,sikayet,normal,,x\n", "utf-8")
    with pytest.raises(ModelArtefactError, match="stale"):
        load_model(MODEL_DIR, other)
    copy = tmp_path / "model"
    shutil.copytree(MODEL_DIR, copy)
    info = json.loads((copy / SIDECAR).read_text(encoding="utf-8"))
    (copy / SIDECAR).write_text(json.dumps(info | {"sklearn_version": "0.1"}), "utf-8")
    with pytest.raises(ModelArtefactError, match=r"scikit-learn 0\.1"):
        load_model(copy, None)
    with pytest.raises(ModelArtefactError, match="--train"):
        load_model(tmp_path / "nothing", None)


def test_training_is_deterministic(tmp_path: Path) -> None:
    with DEFAULT_CORPUS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    small, seen = [], Counter[str]()
    for row in rows:  # 40 texts per unit keep this test fast
        if seen[row["unit"]] < 40:
            seen[row["unit"]] += 1
            small.append(row)
    corpus = tmp_path / "small.csv"
    with corpus.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(small)
    scores = train(corpus, tmp_path / "a")
    out = io.StringIO()  # the second run goes through `intake classify --train`
    assert (
        run_classify(
            ClassifierSettings(model_dir=tmp_path / "b"), train=True, corpus=corpus, stdout=out
        )
        == 0
    )
    assert f"accuracy {scores.accuracy:.3f}" in out.getvalue()
    assert "held-out part (urgency)" in out.getvalue()
    assert file_sha256(tmp_path / "a" / ARTEFACT) == file_sha256(tmp_path / "b" / ARTEFACT)
    assert (tmp_path / "a" / SIDECAR).read_bytes() == (tmp_path / "b" / SIDECAR).read_bytes()
    retrained = Classifier.load(ClassifierSettings(model_dir=tmp_path / "a", corpus_path=corpus))
    assert retrained.classify_batch(["Çöpler toplanmıyor"])[0].unit == "temizlik"


# ------------------------------------------------------------------ behaviour on fresh texts

UNIT_TEXTS = [
    ("Dün akşamdan beri musluklardan su akmıyor, ASKİ'yi aradık açan yok.", "su-kanalizasyon"),
    (
        "158 numaralı otobüs yarım saattir durağa uğramadı, Kentkart fazla çekti.",
        "ulasim",
    ),
    ("Sokağımızın asfaltı tamamen bozuldu, her yer çukur, lastiğim patladı.", "yol-altyapi"),
    ("Çöp konteynerleri bir haftadır boşaltılmıyor, sokak kokudan geçilmiyor.", "temizlik"),
    ("Parktaki salıncaklar kırık, çocuk parkının çimleri de kurumuş.", "park-bahce"),
    ("Kaldırımı işgal eden seyyar satıcılar yüzünden yayalar yola iniyor.", "zabita"),
    ("Sokakta bacağı kırık bir köpek var, inliyor, ekip gelip alabilir mi?", "veteriner"),
    ("Yatalak annem için evde bakım ve tekerlekli sandalye desteği istiyorum.", "sosyal-hizmetler"),
    ("Akşamları sivrisinekten balkona çıkamıyoruz, ilaçlama ne zaman yapılacak?", "ilaclama"),
    ("Sokağımızdaki lamba direklerinin hiçbiri yanmıyor, gece zifiri karanlık.", "aydinlatma"),
    ("Yan parselde ruhsatsız kaçak kat çıkıyorlar, inşaat gece de sürüyor.", "imar"),
    ("Karşı apartmanın üçüncü katından alevler ve yoğun duman çıkıyor!", "itfaiye"),
    ("Nikah salonu için Ağustos'ta boş tarih var mı, randevu nasıl alınır?", "diger"),
]


@pytest.mark.parametrize(("text", "unit"), UNIT_TEXTS)
def test_unit_of_fresh_messages(classifier: Classifier, text: str, unit: str) -> None:
    assert classifier.classify_batch([text])[0].unit == unit


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("dunden beri musluklardan su akmiyor ASKI yi aradik acan yok", "su-kanalizasyon"),
        ("sokakdaki lambalar yanmiyo 1 haftadir her yer karanlk", "aydinlatma"),
        ("copler toplanmiyo konteynir tasti koku her yerde", "temizlik"),
        ("OTOBUS SOFORU DURAKTA DURMADI EL KALDIRDIK GECTI", "ulasim"),
        ("SOKAK KÖPEKLERİ ÇOCUKLARA SALDIRIYOR", "veteriner"),
    ],
)
def test_ascii_misspelled_and_shouting_variants(
    classifier: Classifier, text: str, unit: str
) -> None:
    assert classifier.classify_batch([text])[0].unit == unit


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "Bildirdiğim çukuru hemen kapatan ekibe çok teşekkür ederim.",
            "tesekkur",
        ),
        (
            "4982 sayılı Bilgi Edinme Kanunu kapsamında 2024 yılında yapılan ilaçlama sayısı "
            "hakkında bilgi verilmesini talep ederim.",
            "bilgi-edinme",
        ),
        ("Sokağımıza bir çöp konteyneri daha konulmasını rica ediyorum.", "talep"),
        ("Duraklara otobüsün kaç dakikada geleceğini gösteren ekran konulsa iyi olur.", "oneri"),
        ("Şu an boş arsaya bir kamyon moloz döküyor, plakasını aldım, ihbar ediyorum.", "ihbar"),
        ("Üç gündür çöp alınmıyor, bu ne rezillik.", "sikayet"),
    ],
)
def test_message_type(classifier: Classifier, text: str, kind: str) -> None:
    assert classifier.classify_batch([text])[0].type is MessageType(kind)


@pytest.mark.parametrize(
    ("text", "urgency", "responsible"),
    [
        (
            "Mutfakta yoğun doğalgaz kokusu var, dışarı çıktık.",
            "acil",
            "dis-kurum:dogalgaz",
        ),
        ("Direkten kopan elektrik kablosu yerde kıvılcım saçıyor!", "acil", "dis-kurum:elektrik"),
        (
            "Şu an caddede iki grup bıçakla kavga ediyor, yaralı var!",
            "acil",
            "dis-kurum:emniyet",
        ),
        ("Kiremithane'de evin içine lağım suyu doldu, bodrum su altında!", "acil", "buyuksehir"),
        ("Alt kattaki adam karısını dövüyor, şu an çığlıklar geliyor.", "alo-183", "buyuksehir"),
        (
            "Yangın yok ama yangın merdiveni eşyayla dolu, kapısı kilitli.",
            "normal",
            "buyuksehir",
        ),
        (
            "Geçen hafta çıkan yangına gelen itfaiyecilere teşekkürler.",
            "normal",
            "buyuksehir",
        ),
    ],
)
def test_urgency_and_responsible_body(
    classifier: Classifier, text: str, urgency: str, responsible: str
) -> None:
    result = classifier.classify_batch([text])[0]
    assert result.urgency is Urgency(urgency)
    assert body_code(result) == responsible


def test_district_and_metropolitan_road(classifier: Classifier) -> None:
    texts = [
        "Beyazevler'de çöpler toplanmıyor",
        "kiremithane de su yok 2 gundur",
        "Gültepe Mahallesi'nde sokak köpekleri",
        "Turgut Özal Bulvarı'nda kaldırım taşları kırık",
        "Sokağımızda çukur var",
    ]
    results = classifier.classify_batch(texts)
    assert [r.district for r in results] == ["cukurova", "yuregir", "saricam", "cukurova", None]
    assert results[3].unit == "yol-altyapi" and results[3].responsible is Responsible.METROPOLITAN
    assert results[4].unit == "yol-altyapi" and results[4].responsible is Responsible.DISTRICT


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("Çöpler toplanmıyor, ayrıca sokak lambası da yanmıyor.", {"temizlik", "aydinlatma"}),
        (
            "Parktaki ağaçların dalları kırılmış, bir de sivrisinek çok, ilaçlama yapılsın.",
            {"park-bahce", "ilaclama"},
        ),
        ("Su borusu patladı, yol da çöktü, asfalt kabardı.", {"su-kanalizasyon", "yol-altyapi"}),
    ],
)
def test_several_problems_pick_one_of_them(
    classifier: Classifier, text: str, units: set[str]
) -> None:
    assert classifier.classify_batch([text])[0].unit in units


def test_batch_equals_single(classifier: Classifier) -> None:
    texts = [text for text, _ in UNIT_TEXTS] + ["", "😀", "merhaba"]
    batch = classifier.classify_batch(texts)
    assert batch == [classifier.classify_batch([t])[0] for t in texts]
    assert classifier.classify_batch([]) == []


def test_classify_message_reads_subject_and_address(classifier: Classifier) -> None:
    text = "İki gündür çöpler alınmıyor"
    msg = CitizenMessage(
        message_id="api:1",
        tracking_number="153-AAAAA-AAAAAA",
        channel="api",
        received_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        subject="Çöp şikayeti",
        text=text,
        text_folded=turkish_casefold(text),
        location=GeoPoint(address="Yavuzlar Mah. 1234 Sk. No:5 Yüreğir/Adana"),
    )
    result = classifier.classify_message(msg)
    assert (result.unit, result.district) == ("temizlik", "yuregir")
    assert result.method.startswith("tfidf-lr+rules-v1:")


def test_needs_review_below_threshold(classifier: Classifier) -> None:
    sure = Classification(unit="temizlik", confidence=0.9, method="t")
    unsure = Classification(unit="temizlik", confidence=0.3, method="t")
    assert not needs_review(sure) and needs_review(unsure)
    assert needs_review(sure, threshold=0.95)
    assert classifier.needs_review(unsure) and not classifier.needs_review(sure)


# ------------------------------------------------------------------ stream and evaluation


def test_classify_stream_keeps_order_and_reports_bad_lines(classifier: Classifier) -> None:
    lines: list[str | bytes] = [
        json.dumps({"id": 1, "text": "Çöpler toplanmıyor"}, ensure_ascii=False),
        "{not json",
        "",
        json.dumps({"id": "b", "text": "sokak lambasi yanmiyor"}),
        json.dumps({"id": 3}),
        json.dumps([1, 2]),
        "\xff\xfe".encode("latin-1"),
        json.dumps({"text": "Otobüs gelmedi"}, ensure_ascii=False).encode("utf-8"),
        json.dumps({"id": 9, "text": "  "}),
    ]
    out = io.StringIO()
    counts = classify_stream(lines, out, classifier, batch_size=2)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (counts.classified, counts.errors) == (3, 5)
    assert [r.get("id") for r in records] == [1, None, "b", 3, None, None, None, 9]
    assert [r.get("unit") for r in records if "unit" in r] == ["temizlik", "aydinlatma", "ulasim"]
    assert [r["line"] for r in records if "error" in r] == [2, 5, 6, 7, 9]
    assert "not JSON" in records[1]["error"] and "no text" in records[3]["error"]
    assert set(records[0]) == {"id", "unit", "type", "urgency", "district", "body", "confidence"}
    assert records[2]["body"] == "dis-kurum:elektrik"
    whole = io.StringIO()
    classify_stream(lines, whole, classifier, batch_size=256)
    assert whole.getvalue() == out.getvalue()


def test_evaluate_csv_prints_scores_and_confusion(classifier: Classifier, tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "text"])
        writer.writerows((unit, text) for text, unit in UNIT_TEXTS)
        writer.writerow(["temizlik", "Sokak lambası yanmıyor"])  # a deliberate miss
    out = io.StringIO()
    scores = evaluate_csv(path, classifier, out)
    report = out.getvalue()
    assert scores.n == 14 and scores.accuracy == round(13 / 14, 4)
    assert "accuracy 0.929" in report and "macro-F1" in report
    assert "precision  recall" in report and "confusion matrix" in report
    assert any(line.split()[1:2] == ["temizlik"] for line in report.splitlines())


def test_run_classify_exit_codes(tmp_path: Path) -> None:
    settings = ClassifierSettings()
    err = io.StringIO()
    assert run_classify(settings, evaluate=tmp_path / "missing.csv", stderr=err) == 2
    assert "missing.csv" in err.getvalue()
    out = io.StringIO()
    stdin = io.BytesIO(b'{"id": 7, "text": "su yok"}\n')
    assert run_classify(settings, stdin=stdin, stdout=out) == 0
    assert json.loads(out.getvalue())["id"] == 7
    broken = ClassifierSettings(model_dir=tmp_path)
    assert run_classify(broken, stdin=io.BytesIO(b""), stdout=out, stderr=err) == 1
    assert "--train" in err.getvalue()
