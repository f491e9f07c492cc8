"""Where an in-memory site keeps its log key, and one spelling per signature byte string."""

from __future__ import annotations

from pathlib import Path

import pytest

from openpars.audit import checkpoints, notes
from openpars.audit.notes import NoteError
from openpars.config import Settings
from tests.audit.test_notes import GO_NOTE, GO_SIG, GO_TEXT, GO_VKEY


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_site_keeps_its_log_key_in_the_working_directory(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(database_url=url, log_origin="openpars.example/audit")
    assert checkpoints.key_path(settings) == tmp_path / checkpoints.KEY_FILE
    # The key is created there, readable by its owner only, and found again on the next start.
    first = checkpoints.key_file(settings, create=True)
    again = checkpoints.key_file(settings, create=True)
    assert (first.generated, again.generated) == (True, False)
    assert first.vkey == again.vkey
    assert (tmp_path / checkpoints.KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_a_signature_spelled_with_other_unused_bits_is_refused() -> None:
    verifier = notes.parse_verifier_key(GO_VKEY)
    assert notes.verify_note(GO_NOTE, [verifier]).text == GO_TEXT
    # The last base64 character carries two unused bits: "M" and "N" decode to the same bytes.
    assert GO_SIG.endswith("AM=\n")
    respelled = GO_TEXT + "\n" + GO_SIG.replace("AM=\n", "AN=\n")
    with pytest.raises(NoteError, match="signature by PeterNeumann is not canonical base64"):
        notes.parse_note(respelled)
    with pytest.raises(NoteError, match="not canonical base64"):
        notes.verify_note(respelled, [verifier])
