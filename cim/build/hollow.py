"""A hollow layer is never published: a layer whose primary source loses all its features, or more
than ``max_rejected_share`` of them, to the checks stops the build.

Rejected features are recorded one by one in the QA report and the build goes on — that is right for
a few bad features, and wrong when a field mapping or a CRS is off and every feature fails the same
check: the build would publish a layer with nothing (or next to nothing) in it and exit 0. So once a
layer's primary source is done, and before the layer goes to the store, :func:`check_loss` compares
what was rejected with the layer's :class:`~cim.build.config.LossLimits` and raises a
:class:`~cim.errors.BuildError` naming the layer, the file, how many of how many features were
rejected and the most frequent reasons from the QA records. Duplicates removed (an equal feature
stays) do not count as lost. The same check runs in distributed builds: it works on the records the
client makes from the workers' results.
"""

from __future__ import annotations

from collections import Counter

from cim.build.config import LossLimits
from cim.build.qa import QAReport
from cim.errors import BuildError

#: how many reasons the error lists
TOP_REASONS = 3


class HollowLayer(BuildError):
    """A layer loses more than its limits allow. Carries the QA report so far, which
    :func:`cim.build.pipeline.build` writes (with every rejected feature) before it stops."""

    def __init__(
        self,
        reason: str,
        file: str | None = None,
        layer: str | None = None,
        feature: object = None,
        report: QAReport | None = None,
    ) -> None:
        super().__init__(reason, file=file, layer=layer, feature=feature)
        self.report = report


def check_loss(report: QAReport, layer: str, source: str, read: int, rejected: int, limits: LossLimits) -> None:
    """Raise a BuildError when ``rejected`` of the ``read`` features of ``layer``'s primary
    ``source`` are more than ``limits`` allow."""
    if read == 0 or rejected == 0:
        return  # an empty source got here only with allow_empty
    if rejected == read:
        if limits.allow_empty:
            return
        what = f"all {read} features were rejected, the layer would be empty"
        hint = "allow_empty: true publishes it empty"
    elif rejected / read > limits.max_rejected_share:
        share = f"{100 * rejected / read:.0f} %"
        what = (
            f"{rejected} of {read} features were rejected ({share}), more than max_rejected_share "
            f"{limits.max_rejected_share:g} allows"
        )
        hint = "raise max_rejected_share for the layer if that is expected"
    else:
        return
    reason = f"{what}; top reasons: {_reasons(report, layer, source)} ({hint})"
    raise HollowLayer(reason, file=source, layer=layer, report=report)


def _reasons(report: QAReport, layer: str, source: str) -> str:
    """The most frequent rules among the rejections, each with its count and a first example."""
    found = [r for r in report.records if r.layer == layer and r.source == source and r.action == "rejected"]
    counts = Counter(r.rule for r in found)
    parts = []
    for rule, n in counts.most_common(TOP_REASONS):
        example = next(r for r in found if r.rule == rule)
        named = f"feature {example.feature}: " if example.feature is not None else ""
        parts.append(f"{rule} × {n} (e.g. {named}{example.reason})")
    more = len(counts) - TOP_REASONS
    return "; ".join(parts) + (f"; and {more} more rules" if more > 0 else "")
