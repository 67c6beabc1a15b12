"""Warnings test data: a small Tianjin city with administrative divisions, CAP 1.2 documents made
relative to now, and the fixture samples of tests/fixtures/warnings (see its README)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import geopandas as gpd
import shapely

from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG
from support.citydata import building_frame

FIXTURES = Path(__file__).parents[1] / "fixtures" / "warnings"
CORPUS = Path(__file__).parents[1] / "corpus" / "warnings"
SENDER = "tianjin-emergency@example.cn"
BEIJING = timezone(timedelta(hours=8))
#: GB/T 2260 districts of Tianjin as boxes (lon/lat): code -> (minx, miny, maxx, maxy)
DISTRICTS = {
    "120101": (117.17, 39.10, 117.23, 39.15),  # 和平区
    "120104": (117.10, 39.05, 117.17, 39.12),  # 南开区
    "120105": (117.17, 39.15, 117.24, 39.20),  # 河北区
    "120106": (117.24, 39.15, 117.30, 39.20),  # 红桥区 (stand-in box)
    "120116": (117.40, 38.90, 117.80, 39.30),  # 滨海新区
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def divisions_frame() -> gpd.GeoDataFrame:
    codes = list(DISTRICTS)
    return gpd.GeoDataFrame(
        {"code": codes, "name": [f"district {c}" for c in codes], "level": ["district"] * len(codes),
         "parent_code": ["120100"] * len(codes), "source": ["test"] * len(codes), "source_id": codes},
        geometry=[shapely.MultiPolygon([shapely.box(*DISTRICTS[c])]) for c in codes],
        crs=4490,
    )  # fmt: skip


def publish_city(url: str) -> int:
    """A release with buildings and the administrative divisions; its number."""
    with open_store(url) as store:
        return store.publish(ReleaseDraft(layers=[
            LayerData(CATALOG["admin_divisions"], divisions_frame()),
            LayerData(CATALOG["buildings"], building_frame(4490)),
        ], srid=4490)).number  # fmt: skip


def cap_time(moment: datetime) -> str:
    """CAP's dateTime: no fractions, an offset (Beijing time)."""
    return moment.astimezone(BEIJING).replace(microsecond=0).isoformat()



def square_lonlat(minx: float, miny: float, maxx: float, maxy: float) -> list[tuple[float, float]]:
    return [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]


def cap(
    identifier: str,
    *,
    ring: list[tuple[float, float]] | None = None,
    circle: tuple[float, float, float] | None = None,
    geocodes: tuple[str, ...] = (),
    sent: datetime | None = None,
    effective: datetime | None = None,
    expires: datetime | None = None,
    msg_type: str = "Alert",
    references: tuple[tuple[str, datetime], ...] = (),
    status: str = "Actual",
    severity: str = "Severe",
    event: str = "暴雨",
    headline: str | None = None,
) -> bytes:
    """A CAP 1.2 alert (one info, one area): ``ring`` as lon/lat pairs (written "lat,lon"),
    ``circle`` (lon, lat, radius km), geocodes as GB/T 2260 codes; Cancel without info."""
    sent = sent or datetime.now(UTC)
    refs = " ".join(f"{SENDER},{ident},{cap_time(at)}" for ident, at in references)
    shapes = ""
    if ring:
        shapes += "<polygon>" + " ".join(f"{lat},{lon}" for lon, lat in ring) + "</polygon>"
    if circle:
        shapes += f"<circle>{circle[1]},{circle[0]} {circle[2]}</circle>"
    shapes += "".join(f"<geocode><valueName>GB/T 2260</valueName><value>{code}</value></geocode>" for code in geocodes)
    info = ""
    if msg_type != "Cancel":
        info = (
            "<info><language>zh-CN</language><category>Met</category>"
            f"<event>{event}</event><urgency>Expected</urgency><severity>{severity}</severity><certainty>Likely</certainty>"
            + (f"<effective>{cap_time(effective)}</effective>" if effective else "")
            + (f"<expires>{cap_time(expires)}</expires>" if expires else "")
            + f"<headline>{headline or identifier}</headline>"
            + f"<area><areaDesc>test area</areaDesc>{shapes}</area></info>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
        f"<identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{cap_time(sent)}</sent>"
        f"<status>{status}</status><msgType>{msg_type}</msgType><scope>Public</scope>"
        + (f"<references>{refs}</references>" if refs else "")
        + info
        + "</alert>"
    ).encode()
