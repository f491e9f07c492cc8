"""``openpars keys ...`` and ``openpars vote ...``: what a stakeholder does with its own key.

Private keys never reach openpars: ``keys generate`` writes one to a file on the stakeholder's
machine, ``vote sign`` signs there (offline when given the proposal's JSON), and
only the signed vote is submitted. ``vote verify`` re-checks an export without any database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from openpars.console import DbOption, err, fail, out, reports_errors, settings_for, unit
from openpars.db import utcnow
from openpars.errors import InvalidInput, NotFound
from openpars.governance import board, service, signing, votes
from openpars.governance.keyring import publish_keys
from openpars.governance.quorum import Choice
from openpars.governance.schemas import KeyCreate, ProposalRead, SignedVote
from openpars.governance.verify import pinned_keys, verify_export
from openpars.identity import repository as identity_repo
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.service import principal_for
from openpars.ranges import INT32_MAX

vote_app = typer.Typer(help="Sign votes offline, submit them, export and re-verify them.")
keys_app = typer.Typer(help="Stakeholder Ed25519 keys: generate locally, register, revoke.")

AsOption = Annotated[
    str | None, typer.Option("--as", help="Act as this user (default: the console's system).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a summary.")]


def actor_named(session: Session, username: str | None) -> Principal:
    """The principal named by --as, or the console's system account."""
    if username is None:
        return SYSTEM
    user = identity_repo.get_user_by_username(session, username)
    if user is None or not user.is_active:
        raise NotFound(f"no active user is called '{username}'", field="as")
    return principal_for(session, user)


def print_model(model: BaseModel | list[Any]) -> None:
    """Print a schema (or a list of them) as JSON."""
    if isinstance(model, list):
        out.print_json(json.dumps([m.model_dump(mode="json") for m in model]))
    else:
        out.print_json(model.model_dump_json())


def read_json(path: Path, field: str) -> dict[str, Any]:
    """A JSON object from a file, or InvalidInput naming ``field``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{field}: cannot read JSON from {path} ({exc})", field=field) from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{field}: {path} must hold a JSON object", field=field)
    return data


# ---- keys ----------------------------------------------------------------------------------


@keys_app.command("generate")
@reports_errors
def keys_generate(
    out_file: Annotated[Path, typer.Option("--out", help="Private key file to write (PEM).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Generate a stakeholder keypair locally: FILE (private, mode 600) and FILE.pub."""
    public_file = out_file.with_name(out_file.name + ".pub")
    if not force and (out_file.exists() or public_file.exists()):
        fail(f"{out_file} or {public_file} exists; pass --force to overwrite", field="out")
    pem = signing.generate_private_pem()
    # Create the private file readable by its owner only, before any byte is written.
    descriptor = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    private = signing.load_private_pem(pem)
    public_file.write_bytes(signing.public_pem(private))
    out.print(f"private key: {out_file} (keep it; openpars never needs it)")
    out.print(f"public key:  {public_file} (register it with 'openpars keys register')")
    out.print(f"fingerprint: {signing.fingerprint(signing.public_raw(private))}")


@keys_app.command("register")
@reports_errors
def keys_register(
    public_file: Annotated[Path, typer.Argument(help="Public key file (PEM or base64).")],
    label: Annotated[str, typer.Option("--label", help="A name for the key.")],
    agency: Annotated[
        int | None, typer.Option("--agency", help="Stakeholder agency id.", min=1, max=INT32_MAX)
    ] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Register a stakeholder's public key."""
    data = KeyCreate(
        public_key=public_file.read_text(encoding="utf-8"), label=label, agency_id=agency
    )
    with unit(settings_for(db)) as session:
        key = board.register_key(session, actor=actor_named(session, as_user), data=data)
        out.print(f"registered key {key.id} for agency {key.agency_id}: {key.fingerprint}")


@keys_app.command("list")
@reports_errors
def keys_list(
    agency: Annotated[int | None, typer.Option("--agency", min=1, max=INT32_MAX)] = None,
    as_user: AsOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Registered keys, revoked ones included."""
    with unit(settings_for(db)) as session:
        keys = board.list_keys(session, actor=actor_named(session, as_user), agency_id=agency)
    if as_json:
        print_model(keys)
        return
    for key in keys:
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        out.print(f"{key.id}  agency {key.agency_id}  {key.fingerprint}  {key.label}  {state}")


@keys_app.command("publish")
@reports_errors
def keys_publish(
    agency: Annotated[
        int, typer.Option("--agency", help="Stakeholder agency id.", min=1, max=INT32_MAX)
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the key file (JSON).")],
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Write a stakeholder's published keys: the file verifiers pin ('vote verify')."""
    with unit(settings_for(db)) as session:
        published = publish_keys(session, actor=actor_named(session, as_user), agency_id=agency)
    out_file.write_text(published.model_dump_json(indent=2), encoding="utf-8")
    out.print(
        f"wrote {len(published.keys)} key(s) of stakeholder {agency} ({published.name}) to "
        f"{out_file}; hand it to verifiers by a channel of your own"
    )


@keys_app.command("revoke")
@reports_errors
def keys_revoke(
    key_id: Annotated[int, typer.Argument(min=1, max=INT32_MAX)],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept with the key.")],
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Revoke a key: votes signed with it from now on are refused."""
    with unit(settings_for(db)) as session:
        key = board.revoke_key(
            session, actor=actor_named(session, as_user), key_id=key_id, reason=reason
        )
        out.print(f"revoked key {key.id} ({key.fingerprint})")


# ---- votes ---------------------------------------------------------------------------------


def _proposal_terms(document: dict[str, Any], proposal: int) -> ProposalRead:
    """The proposal a vote is signed for, from a proposal or export JSON file."""
    shown = ProposalRead.model_validate(document.get("proposal", document))
    if shown.id != proposal:
        raise InvalidInput(
            f"proposal-file: it holds proposal {shown.id}, not proposal {proposal}",
            field="proposal-file",
        )
    return shown


@vote_app.command("sign")
@reports_errors
def vote_sign(
    key: Annotated[Path, typer.Option("--key", help="Your private key file.")],
    proposal: Annotated[int, typer.Option("--proposal", help="Proposal id.", min=1, max=INT32_MAX)],
    choice: Annotated[Choice, typer.Option("--choice")],
    rationale: Annotated[str, typer.Option("--rationale", help="Why you vote this way.")],
    at: Annotated[
        str | None, typer.Option("--at", help="Signing time, RFC 3339 (default: now).")
    ] = None,
    proposal_file: Annotated[
        Path | None,
        typer.Option(
            "--proposal-file",
            help="For offline signing: the proposal's JSON (GET /api/v1/proposals/ID, or "
            "'openpars proposal show ID --json').",
        ),
    ] = None,
    stakeholder: Annotated[
        int | None,
        typer.Option(
            "--stakeholder",
            help="The stakeholder (agency id) you vote for (default: the --as user's agency).",
            min=1,
            max=INT32_MAX,
        ),
    ] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Sign a vote (openpars-vote/v2); print the signed JSON (offline with --proposal-file)."""
    private = signing.load_private_pem(key.read_bytes())
    if proposal_file is not None:
        shown = _proposal_terms(read_json(proposal_file, "proposal-file"), proposal)
    else:
        # Not offline: read what to sign from the proposal itself (an audited read).
        with unit(settings_for(db)) as session:
            actor = actor_named(session, as_user)
            shown = service.show_proposal(session, actor=actor, proposal_id=proposal)
            stakeholder = stakeholder or (actor.agency_id if as_user else None)
    if stakeholder is None:
        fail("say which stakeholder you vote for: --stakeholder AGENCY_ID", field="stakeholder")
    statement = signing.statement_for(
        shown,
        stakeholder_id=stakeholder,
        key_fingerprint=signing.fingerprint(signing.public_raw(private)),
        choice=choice,
        rationale=rationale,
        at=signing.parse_at(at) if at else utcnow(),
    )
    typer.echo(json.dumps(signing.sign_vote(private, statement, rationale), indent=2))


@vote_app.command("submit")
@reports_errors
def vote_submit(
    vote_file: Annotated[Path, typer.Argument(help="Signed-vote JSON from 'vote sign'.")],
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Submit a signed vote as a designated voter (--as)."""
    data = SignedVote.model_validate(read_json(vote_file, "file"))
    with unit(settings_for(db)) as session:
        receipt = votes.submit_vote(session, actor=actor_named(session, as_user), data=data)
    proposal = receipt.proposal
    out.print(
        f"recorded vote {receipt.vote.id}: stakeholder {receipt.vote.stakeholder_id} votes "
        f"{receipt.vote.choice.value} on proposal {proposal.id}; the proposal is "
        f"{proposal.status.value} ({len(proposal.tally.yes)} yes of {proposal.required_yes})"
    )


@vote_app.command("export")
@reports_errors
def vote_export(
    proposal: Annotated[int, typer.Option("--proposal", min=1, max=INT32_MAX)],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the export JSON.")],
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Export a proposal's whole voting history with the keys, for offline re-verification."""
    with unit(settings_for(db)) as session:
        export = votes.export_votes(
            session, actor=actor_named(session, as_user), proposal_id=proposal
        )
    out_file.write_text(export.model_dump_json(indent=2), encoding="utf-8")
    out.print(f"wrote {len(export.votes)} vote(s) of proposal {proposal} to {out_file}")


@vote_app.command("verify")
@reports_errors
def vote_verify(
    export: Annotated[Path, typer.Option("--export", help="An export from 'vote export'.")],
    stakeholder_keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--stakeholder-keys",
            help="A stakeholder's published keys ('openpars keys publish'); once per stakeholder.",
        ),
    ] = None,
    trust_export_keys: Annotated[
        bool,
        typer.Option(
            "--trust-export-keys",
            help="Without pinned keys, trust the keys inside the export (self-consistency only).",
        ),
    ] = False,
) -> None:
    """Re-verify an exported voting history offline against the stakeholders' pinned keys."""
    pinned = None
    if stakeholder_keys:
        pinned = pinned_keys([read_json(path, "stakeholder-keys") for path in stakeholder_keys])
    elif not trust_export_keys:
        fail(
            "give each stakeholder's published keys (--stakeholder-keys FILE, from 'openpars keys "
            "publish'); the keys inside an export prove nothing on their own "
            "(--trust-export-keys checks only that the export is self-consistent)",
            field="stakeholder-keys",
        )
    result = verify_export(read_json(export, "export"), pinned)
    for note in result.notes:
        err.print(f"NOTE {note}", markup=False)
    for problem in result.problems:
        err.print(f"FAIL {problem}", style="red", markup=False)
    standing = ", ".join(f"{s}: {c.value}" for s, c in sorted(result.standing.items()))
    out.print(
        f"{result.votes_checked} vote(s) checked; standing: {standing or 'none'}; "
        f"recount: {result.decision.lower()}"
    )
    if not result.ok:
        fail(
            f"{len(result.problems)} problem(s) found; first: {result.problems[0]}", field="export"
        )
    if pinned is None:
        out.print(
            "OK, but against the export's own keys only: this shows the export is "
            "self-consistent, not that the stakeholders signed it"
        )
        return
    out.print("OK: every signature verifies with the pinned keys and the outcome matches the votes")
