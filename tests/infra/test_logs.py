import logging

from infra.logs import MaskingFilter


def test_log_records_are_masked() -> None:
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "citizen %s wrote from %s",
        ("a.b@example.com", "05321234567"),
        None,
    )
    MaskingFilter().filter(record)
    text = record.getMessage()
    assert "a.b@example.com" not in text and "1234567" not in text
