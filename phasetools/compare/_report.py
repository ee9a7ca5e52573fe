"""Claim verdicts as a stored result: one row per check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import Result, register
from ._verdict import AGREES, DISAGREES, NOT_TESTABLE

__all__ = ["ClaimReport"]

_COLUMNS = ("claim_id", "statement", "source", "claim_outcome", "quantity", "expected", "measured", "outcome",
            "rule", "detail")


@register
@dataclass(frozen=True, eq=False, repr=False)
class ClaimReport(Result):
    """Claim verdicts as a stored result: one row per check (all fields are tuples of str).

    Build one with :meth:`from_verdicts`.

    Parameters
    ----------
    claim_id, statement, source : tuple of str
        The claim each row belongs to: identifier, statement, where it is stated.
    claim_outcome : tuple of str
        The claim's overall outcome (any disagreement -> "disagrees").
    quantity, expected, measured : tuple of str
        What the row compares, the claimed (or predicted) value and phasetools' value.
    outcome : tuple of str
        "agrees", "disagrees" or "not testable".
    rule, detail : tuple of str
        The rule that decided the row, and the size of a disagreement or why it cannot decide.
    stats : dict
        Keyword-only, as for every :class:`~phasetools.results.Result`.
    """

    claim_id: tuple
    statement: tuple
    source: tuple
    claim_outcome: tuple
    quantity: tuple
    expected: tuple
    measured: tuple
    outcome: tuple
    rule: tuple
    detail: tuple

    _config_fields = ()

    @classmethod
    def from_verdicts(cls, claim_verdicts) -> ClaimReport:
        """The rows of a list of claim verdicts, values written as text.

        Parameters
        ----------
        claim_verdicts : iterable of ClaimVerdict
            E.g. ``[claim.evaluate(results) for claim in claims]``.

        Returns
        -------
        ClaimReport
        """
        cols = {k: [] for k in _COLUMNS}
        for cv in claim_verdicts:
            for v in cv.verdicts:
                row = (cv.claim.id, cv.claim.statement, cv.claim.source, cv.outcome, v.quantity, _text(v.expected),
                       _text(v.measured), v.outcome, v.rule, v.detail)
                for k, x in zip(_COLUMNS, row):
                    cols[k].append(x)
        return cls(**{k: tuple(v) for k, v in cols.items()}, stats={})

    def counts(self) -> dict:
        """Claims by overall outcome.

        Returns
        -------
        dict
            ``{"agrees": n, "disagrees": n, "not testable": n}`` over distinct claims.
        """
        seen = dict(zip(self.claim_id, self.claim_outcome))
        return {o: sum(v == o for v in seen.values()) for o in (AGREES, DISAGREES, NOT_TESTABLE)}

    def __repr__(self):
        return f"ClaimReport({len(set(self.claim_id))} claims, {len(self.outcome)} checks, {self.counts()})"


def _text(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    return str(v)
