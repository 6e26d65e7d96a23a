from schemas.ids import case_event_id, is_tracking_number, message_id, tracking_number


def test_tracking_numbers_are_stable_well_formed_and_distinct() -> None:
    numbers = {tracking_number(message_id("api", str(i))) for i in range(10_000)}
    assert len(numbers) == 10_000
    sample = tracking_number("api:1")
    assert sample == tracking_number("api:1")
    assert is_tracking_number(sample) and is_tracking_number(sample.lower())
    assert all(ch not in sample[4:] for ch in "ILOU")


def test_check_character_catches_a_misread_character() -> None:
    sample = tracking_number("email:<a@b>")
    body = sample[4:]
    for i, ch in enumerate(body):
        if ch == "-":
            continue
        replacement = "0" if ch != "0" else "1"
        wrong = "153-" + body[:i] + replacement + body[i + 1 :]
        assert not is_tracking_number(wrong), wrong


def test_case_event_ids_differ_by_kind_and_discriminator() -> None:
    ids = {case_event_id("c", k, d) for k in ("created", "routed") for d in ("", "x")}
    assert len(ids) == 4
