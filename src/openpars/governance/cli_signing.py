"""``openpars keys ...`` and ``openpars vote ...``: what a stakeholder does with its own key.

Private keys never reach openpars: ``keys generate`` writes one to a file on the stakeholder's
machine, ``vote sign`` signs there (offline when given the agreement and version hash), and
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
from openpars.governance.quorum import Choice
from openpars.governance.schemas import KeyCreate, SignedVote
from openpars.governance.verify import verify_export
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
    agreement: Annotated[
        int | None, typer.Option("--agreement", help="For offline signing.", min=1, max=INT32_MAX)
    ] = None,
    version_hash: Annotated[
        str | None, typer.Option("--version-hash", help="For offline signing.")
    ] = None,
    as_user: AsOption = None,
    db: DbOption = None,
) -> None:
    """Sign a vote; print the signed JSON (offline with --agreement and --version-hash)."""
    private = signing.load_private_pem(key.read_bytes())
    if agreement is None or version_hash is None:
        # Not offline: read what to sign from the proposal itself (an audited read).
        with unit(settings_for(db)) as session:
            shown = service.show_proposal(
                session, actor=actor_named(session, as_user), proposal_id=proposal
            )
        # A site floor proposal is signed as agreement 0.
        agreement, version_hash = shown.agreement_id or 0, shown.content_hash
    statement = signing.VoteStatement(
        proposal_id=proposal,
        agreement_id=agreement,
        version_hash=signing.check_hex64(version_hash, field="version_hash"),
        choice=choice,
        rationale_sha256=signing.rationale_digest(rationale),
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
) -> None:
    """Re-verify an exported voting history offline: signatures, statements, the outcome."""
    result = verify_export(read_json(export, "export"))
    for problem in result.problems:
        err.print(f"FAIL {problem}", style="red", markup=False)
    standing = ", ".join(f"{s}: {c.value}" for s, c in sorted(result.standing.items()))
    out.print(
        f"{result.votes_checked} vote(s) checked; standing: {standing or 'none'}; "
        f"recount: {result.decision.lower()}"
    )
    if not result.ok:
        fail(f"{len(result.problems)} problem(s) found", field="export")
    out.print("OK: every signature verifies and the outcome matches the votes")
