"""Claim verdicts as a stored result: one row per check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import Result, register
from ._verdict import AGREES, DISAGREES, NOT_TESTABLE

__all__ = ["ClaimReport"]

_COLUMNS = ("claim_id", "statement", "source", "claim_outcome", "quantity", "expected", "measured", "outcome",
            "rule", "detail", "table", "kind", "how")


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
    table, kind, how : tuple of str
        The claim's table ("paper" or "toolkit"), its kind of check, and how the row was
        measured (the verdict's ``how``, else the claim's). Empty in files written before
        these columns existed.
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
    table: tuple = ()
    kind: tuple = ()
    how: tuple = ()

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
                       _text(v.measured), v.outcome, v.rule, v.detail, cv.claim.table, cv.claim.kind,
                       v.how or cv.claim.how)
                for k, x in zip(_COLUMNS, row):
                    cols[k].append(x)
        return cls(**{k: tuple(v) for k, v in cols.items()}, stats={})

    def counts(self, table="paper") -> dict:
        """Claims by overall outcome.

        Parameters
        ----------
        table : {"paper", "toolkit", None}
            Count the claims of one table (default: the source's claims, the report's
            tally), or every row's claim (None). Files without a ``table`` column count
            every claim.

        Returns
        -------
        dict
            ``{"agrees": n, "disagrees": n, "not testable": n}`` over distinct claims.
        """
        if table not in ("paper", "toolkit", None):
            raise ValueError(f"table must be 'paper', 'toolkit' or None, got {table!r}")
        tables = self.table if len(self.table) == len(self.claim_id) else (None,) * len(self.claim_id)
        seen = {i: o for i, o, t in zip(self.claim_id, self.claim_outcome, tables)
                if table is None or t is None or t == table}
        return {o: sum(v == o for v in seen.values()) for o in (AGREES, DISAGREES, NOT_TESTABLE)}

    def __repr__(self):
        return f"ClaimReport({len(set(self.claim_id))} claims, {len(self.outcome)} checks, {self.counts()})"


def _text(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    return str(v)
