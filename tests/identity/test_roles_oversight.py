"""The oversight reviewer's role: what it grants and what it excludes."""

from openpars.identity.roles import Permission, Role, exclusive_pair, permissions_for


def test_oversight_reviews_and_reads_nothing_else() -> None:
    assert permissions_for(frozenset({Role.OVERSIGHT})) == {
        Permission.OVERSIGHT_READ,
        Permission.OVERSIGHT_REVIEW,
    }


def test_the_site_administrator_never_reviews_its_own_use() -> None:
    assert exclusive_pair(frozenset({Role.ADMIN, Role.OVERSIGHT})) == (Role.ADMIN, Role.OVERSIGHT)
    assert exclusive_pair(frozenset({Role.OVERSIGHT, Role.EXTERNAL_QUERY})) is not None
    assert exclusive_pair(frozenset({Role.OVERSIGHT, Role.AUDITOR})) is None
