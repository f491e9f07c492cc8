"""All SQL of the audit feature."""

from __future__ import annotations

from sqlalchemy.orm import Session


def notify_appended(session: Session) -> None:
    """Mark the session as having appended entries, for the checkpoint publisher."""
    session.info["audit_appended"] = session.info.get("audit_appended", 0) + 1
