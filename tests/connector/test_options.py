"""A sync pair's typed options: defaults, validation on read, and what the sync reads."""

from connector.options import PairOptions, pair_options


def test_defaults_apply_to_missing_options():
    options = PairOptions.from_raw({})
    assert options == PairOptions()
    assert (options.deal_value_from, options.create_deals, options.on_pipedrive_delete) == (
        "Total",
        True,
        "flag",
    )
    assert options.problems == ()


def test_valid_values_are_kept():
    raw = {"deal_value_from": "AmountDue", "create_notes": False, "archived_contacts": "clear"}
    options = PairOptions.from_raw(raw)
    assert (options.deal_value_from, options.create_notes, options.archived_contacts) == (
        "AmountDue",
        False,
        "clear",
    )
    assert options.problems == ()


def test_bad_values_are_reported_and_replaced_by_the_default():
    raw = {
        "deal_value_from": "Subtotal",
        "create_deals": "no",
        "reconciliation_interval_minutes": -5,
        "webhook_silence_alert_hours": True,
        "colour": "blue",
    }
    options = PairOptions.from_raw(raw)
    assert options.deal_value_from == "Total" and options.create_deals is True
    assert options.reconciliation_interval_minutes == 15 and options.webhook_silence_alert_hours == 24
    text = " ".join(options.problems)
    for name in ("deal_value_from", "create_deals", "reconciliation_interval_minutes", "colour"):
        assert name in text
    assert len(options.problems) == 5


def test_options_that_are_not_an_object_use_the_defaults():
    options = PairOptions.from_raw(["Total"])
    assert options == PairOptions() and "JSON object" in options.problems[0]


def test_round_trip_through_json():
    options = PairOptions.from_raw({"credit_limit_field": "  abc  "})
    assert options.credit_limit_field == "abc"
    assert PairOptions.from_raw(options.to_raw()) == options


class _Pair:
    options = {"on_pipedrive_delete": "drop"}


def test_pair_options_reads_the_pair():
    assert pair_options(_Pair()).on_pipedrive_delete == "drop"
