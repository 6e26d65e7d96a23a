"""The classifier the pipeline calls: model and phrase rules combined, one batch at a time.

How the two halves decide (see ``model.py`` for the boost):

* **unit**, **type**, **urgency**: the model's probabilities boosted by the rule hits of the
  same cue family (unit phrases, type cues, urgency cues with negation and the ALO 183
  victim check), renormalised; the most probable label wins. A rule hit is a tie-breaker
  and a nudge, not a veto: the model can still overrule a stray keyword.
* **district**: rules only (district, mahalle and landmark names).
* **responsible / external body**: rules only (Law 5216 defaults per unit, outside-body cues,
  metropolitan roads), decided from the chosen unit and the text.
* **confidence**: the combined probability of the chosen unit; below ``review_threshold``
  the case also goes to ``intake.review`` (:func:`needs_review`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from schemas.case import Classification, MessageType, Urgency
from schemas.message import CitizenMessage
from streams.classify import DEFAULT_CORPUS, MODEL_DIR
from streams.classify.rules import TAXONOMY_PATH, Rules, fold_text, load_rules

if TYPE_CHECKING:  # scikit-learn is imported only when a model is loaded, not with the settings
    from streams.classify.model import TextModel

__all__ = [
    "DEFAULT_REVIEW_THRESHOLD",
    "METHOD",
    "Classifier",
    "ClassifierSettings",
    "message_text",
    "needs_review",
]

DEFAULT_REVIEW_THRESHOLD = 0.45
METHOD = "tfidf-lr+rules-v1"


class ClassifierSettings(BaseModel):
    """Settings of the classifier (``INTAKE_CLASSIFIER__*``)."""

    review_threshold: float = Field(
        default=DEFAULT_REVIEW_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="below this confidence a case also goes to intake.review",
    )
    batch_size: int = Field(default=256, ge=1, le=10_000, description="texts per model call")
    batch_within_s: float = Field(
        # Under load batches fill long before this; at a trickle it is the added latency.
        default=0.02,
        gt=0.0,
        le=60.0,
        description="longest wait to fill a batch in the worker",
    )
    model_dir: Path = Field(default=MODEL_DIR, description="the trained artefact and its JSON")
    corpus_path: Path | None = Field(
        default=DEFAULT_CORPUS,
        description="corpus the model must match (checked when the file exists; None: skip)",
    )
    taxonomy_path: Path = Field(default=TAXONOMY_PATH, description="classifier taxonomy TOML")


def needs_review(
    classification: Classification, threshold: float = DEFAULT_REVIEW_THRESHOLD
) -> bool:
    """Whether the social-media team must look at the case: the classifier is unsure."""
    return classification.confidence < threshold


def message_text(msg: CitizenMessage) -> str:
    """What the classifier reads of a message: subject, text and the free-text address."""
    address = msg.location.address if msg.location else None
    return "\n".join(part for part in (msg.subject, msg.text, address) if part)


class Classifier:
    """Model plus rules; build once per process (loading reads and checks the artefact)."""

    def __init__(self, model: TextModel, rules: Rules, settings: ClassifierSettings) -> None:
        from streams.classify.model import HEADS, rule_hits

        self.model = model
        self.rules = rules
        self.settings = settings
        self.method = f"{METHOD}:{str(model.info.get('artefact_sha256', ''))[:12]}"
        self._hits = {head: rule_hits(rules, head) for head in HEADS}
        self._units = model.heads["unit"].labels
        self._types = [MessageType(label) for label in model.heads["type"].labels]
        self._urgencies = [Urgency(label) for label in model.heads["urgency"].labels]

    @classmethod
    def load(cls, settings: ClassifierSettings | None = None) -> Classifier:
        """Load the artefact and the taxonomy; ``ModelArtefactError`` / ``TaxonomyError`` if bad."""
        from streams.classify.model import load_model

        settings = settings or ClassifierSettings()
        model = load_model(settings.model_dir, settings.corpus_path)
        return cls(model, load_rules(settings.taxonomy_path), settings)

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        """Classify many texts with one vectorizer call and one matrix product for all heads."""
        if not texts:
            return []
        folded = [fold_text(text) for text in texts]
        hits = {head: [hits_of(f) for f in folded] for head, hits_of in self._hits.items()}
        proba = self.model.predict(folded, hits)
        units = [self._units[i] for i in proba["unit"].argmax(axis=1).tolist()]
        types = [self._types[i] for i in proba["type"].argmax(axis=1).tolist()]
        urgencies = [self._urgencies[i] for i in proba["urgency"].argmax(axis=1).tolist()]
        confidences = proba["unit"].max(axis=1).tolist()
        results = []
        for text, unit, kind, urgency, confidence in zip(
            folded, units, types, urgencies, confidences, strict=True
        ):
            responsible, body = self.rules.responsible_for(unit, text)
            results.append(
                Classification(
                    unit=unit,
                    type=kind,
                    urgency=urgency,
                    district=self.rules.district_of(text),
                    responsible=responsible,
                    external_body=body,
                    confidence=round(confidence, 4),
                    method=self.method,
                )
            )
        return results

    def classify_messages(self, messages: Sequence[CitizenMessage]) -> list[Classification]:
        """Classify normalized messages in one batch (what the agent calls)."""
        return self.classify_batch([message_text(msg) for msg in messages])

    def classify_message(self, msg: CitizenMessage) -> Classification:
        """Classify one message (tests, tools; the pipeline batches)."""
        return self.classify_messages([msg])[0]

    def needs_review(self, classification: Classification) -> bool:
        """:func:`needs_review` with this classifier's configured threshold."""
        return needs_review(classification, self.settings.review_threshold)
