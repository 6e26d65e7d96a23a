"""Classification of citizen messages: unit, type, urgency, district and who is responsible.

``folding`` (clean-up and folding of message text), ``rules`` (phrase rules over folded
text, data in ``taxonomy.toml``, compiled by ``phrases``), ``model`` (TF-IDF + logistic
regression, trained by ``intake classify --train`` into ``model/``; ``features`` computes its
probabilities cheaply), ``classifier`` (the two combined, batch-first), ``cli`` (JSON lines
in and out, evaluation).

This package module stays light (no scikit-learn import) so the settings tree can import
``streams.classify.classifier.ClassifierSettings`` cheaply.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_CORPUS", "MODEL_DIR"]

#: Where the committed, trained artefact lives.
MODEL_DIR = Path(__file__).with_name("model")
#: The labelled corpus in a source checkout (absent from an installed package).
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "messages.csv"
