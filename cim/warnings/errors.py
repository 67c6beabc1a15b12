"""Errors a warning document can earn: each a 4xx naming what is wrong (which element, which info,
which area, which line where the XML parser says one)."""

from __future__ import annotations

from cim.errors import BadInput


class InvalidWarning(BadInput):
    """The document is not an acceptable warning (400 ``InvalidParameterValue``): not XML or JSON,
    refused by the hardened parser, invalid against the CAP 1.2 schema, or failing a check of the
    profile (geometry, times, references...)."""

    status = 400
    code = "InvalidParameterValue"


class WarningTooLarge(BadInput):
    """The document is larger than the limit (``CIM_LIMIT_WARNING_BYTES``, default 1 MiB): 413."""

    status = 413
    code = "PayloadTooLarge"


class UnsupportedWarningFormat(BadInput):
    """The media type is neither CAP XML nor GeoJSON (415)."""

    status = 415
    code = "UnsupportedMediaType"
