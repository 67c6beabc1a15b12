"""Re-basing the edits overlay onto the release that becomes current (both stores).

An overlay row of a release feature is the edit of *that feature*, whose stable identity is
(``source``, ``source_id``) — not its ``fid``, which a build may give to another feature. Whenever a
release becomes current (publish, rollback), every such row is matched to the feature of the new
release with the same identity and takes its fid; a row whose feature is not in the new release
(or not once) is a **conflict**: it stays in the overlay table, under a negative fid that no
release feature has (reads take overlay rows with ``fid >= 0`` only: :mod:`cim.store.sql.overlay`),
with the reason in column ``conflict``, and is matched again at the next switch — so a rollback
brings an edit back onto its feature. Features created through the API (fids from 10^15) are
their own identity and are left as they are.

The plan is made here in Python (the overlay is small: the edited features); the statements are
plain SQL run through ``run(sql, params)`` with the store's placeholder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cim.store.base import FID
from cim.store.edits import FIRST_CREATED_FID
from cim.store.sql import quote_ident
from cim.store.sql.overlay import CONFLICT
#: rows looked up per statement
CHUNK = 500

Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class EditConflict:
    """An edit of a release feature that no feature of the current release takes: not applied."""

    layer: str
    source: str | None
    source_id: str | None
    #: "delete" (a deleted feature) or "edit" (created or replaced values)
    action: str
    reason: str


@dataclass(frozen=True)
class Placement:
    """Where one overlay row goes: its new fid, and the conflict reason when it is not applied."""

    old_fid: int
    fid: int
    conflict: str | None


def plan(
    rows: Sequence[tuple[int, str | None, str | None, str | None]],
    matches: dict[tuple[str, str], list[int]],
    release: int,
    previous: int | None,
    layer_present: bool,
) -> list[Placement]:
    """Place overlay ``rows`` (fid, source, source_id, conflict) of release features onto ``release``,
    given the release's fids by identity (``matches``). Rows applied until now come before conflicts,
    so of two edits of one identity the applied one keeps it."""
    ordered = sorted(rows, key=lambda r: (r[3] is not None, r[0] < 0, abs(r[0])))
    taken: set[tuple[str, str]] = set()
    placements = []
    next_conflict = -1
    for fid, source, source_id, old_conflict in ordered:
        identity = (source, source_id)
        found = matches.get(identity, []) if source is not None and source_id is not None else []
        reason = None
        if source is None or source_id is None:
            reason = "the edited feature has no source and source_id to follow"
        elif not layer_present:
            reason = f"release {release} has no such layer"
        elif not found:
            reason = f"release {release} has no feature with source {source!r} and source_id {source_id!r}"
        elif len(found) > 1:
            reason = f"release {release} has {len(found)} features with source {source!r} and source_id {source_id!r}"
        elif identity in taken:
            reason = f"another edit of the feature with source {source!r} and source_id {source_id!r} is applied"
        if reason is None:
            taken.add(identity)  # type: ignore[arg-type]
            placements.append(Placement(fid, found[0], None))
            continue
        if old_conflict is None:
            if previous is not None:
                reason += f"; the edit was made to feature {fid} of release {previous}"
        elif "; " in old_conflict:
            reason += "; " + old_conflict.split("; ", 1)[1]
        placements.append(Placement(fid, next_conflict, reason))
        next_conflict -= 1
    return placements


class Rebase:
    """The statements of one re-base on one connection (``run``), ``ph`` the placeholder."""

    def __init__(self, run: Run, ph: str) -> None:
        self.run = run
        self.ph = ph

    def add_conflict_column(self, table: str, columns: Sequence[str]) -> None:
        if CONFLICT not in columns:
            self.run(f"ALTER TABLE {table} ADD COLUMN {quote_ident(CONFLICT)} {self._text()}", ())

    def _text(self) -> str:
        return "VARCHAR" if self.ph == "?" else "text"

    def overlay_rows(self, table: str) -> list[tuple[int, str | None, str | None, str | None]]:
        """The overlay rows of release features (not those created through the API)."""
        return [
            (int(r[0]), r[1], r[2], r[3])
            for r in self.run(
                f"SELECT {quote_ident(FID)}, source, source_id, {quote_ident(CONFLICT)} FROM {table}"
                f" WHERE {quote_ident(FID)} < {FIRST_CREATED_FID}",
                (),
            )
        ]

    def fill_identities(
        self, rows: list[tuple[int, str | None, str | None, str | None]], previous_table: str | None
    ) -> list[tuple[int, str | None, str | None, str | None]]:
        """Rows written before edits kept their identity (tombstones had none): take it from the
        release they were applied to, by fid."""
        missing = [r[0] for r in rows if r[3] is None and r[0] >= 0 and (r[1] is None or r[2] is None)]
        if not missing or previous_table is None:
            return rows
        known: dict[int, tuple[str, str]] = {}
        for part in _chunks(missing):
            sql = (
                f"SELECT {quote_ident(FID)}, source, source_id FROM {previous_table}"
                f" WHERE {quote_ident(FID)} IN ({', '.join([self.ph] * len(part))})"
            )
            known.update({int(f): (s, i) for f, s, i in self.run(sql, part)})
        return [(f, *known.get(f, (s, i)), c) if f in known else (f, s, i, c) for f, s, i, c in rows]

    def matches(self, release_table: str, identities: set[tuple[str, str]]) -> dict[tuple[str, str], list[int]]:
        """The release's fids of each identity (one scan of the release per chunk of identities)."""
        found: dict[tuple[str, str], list[int]] = {}
        for part in _chunks(sorted(identities)):
            sql = (
                f"SELECT source, source_id, {quote_ident(FID)} FROM {release_table}"
                f" WHERE source_id IN ({', '.join([self.ph] * len(part))})"
            )
            for source, source_id, fid in self.run(sql, [i for _, i in part]):
                if (source, source_id) in identities:
                    found.setdefault((source, source_id), []).append(int(fid))
        return found

    def apply(self, table: str, columns: Sequence[str], placements: list[Placement]) -> None:
        """Give each row its place: rows moved out through a temporary table, then back in (no
        update of the key: fids may swap)."""
        if not placements:
            return
        others = [quote_ident(c) for c in columns if c not in (FID, CONFLICT)]
        fid, conflict = quote_ident(FID), quote_ident(CONFLICT)
        self.run("DROP TABLE IF EXISTS cim_rebase_place", ())
        self.run("DROP TABLE IF EXISTS cim_rebase_rows", ())
        self.run(f"CREATE TEMPORARY TABLE cim_rebase_place (old_fid BIGINT, new_fid BIGINT, reason {self._text()})", ())
        for part in _chunks(placements):
            values = ", ".join([f"({self.ph}, {self.ph}, {self.ph})"] * len(part))
            self.run(
                f"INSERT INTO cim_rebase_place VALUES {values}",
                [v for p in part for v in (p.old_fid, p.fid, p.conflict)],
            )
        self.run(
            f"CREATE TEMPORARY TABLE cim_rebase_rows AS SELECT * FROM {table}"
            f" WHERE {fid} IN (SELECT old_fid FROM cim_rebase_place)",
            (),
        )
        self.run(f"DELETE FROM {table} WHERE {fid} IN (SELECT old_fid FROM cim_rebase_place)", ())
        self.run(
            f"INSERT INTO {table} ({fid}, {conflict}, {', '.join(others)})"
            f" SELECT p.new_fid, p.reason, {', '.join('e.' + c for c in others)}"
            f" FROM cim_rebase_rows AS e JOIN cim_rebase_place AS p ON p.old_fid = e.{fid}",
            (),
        )
        self.run("DROP TABLE cim_rebase_place", ())
        self.run("DROP TABLE cim_rebase_rows", ())

    def rebase_table(
        self,
        table: str,
        columns: Sequence[str],
        release_table: str | None,
        release: int,
        previous_table: str | None,
        previous: int | None,
    ) -> None:
        """Re-base one layer's overlay table onto ``release`` (``release_table`` None: the release
        has no such vector layer, so every edit of a release feature is a conflict)."""
        self.add_conflict_column(table, columns)
        columns = [*columns, CONFLICT] if CONFLICT not in columns else list(columns)
        stored = self.overlay_rows(table)
        rows = self.fill_identities(stored, previous_table)
        if not rows:
            return
        identities = {(s, i) for _, s, i, _ in rows if s is not None and i is not None}
        matches = self.matches(release_table, identities) if release_table is not None and identities else {}
        placements = plan(rows, matches, release, previous, release_table is not None)
        self.apply(table, columns, placements)
        # identities filled from the previous release are written into their rows
        filled = {r[0]: r[1:3] for r, before in zip(rows, stored) if r[1:3] != before[1:3]}
        for p in placements:
            if p.old_fid in filled:
                self.run(
                    f"UPDATE {table} SET source = {self.ph}, source_id = {self.ph} WHERE {quote_ident(FID)} = {self.ph}",
                    (*filled[p.old_fid], p.fid),
                )

    def conflicts(self, layer: str, table: str) -> list[EditConflict]:
        rows = self.run(
            f"SELECT source, source_id, deleted, {quote_ident(CONFLICT)} FROM {table}"
            f" WHERE {quote_ident(FID)} < 0 ORDER BY {quote_ident(FID)} DESC",
            (),
        )
        return [EditConflict(layer, s, i, "delete" if d else "edit", c or "") for s, i, d, c in rows]


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
