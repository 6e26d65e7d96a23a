"""Deterministic Turkish citizen messages for the benchmark (pure: no I/O, no clock).

Each event is a :class:`~schemas.raw.RawEvent` for ``intake.raw.api`` with an
:class:`~schemas.raw.ApiSubmission` payload, written as operators and citizens write: a
numbered street in one of Adana's mahalleler, a problem of one unit in one of several
wordings, how long it has lasted and a complaint; sometimes without Turkish letters, in
lower case, abbreviated or with a letter dropped. Every report has its own citizen (phone),
street, building and coordinates (geocoded within about a kilometre of the mahalle), so
originals are distinct reports. A configured share is re-sent:

* **exact duplicates**: the very same bytes again (a provider re-delivering the same id);
* **near duplicates**: the same problem at the same address (within ~20 m), another
  wording, source and citizen, a provider id of its own (what clustering should merge).

The last events of a batch are always originals. Provider ids are ``bench-<run>-<seq>``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from schemas.common import Channel, CitizenContact, GeoPoint
from schemas.ids import message_id, tracking_number
from schemas.raw import ApiSource, ApiSubmission, RawEvent

__all__ = ["PLACES", "PROBLEMS", "EventKind", "GeneratedEvent", "Place", "Problem", "generate"]

EventKind = Literal["original", "exact", "near"]

BASE_TIME = datetime(2025, 6, 11, 5, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Place:
    """A mahalle: its district, the prefix of its street numbers and its centre."""

    district: str
    mahalle: str
    street_prefix: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Problem:
    """One problem of one unit, in several wordings a citizen might use."""

    unit: str
    subject: str
    wordings: tuple[str, ...]


_PLACES = """
Seyhan|Reşatbey|620|36.9914|35.3308
Seyhan|Gürselpaşa|750|37.0012|35.2968
Seyhan|Kurtuluş|640|36.9969|35.3251
Seyhan|Döşeme|610|36.9842|35.3167
Çukurova|Kurttepe|820|37.0448|35.2771
Çukurova|Huzurevleri|772|37.0510|35.2930
Çukurova|Beyazevler|803|37.0197|35.2852
Çukurova|Toros|790|37.0356|35.3092
Yüreğir|Serinevler|312|36.9867|35.3629
Yüreğir|Kiremithane|341|36.9713|35.3512
Yüreğir|Yavuzlar|120|36.9621|35.3904
Sarıçam|Orhangazi|215|37.0391|35.3958
Sarıçam|Yeşiltepe|204|37.0662|35.4011
Kozan|Tufanpaşa|402|37.4541|35.8152
Ceyhan|Konakoba|305|37.0248|35.8166
İmamoğlu|Cumhuriyet|106|37.2652|35.6578
"""

_PROBLEMS = """
su-kanalizasyon|Su arızası
  su yok, sabah kesiliyor akşam geliyor
  sular kesik, ne zaman geleceği belli değil
  şebeke suyu hiç akmıyor, ASKİ'yi arıyoruz meşgul
su-kanalizasyon|Boru patlağı
  su borusu patladı, sokak göl oldu
  ana boru patlamış, yoldan su fışkırıyor
  borudan sızan su yolu çökertiyor
su-kanalizasyon|Kanalizasyon
  kanalizasyon taştı, koku dayanılmaz
  rögar kapağından pis su taşıyor
  lağım suyu bodrumlara doldu
yol-altyapi|Yol bozukluğu
  yolda kocaman bir çukur var, araçlar zarar görüyor
  asfalt çökmüş, lastiğimiz patladı
  yol bozuk, çukurlar yüzünden geçilmiyor
yol-altyapi|Kaldırım
  kaldırım taşları sökülmüş, yaşlılar düşüyor
  kaldırım kırık, bebek arabasıyla yürünmüyor
  kazı yapıldı ama kaldırım eski haline getirilmedi
temizlik|Çöp
  çöpler günlerdir alınmıyor
  konteyner taştı, her yer çöp oldu
  çöp konteynerlerinin etrafı leş gibi kokuyor
park-bahce|Park
  parktaki oyun alanının salıncağı kırık
  parkta devrilmek üzere olan bir ağaç var
  park bakımsız, çimler kurumuş, banklar kırık
zabita|İşgal ve gürültü
  seyyar satıcılar kaldırımı işgal etmiş
  gece yarısına kadar gürültü yapan bir işyeri var
  dükkan önüne mal yığılmış, kaldırım işgal edilmiş
veteriner|Sokak hayvanları
  sokak köpekleri sürü halinde dolaşıyor, çocuklar korkuyor
  başıboş köpekler okula giden çocukları kovalıyor
  yaralı bir köpek günlerdir kaldırımda yatıyor
aydinlatma|Aydınlatma
  sokak lambası yanmıyor, her yer zifiri karanlık
  direkteki lamba sürekli yanıp sönüyor
  aydınlatma arızalı, akşamları sokağa çıkamıyoruz
ilaclama|İlaçlama
  sivrisinekten geçilmiyor, ilaçlama yapılmadı
  bodrumlarda hamam böceği ve fare var
  ilaçlama aracı bu yıl hiç gelmedi, sinekten uyuyamıyoruz
ulasim|Ulaşım
  otobüsler durağa çok geç geliyor, seferler aksıyor
  şoför durakta bekleyen yolcuları almadan geçti
  durağın camları kırılmış, oturma yeri sökülmüş
"""


def _places(table: str) -> tuple[Place, ...]:
    rows = (line.split("|") for line in table.strip().splitlines())
    return tuple(Place(d, m, p, float(lat), float(lon)) for d, m, p, lat, lon in rows)


def _problems(table: str) -> tuple[Problem, ...]:
    problems: list[Problem] = []
    for line in table.strip().splitlines():
        if not line.startswith(" "):
            unit, subject = line.split("|")
            problems.append(Problem(unit, subject, ()))
        else:
            last = problems[-1]
            problems[-1] = Problem(last.unit, last.subject, (*last.wordings, line.strip()))
    return tuple(problems)


PLACES = _places(_PLACES)
PROBLEMS = _problems(_PROBLEMS)

_OPENINGS = ("", "", "Merhaba,", "İyi günler,", "Sayın yetkili,", "Alo 153'ü defalarca aradım,")
_DURATIONS = ("3 gündür", "bir haftadır", "sabahtan beri", "iki aydır", "dün akşamdan beri")
_TAILS = (
    "Kimse ilgilenmiyor.",
    "Lütfen acil bir ekip gönderin.",
    "Defalarca aradık, sonuç yok!",
    "Evde yaşlı annem var, çok mağduruz.",
    "Gereğinin yapılmasını rica ederim.",
    "Çocuklar okula giderken tehlike oluyor.",
    "Vergimizi veriyoruz, bu hizmeti hak ediyoruz.",
)
_NAMES = (  # noqa: SIM905 - first names and surnames, alternating
    "Ayşe Yılmaz Mehmet Kaya Hatice Demir Mustafa Çelik Zeynep Şahin Hüseyin Öztürk "
    "Emine Aydın İbrahim Arslan Fatma Doğan Ömer Kılıç Elif Koç Yusuf Aslan"
).split()
_SOURCES = (ApiSource.OPERATOR, ApiSource.FIELD, ApiSource.DESK)
_ASCII = str.maketrans("çğıöşüÇĞİÖŞÜ", "cgiosuCGIOSU")


@dataclass(frozen=True)
class Address:
    """Where one reported problem is: a numbered street, a building and its coordinates."""

    place: int
    street: str
    building: int
    lat: float
    lon: float


@dataclass(frozen=True)
class GeneratedEvent:
    """One event to send: its bytes, and what the benchmark needs to recognise its output."""

    seq: int
    kind: EventKind
    original_seq: int
    problem: int
    wording: int
    address: Address
    raw: RawEvent
    value: bytes

    @property
    def key(self) -> bytes:
        """The raw topic's key: the provider message id."""
        return self.raw.provider_id.encode()

    @property
    def case_id(self) -> str:
        """The case id the pipeline gives a new case opened by this event."""
        return tracking_number(message_id(self.raw.channel, self.raw.provider_id))


def _address(rng: random.Random) -> Address:
    place_no = rng.randrange(len(PLACES))
    place = PLACES[place_no]
    distance, bearing = 1000 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = place.lat + distance * math.cos(bearing) / 111_320
    lon = place.lon + distance * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    street = f"{place.street_prefix}{rng.randrange(100):02d}"
    return Address(place_no, street, rng.randrange(1, 120), round(lat, 6), round(lon, 6))


def _place_phrase(rng: random.Random, address: Address) -> str:
    place = PLACES[address.place]
    forms = (
        f"{place.district} {place.mahalle} Mahallesi {address.street} Sokak No {address.building}",
        f"{place.mahalle} Mah. {address.street} Sk. no:{address.building} önünde",
        f"{place.mahalle} mahallesinde {address.street}. sokakta",
        f"{place.district}/{place.mahalle} {address.street} sokak",
    )
    return rng.choice(forms)


def _typo(rng: random.Random, text: str) -> str:
    """Drop one letter of one longer word, as a hurried typist does."""
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    j = rng.randrange(1, len(words[i]) - 1)
    words[i] = words[i][:j] + words[i][j + 1 :]
    return " ".join(words)


def _text(rng: random.Random, address: Address, what: str) -> str:
    where, since, tail = _place_phrase(rng, address), rng.choice(_DURATIONS), rng.choice(_TAILS)
    shape = rng.randrange(3)
    if shape == 0:
        text = f"{rng.choice(_OPENINGS)} {where} {since} {what}. {tail}"
    elif shape == 1:
        text = f"{where} {what}! {since} böyle. {tail}"
    else:
        text = f"Vatandaş bildiriyor: {where} {what}, {since} devam ediyor. {tail}"
    text = " ".join(text.split())
    roll = rng.random()
    if roll < 0.25:
        text = text.translate(_ASCII)  # typed on a phone without Turkish letters
    elif roll < 0.40:
        text = text.replace("İ", "i").replace("I", "ı").lower()  # Turkish lower case
    if rng.random() < 0.3:
        text = _typo(rng, text)
    if rng.random() < 0.15:
        text = text.rstrip(".!") + "!!"
    return text


def _raw(
    rng: random.Random,
    seq: int,
    provider_id: str,
    problem: Problem,
    wording: int,
    address: Address,
    source: ApiSource,
    received_at: datetime,
) -> RawEvent:
    jitter = (rng.random() - 0.5) / 2500  # about ±20 m: the same building, geocoded again
    place = PLACES[address.place]
    digits = f"{seq % 10**7:07d}"  # every report has its own citizen
    payload = ApiSubmission(
        source=source,
        text=_text(rng, address, problem.wordings[wording]),
        subject=problem.subject if rng.random() < 0.4 else None,
        citizen=CitizenContact(
            name=f"{rng.choice(_NAMES[0::2])} {rng.choice(_NAMES[1::2])}"
            if rng.random() < 0.8
            else None,
            phone=f"+90 555 {digits[:3]} {digits[3:5]} {digits[5:]}",
        ),
        location=GeoPoint(
            lat=round(address.lat + jitter, 6),
            lon=round(address.lon + jitter, 6),
            address=f"{place.mahalle} Mah. {address.street} Sk. No:{address.building}, "
            f"{place.district}/Adana",
        ),
        submitted_by=f"op-{1500 + seq % 60}",
    )
    return RawEvent(
        channel=Channel.API,
        provider_id=provider_id,
        received_at=received_at,
        payload=payload.model_dump(mode="json", exclude_none=True),
    )


def _kinds(rng: random.Random, n: int, exact_share: float, near_share: float) -> list[EventKind]:
    """Exactly ``round(n·share)`` duplicates of each sort, never first and never in the tail."""
    tail = max(1, n // 50)
    n_exact, n_near = round(n * exact_share), round(n * near_share)
    slots = range(1, max(1, n - tail))
    if n_exact + n_near > len(slots):
        raise ValueError(f"{n_exact + n_near} duplicates do not fit in {n} events")
    chosen = rng.sample(slots, n_exact + n_near)
    kinds: list[EventKind] = ["original"] * n
    for i in chosen[:n_exact]:
        kinds[i] = "exact"
    for i in chosen[n_exact:]:
        kinds[i] = "near"
    return kinds


def generate(
    n: int,
    *,
    run_id: str,
    seed: int = 153,
    start_seq: int = 0,
    exact_share: float = 0.05,
    near_share: float = 0.10,
    base_time: datetime = BASE_TIME,
) -> list[GeneratedEvent]:
    """``n`` events numbered from ``start_seq``; the same arguments always give the same bytes."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if not (0 <= exact_share <= 1 and 0 <= near_share <= 1):
        raise ValueError("duplicate shares must lie between 0 and 1")
    rng = random.Random(f"{seed}:{run_id}:{start_seq}")
    events: list[GeneratedEvent] = []
    originals: list[GeneratedEvent] = []
    for offset, kind in enumerate(_kinds(rng, n, exact_share, near_share)):
        seq = start_seq + offset
        if kind == "exact":
            first = rng.choice(originals)
            events.append(
                GeneratedEvent(
                    seq,
                    kind,
                    first.seq,
                    first.problem,
                    first.wording,
                    first.address,
                    first.raw,
                    first.value,
                )
            )
            continue
        if kind == "near":
            first = rng.choice(originals)
            problem_no, address, of = first.problem, first.address, first.seq
            others = range(len(PROBLEMS[problem_no].wordings))
            wording = rng.choice([w for w in others if w != first.wording])
            before = ApiSource(first.raw.payload["source"])
            source = rng.choice([s for s in _SOURCES if s is not before])
        else:
            problem_no, address, of = rng.randrange(len(PROBLEMS)), _address(rng), seq
            wording = rng.randrange(len(PROBLEMS[problem_no].wordings))
            source = rng.choice(_SOURCES)
        raw = _raw(
            rng,
            seq,
            f"bench-{run_id}-{seq:07d}",
            PROBLEMS[problem_no],
            wording,
            address,
            source,
            base_time + timedelta(milliseconds=50 * offset),
        )
        event = GeneratedEvent(seq, kind, of, problem_no, wording, address, raw, raw.to_bytes())
        events.append(event)
        if kind == "original":
            originals.append(event)
    return events
