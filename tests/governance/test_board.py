"""Board configuration and stakeholder keys: who may do what, and what is refused."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openpars.db import Database
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.governance import board, signing
from openpars.governance.schemas import BoardUpdate, KeyCreate
from openpars.identity import service as identity
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import AgencyKind
from openpars.identity.schemas import AgencyCreate
from tests.governance.helpers import Gov


def raw_key() -> str:
    return base64.b64encode(signing.public_raw(Ed25519PrivateKey.generate())).decode()


def test_the_default_board_needs_owner_agencies(db: Database) -> None:
    with db.session() as session:
        identity.create_agency(
            session, actor=SYSTEM, data=AgencyCreate(name="Police", kind=AgencyKind.POLICE)
        )
        with pytest.raises(Conflict, match="no board is configured") as caught:
            board.current_board(session)
    assert caught.value.field == "members"


def test_a_single_owner_site_gets_a_one_of_one_board(db: Database) -> None:
    with db.session() as session:
        identity.create_agency(
            session, actor=SYSTEM, data=AgencyCreate(name="DA", kind=AgencyKind.DA)
        )
        config = board.current_board(session)
        assert (config.quorum, len(config.members)) == (1, 1)


def test_bad_reconfigurations(gov: Gov) -> None:
    members = [gov.agencies[w] for w in ("da", "court", "city")]
    with gov.session() as session:
        with pytest.raises(InvalidInput, match="listed twice"):
            board.validated_document(session, BoardUpdate(members=[*members, members[0]], quorum=2))
        with pytest.raises(InvalidInput, match="not a top-level data owner"):
            board.validated_document(session, BoardUpdate(members=[999_999], quorum=1))
        with pytest.raises(InvalidInput, match="4 of 3 stakeholders is impossible"):
            board.validated_document(session, BoardUpdate(members=members, quorum=4))
        with pytest.raises(Forbidden):
            board.bootstrap(
                session, actor=gov.voters["da"], data=BoardUpdate(members=members, quorum=2)
            )
        shown = board.show_board(session, actor=gov.voters["court"])
    assert shown.version == 1
    assert [len(m.key_fingerprints) for m in shown.members] == [1, 1, 1]


def test_key_rules(gov: Gov) -> None:
    admin = gov.world.principals["admin"]
    with gov.session() as session:
        # The console's system account has no agency of its own.
        with pytest.raises(InvalidInput, match="say whose key"):
            board.register_key(
                session, actor=SYSTEM, data=KeyCreate(public_key=raw_key(), label="x")
            )
        ice = gov.world.agencies["Immigration and Customs Enforcement"]
        with pytest.raises(InvalidInput, match="not a data owner"):
            board.register_key(
                session, actor=admin, data=KeyCreate(public_key=raw_key(), label="x", agency_id=ice)
            )
        with pytest.raises(Forbidden, match="own stakeholder administrator"):
            board.register_key(
                session,
                actor=gov.voters["court"],
                data=KeyCreate(public_key=raw_key(), label="x", agency_id=gov.agencies["da"]),
            )
        ec = (
            generate_private_key(SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        with pytest.raises(InvalidInput, match="must be an Ed25519 key"):
            board.register_key(
                session, actor=gov.admins["da"], data=KeyCreate(public_key=ec.decode(), label="ec")
            )
        # The site administrator may not register a key for any stakeholder; the city's own may.
        with pytest.raises(Forbidden, match="own stakeholder administrator"):
            board.register_key(
                session,
                actor=admin,
                data=KeyCreate(public_key=raw_key(), label="x", agency_id=gov.agencies["city"]),
            )
        key = board.register_key(
            session,
            actor=gov.admins["city"],
            data=KeyCreate(public_key=raw_key(), label="spare", agency_id=gov.agencies["city"]),
        )
        assert key.agency_id == gov.agencies["city"]
        with pytest.raises(NotFound):
            board.revoke_key(session, actor=gov.admins["city"], key_id=999_999, reason="x")
        with pytest.raises(Forbidden):
            board.list_keys(session, actor=gov.world.principals["ice"])


def test_private_keys_other_than_ed25519_are_refused() -> None:
    ec = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidInput, match="Ed25519"):
        signing.load_private_pem(ec)
