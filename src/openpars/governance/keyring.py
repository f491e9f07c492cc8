"""A stakeholder's published keys: the file others pin to verify its votes offline.

Each stakeholder publishes its own keys (``openpars keys publish``, ``GET
/api/v1/stakeholders/{id}/keys``) and hands the file to whoever verifies votes, by a channel
openpars does not control. ``openpars vote verify --stakeholder-keys FILE`` then trusts those
keys only, never the keys inside the export it checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind
from openpars.db import utcnow
from openpars.errors import NotFound
from openpars.governance import repository as repo
from openpars.governance.board import audit_act, require_reader
from openpars.identity import repository as identity_repo
from openpars.identity.principal import Principal

KEYRING_FORMAT = "openpars-stakeholder-keys/v1"


class PublishedKey(BaseModel):
    """One key of a stakeholder: its name, its bytes and when it may sign."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str = Field(description="SHA-256 hex of the raw 32-byte public key.")
    public_key: str = Field(description="Base64 of the raw 32-byte Ed25519 public key.")
    label: str
    valid_from: datetime = Field(description="When the key was registered.")
    revoked_at: datetime | None = Field(description="Votes recorded from then on are refused.")


class StakeholderKeys(BaseModel):
    """The published keys of one stakeholder (``openpars-stakeholder-keys/v1``)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["openpars-stakeholder-keys/v1"] = "openpars-stakeholder-keys/v1"
    stakeholder_id: int = Field(description="The stakeholder's agency id.")
    name: str = Field(description="The stakeholder agency's name.")
    published_at: datetime
    keys: list[PublishedKey]


def publish_keys(
    session: Session, *, actor: Principal, agency_id: int, now: datetime | None = None
) -> StakeholderKeys:
    """Every key (revoked ones included) of one stakeholder, in the pinnable format."""
    require_reader(actor)
    agency = identity_repo.get_agency(session, agency_id)
    if agency is None:
        raise NotFound(f"agency: there is no agency {agency_id}", field="agency_id")
    keys = repo.list_keys(session, agency_id=agency_id)
    audit_act(
        session,
        kind=AuditKind.KEY,
        action="key.publish",
        actor=actor,
        of_agency=agency_id,
        returned=len(keys),
    )
    return StakeholderKeys(
        stakeholder_id=agency.id,
        name=agency.name,
        published_at=now or utcnow(),
        keys=[
            PublishedKey(
                fingerprint=k.fingerprint,
                public_key=k.public_key,
                label=k.label,
                valid_from=k.created_at,
                revoked_at=k.revoked_at,
            )
            for k in keys
        ],
    )
