"""The chain of versions of a warning: how an Alert, Update or Cancel changes the ``warnings`` layer.

Every message is kept as a version (a row): an Update or Cancel adds one and ends the validity of
the current version of each chain it references (``superseded_by``, ``valid_until``) — it never
overwrites it. A version is valid from its ``valid_from`` (effective, else sent) until its
``valid_until`` (expires; or the moment a later version superseded it); a Cancel's own validity is
empty (it is never in force). Alerts whose status is not Actual (Exercise, System, Test, Draft)
are stored off every public view and announce nothing. The same identifier from the same sender
again is a no-op when the content is identical and a conflict when it is not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cim.errors import CIMError
from cim.store.live import LiveRow, LiveTransaction

LAYER = "warnings"
#: CAP severities, the highest first
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
COLOUR_OF_SEVERITY = {"Extreme": "red", "Severe": "orange", "Moderate": "yellow", "Minor": "blue", "Unknown": "none"}
COLOUR_RANK = {"red": 0, "orange": 1, "yellow": 2, "blue": 3, "none": 4}


class WarningConflict(CIMError):
    """An alert that contradicts what the layer holds (same identifier, other content; a reference
    to an alert this server does not hold; a Cancel of a cancelled warning)."""

    status = 409
    code = "Conflict"


@dataclass(frozen=True)
class Version:
    """A message ready to be stored: the layer's field values and the geometry (WKB, CRS84)."""

    values: dict[str, Any]
    wkb: bytes | None
    public: bool
    #: (sender, identifier) of each alert the message references (Update, Cancel)
    references: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Applied:
    fid: int
    #: False when the same alert was already stored (nothing written)
    created: bool


def digest(content: Any) -> str:
    """SHA-256 of an alert's parsed content (canonical JSON)."""
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def apply(tx: LiveTransaction, version: Version, now: datetime) -> Applied:
    """Store ``version`` and supersede what it references, logging created / updated / cancelled."""
    values = version.values
    identifier, sender = values["identifier"], values["sender"]
    for row in tx.rows("identifier", identifier):
        if row.values.get("sender") == sender:
            if row.values.get("digest") == values["digest"]:
                return Applied(row.fid, created=False)
            raise WarningConflict(
                f"alert {identifier!r} from {sender!r} is already stored (feature {row.fid}) with other content:"
                " a change is a new alert (msgType Update) with its own identifier and <references>"
            )
    kind = values["msg_type"]
    heads = _heads(tx, version.references) if kind in ("Update", "Cancel") else []
    if kind in ("Update", "Cancel") and not heads:
        raise WarningConflict(f"{kind} {identifier!r} references no alert this server holds")
    values = dict(values)
    wkb = version.wkb
    if heads:
        first = heads[0]
        values["chain"] = first.values.get("chain") or first.values.get("identifier")
        values["version"] = max(int(h.values.get("version") or 1) for h in heads) + 1
        if wkb is None:  # a Cancel (or an Update) without areas keeps the referenced geometry
            wkb = first.wkb
    else:
        values["chain"], values["version"] = identifier, 1
    values["state"] = {"Alert": "issued", "Update": "updated", "Cancel": "cancelled"}[kind]
    fid = tx.insert(values, wkb, public=version.public)
    ended = values["sent"]
    for head in heads:
        start, end = head.values.get("valid_from"), head.values.get("valid_until")
        until = max(start, ended) if start is not None else ended
        if end is not None and end < until:
            until = end
        tx.update(head.fid, {"superseded_by": fid, "valid_until": until})
    if version.public:
        tx.append_event({"Alert": "created", "Update": "updated", "Cancel": "cancelled"}[kind], fid, now)
    return Applied(fid, created=True)


def _heads(tx: LiveTransaction, references: tuple[tuple[str, str], ...]) -> list[LiveRow]:
    """The current version of each chain the references reach (a reference to an older version of
    a chain reaches its current one); WarningConflict for a cancelled chain."""
    chains: dict[str, LiveRow] = {}
    for sender, identifier in references:
        for row in tx.rows("identifier", identifier):
            if row.values.get("sender") != sender:
                continue
            chain = row.values.get("chain") or identifier
            if chain in chains:
                continue
            current = [r for r in tx.rows("chain", chain) if r.values.get("superseded_by") is None]
            head = max(current or [row], key=lambda r: int(r.values.get("version") or 1))
            if head.values.get("state") == "cancelled":
                raise WarningConflict(f"the warning {chain!r} was cancelled by {head.values.get('identifier')!r}")
            chains[chain] = head
    return list(chains.values())


def expire(tx: LiveTransaction, now: datetime) -> list[int]:
    """Log ``expired`` for each version whose expiry has passed (not for superseded versions or
    Cancels: their validity ended otherwise); the fids. Idempotent: each version expires once."""
    fids: list[int] = []
    for row in tx.due(now, open_field="superseded_by"):
        tx.append_event("expired", row.fid, row.values.get("valid_until") or now)
        fids.append(row.fid)
    return fids
