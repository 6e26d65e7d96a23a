"""The statistical half of the classifier: TF-IDF + logistic regression, trained and saved.

One vectorizer (character 2–5-grams within words plus word 1–2-grams, on folded ASCII text)
feeds three heads: unit, message type and urgency. Each head's probabilities are combined
with the rule hits of its cue family as ``softmax(log p / T + beta · min(hits, 3))``; the
temperature ``T`` and the rule boost ``beta`` are fitted on out-of-fold predictions of the
training part, so the combined probability stays calibrated (it is the confidence).

The corpus is split by a hash of each folded text (20 % held out, never trained on, the
same rows on every run); the held-out scores, the corpus sha256 and the scikit-learn version
are written next to the artefact and checked when it is loaded.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion

from streams.classify import DEFAULT_CORPUS, MODEL_DIR
from streams.classify.cli import Scores, score
from streams.classify.features import LinearScorer
from streams.classify.rules import TAXONOMY_PATH, Rules, fold_text, load_rules
from streams.errors import StageError

__all__ = [
    "ARTEFACT",
    "HEADS",
    "SIDECAR",
    "Head",
    "ModelArtefactError",
    "TextModel",
    "file_sha256",
    "is_held_out",
    "load_model",
    "rule_hits",
    "rules_digest",
    "train",
]

log = logging.getLogger(__name__)

ARTEFACT, SIDECAR = "classifier.joblib", "classifier.json"
HEADS = ("unit", "type", "urgency")
HELD_OUT_PERCENT = 20
_MAX_HITS = 3
_TEMPERATURES = (0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
_BOOSTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
_C = 10.0
_FORMAT = 1
_FITTED_SECTIONS = ("negations", "ignore", "units", "types", "urgency", "victims")


class ModelArtefactError(StageError):
    """The saved model is missing, corrupt, or stale (other corpus or scikit-learn version)."""


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_held_out(folded: str) -> bool:
    """Whether a (folded) text belongs to the held-out part: stable across runs and machines.

    Hashing the folded text keeps texts that differ only in case or Turkish letters together.
    """
    digest = hashlib.sha256(folded.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def rules_digest(path: Path = TAXONOMY_PATH) -> str:
    """sha256 of the taxonomy sections the model's rule boost was fitted with.

    Districts and responsibility are left out: editing them needs no retraining.
    """
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    used = {key: data.get(key) for key in _FITTED_SECTIONS}
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()


def rule_hits(rules: Rules, head: str) -> Callable[[str], Mapping[str, int]]:
    """The rule evidence for ``head``: cue hits per label in a folded text."""
    if head == "unit":
        return rules.unit_counts
    if head == "type":
        return rules.type_counts
    return lambda folded: {u.value: 1 for u in [rules.urgency_of(folded)] if u.value != "normal"}


@dataclass(frozen=True)
class Head:
    """One classification head: its labels, fitted model and rule combination."""

    name: str
    model: LogisticRegression
    temperature: float
    boost: float

    @property
    def labels(self) -> list[str]:
        """Label of each probability column."""
        return [str(c) for c in self.model.classes_]

    def combine(self, proba: np.ndarray, hits: Sequence[Mapping[str, int]]) -> np.ndarray:
        """Model probabilities boosted by rule hits, renormalised (rows sum to 1)."""
        return _combine(proba, _hit_matrix(hits, self.labels), self.temperature, self.boost)


def _hit_matrix(hits: Sequence[Mapping[str, int]], labels: list[str]) -> np.ndarray:
    matrix = np.zeros((len(hits), len(labels)))
    index = {label: i for i, label in enumerate(labels)}
    for row, counts in enumerate(hits):
        for label, count in counts.items():
            if label in index:
                matrix[row, index[label]] = min(count, _MAX_HITS)
    return matrix


def _combine(proba: np.ndarray, hits: np.ndarray, temperature: float, boost: float) -> np.ndarray:
    logits = np.log(np.clip(proba, 1e-12, 1.0)) / temperature + boost * hits
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return np.asarray(weights / weights.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class TextModel:
    """The loaded artefact: vectorizer plus heads, and the sidecar describing them.

    ``scorer`` (built by :func:`load_model` when it supports the fitted objects) computes
    the same probabilities as the vectorizer and heads, about seven times cheaper.
    """

    vectorizer: FeatureUnion
    heads: dict[str, Head]
    info: dict[str, Any]
    scorer: LinearScorer | None = None

    def predict_proba(self, folded: Sequence[str]) -> dict[str, np.ndarray]:
        """Each head's model probabilities (before the rule boost) for a batch."""
        if self.scorer is not None:
            return self.scorer.predict_proba(folded)
        features = self.vectorizer.transform(folded)
        return {name: head.model.predict_proba(features) for name, head in self.heads.items()}

    def predict(
        self, folded: Sequence[str], hits: Mapping[str, Sequence[Mapping[str, int]]]
    ) -> dict[str, np.ndarray]:
        """Combined probabilities per head for a batch (model probabilities, rule boost)."""
        proba = self.predict_proba(folded)
        return {name: head.combine(proba[name], hits[name]) for name, head in self.heads.items()}


def _vectorizer() -> FeatureUnion:
    common: dict[str, Any] = {"lowercase": False, "sublinear_tf": True, "dtype": np.float32}
    return FeatureUnion(
        [
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=40000, **common
                ),
            ),
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    min_df=2,
                    max_features=8000,
                    token_pattern=r"\b\w+\b",
                    **common,
                ),
            ),
        ]
    )


def _classifier() -> LogisticRegression:
    return LogisticRegression(C=_C, max_iter=5000, class_weight="balanced", random_state=0)


def _read_corpus(path: Path) -> list[tuple[dict[str, str], str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(row, fold_text(row["text"])) for row in csv.DictReader(handle)]
    seen: set[str] = set()
    unique = []
    for row, folded in rows:
        if folded and folded not in seen:
            seen.add(folded)
            unique.append((row, folded))
    return unique


def _fit_combination(proba: np.ndarray, hits: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(temperature, boost) minimising the log-loss of out-of-fold combined probabilities."""
    best = (np.inf, 1.0, 0.0)
    rows = np.arange(len(truth))
    for temperature in _TEMPERATURES:
        for boost in _BOOSTS:
            combined = _combine(proba, hits, temperature, boost)
            loss = float(-np.log(np.clip(combined[rows, truth], 1e-12, 1.0)).mean())
            if loss < best[0] - 1e-9:
                best = (loss, temperature, boost)
    return best[1], best[2]


def _out_of_fold(texts: list[str], targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each head's probabilities for every training text from models that never saw it."""
    labels = {name: sorted(set(y)) for name, y in targets.items()}
    oof = {name: np.zeros((len(texts), len(labels[name]))) for name in targets}
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for fit_rows, val_rows in folds.split(texts, targets["unit"]):
        vectorizer = _vectorizer()
        x_fit = vectorizer.fit_transform([texts[i] for i in fit_rows])
        x_val = vectorizer.transform([texts[i] for i in val_rows])
        for name, y in targets.items():
            model = _classifier().fit(x_fit, y[fit_rows])
            columns = [labels[name].index(c) for c in model.classes_]
            oof[name][np.ix_(val_rows, columns)] = model.predict_proba(x_val)
    return oof


def train(corpus_path: Path = DEFAULT_CORPUS, out_dir: Path = MODEL_DIR) -> Scores:
    """Train on the corpus's training part, score on the held-out part, save the artefact.

    Deterministic: a fixed split, fixed folds and a deterministic solver. Returns the unit
    head's held-out scores; the sidecar JSON holds every head's.
    """
    rules = load_rules()
    corpus = _read_corpus(corpus_path)
    train_rows = [(row, f) for row, f in corpus if not is_held_out(f)]
    test_rows = [(row, f) for row, f in corpus if is_held_out(f)]
    texts = [f for _, f in train_rows]
    targets = {name: np.array([row[name] for row, _ in train_rows]) for name in HEADS}
    oof = _out_of_fold(texts, targets)
    vectorizer = _vectorizer()
    x_train = vectorizer.fit_transform(texts)
    x_test = vectorizer.transform([f for _, f in test_rows])
    for _, part in vectorizer.transformer_list:
        part.stop_words_ = None  # the pruned-terms set is only for inspection, and large
    heads: dict[str, Head] = {}
    scores: dict[str, Scores] = {}
    for name, y in targets.items():
        hits_of = rule_hits(rules, name)
        model = _classifier().fit(x_train, y)
        labels = [str(c) for c in model.classes_]
        truth = np.array([labels.index(label) for label in y])
        hits = _hit_matrix([hits_of(f) for f in texts], labels)
        heads[name] = head = Head(name, model, *_fit_combination(oof[name], hits, truth))
        combined = head.combine(model.predict_proba(x_test), [hits_of(f) for _, f in test_rows])
        predicted = [labels[i] for i in combined.argmax(axis=1)]
        scores[name] = score([row[name] for row, _ in test_rows], predicted, labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    artefact = out_dir / ARTEFACT
    stored = {
        n: {"model": h.model, "temperature": h.temperature, "boost": h.boost}
        for n, h in heads.items()
    }
    joblib.dump(
        {"format": _FORMAT, "vectorizer": vectorizer, "heads": stored}, artefact, compress=9
    )
    info = {
        "format": _FORMAT,
        "sklearn_version": sklearn.__version__,
        "corpus_sha256": file_sha256(corpus_path),
        "corpus_rows": len(corpus),
        "rules_sha256": rules_digest(),
        "artefact_sha256": file_sha256(artefact),
        "split": {
            "rule": f"sha256(folded text)[:4] % 100 < {HELD_OUT_PERCENT} is held out",
            "train_rows": len(train_rows),
            "held_out_rows": len(test_rows),
        },
        "heads": {
            name: {"temperature": h.temperature, "rule_boost": h.boost, "labels": h.labels}
            for name, h in heads.items()
        },
        "held_out": {name: s.to_dict() for name, s in scores.items()},
    }
    (out_dir / SIDECAR).write_text(
        json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return scores["unit"]


def load_model(model_dir: Path = MODEL_DIR, corpus_path: Path | None = DEFAULT_CORPUS) -> TextModel:
    """Load the artefact, refusing one built by another scikit-learn or from another corpus.

    ``corpus_path`` None, or a corpus file that is absent (an installed package without the
    repository's data), skips the corpus check.
    """
    sidecar, artefact = model_dir / SIDECAR, model_dir / ARTEFACT
    if not sidecar.is_file() or not artefact.is_file():
        raise ModelArtefactError(
            f"no trained classifier in {model_dir}; run: intake classify --train"
        )
    try:
        info = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelArtefactError(f"{sidecar} is unreadable: {exc}") from exc
    if info.get("sklearn_version") != sklearn.__version__:
        raise ModelArtefactError(
            f"classifier in {model_dir} was trained with scikit-learn "
            f"{info.get('sklearn_version')}, this is {sklearn.__version__}; "
            "run: intake classify --train (and commit the new model)"
        )
    expected = info.get("corpus_sha256")
    if corpus_path and corpus_path.is_file() and file_sha256(corpus_path) != expected:
        raise ModelArtefactError(
            f"classifier in {model_dir} is stale: {corpus_path} changed since it was "
            "trained; run: intake classify --train (and commit the new model)"
        )
    if file_sha256(artefact) != info.get("artefact_sha256"):
        raise ModelArtefactError(f"{artefact} does not match {sidecar} (half-copied model?)")
    if info.get("rules_sha256") != rules_digest():
        log.warning("classifier phrases changed since training; retrain to refresh the scores")
    try:
        data = joblib.load(artefact)
    except Exception as exc:  # unpickling raises anything; the message is what matters
        raise ModelArtefactError(f"{artefact} cannot be loaded: {exc!r}") from exc
    heads = {name: Head(name, **spec) for name, spec in data["heads"].items()}
    scorer = LinearScorer.build(data["vectorizer"], {n: h.model for n, h in heads.items()})
    return TextModel(vectorizer=data["vectorizer"], heads=heads, info=info, scorer=scorer)
