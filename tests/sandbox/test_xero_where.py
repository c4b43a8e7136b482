"""The ``where`` parser: any text is a query or a 400, never a crash; string comparisons are exact."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.xero import accounting, queries, services

pytestmark = pytest.mark.django_db

FIELDS = ["Name", "EmailAddress", "ContactID", "ContactStatus", "UpdatedDateUTC", "Contact.ContactID", "Nope"]
VALUES = st.one_of(
    st.text(max_size=12).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.integers(-5, 3000).map(str),
    st.uuids().map(lambda u: f'Guid("{u}")'),
    st.tuples(st.integers(1, 2100), st.integers(0, 13), st.integers(0, 32)).map(
        lambda t: "DateTime({},{},{})".format(*t)
    ),
    st.sampled_from(["true", "false", "null", "Guid(5)", '"unterminated']),
)
CLAUSE = st.builds(
    lambda field, op, value: f"{field}{op}{value}",
    st.sampled_from(FIELDS),
    st.sampled_from(["==", "!=", ">", ">=", "<", "<=", " = ", ".Contains(", ".StartsWith("]),
    VALUES,
)
WHERE = st.one_of(
    st.lists(CLAUSE, min_size=1, max_size=3).flatmap(
        lambda clauses: st.sampled_from([" && ", " || ", " AND ", " OR "]).map(lambda j: j.join(clauses))
    ),
    st.text(max_size=40),
)


@pytest.fixture
def organisation(db):
    organisation = services.create_organisation("Where Ltd")
    for name in ["Alpha", 'Quote "Q" Ltd', "back\\slash", "Zulu"]:
        accounting.create_contact(organisation, {"Name": name, "EmailAddress": f"{len(name)}@x.example"})
    return organisation


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=WHERE)
def test_any_where_text_is_a_query_or_a_query_error(organisation, text):
    try:
        rows = queries.filtered(queries.CONTACT, organisation, {"where": text}, {})
        list(rows)
    except queries.QueryError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["Alpha", 'Quote "Q" Ltd', "back\\slash", "Zulu", "Missing"]))
def test_string_equality_matches_exactly_that_contact(organisation, name):
    literal = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    rows = queries.filtered(queries.CONTACT, organisation, {"where": f"Name=={literal}"}, {})
    assert [c.name for c in rows] == ([name] if name != "Missing" else [])
