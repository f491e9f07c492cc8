"""``openpars proposal|vote|keys|board ...``: stakeholder governance at the console.

``app`` carries the four sub-apps (keys and votes live in ``cli_signing``). Acts are audited by
the services, exactly as through the API; the operator acts as ``system`` unless ``--as
USERNAME`` names an account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openpars.agreements.cli import load_document
from openpars.console import DbOption, out, reports_errors, settings_for, unit
from openpars.db import utcnow
from openpars.governance import (
    board,
    decisions,
    reports,
    service,
    signing,
    timeline,
    votes,
    witness_changes,
)
from openpars.governance.cli_signing import (
    AsOption,
    JsonOption,
    actor_named,
    keys_app,
    print_model,
    vote_app,
)
from openpars.governance.models import ProposalStatus
from openpars.governance.quorum import ProposalAction
from openpars.governance.schemas import BoardUpdate, ProposalCreate
from openpars.oversight.explain import rules_from
from openpars.oversight.explain_cli import _actor as oversight_actor
from openpars.oversight.report import ReportFormat
from openpars.oversight.report_cli import write as write_report
from openpars.oversight.report_render import render
from openpars.ranges import INT32_MAX

app = typer.Typer(help="Stakeholder governance: proposals, signed votes, keys, the board.")
proposal_app = typer.Typer(
    help="Proposals to adopt, renew, amend, suspend, resume, terminate, or change the floor."
)
board_app = typer.Typer(help="The board of stakeholders and its quorum rule.")
for _sub, _name in (
    (proposal_app, "proposal"),
    (vote_app, "vote"),
    (keys_app, "keys"),
    (board_app, "board"),
):
    _sub.info.no_args_is_help = True
    app.add_typer(_sub, name=_name)

# ---- proposals -----------------------------------------------------------------------------


def _subject(
    agreement_id: int | None,
    version: int | None,
    *,
    word: str = "v",
    action: ProposalAction | None = None,
) -> str:
    if agreement_id is None:
        return {ProposalAction.BOARD: "the board", ProposalAction.WITNESS: "the witnesses"}.get(
            action or ProposalAction.FLOOR, "the site floor"
        )
    return f"agreement {agreement_id}" + (f" {word}{version}" if version is not None else "")


@proposal_app.command("open")
@reports_errors
def proposal_open(
    action: Annotated[ProposalAction, typer.Option("--action")],
    deadline: Annotated[str, typer.Option("--deadline", help="RFC 3339 voting deadline.")],
    summary: Annotated[str, typer.Option("--summary", help="What and why.")],
    agreement: Annotated[
        int | None,
        typer.Option("--agreement", min=1, max=INT32_MAX, help="Every action but 'floor'."),
    ] = None,
    floor: Annotated[
        str | None,
        typer.Option(
            "--floor",
            help="Action 'floor': JSON file of the whole proposed site floor ('-': stdin).",
        ),
    ] = None,
    effective_at: Annotated[str | None, typer.Option("--effective-at")] = None,
    new_expires_at: Annotated[str | None, typer.Option("--new-expires-at")] = None,
    content_hash: Annotated[str | None, typer.Option("--content-hash")] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Open a proposal on an agreement's current version, or on a new site floor."""
    data = ProposalCreate(
        agreement_id=agreement,
        floor=load_document(floor) if floor is not None else None,
        action=action,
        summary=summary,
        deadline=signing.parse_at(deadline, field="deadline"),
        effective_at=signing.parse_at(effective_at, field="effective_at") if effective_at else None,
        new_expires_at=(
            signing.parse_at(new_expires_at, field="new_expires_at") if new_expires_at else None
        ),
        content_hash=content_hash,
    )
    settings = settings_for(db)
    with unit(settings) as session:
        proposal = service.open_proposal(
            session, actor=actor_named(session, as_user), data=data, rules=rules_from(settings),
            whatif_max_queries=settings.oversight_whatif_max_queries,
        )  # fmt: skip
        out.print(
            f"opened proposal {proposal.id}: {action.value} "
            f"{_subject(proposal.agreement_id, proposal.agreement_version)}; vote by "
            f"{proposal.deadline.isoformat()}"
        )
        attached = reports.report_ref(session, proposal.id)
        if attached is not None:
            out.print(
                f"oversight report of {attached.start} to {attached.end} attached, SHA-256 "
                f"{attached.sha256}; read it with: openpars proposal report {proposal.id}"
            )
        out.print(
            f"sign with: openpars vote sign --key FILE --proposal {proposal.id} "
            "--choice yes|no|abstain --rationale '...' --as YOUR_VOTER"
        )


@proposal_app.command("list")
@reports_errors
def proposal_list(
    agreement: Annotated[int | None, typer.Option("--agreement", min=1, max=INT32_MAX)] = None,
    status: Annotated[ProposalStatus | None, typer.Option("--status")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, max=INT32_MAX)] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    as_user: AsOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Proposals, newest first, a page at a time (as GET /api/v1/proposals)."""
    with unit(settings_for(db)) as session:
        page = service.list_proposals(
            session, actor=actor_named(session, as_user), agreement_id=agreement, status=status,
            offset=offset, limit=limit,
        )  # fmt: skip
    if as_json:
        print_model(page)
        return
    for p in page.items:
        out.print(
            f"{p.id}  {p.action.value:<9} "
            f"{_subject(p.agreement_id, p.agreement_version, action=p.action)}"
            f"  {p.status.value:<8} {len(p.tally.yes)}/{p.required_yes} yes"
            f"  deadline {p.deadline.isoformat()}"
        )
    out.print(f"{len(page.items)} of {page.total} proposal(s) from offset {page.offset}")


@proposal_app.command("show")
@reports_errors
def proposal_show(
    proposal_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    as_user: AsOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A proposal, its rule, tally, and every vote with its rationale."""
    with unit(settings_for(db)) as session:
        actor = actor_named(session, as_user)
        export = votes.export_votes(session, actor=actor, proposal_id=proposal_id)
    if as_json:
        print_model(export)
        return
    p = export.proposal
    out.print(
        f"proposal {p.id}: {p.action.value} "
        f"{_subject(p.agreement_id, p.agreement_version, word='version ', action=p.action)} "
        f"({p.content_hash})",
        markup=False,
    )
    out.print(f"  {p.summary}", markup=False)
    out.print(
        f"  status {p.status.value}; board v{p.board_version}: {p.required_yes} of "
        f"{len(p.board_members)} {p.board_members}; deadline {p.deadline.isoformat()}"
    )
    out.print(f"  tally: yes {p.tally.yes}, no {p.tally.no}, abstain {p.tally.abstain}")
    if p.closed_reason:
        out.print(f"  {p.closed_reason}", markup=False)
    if p.what_if is not None:
        out.print(
            f"  what-if replay: openpars oversight what-if --proposal {p.id} --months 6 "
            f"(GET {p.what_if})",
            markup=False,
        )
    if p.report is not None:
        out.print(
            f"  oversight report {p.report.start} to {p.report.end}, SHA-256 {p.report.sha256}: "
            f"openpars proposal report {p.id}"
        )
    for v in export.votes:
        out.print(
            f"  {v.at.isoformat()}  stakeholder {v.stakeholder_id} ({v.voter}) "
            f"{v.choice.value}: {v.rationale}",
            markup=False,
        )


@proposal_app.command("report")
@reports_errors
def proposal_report(
    proposal_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    output: Annotated[
        ReportFormat, typer.Option("--format", help="html, pdf or json.")
    ] = ReportFormat.HTML,
    path: Annotated[
        Path | None, typer.Option("--out", help="Write the report to this file (default: stdout).")
    ] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """The oversight report attached to a renewal proposal, exactly as voters see it
    (voters and the oversight role)."""
    with unit(settings_for(db)) as session:
        # Without --as, the console's oversight principal (whoever runs this holds the database).
        actor = oversight_actor(session, as_user)
        document, content, digest = reports.show_report(
            session, actor=actor, proposal_id=proposal_id, output=output
        )
    write_report(render(document, output, content=content), path)
    if path is not None:
        out.print(f"wrote {path} ({output.value}); report SHA-256 {digest}")


@proposal_app.command("timeline")
@reports_errors
def proposal_timeline(
    agreement: Annotated[int, typer.Option("--agreement", min=1, max=INT32_MAX)],
    as_user: AsOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """An agreement's governance history, oldest first."""
    with unit(settings_for(db)) as session:
        entries = timeline.governance_timeline(
            session, actor=actor_named(session, as_user), agreement_id=agreement
        )
    if as_json:
        print_model(entries)
        return
    for e in entries:
        out.print(f"{e.at.isoformat()}  {e.kind:<20} {e.summary}", markup=False)


@proposal_app.command("tick")
@reports_errors
def proposal_tick(as_user: AsOption = None, db: DbOption = None) -> None:
    """Run one governance step now: deadlines, effective instants, expiries, reminders."""
    with unit(settings_for(db)) as session:
        events = decisions.tick(session, now=utcnow(), actor=actor_named(session, as_user))
    for e in events:
        out.print(f"{e.kind}: {_subject(e.agreement_id, None)} {e.detail}", markup=False)
    out.print(f"{len(events)} event(s)")


# ---- board ---------------------------------------------------------------------------------


@board_app.command("show")
@reports_errors
def board_show(as_user: AsOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    """The board in force."""
    with unit(settings_for(db)) as session:
        shown = board.show_board(session, actor=actor_named(session, as_user))
    if as_json:
        print_model(shown)
        return
    out.print(
        f"board v{shown.version}: {shown.quorum} of {shown.size}; solo: "
        f"{', '.join(a.value for a in shown.solo_actions) or 'none'}; reminders "
        f"{shown.reminder_lead_days} days before expiry"
    )
    for m in shown.members:
        out.print(
            f"  {m.agency_id} {m.name} ({m.kind}): voters {', '.join(m.voters) or 'none'};"
            f" {len(m.key_fingerprints)} key(s)",
            markup=False,
        )


@board_app.command("init")
@reports_errors
def board_init(
    members: Annotated[list[int], typer.Option("--member", help="Stakeholder agency id.")],
    quorum: Annotated[int, typer.Option("--quorum", help="k: yes votes needed.", min=1, max=50)],
    solo: Annotated[list[ProposalAction] | None, typer.Option("--solo")] = None,
    lead_days: Annotated[int, typer.Option("--lead-days")] = 60,
    note: Annotated[str | None, typer.Option("--note")] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            metavar="VKEY",
            help="A first audit-log witness (cosignature/v1 key); later only by a board decision.",
        ),
    ] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Set the first board, and its first witnesses, once (refused once any board is in force)."""
    data = BoardUpdate(
        members=members,
        quorum=quorum,
        solo_actions=solo or [],
        reminder_lead_days=lead_days,
        note=note,
    )
    with unit(settings_for(db)) as session:
        config = witness_changes.bootstrap(
            session, actor=actor_named(session, as_user), data=data, vkeys=witness or []
        )
        out.print(
            f"board v{config.version}: {config.quorum} of {len(config.members)} {config.members}"
            + (f"; {len(witness)} witness(es)" if witness else "")
        )


@board_app.command("propose")
@reports_errors
def board_propose(
    members: Annotated[list[int], typer.Option("--member", help="Stakeholder agency id.")],
    quorum: Annotated[int, typer.Option("--quorum", help="k: yes votes needed.", min=1, max=50)],
    deadline: Annotated[str, typer.Option("--deadline", help="RFC 3339 voting deadline.")],
    summary: Annotated[str, typer.Option("--summary", help="What and why.")],
    solo: Annotated[list[ProposalAction] | None, typer.Option("--solo")] = None,
    lead_days: Annotated[int, typer.Option("--lead-days")] = 60,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Open a proposal to change the board; the board in force decides it by its quorum."""
    data = ProposalCreate(
        action=ProposalAction.BOARD,
        board=BoardUpdate(
            members=members, quorum=quorum, solo_actions=solo or [], reminder_lead_days=lead_days
        ),
        summary=summary,
        deadline=signing.parse_at(deadline, field="deadline"),
    )
    with unit(settings_for(db)) as session:
        proposal = service.open_proposal(session, actor=actor_named(session, as_user), data=data)
        out.print(
            f"opened proposal {proposal.id}: board {members}, quorum {quorum}; vote by "
            f"{proposal.deadline.isoformat()}; nothing changes until the board's quorum approves"
        )
        out.print(
            f"sign with: openpars vote sign --key FILE --proposal {proposal.id} "
            "--choice yes|no|abstain --rationale '...' --as YOUR_VOTER"
        )
