"""Public event warnings (公共事件预警): CAP 1.2 alerts as a live layer over the base map.

One feature per version of an alert: an Update or Cancel adds a version and ends the validity of
the one it references (``superseded_by``), never overwrites it. A version is valid from
``valid_from`` (the alert's effective time, else its sent time) until ``valid_until`` (its expiry,
or the moment a later version superseded it; empty while open). docs/warnings.md.
"""

from __future__ import annotations

from cim.layerspec import FieldSpec, LayerSpec
from cim.warnings.versions import SEVERITIES

#: GB/T 35965.1 warning colours (预警颜色), ordered like SEVERITIES (docs/warnings.md: the mapping)
COLOURS = ("red", "orange", "yellow", "blue", "none")

LAYER = LayerSpec(
    name="warnings",
    title="Event warnings",
    description=(
        "Public event warnings (公共事件预警信息: flood, gas leak, heat, epidemic ...) received as OASIS CAP 1.2 "
        "alerts (GB/T 35965.1-2018 profile) or GeoJSON, one feature per version of an alert; without datetime "
        "the collection lists the warnings in force now. Colours: red 红 = Extreme, orange 橙 = Severe, "
        "yellow 黄 = Moderate, blue 蓝 = Minor."
    ),
    geometry_type="MultiPolygon",
    fields=(
        FieldSpec("identifier", "string", "CAP identifier of this version of the alert", required=True),
        FieldSpec("sender", "string", "CAP sender", required=True),
        FieldSpec("sent", "datetime", "When the sender sent this version", required=True),
        FieldSpec("status", "string", "CAP status", enum=("Actual", "Exercise", "System", "Test", "Draft")),
        FieldSpec("msg_type", "string", "CAP msgType", enum=("Alert", "Update", "Cancel")),
        FieldSpec("references", "string", "CAP references: the sender,identifier,sent triples this version replaces"),
        FieldSpec("chain", "string", "Identifier of the first alert of this warning's chain of versions"),
        FieldSpec("version", "integer", "Position of this version in its chain (1 = the first alert)"),
        FieldSpec("superseded_by", "integer", "Feature id of the version that replaced this one"),
        FieldSpec("state", "string", "What this version is: issued, updated or cancelled", enum=("issued", "updated", "cancelled")),
        FieldSpec("event", "string", "CAP event (e.g. 暴雨, gas leak)"),
        FieldSpec("category", "string", "CAP categories, space separated"),
        FieldSpec("urgency", "string", "CAP urgency", enum=("Immediate", "Expected", "Future", "Past", "Unknown")),
        FieldSpec("severity", "string", "CAP severity (the highest of the alert's infos)", enum=SEVERITIES),
        FieldSpec("certainty", "string", "CAP certainty", enum=("Observed", "Likely", "Possible", "Unlikely", "Unknown")),
        FieldSpec("colour", "string", "Warning colour (预警颜色, GB/T 35965.1)", enum=COLOURS),
        FieldSpec("headline", "string", "CAP headline"),
        FieldSpec("description", "string", "CAP description"),
        FieldSpec("instruction", "string", "CAP instruction"),
        FieldSpec("language", "string", "Language of the first info (e.g. zh-CN)"),
        FieldSpec("area_desc", "string", "The areas' descriptions, joined by '; '"),
        FieldSpec("geocodes", "string", "The areas' geocodes as valueName=value, space separated"),
        FieldSpec("division_code", "string", "GB/T 2260 code of the division that issued or is warned"),
        FieldSpec("effective", "datetime", "CAP effective (else sent)"),
        FieldSpec("onset", "datetime", "CAP onset"),
        FieldSpec("expires", "datetime", "CAP expires"),
        FieldSpec("valid_from", "datetime", "Start of this version's validity", required=True),
        FieldSpec("valid_until", "datetime", "End of this version's validity: expiry or supersession (empty: open)"),
        FieldSpec("infos", "string", "Every CAP info block of the alert as JSON"),
        FieldSpec("digest", "string", "SHA-256 of the alert's parsed content: a re-delivered identical alert is recognised"),
    ),
    category="公共专题",
    minzoom=0,
    maxzoom=22,
    tile_attributes=("identifier", "event", "severity", "colour", "headline", "urgency", "state", "valid_until"),
    color="#e53935",
    order=1000,
    keywords=("warning", "预警", "CAP", "alert", "emergency", "突发事件"),
    temporal_field="valid_from",
    temporal_end_field="valid_until",
    live=True,
)
