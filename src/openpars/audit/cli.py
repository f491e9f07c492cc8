"""``openpars audit``: integrate, checkpoints, key, proofs, export, entries, receipts, witnesses.

The operator at the console acts as a system principal with the auditor's and the court's
sealing permissions (whoever runs these commands already holds the database); every read of
entries, every export, witness proposal and shredding is audited like the same act via the API.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from openpars.audit import checkpoints, log, receipts, witness
from openpars.audit import export as exporting
from openpars.audit import repository as repo
from openpars.audit import shred as shredding
from openpars.audit.events import AuditKind
from openpars.console import (
    DbOption,
    audit_console,
    open_database,
    out,
    refusal_names,
    reports_errors,
    settings_for,
    unit,
)
from openpars.errors import InvalidInput
from openpars.governance import service as proposals
from openpars.governance import signing
from openpars.governance.cli_signing import AsOption, actor_named
from openpars.governance.schemas import WitnessChange, WitnessProposalCreate
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.ranges import INT32_MAX, INT64_MAX

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
witness_app = typer.Typer(help="Witnesses whose cosignatures make checkpoints final.")
app.add_typer(witness_app, name="witness")

OPERATOR = Principal(
    user_id=None,
    username="system",
    agency_id=None,
    agency_kind=None,
    roles=frozenset({Role.ADMIN, Role.AUDITOR, Role.COURT}),
)


@app.command("integrate")
@reports_errors
def integrate(db: DbOption = None) -> None:
    """Give every appended entry its leaf index now (the server does this every second)."""
    with open_database(settings_for(db)) as database:
        count = log.integrate_all(database)
    out.print(f"integrated {count} entries")


@app.command("checkpoint")
@reports_errors
def checkpoint(db: DbOption = None) -> None:
    """Integrate, sign a checkpoint if the tree grew, and print the newest checkpoint."""
    settings = settings_for(db)
    with open_database(settings) as database:
        log.integrate_all(database)
        with database.session() as session:
            checkpoints.publish(session, settings=settings)
            note = checkpoints.cosigned_note(session, checkpoints.latest(session))
    sys.stdout.write(note)


@app.command("key")
@reports_errors
def key(db: DbOption = None) -> None:
    """Print the log's public key (give it to stakeholders for 'openpars-verify --log-key')."""
    settings = settings_for(db)
    with unit(settings) as session:
        # The key file is checked against the signed log first: a replaced or lost key is
        # refused here rather than printed as if it were the log's.
        if repo.latest_checkpoint(session) is not None:
            checkpoints.load_or_create_key(settings, session)
        vkey = checkpoints.public_key(settings, session)
    sys.stdout.write(vkey + "\n")


@app.command("proof")
@reports_errors
def proof(
    index: Annotated[
        int | None, typer.Option(help="Leaf index (inclusion proof).", min=0, max=INT64_MAX)
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(help="Tree size (default: newest checkpoint).", min=1, max=INT64_MAX),
    ] = None,
    first: Annotated[
        int | None, typer.Option(help="Old size (consistency proof).", min=0, max=INT64_MAX)
    ] = None,
    db: DbOption = None,
) -> None:
    """Print an inclusion (--index) or consistency (--first) proof, one base64 hash a line."""
    with unit(settings_for(db)) as session:
        tree = size if size is not None else checkpoints.latest(session).size
        if (index is None) == (first is None):
            raise InvalidInput("give exactly one of --index and --first", field="index")
        if index is not None:
            hashes = log.inclusion_proof(session, index=index, size=tree)
        else:
            assert first is not None
            hashes = log.consistency_proof(session, first=first, second=tree)
    for item in hashes:
        sys.stdout.write(base64.b64encode(item).decode("ascii") + "\n")


@app.command("export")
@reports_errors
def export(
    start: Annotated[int, typer.Option(help="First leaf index.", min=0, max=INT64_MAX)] = 0,
    end: Annotated[
        int | None, typer.Option(help="Stop at the newest checkpoint <= END.", min=0, max=INT64_MAX)
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="File (default stdout).")] = None,
    db: DbOption = None,
) -> None:
    """Write the log in the openpars-audit-export/v1 format for 'openpars-verify export'."""
    settings = settings_for(db)
    with open_database(settings) as database:
        with database.session() as session:
            span = exporting.export_range(session, start=start, end=end)
            audit_console(
                session, kind=AuditKind.EXPORT, action="audit.export", start=span.start,
                end=span.end, actor=OPERATOR,
            )  # fmt: skip
        lines = exporting.export_from(database, settings=settings, span=span)
        if output is None:
            sys.stdout.writelines(lines)
        else:
            with output.open("w", encoding="utf-8") as handle:
                handle.writelines(lines)
    if output is not None:
        out.print(f"exported entries [{span.start}, {span.end}) to {output}")


@app.command("entries")
@reports_errors
def entries(
    after_id: Annotated[
        int, typer.Option(help="Entries with a larger id.", min=0, max=INT64_MAX)
    ] = 0,
    limit: Annotated[int, typer.Option(help="How many.")] = 50,
    db: DbOption = None,
) -> None:
    """Print entries as JSON lines (this read is itself audited)."""
    with unit(settings_for(db)) as session:
        rows = exporting.list_entries(session, actor=OPERATOR, after_id=after_id, limit=limit)
        audit_console(
            session, kind=AuditKind.AUDIT_READ, action="audit.entries.list", after_id=after_id,
            limit=limit, returned=len(rows), actor=OPERATOR,
        )  # fmt: skip
    for row in rows:
        sys.stdout.write(json.dumps(row, default=str, sort_keys=True) + "\n")


@app.command("receipt")
@reports_errors
def receipt(
    entry_id: Annotated[int, typer.Argument(help="The audit entry id.", min=1, max=INT64_MAX)],
    output: Annotated[Path | None, typer.Option("--out", help="File (default stdout).")] = None,
    db: DbOption = None,
) -> None:
    """Write an entry's openpars-receipt/v1 for 'openpars-verify receipt' (audited)."""
    settings = settings_for(db)
    with unit(settings) as session:
        found = receipts.audited_receipt(
            session, principal=OPERATOR, entry_id=entry_id, quorum=settings.witness_quorum,
            retry_after_s=settings.receipt_retry_after_s, via="cli",
        )  # fmt: skip
    text = json.dumps(found.document(), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    out.print(
        f"wrote the receipt of audit entry {entry_id} (leaf {found.leaf_index}, checkpoint "
        f"size {found.tree_size}) to {output}; check it with 'openpars-verify receipt'"
    )


@app.command("shred")
@reports_errors
def shred(
    order: Annotated[
        str, typer.Option(help="The order that sealed or expunged the record, as recorded on it.")
    ],
    arrest_id: Annotated[
        int | None, typer.Option(help="The sealed arrest.", min=1, max=INT32_MAX)
    ] = None,
    person_id: Annotated[
        int | None, typer.Option(help="The expunged person.", min=1, max=INT32_MAX)
    ] = None,
    db: DbOption = None,
) -> None:
    """Crypto-shred the entries about a record sealed or expunged by this court order."""
    # A refused attempt is evidence too: reports_errors audits it once, under the act's name.
    refusal_names(shredding.ACTION, order_reference=order, arrest_id=arrest_id, person_id=person_id)
    with unit(settings_for(db)) as session:
        ids = log.shred(
            session, actor=OPERATOR, order_reference=order, arrest_id=arrest_id,
            person_id=person_id,
        )  # fmt: skip
    out.print(f"shredded the content of {len(ids)} audit entries under order {order}")


@witness_app.command("propose")
@reports_errors
def witness_propose(
    deadline: Annotated[str, typer.Option("--deadline", help="RFC 3339 voting deadline.")],
    summary: Annotated[str, typer.Option("--summary", help="Whose witness, and why.")],
    add: Annotated[
        str | None, typer.Option("--add", metavar="VKEY", help="A cosignature/v1 verifier key.")
    ] = None,
    remove: Annotated[
        str | None, typer.Option("--remove", metavar="NAME", help="An active witness's name.")
    ] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Propose adding or removing one witness; the board decides by its quorum of signed votes."""
    settings = settings_for(db)
    change = WitnessChange(add=add, remove=remove)
    data = WitnessProposalCreate(
        add=add, remove=remove, summary=summary, deadline=signing.parse_at(deadline)
    )
    # A refused proposal is evidence too: reports_errors audits it once, under the act's name.
    refusal_names("audit.witness.propose", add=change.add, remove=change.remove)
    with unit(settings) as session:
        actor = actor_named(session, as_user)
        proposal = proposals.open_proposal(session, actor=actor, data=data.proposal())
        out.print(
            f"opened proposal {proposal.id}: witness {proposal.floor_content}; vote by "
            f"{proposal.deadline.isoformat()}; nothing changes until the board's quorum "
            "approves",
            markup=False,
        )
        out.print(
            f"each stakeholder's voter signs with: openpars vote sign --key FILE "
            f"--proposal {proposal.id} --choice yes|no|abstain --rationale '...' --as VOTER"
        )


@witness_app.command("list")
@reports_errors
def witness_list(db: DbOption = None) -> None:
    """List registered witnesses."""
    with unit(settings_for(db)) as session:
        rows = witness.list_witnesses(session, actor=OPERATOR)
        audit_console(session, kind=AuditKind.AUDIT_READ, action="audit.witnesses.list",
                      actor=OPERATOR)  # fmt: skip
        for w in rows:
            state = "removed" if w.removed_at else "active"
            out.print(f"{w.id}\t{state}\t{w.vkey}", markup=False)
