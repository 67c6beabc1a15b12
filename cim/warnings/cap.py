"""CAP 1.2 alerts -> :class:`~cim.warnings.model.Alert`: the hardened parse
(:mod:`cim.warnings.xml_guard`), the CAP 1.2 schema shipped with the package, then the checks of
the profile we accept (docs/warnings/cap.md has the table): geometries, times, references, the
message types that are warnings, and the GB/T 35965.1 colour and division code."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from importlib.resources import files

from lxml import etree

from cim.warnings import areas, gbt35965
from cim.warnings.errors import InvalidWarning
from cim.warnings.model import Alert, Area, Info, Reference
from cim.warnings.xml_guard import parse_xml

NS = "urn:oasis:names:tc:emergency:cap:1.2"
MEDIA_TYPE = "application/cap+xml"
_Q = "{" + NS + "}"
#: characters CAP forbids in identifier and sender
_FORBIDDEN = (" ", "\t", "\n", "\r", ",", "<", "&")
#: polygons and circles in one alert (a circle is ~30 bytes of text but 64 vertices of work)
MAX_SHAPES = 1000


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """The CAP 1.2 XML Schema from the package (cim/warnings/schema/CAP-v1.2.xsd), loaded once."""
    source = files("cim.warnings").joinpath("schema/CAP-v1.2.xsd").read_bytes()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.fromstring(source, parser))


def validate(root: etree._Element, what: str = "CAP alert") -> None:
    """400 unless ``root`` is a CAP 1.2 ``<alert>`` valid against the schema (the first errors with
    their lines, namespaces left out)."""
    if root.tag != _Q + "alert":
        found = etree.QName(root)
        ns = f" in namespace {found.namespace}" if found.namespace else " without a namespace"
        raise InvalidWarning(f"{what}: the root element is <{found.localname}>{ns}, not a CAP 1.2 <alert> ({NS})")
    checker = schema()
    if not checker.validate(root):
        errors = [f"line {e.line}: {e.message.replace(_Q, '')}" for e in list(checker.error_log)[:3]]
        raise InvalidWarning(f"{what}: not valid CAP 1.2: " + "; ".join(errors))


def _text(element: etree._Element, name: str) -> str | None:
    child = element.find(_Q + name)
    if child is None or child.text is None:
        return None
    value = child.text.strip()
    return value or None


def _all(element: etree._Element, name: str) -> list[etree._Element]:
    return element.findall(_Q + name)


def _named(element: etree._Element, name: str) -> tuple[tuple[str, str], ...]:
    return tuple(((_text(e, "valueName") or ""), (_text(e, "value") or "")) for e in _all(element, name))


def parse_time(text: str, where: str) -> datetime:
    """An ISO 8601 time with an offset -> a tz-aware datetime (400 without an offset)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidWarning(f"{where}: {text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise InvalidWarning(f"{where}: {text!r} has no time zone offset (e.g. +08:00)")
    return moment


def _optional_time(element: etree._Element, name: str, where: str) -> datetime | None:
    text = _text(element, name)
    return None if text is None else parse_time(text, f"{where} <{name}>")


def check_token(value: str, where: str) -> None:
    """CAP: identifier and sender contain no whitespace, comma, '<' or '&'."""
    bad = sorted({c for c in value if c in _FORBIDDEN})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise InvalidWarning(f"{where}: {value!r} contains {shown} (CAP forbids spaces, commas, '<' and '&')")


def parse_references(text: str | None, where: str = "<references>") -> tuple[Reference, ...]:
    """``<references>``: whitespace-separated "sender,identifier,sent" triples."""
    if not text:
        return ()
    refs = []
    for i, triple in enumerate(text.split(), start=1):
        parts = triple.split(",")
        if len(parts) != 3 or not all(parts):
            raise InvalidWarning(f'{where}: reference {i} {triple!r} is not "sender,identifier,sent"')
        refs.append(Reference(parts[0], parts[1], parse_time(parts[2], f"{where}: reference {i}")))
    return tuple(refs)


def check_times(effective: datetime | None, expires: datetime | None, sent: datetime, where: str) -> None:
    """400 when expires is before effective (or before sent when there is no effective)."""
    start, start_name = (effective, "effective") if effective is not None else (sent, "sent")
    if expires is not None and expires < start:
        raise InvalidWarning(f"{where}: expires {expires.isoformat()} is before {start_name} {start.isoformat()}")


def check_alert(
    msg_type: str,
    references: tuple[Reference, ...],
    infos: tuple[Info, ...] | None,
    what: str,
) -> None:
    """The alert-level rules: Ack/Error are not warnings; Update/Cancel name what they replace; an
    Alert says what and where (checked when ``infos`` is given). An Update may leave out its areas
    (or its infos): the version it replaces keeps its geometry (cim/warnings/versions.py)."""
    if msg_type in ("Ack", "Error"):
        raise InvalidWarning(f"{what}: msgType {msg_type} is an acknowledgement or error message, not a warning")
    if msg_type in ("Update", "Cancel") and not references:
        raise InvalidWarning(
            f"{what}: msgType {msg_type} needs <references> naming the alert it replaces (sender,identifier,sent)"
        )
    if infos is not None and msg_type == "Alert":
        if not infos:
            raise InvalidWarning(f"{what}: msgType {msg_type} needs at least one <info>")
        if not any(info.areas for info in infos):
            raise InvalidWarning(f"{what}: msgType {msg_type} needs at least one <area> saying where")


def _area(element: etree._Element, where: str) -> Area:
    description = _text(element, "areaDesc") or ""
    shapes = [areas.cap_polygon(p.text or "", f"{where} <polygon> {i}") for i, p in enumerate(_all(element, "polygon"), start=1)]
    shapes += [areas.cap_circle(c.text or "", f"{where} <circle> {i}") for i, c in enumerate(_all(element, "circle"), start=1)]
    geocodes = _named(element, "geocode")
    if not shapes and not geocodes:
        raise InvalidWarning(f"{where}: an <area> needs a <polygon>, <circle> or <geocode>")
    return Area(description, areas.union(shapes, where), geocodes)


def _info(element: etree._Element, sent: datetime, where: str) -> Info:
    event_codes = _named(element, "eventCode")
    parameters = _named(element, "parameter")
    event = _text(element, "event") or ""
    headline = _text(element, "headline")
    severity, colour = gbt35965.resolve(
        _text(element, "severity") or "Unknown",
        event_codes + parameters,
        (event, headline),
    )
    effective = _optional_time(element, "effective", where)
    expires = _optional_time(element, "expires", where)
    check_times(effective, expires, sent, where)
    return Info(
        language=_text(element, "language") or "en-US",
        categories=tuple((e.text or "").strip() for e in _all(element, "category")),
        event=event,
        urgency=_text(element, "urgency") or "Unknown",
        severity=severity,
        certainty=_text(element, "certainty") or "Unknown",
        effective=effective,
        onset=_optional_time(element, "onset", where),
        expires=expires,
        sender_name=_text(element, "senderName"),
        headline=headline,
        description=_text(element, "description"),
        instruction=_text(element, "instruction"),
        web=_text(element, "web"),
        contact=_text(element, "contact"),
        event_codes=event_codes,
        parameters=parameters,
        areas=tuple(_area(a, f"{where}, area {j}") for j, a in enumerate(_all(element, "area"), start=1)),
        colour=colour,
    )


def parse_cap(data: bytes) -> Alert:
    """A CAP 1.2 document -> :class:`Alert`, or a 4xx (:mod:`cim.warnings.errors`) naming what is
    wrong. Order: size limit, DTD/entity refusal, well-formedness, schema, then the profile."""
    root = parse_xml(data, "CAP alert")
    validate(root)
    shapes = len(root.findall(f"{_Q}info/{_Q}area/{_Q}polygon")) + len(root.findall(f"{_Q}info/{_Q}area/{_Q}circle"))
    if shapes > MAX_SHAPES:
        raise InvalidWarning(f"CAP alert: {shapes} polygons and circles is over the limit of {MAX_SHAPES} in one alert")
    points = sum(len((p.text or "").split()) for p in root.iterfind(f"{_Q}info/{_Q}area/{_Q}polygon"))
    if points > areas.MAX_VERTICES:
        raise InvalidWarning(f"CAP alert: {points} polygon points is over the limit of {areas.MAX_VERTICES} in one alert")
    identifier = _text(root, "identifier") or ""
    sender = _text(root, "sender") or ""
    check_token(identifier, "<identifier>")
    check_token(sender, "<sender>")
    sent = parse_time(_text(root, "sent") or "", "<sent>")
    msg_type = _text(root, "msgType") or ""
    references = parse_references(_text(root, "references"))
    check_alert(msg_type, references, None, f"alert {identifier}")
    infos = tuple(_info(e, sent, f"info {i}") for i, e in enumerate(_all(root, "info"), start=1))
    check_alert(msg_type, references, infos, f"alert {identifier}")
    return Alert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=_text(root, "status") or "",
        msg_type=msg_type,
        scope=_text(root, "scope") or "",
        references=references,
        note=_text(root, "note"),
        infos=infos,
        format="cap",
        division_code=gbt35965.division_code(identifier),
    )
