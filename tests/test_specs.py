"""The vendored specs read as their JSON equivalent, whichever reader parses them."""

import json

import pytest

from specs import FILES, load_spec, parse_spec


@pytest.mark.parametrize("service, name", sorted(FILES))
def test_every_vendored_spec_reads_as_json(service, name):
    document = load_spec(service, name)

    assert json.loads(json.dumps(document)) == document  # no datetime, date or other non-JSON value


def test_an_unquoted_timestamp_stays_the_string_json_would_carry():
    document = parse_spec("example: 2019-11-14T18:10:38Z\ndate: 2019-01-01\nnumber: 3\nflag: true\n")

    assert document == {"example": "2019-11-14T18:10:38Z", "date": "2019-01-01", "number": 3, "flag": True}


def test_the_xero_examples_keep_their_dates_as_written():
    paths = load_spec("xero", "accounting")["paths"]
    example = paths["/BatchPayments"]["get"]["responses"]["200"]["content"]["application/json"]["example"]

    assert example["BatchPayments"][0]["DateString"] == "2017-11-28T00:00:00"
