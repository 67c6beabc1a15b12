"""ogcapi/parameters.py on its own: the one place where request strings become typed values or a
400 naming the parameter (the routes' behaviour is tested through the API in test_api*.py and
test_hostile_requests.py)."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

import pytest

from cim.errors import InvalidQuery
from cim.store import Cursor, TimeInterval
from ogcapi import parameters

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS = [CRS84, EPSG3857]
PROPERTIES = {"name": "string", "height": "number"}


def items(**query: str) -> parameters.ItemsParameters:
    return parameters.items_parameters(query, CRS, PROPERTIES)


def test_items_refuse_parameters_they_do_not_define_but_take_properties() -> None:
    assert parameters.unknown_parameters("items", ["limit", "name", "colour", "Limit", "colour"], PROPERTIES) == [
        "Limit",
        "colour",
    ]
    with pytest.raises(InvalidQuery, match=r"unknown query parameter\(s\): Limit, colour"):
        items(limit="5", Limit="5", colour="red")
    assert items(name="x", f="json", lang="en").limit is None


def test_only_the_items_endpoint_is_strict() -> None:
    """item, queryables and collections ignore an unknown parameter, as pygeoapi does; their
    defined parameters are still listed (a property is a parameter of items only)."""
    assert parameters.STRICT == {"items"}
    for endpoint in ("item", "queryables", "collections"):
        parameters.check_known(endpoint, ["foo", "name"], PROPERTIES)
        assert parameters.unknown_parameters(endpoint, ["f", "lang", "name"], PROPERTIES) == ["name"]
    assert parameters.unknown_parameters("item", ["crs"]) == []


def test_items_parameters_are_typed() -> None:
    values = items(
        limit="7", offset="3", bbox="24.9,60.1,25,60.2", crs=EPSG3857, sortby="-height,name",
        properties="name", skipGeometry="TRUE", resulttype="hits", datetime="2024-05-01/..",
    )  # fmt: skip
    assert (values.limit, values.offset, values.bbox) == (7, 3, (24.9, 60.1, 25.0, 60.2))
    assert values.crs == EPSG3857 and values.bbox_crs is None
    assert values.sortby == (("height", False), ("name", True))
    assert values.properties == ("name",)
    assert values.skip_geometry and values.hits
    assert values.datetime == TimeInterval(date(2024, 5, 1), None)
    assert items(skipGeometry="no", resulttype="results").skip_geometry is False


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"bbox-crs": EPSG3857}, "bbox-crs needs a bbox"),
        ({"bbox": "0,0,1,1", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/99999"}, "unsupported bbox-crs"),
        ({"bbox": "0,0,1,1", "bbox-crs": ""}, "unsupported bbox-crs"),
        ({"crs": "EPSG:3857"}, "unsupported crs"),
        ({"sortby": "-colour"}, "sortby: no property 'colour'"),
        ({"sortby": "name,"}, "sortby: no property ''"),
        ({"properties": "name,colour"}, "properties: no property 'colour'"),
        ({"filter-lang": "cql2-text"}, "need a filter parameter"),
        ({"filter": "name = 'a'", "filter-crs": "EPSG:4326"}, "unsupported filter-crs"),
        ({"datetime": "2024-05-02/2024-05-01"}, "the start is after the end"),
        ({"cursor": "not-a-cursor"}, "invalid cursor"),
    ],
)
def test_wrong_items_parameters_are_400_naming_them(query: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidQuery, match=named):
        items(**query)


def test_an_empty_crs_is_the_default() -> None:
    assert items(crs="").crs is None


def test_datetime_instants_and_intervals() -> None:
    moment = datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parameters.datetime("2024-05-01T08:00:00Z") == TimeInterval(moment, moment)
    assert parameters.datetime("2024-05-01T08:00:00.000") == TimeInterval(moment, moment)  # no zone: UTC
    assert parameters.datetime("../2024-05-01") == TimeInterval(None, date(2024, 5, 1))
    assert parameters.datetime("2024-05-01/2024-05-01") == TimeInterval(date(2024, 5, 1), date(2024, 5, 1))
    for wrong in ("2024-05-01/2024-05-02/2024-05-03", "../..", "/", "yesterday", "2024-05-01T08", "2024-05-01T08:00:00"):
        with pytest.raises(InvalidQuery, match="datetime"):
            parameters.datetime(wrong)


def test_a_cursor_is_read_back_as_written() -> None:
    cursor = Cursor((("height", False),), (12.5,), 42, 100)
    assert parameters.cursor(cursor.encode()) == cursor
    values = items(cursor=cursor.encode(), offset="100")
    assert values.cursor == cursor  # the cursor's own position: keyset paging
    assert items(cursor=cursor.encode(), offset="0").cursor is None  # another offset wins


@pytest.mark.parametrize(
    "raw",
    [b"{}", b'{"s":[],"k":[1],"f":1,"p":0}', b'{"s":[],"k":[],"f":1,"p":-1}',
     b'{"s":[],"k":[],"f":1,"p":1000000000000000}', b"[" * 100_000 + b"]" * 100_000],
)  # fmt: skip
def test_a_cursor_that_is_not_ours_is_400(raw: bytes) -> None:
    with pytest.raises(InvalidQuery, match="invalid cursor"):
        parameters.cursor(base64.urlsafe_b64encode(raw).decode())


def test_feature_ids_are_64_bit_integers_in_ascii_digits() -> None:
    assert parameters.feature_id("42") == 42
    assert parameters.feature_id(str(2**63 - 1)) == 2**63 - 1
    for wrong in (str(2**63), "١", "-1", " 1", "1.0", "9" * 20):
        assert parameters.feature_id(wrong) is None


def test_the_audit_log_query() -> None:
    assert parameters.audit_parameters({}) == parameters.AuditParameters(None, None, None, 100)
    query = parameters.audit_parameters({"who": "alice", "layer": "", "since": "2024-05-01", "limit": "7", "f": "json"})
    assert query == parameters.AuditParameters("alice", None, datetime(2024, 5, 1, tzinfo=UTC), 7)
    assert parameters.audit_parameters({"since": "2024-05-01T08:00"}).since == datetime(2024, 5, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    "query, named",
    [
        ({"user": "x"}, "user"),
        ({"f": "html"}, "f='html'"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "¹"}, "limit"),
    ],
)
def test_a_bad_audit_log_query_is_400_naming_the_parameter(query: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidQuery, match=named):
        parameters.audit_parameters(query)
