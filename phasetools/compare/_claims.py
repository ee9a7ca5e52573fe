"""Claims and their verdicts: a statement, the results that test it and the check that decides it.

A :class:`Claim` names the results its check needs (``experiments``), the results it uses
when present (``optional``) and the ``check`` itself (results -> verdicts).
:meth:`Claim.evaluate` calls the check only when every needed result is there: a missing
result makes the claim "not testable", while an error inside the check (a bug) propagates,
so a bug cannot pass for a missing experiment. The paper's claims are in
:mod:`phasetools.reproduce`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ._verdict import AGREES, DISAGREES, NOT_TESTABLE, not_testable

__all__ = ["Claim", "ClaimVerdict", "TABLES"]

#: The two tables of a report: the source's claims, and the toolkit's checks of itself.
TABLES = ("paper", "toolkit")


def _names(value, name):
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{name} must be a sequence of result names (non-empty strings), got {value!r}")
    return names


@dataclass(frozen=True)
class Claim:
    """One checkable claim: what is stated, where, the claimed number and how to check it.

    Parameters
    ----------
    id : str
        Short identifier (``"transitions"``).
    statement : str
        The claim in words.
    paper : str
        The claimed number or outcome as the source states it.
    source : str
        Where it is stated (section, experiment).
    experiments : sequence of str
        Names of the results ``check`` needs: the claim is not testable unless all are in
        the results.
    check : callable
        ``check(results) -> iterable of Verdict``, with ``results`` a mapping from result
        name to result. An empty iterable makes the claim not testable (nothing to check);
        an exception propagates.
    optional : sequence of str, optional
        Names of results ``check`` uses when present (it must test for them itself).
    kind : str, optional
        The kind of check (``"symbolic"``, ``"theory"``, ``"training"``, ``"arithmetic"``,
        ``"not testable"``, or a combination such as ``"theory + training"``).
    how : str, optional
        How the claim is measured (protocol, seeds, draws, float precision, minibatch
        sampling) and any departure from the source, in words; a verdict's own ``how``
        takes precedence in its row.
    table : {"paper", "toolkit"}
        ``"paper"``: a claim of the source (counted in the tally); ``"toolkit"``: a check the
        toolkit makes of its own theory and engines (reported apart).
    """

    id: str
    statement: str
    paper: str
    source: str
    experiments: tuple
    check: Callable = field(repr=False)
    optional: tuple = ()
    kind: str = ""
    how: str = ""
    table: str = "paper"

    def __post_init__(self):
        if not callable(self.check):
            raise ValueError(f"check must be callable (results -> verdicts), got {self.check!r}")
        if self.table not in TABLES:
            raise ValueError(f"table must be one of {', '.join(TABLES)}, got {self.table!r}")
        object.__setattr__(self, "experiments", _names(self.experiments, "experiments"))
        object.__setattr__(self, "optional", _names(self.optional, "optional"))

    def missing(self, results: Mapping) -> list:
        """The needed results that ``results`` lacks.

        Parameters
        ----------
        results : mapping
            Result name -> result.

        Returns
        -------
        list of str
            Names from :attr:`experiments` not in ``results``, in order.
        """
        return [e for e in self.experiments if e not in results]

    def evaluate(self, results: Mapping) -> ClaimVerdict:
        """Check the claim on ``results``.

        Parameters
        ----------
        results : mapping
            Result name -> result.

        Returns
        -------
        ClaimVerdict
            One not-testable verdict naming what was not run if a needed result is missing
            (or, when ``check`` returns nothing, the optional results that are missing);
            otherwise the verdicts of ``check``. Exceptions raised by ``check`` propagate.
        """
        missing = self.missing(results)
        if not missing:
            verdicts = tuple(self.check(results))
            if verdicts:
                return ClaimVerdict(self, verdicts)
            missing = [e for e in self.optional if e not in results]
        why = "not run: " + ", ".join(missing) if missing else "nothing to check"
        return ClaimVerdict(self, (not_testable(self.statement, self.paper, why),))


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim with the verdicts of its checks.

    Parameters
    ----------
    claim : Claim
        The claim checked.
    verdicts : tuple of Verdict
        One per check (at least one).
    """

    claim: Claim
    verdicts: tuple

    @property
    def outcome(self) -> str:
        """The claim's overall outcome: disagrees if any check disagrees, agrees if all agree,
        else not testable."""
        outs = [v.outcome for v in self.verdicts]
        if DISAGREES in outs:
            return DISAGREES
        if outs and all(o == AGREES for o in outs):
            return AGREES
        return NOT_TESTABLE
