"""Agreements and read policies in plain words, for the pages (no access decision is made here).

An outside agency's view lists only what it will see (``policy_sentences``): a role, a field or
a section it may not see is not named at all, so the page gives no hint of it. Agreement readers
(managers, stakeholders, auditors) get the whole scope (``scope_sentences``) and a diff between
two versions as sentences removed and added (``scope_diff``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from openpars.access.policy import FieldProjection, ReadPolicy
from openpars.agreements.schemas import AgreementDocument
from openpars.agreements.scope import FieldPolicy, Scope
from openpars.identity.names import Names, names_of

ROLE_WORDS = {
    "arrestee": "arrested persons",
    "victim": "victims",
    "witness": "witnesses",
    "complainant": "complainants",
    "affiant": "affiants",
    "other": "other persons named in an arrest",
}
FIELD_WORDS = {
    "family_name": "family name",
    "given_name": "given name",
    "middle_name": "middle name",
    "aliases": "aliases",
    "birth_date": "date of birth",
    "sex": "sex",
    "race": "race",
    "address": "address",
    "phone": "phone number",
    "place_of_birth": "place of birth",
    "citizenship": "citizenship",
    "sid": "state identification number (SID)",
    "fbi_number": "FBI number",
    "otn": "offense tracking number (OTN)",
    "incident_number": "incident number",
    "ori": "arresting agency (ORI)",
    "arrested_at": "time of arrest",
    "arrest_type": "type of arrest",
    "state": "stage in the process",
    "docket_number": "court docket number",
    "report_id": "booking report number",
    "arresting_officer": "arresting officer",
    "location": "place of arrest",
    "narrative": "narrative",
    "charges": "charges",
    "charging_decisions": "charging decisions",
    "bail_recommendations": "bail recommendations",
    "arraignment": "arraignment",
    "custody": "custody",
    "involvements": "persons involved",
}
RULE_WORDS = {
    FieldPolicy.VISIBLE.value: "shown in full",
    FieldPolicy.REDACT.value: "shown with every letter and digit masked",
    FieldPolicy.SHOW_LAST_4.value: "only its last 4 characters shown",
    FieldPolicy.HASH.value: "replaced by a code that is the same for the same value",
    FieldPolicy.YEAR_ONLY.value: "the year only",
    FieldPolicy.NULLIFY.value: "named but always empty",
    FieldPolicy.HIDDEN.value: "not shown",
}


def field_words(name: str) -> str:
    """A field's name as people say it."""
    return FIELD_WORDS.get(name, name.replace("_", " "))


def _listing(items: Iterable[str]) -> str:
    words = list(items)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _roles(roles: Iterable[str]) -> str:
    return _listing(ROLE_WORDS.get(r, r) for r in sorted(roles))


def _limits(exact_only: bool, name_search: bool, max_results: int | None) -> list[str]:
    lines = []
    if exact_only or not name_search:
        lines.append(
            "Search by an exact identifier only: SID, FBI number, OTN, incident or docket number."
        )
    else:
        lines.append("Search persons by name (at least 2 letters) or by an exact identifier.")
    if max_results is not None:
        lines.append(f"At most {max_results} results per search.")
    return lines


def _shown_fields(projection: FieldProjection) -> list[str]:
    """Fields the caller receives with a value, each with how it is shown."""
    out = []
    for name in sorted(projection.allowed or ()):
        rule = projection.rules.get(name, FieldPolicy.VISIBLE.value)
        if rule == FieldPolicy.NULLIFY.value:
            continue
        out.append(f"{field_words(name)} ({RULE_WORDS[rule]})")
    return out


def policy_sentences(policy: ReadPolicy, purposes: Mapping[str, bool]) -> list[str]:
    """What an outside agency will see under its policy in force: positive statements only."""
    lines = [f"You see {_roles(r.value for r in policy.roles or ())} only."]
    person = _shown_fields(policy.person_fields)
    if person:
        lines.append("Of each person: " + _listing(person) + ".")
    arrest = _shown_fields(policy.arrest_fields)
    if arrest:
        lines.append("Of each arrest: " + _listing(arrest) + ".")
    if policy.arrest_states:
        states = _listing(sorted(s.value for s in policy.arrest_states))
        lines.append(f"Arrests at these stages: {states}.")
    if policy.grades:
        grades = _listing(sorted(g.value for g in policy.grades))
        lines.append(f"Arrests with a current charge graded {grades}; only those charges.")
    if policy.exclude_juveniles:
        lines.append("Adults only (a person of unknown age is left out).")
    if not policy.include_sealed:
        lines.append("Sealed and expunged records are left out.")
    for purpose, case_required in sorted(purposes.items()):
        need = " (a case reference is required)" if case_required else ""
        lines.append(f"Allowed purpose: {purpose}{need}.")
    lines += _limits(policy.exact_identifiers_only, policy.name_search, policy.max_results)
    if policy.rate_per_user is not None:
        lines.append(f"At most {policy.rate_per_user} searches a minute for your account.")
    return lines


def _fields_sentences(kind: str, fields: Mapping[str, FieldPolicy]) -> list[str]:
    if not fields:
        return [f"No {kind} field is shown."]
    return [
        f"{kind.capitalize()} field {field_words(name)}: {RULE_WORDS[rule.value]}."
        for name, rule in sorted(fields.items())
    ]


def scope_sentences(scope: Scope) -> list[str]:
    """An agreement's whole scope, one sentence per clause (stable order, for diffs)."""
    lines = [f"Roles shared: {_roles(r.value for r in scope.roles)}."]
    lines += _fields_sentences("person", scope.person_fields)
    lines += _fields_sentences("arrest", scope.arrest_fields)
    lines.append(f"Arrest stages: {_listing(sorted(s.value for s in scope.arrest_states))}.")
    lines.append(f"Charge grades: {_listing(sorted(g.value for g in scope.grades))}.")
    lines.append(
        "Juveniles excluded (unknown age counts as juvenile)."
        if scope.exclude_juveniles
        else "Juveniles included."
    )
    lines.append("Sealed records included." if scope.include_sealed else "Sealed records excluded.")
    for rule in scope.purposes:
        need = ", case reference required" if rule.case_reference_required else ""
        lines.append(f"Purpose {rule.purpose}{need}.")
    limits = scope.limits
    lines += _limits(limits.exact_identifiers_only, limits.name_search, limits.max_results)
    lines.append(
        f"Rate limits: {limits.rate_per_user_per_minute} a minute per user, "
        f"{limits.rate_per_agency_per_minute} per agency."
    )
    return lines


def document_sentences(document: AgreementDocument, names: Names | None = None) -> list[str]:
    """A version's terms outside the scope, then its scope, in plain words; agencies and
    accounts by name (``names``: the page's one lookup; without it, by id)."""
    known = names or Names()
    agencies = "; ".join(known.agency(a) for a in document.parties)
    units = "; ".join(known.agency(u) for u in document.grantee_unit_ids) or "none"
    accounts = "; ".join(known.user(u) for u in document.grantee_user_ids) or "none"
    lines = [
        f"Name: {document.name}.",
        f"Grantee: {known.agency(document.grantee_agency_id)}.",
        f"Parties: {agencies}.",
        f"In force from {document.effective_at:%Y-%m-%d %H:%M} UTC "
        f"until {document.expires_at:%Y-%m-%d %H:%M} UTC.",
        f"Legal basis: {document.legal_basis}",
        "Admits every unit of the grantee agency."
        if document.all_units
        else f"Admits the units {units} and the accounts {accounts}.",
    ]
    return lines + scope_sentences(document.scope)


def document_names(session: Session, documents: Iterable[AgreementDocument | None]) -> Names:
    """The names every agency and account of these versions is shown by: one statement."""
    shown = [d for d in documents if d is not None]
    return names_of(
        session,
        agency_ids=[
            a for d in shown for a in (d.grantee_agency_id, *d.parties, *d.grantee_unit_ids)
        ],
        user_ids=[u for d in shown for u in d.grantee_user_ids],
    )


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One sentence of a diff: ``-`` removed, ``+`` added, `` `` unchanged."""

    mark: str
    text: str

    @property
    def change(self) -> str:
        """The change in words (for screen readers and the CSS class)."""
        return {"-": "removed", "+": "added"}.get(self.mark, "unchanged")


def scope_diff(old: list[str], new: list[str]) -> list[DiffLine]:
    """The sentences of ``old`` and ``new``, each marked removed, added or unchanged."""
    out: list[DiffLine] = []
    for line in difflib.ndiff(old, new):
        mark, text = line[:1], line[2:]
        if mark in "-+ ":
            out.append(DiffLine(mark, text))
    return out


def days_left(until: datetime | None, now: datetime) -> int | None:
    """Whole days until an instant (negative once past), or None."""
    if until is None:
        return None
    return (until - now).days
