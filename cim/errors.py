"""Errors the user sees. Each carries a message fit to print as one line (CLI) or to put into an
OGC exception document (HTTP); the web layer maps them to status codes."""

from __future__ import annotations


class CIMError(Exception):
    """Base of every error this project raises on purpose."""

    #: HTTP status the web layer answers with
    status = 500
    #: OGC API exception code
    code = "NoApplicableCode"


class BadInput(CIMError):
    """What the caller gave cannot be used (400 ``InvalidParameterValue``): a parameter, a config, a
    source."""

    status = 400
    code = "InvalidParameterValue"


class ConfigError(BadInput):
    """A configuration (a build config, a catalog name, a key, an environment variable) is wrong."""


class StoreError(CIMError):
    """The store cannot be opened or used (unknown scheme, unreachable, no PostGIS...)."""

    status = 503
    code = "StoreUnavailable"


class NotFound(CIMError):
    status = 404
    code = "NotFound"


class LayerNotFound(NotFound):
    pass


class ReleaseGone(NotFound):
    """A release that existed but was pruned away (410 ``Gone``); the message lists the releases kept."""

    status = 410
    code = "Gone"


class FeatureNotFound(NotFound):
    pass


class NoRelease(StoreError):
    """The store has no current release yet (nothing built)."""


class InvalidQuery(BadInput):
    """A request's parameter or filter is wrong."""


class BuildError(BadInput):
    """A build cannot go on: the message names the file, the layer, the feature (when one is to
    blame) and the reason, e.g. ``survey.shp: layer buildings: feature 12: coordinates outside ...``.
    Nothing is published when it is raised, so the current release stays as it was."""

    def __init__(self, reason: str, file: str | None = None, layer: str | None = None, feature: object = None) -> None:
        self.reason = reason
        self.file = file
        self.layer = layer
        self.feature = None if feature is None else str(feature)
        parts = [file] if file else []
        if layer:
            parts.append(f"layer {layer}")
        if self.feature is not None:
            parts.append(f"feature {self.feature}")
        super().__init__(": ".join([*parts, reason]))

    def __reduce__(self) -> tuple[type[BuildError], tuple[str, str | None, str | None, str | None]]:
        # raised on a dask worker, it arrives pickled: keep file, layer and feature, not just the message
        return (type(self), (self.reason, self.file, self.layer, self.feature))


class RequestTimeout(StoreError):
    """A read (a tile, a page) ran past its time budget (``limits().request_seconds``, PostgreSQL's
    ``statement_timeout``) and was stopped, so that one heavy request cannot hold a worker: 503, and
    the client may ask again later or ask for less."""

    code = "RequestTimeout"
