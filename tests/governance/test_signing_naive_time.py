"""A vote time without a zone is refused rather than read as the signer's local time."""

from __future__ import annotations

from datetime import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openpars.errors import InvalidInput
from openpars.governance import signing
from openpars.governance.quorum import Choice, ProposalAction


def test_signing_a_statement_with_a_naive_time_is_refused() -> None:
    rationale = "renew with the 2010 scope"
    private = Ed25519PrivateKey.generate()
    naive = signing.VoteStatement(
        proposal_id=7,
        agreement_id=3,
        version_hash="ab" * 32,
        action=ProposalAction.ADOPT,
        effective_at=None,
        new_expires_at=None,
        stakeholder_id=2,
        key_fingerprint=signing.fingerprint(signing.public_raw(private)),
        choice=Choice.YES,
        rationale_sha256=signing.rationale_digest(rationale),
        at=datetime(2026, 8, 1, 12, 0),
    )
    # The signed bytes would depend on the signer's machine zone; nothing is signed instead.
    with pytest.raises(InvalidInput) as caught:
        signing.sign_vote(private, naive, rationale)
    assert caught.value.field == "at"
    assert caught.value.message == "the vote time has no time zone; give it in UTC"
