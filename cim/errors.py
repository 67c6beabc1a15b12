"""Errors the user sees. Each carries a message fit to print as one line (CLI) or to put into an
OGC exception document (HTTP); the web layer maps them to status codes."""

from __future__ import annotations


class CIMError(Exception):
    """Base of every error this project raises on purpose."""

    #: HTTP status the web layer answers with
    status = 500
    #: OGC API exception code
    code = "NoApplicableCode"


class ConfigError(CIMError):
    status = 400
    code = "InvalidParameterValue"


class StoreError(CIMError):
    """The store cannot be opened or used (unknown scheme, unreachable, no PostGIS...)."""

    status = 503
    code = "StoreUnavailable"


class NotFound(CIMError):
    status = 404
    code = "NotFound"


class LayerNotFound(NotFound):
    pass


class FeatureNotFound(NotFound):
    pass


class NoRelease(StoreError):
    """The store has no current release yet (nothing built)."""


class InvalidQuery(CIMError):
    status = 400
    code = "InvalidParameterValue"
