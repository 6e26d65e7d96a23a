"""``intake classify``: JSON lines in, JSON lines out; ``--evaluate FILE.csv``; ``--train``.

Input, one JSON object a line: ``{"id": ..., "text": ...}``. Output, one line per input line
in input order: ``{"id", "unit", "type", "urgency", "district", "body", "confidence"}``, or
``{"id", "line", "error"}`` for a line that is not JSON, not an object, or has no text.
``body`` is who must act: ``buyuksehir``, ``ilce`` or ``dis-kurum:<body>``
(``dis-kurum:dogalgaz``). Blank lines are skipped. Input is read and answered in chunks of
``batch_size`` lines, so a large input streams through with bounded memory.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from schemas.case import Classification, Responsible
from streams.classify import DEFAULT_CORPUS
from streams.classify.classifier import Classifier, ClassifierSettings

__all__ = [
    "Scores",
    "StreamCounts",
    "body_code",
    "classify_stream",
    "evaluate_csv",
    "render_scores",
    "run_classify",
    "score",
]


@dataclass(frozen=True)
class StreamCounts:
    """How many input lines were classified and how many were refused."""

    classified: int
    errors: int


@dataclass(frozen=True)
class Scores:
    """How well one head did on labelled texts (the held-out part, or an evaluation file)."""

    n: int
    accuracy: float
    macro_f1: float  # over the labels that occur in the truth
    labels: list[str]
    per_label: dict[str, dict[str, float]]  # precision, recall, f1, support
    confusion: list[list[int]]  # rows: true label, columns: predicted, in ``labels`` order

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the sidecar's ``held_out`` entries)."""
        return asdict(self)


def score(truth: Sequence[str], predicted: Sequence[str], labels: Iterable[str]) -> Scores:
    """Accuracy, macro-F1, per-label precision/recall/F1 and the confusion matrix."""
    labels = list(labels)
    labels += sorted(set(truth).union(predicted) - set(labels))
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for true, guess in zip(truth, predicted, strict=True):
        confusion[index[true]][index[guess]] += 1
    per_label, f1s = {}, []
    for i, label in enumerate(labels):
        support, guessed = sum(confusion[i]), sum(row[i] for row in confusion)
        hit = confusion[i][i]
        precision = hit / guessed if guessed else 0.0
        recall = hit / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
        per_label[label] = {"precision": round(precision, 4), "recall": round(recall, 4)}
        per_label[label] |= {"f1": round(f1, 4), "support": support}
        if support:
            f1s.append(f1)
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return Scores(
        n=len(truth),
        accuracy=round(correct / len(truth), 4) if truth else 0.0,
        macro_f1=round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        labels=labels,
        per_label=per_label,
        confusion=confusion,
    )


def body_code(c: Classification) -> str:
    """``buyuksehir``, ``ilce`` or ``dis-kurum:<body>``: one string for who must act."""
    if c.responsible is Responsible.EXTERNAL and c.external_body:
        return f"{c.responsible.value}:{c.external_body}"
    return c.responsible.value


def _result(ident: Any, c: Classification) -> dict[str, Any]:
    return {
        "id": ident,
        "unit": c.unit,
        "type": c.type.value,
        "urgency": c.urgency.value,
        "district": c.district,
        "body": body_code(c),
        "confidence": c.confidence,
    }


class _Line(NamedTuple):
    number: int
    ident: Any
    text: str | None
    error: str | None


def _parse(number: int, raw: str | bytes) -> _Line:
    """One input line as (line number, id, text) or (line number, id, error)."""
    try:
        data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError:
        return _Line(number, None, None, "line is not UTF-8")
    except json.JSONDecodeError as exc:
        return _Line(number, None, None, f"not JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(data, dict):
        return _Line(number, None, None, "not a JSON object")
    ident, text = data.get("id"), data.get("text")
    if not isinstance(text, str) or not text.strip():
        return _Line(number, ident, None, "no text (a non-empty string 'text' is required)")
    return _Line(number, ident, text, None)


def _chunks(lines: Iterable[str | bytes], size: int) -> Iterator[list[_Line]]:
    """Parsed lines in chunks of ``size`` texts (or ``4 * size`` lines of errors)."""
    chunk: list[_Line] = []
    texts = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        chunk.append(_parse(number, raw))
        texts += chunk[-1].text is not None
        if texts >= size or len(chunk) >= 4 * size:
            yield chunk
            chunk, texts = [], 0
    if chunk:
        yield chunk


def classify_stream(
    lines: Iterable[str | bytes], out: IO[str], classifier: Classifier, batch_size: int = 0
) -> StreamCounts:
    """Classify JSON lines from ``lines`` into ``out``, in order, one model call per chunk.

    A bad line yields an error line and the stream goes on. ``batch_size`` 0 uses the
    classifier's setting. Raises only what reading ``lines`` raises (e.g. ``OSError``).
    """
    size = batch_size or classifier.settings.batch_size
    classified = errors = 0
    for chunk in _chunks(lines, size):
        results = iter(classifier.classify_batch([ln.text for ln in chunk if ln.text is not None]))
        for line in chunk:
            if line.text is None:
                record = {"id": line.ident, "line": line.number, "error": line.error}
                errors += 1
            else:
                record = _result(line.ident, next(results))
                classified += 1
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return StreamCounts(classified, errors)


def evaluate_csv(path: Path, classifier: Classifier, out: IO[str]) -> Scores:
    """Score the classifier's unit on a labelled CSV (columns ``label,text``) and print it."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"label", "text"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: needs the columns label,text (has {reader.fieldnames})")
        rows = [(r["label"].strip(), r["text"]) for r in reader if r["label"] and r["text"]]
    size = classifier.settings.batch_size
    predicted: list[str] = []
    for start in range(0, len(rows), size):
        batch = classifier.classify_batch([text for _, text in rows[start : start + size]])
        predicted.extend(c.unit for c in batch)
    labels = sorted(classifier.model.heads["unit"].labels)
    scores = score([label for label, _ in rows], predicted, labels)
    render_scores(scores, out, title=f"{path} (unit)")
    return scores


def render_scores(scores: Scores, out: IO[str], title: str) -> None:
    """Accuracy, macro-F1, a per-label table and the confusion matrix as readable text."""
    labels = [label for label in scores.labels if scores.per_label[label]["support"]] or list(
        scores.labels
    )
    index = {label: i for i, label in enumerate(scores.labels)}
    width = max(len(label) for label in scores.labels)
    out.write(f"{title}: {scores.n} texts\n")
    out.write(f"accuracy {scores.accuracy:.3f}   macro-F1 {scores.macro_f1:.3f}\n\n")
    out.write(f"{'':>4} {'label':<{width}}  precision  recall     f1  support\n")
    for number, label in enumerate(scores.labels, start=1):
        m = scores.per_label[label]
        out.write(
            f"{number:>4} {label:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}"
            f"  {m['f1']:5.3f}  {int(m['support']):7d}\n"
        )
    out.write("\nconfusion matrix (rows: true label, columns: predicted, numbered as above)\n")
    out.write(f"{'':>{width}} " + "".join(f"{n:>4}" for n in range(1, len(index) + 1)) + "\n")
    for label in labels:
        row = scores.confusion[index[label]]
        out.write(f"{label:>{width}} " + "".join(f"{v:>4}" for v in row) + "\n")


def run_classify(
    settings: ClassifierSettings,
    *,
    train: bool = False,
    evaluate: Path | None = None,
    corpus: Path | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """The ``intake classify`` command: exit 0, 1 (model or stdin unusable), 2 (bad file)."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    from streams.classify.model import SIDECAR, ModelArtefactError
    from streams.classify.model import train as train_model

    if train:
        train_model(corpus or DEFAULT_CORPUS, settings.model_dir)
        info = json.loads((settings.model_dir / SIDECAR).read_text(encoding="utf-8"))
        stdout.write(f"model saved in {settings.model_dir}\n")
        for head, data in info["held_out"].items():
            render_scores(Scores(**data), stdout, title=f"held-out part ({head})")
            stdout.write("\n")
        return 0
    try:
        classifier = Classifier.load(settings)
    except ModelArtefactError as exc:
        stderr.write(f"intake classify: {exc}\n")
        return 1
    if evaluate is not None:
        try:
            evaluate_csv(evaluate, classifier, stdout)
        except (OSError, ValueError, KeyError) as exc:
            stderr.write(f"intake classify: cannot evaluate {evaluate}: {exc}\n")
            return 2
        return 0
    try:
        classify_stream(stdin or sys.stdin.buffer, stdout, classifier)
    except OSError as exc:
        stderr.write(f"intake classify: cannot read stdin: {exc}\n")
        return 1
    return 0
