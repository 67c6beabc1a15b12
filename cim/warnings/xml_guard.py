"""Hardened XML for warnings and feeds: the size limit first, then a scan of the decoded text that
refuses any DTD (``<!DOCTYPE``, ``<!ENTITY`` ...) BEFORE any XML parser sees the bytes, then lxml
with every external and expanding feature off, then a depth check.

Why a scan and not only parser options: lxml with the CAP schema attached to the parser crashed the
Python process on a document with one internal DTD entity, and no option list is proof against the
next such bug; a document with no DTD at all cannot declare an entity, an external subset or a
billion laughs. The scan runs on the *decoded* text (UTF-8, UTF-16 with a BOM, or the declared
encoding among a short list): a UTF-16 or EBCDIC document cannot smuggle a DOCTYPE past a byte scan,
and the parser is given the very text that was scanned, re-encoded as UTF-8.
"""

from __future__ import annotations

import codecs
import re

from lxml import etree

from cim.limits import limits
from cim.warnings.errors import InvalidWarning, WarningTooLarge

#: nesting of elements accepted (a CAP alert needs 4: alert/info/area/geocode/value is 5)
MAX_DEPTH = 32
#: encodings a document may declare (all ASCII-compatible for markup, decoded before the scan)
ENCODINGS = {
    "utf-8",
    "utf8",
    "us-ascii",
    "ascii",
    "iso-8859-1",
    "latin-1",
    "gb2312",
    "gbk",
    "gb18030",
}

_DECLARATION = re.compile(r"""\A<\?xml\s[^>]*?\?>""")
_ENCODING = re.compile(r"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
#: any markup declaration: DOCTYPE, ENTITY, ELEMENT, ATTLIST, NOTATION, conditional sections
_DTD = re.compile(r"<!\s*(?!--)(?!\[CDATA\[)([A-Za-z\[]*)", re.IGNORECASE)


def warning_byte_limit() -> int:
    """The size limit in bytes: ``cim.limits`` ``warning_bytes`` (``CIM_LIMIT_WARNING_BYTES``, default
    1 MiB), which must be positive."""
    value = limits().warning_bytes
    if value <= 0:
        raise ValueError(f"CIM_LIMIT_WARNING_BYTES={value!r} must be positive")
    return value


def check_size(data: bytes, what: str, limit: int | None = None) -> None:
    """413 when ``data`` is over ``limit`` bytes (default :func:`warning_byte_limit`)."""
    limit = warning_byte_limit() if limit is None else limit
    if len(data) > limit:
        raise WarningTooLarge(f"{what}: {len(data)} bytes is over the limit of {limit} bytes (CIM_LIMIT_WARNING_BYTES)")


def decode_xml(data: bytes, what: str) -> str:
    """The document's text: UTF-8 (with or without BOM), UTF-16 with a BOM, or an encoding its XML
    declaration names from :data:`ENCODINGS`; anything else (UTF-32, EBCDIC, UTF-7, UTF-16 without a
    BOM) is refused. The XML declaration is removed (the text is parsed as UTF-8 afterwards)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise InvalidWarning(f"{what}: UTF-32 documents are not accepted; send UTF-8")
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
            declared = None
        else:
            data = data.removeprefix(codecs.BOM_UTF8)
            if data[:4] in (
                b"\x00<\x00?",
                b"<\x00?\x00",
                b"\x00\x00\x00<",
                b"<\x00\x00\x00",
            ) or data[:2] in (b"\x00<", b"<\x00"):
                raise InvalidWarning(f"{what}: UTF-16/UTF-32 without a byte order mark is not accepted; send UTF-8")
            head = data[:200].decode("ascii", errors="replace")
            declared = None
            match = _DECLARATION.match(head.lstrip())
            if match:
                enc = _ENCODING.search(match.group(0))
                declared = enc.group(1).lower() if enc else None
            if declared is not None and declared not in ENCODINGS and not declared.startswith("utf-16"):
                raise InvalidWarning(f"{what}: encoding {declared!r} is not accepted; send UTF-8")
            if declared is not None and declared.startswith("utf-16"):
                raise InvalidWarning(f"{what}: declares {declared!r} but has no UTF-16 byte order mark")
            text = data.decode(declared or "utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidWarning(f"{what}: not valid {exc.encoding} text at byte {exc.start}: {exc.reason}") from None
    text = text.removeprefix("\ufeff")
    stripped = text.lstrip()
    match = _DECLARATION.match(stripped)
    if match:
        # keep the newlines so the parser's line numbers are the document's
        offset = len(text) - len(stripped)
        text = text[:offset] + "\n" * match.group(0).count("\n") + stripped[match.end() :]
    return text


def refuse_dtd(text: str, what: str) -> None:
    """400 on any markup declaration (``<!DOCTYPE``, ``<!ENTITY``, ``<!ELEMENT`` ...) anywhere in
    the text — comments and CDATA sections aside, nothing in a warning needs ``<!``."""
    match = _DTD.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        name = match.group(1).upper() or "markup declaration"
        raise InvalidWarning(
            f"{what}: line {line}: <!{name} is not accepted (no DTD, entity or external reference may appear in a warning)"
        )


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def _depth(root: etree._Element) -> int:
    depth = deepest = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_xml(data: bytes, what: str, limit: int | None = None) -> etree._Element:
    """The root element of a hardened parse of ``data`` (``what`` names the document in messages,
    e.g. "CAP alert" or "feed https://..."): 413 over ``limit`` bytes (default
    ``CIM_LIMIT_WARNING_BYTES``), 400 on a DTD or entity, an unaccepted encoding, malformed XML
    (with lxml's line and message) or elements nested deeper than :data:`MAX_DEPTH`. No schema is
    attached to the parser: validate the returned tree (:func:`cim.warnings.cap.validate`)."""
    check_size(data, what, limit)
    text = decode_xml(data, what)
    refuse_dtd(text, what)
    if not text.strip():
        raise InvalidWarning(f"{what}: the document is empty")
    try:
        root = etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc:
        message = str(exc.msg if getattr(exc, "msg", None) else exc)
        if "depth" in message.lower():
            raise InvalidWarning(f"{what}: elements nested deeper than {MAX_DEPTH} levels") from None
        if "line" not in message and getattr(exc, "lineno", None):
            message = f"line {exc.lineno}: {message}"
        raise InvalidWarning(f"{what}: not well-formed XML: {message}") from None
    except (ValueError, etree.LxmlError) as exc:
        raise InvalidWarning(f"{what}: not XML: {exc}") from None
    if root is None:
        raise InvalidWarning(f"{what}: no root element")
    if _depth(root) > MAX_DEPTH:
        raise InvalidWarning(f"{what}: elements nested deeper than {MAX_DEPTH} levels")
    return root
