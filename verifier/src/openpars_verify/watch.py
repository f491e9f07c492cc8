"""A long-running witness: poll an openpars server, cosign each checkpoint that extends the last.

Each stakeholder runs one on its own machine (``openpars-verify witness run``). Every round
fetches the newest checkpoint and the consistency proof from the size this witness last
cosigned, checks them with ``witness.cosign`` (which records the checkpoint in the state file
before releasing a signature) and submits the cosignature. Network and server problems are
logged, one line each, and retried with exponential back-off, capped and jittered; a fork or a
rollback is refused for good: it is recorded next to the state so that a restart refuses too,
and the process exits non-zero. Only the standard library speaks HTTP here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openpars_verify import note as notes
from openpars_verify import witness

API = "/api/v1/audit"
USER_AGENT = "openpars-verify-witness/1"
TIMEOUT_S = 30.0
# The exit status of a single round (--once) that failed for a reason worth retrying.
TRY_AGAIN = 3


class Problem(Exception):
    """A transient failure (network, server, unexpected answer): logged, retried after a while."""


def refusal_path(state_dir: Path, log_key: notes.PublicKey) -> Path:
    """The marker that this witness refused the log signed by ``log_key`` (fork or rollback)."""
    digest = hashlib.sha256(f"{log_key.name}+{log_key.key_id.hex()}".encode()).hexdigest()
    return state_dir / f"{digest}.refused"


@dataclass
class Watch:
    """One witness's settings and what it has learnt since it started."""

    server: str
    log_key: notes.PublicKey
    signer: notes.PrivateKey
    state_dir: Path
    interval: float = 60.0
    max_backoff: float = 900.0
    log: Callable[[str], None] = print
    stop: threading.Event = field(default_factory=threading.Event)
    # The (size, root) whose cosignature the server last accepted in this process.
    submitted: tuple[int, bytes] | None = None

    def url(self, path: str, **query: int) -> str:
        """An absolute URL of the audit API below the server's base URL."""
        base = self.server.rstrip("/") + API + path
        return base + ("?" + urllib.parse.urlencode(query) if query else "")


def _request(req: urllib.request.Request) -> tuple[int, bytes]:
    req.add_header("User-Agent", USER_AGENT)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Problem(f"cannot reach {req.full_url}: {reason}") from None


def _error_of(body: bytes) -> str:
    """The server's error code and message, or the start of whatever it sent."""
    try:
        error = json.loads(body)["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip() or "(empty body)"


def _get(url: str) -> bytes:
    status, body = _request(urllib.request.Request(url))  # noqa: S310
    if status != 200:
        raise Problem(f"GET {url} answered {status}: {_error_of(body)}")
    return body


def _consistency(watch: Watch, old: int, new: int) -> list[bytes]:
    body = _get(watch.url("/proof/consistency", first=old, second=new))
    try:
        hashes = json.loads(body)["proof"]
        return [base64.b64decode(h, validate=True) for h in hashes]
    except (ValueError, KeyError, TypeError) as exc:
        raise Problem(f"the consistency proof {old} -> {new} is not readable: {exc}") from None


def _last_seen(watch: Watch, origin: str) -> notes.Checkpoint | None:
    path = witness.state_path(watch.state_dir, origin)
    if not path.exists():
        return None
    _, seen, _ = notes.open_checkpoint(path.read_bytes(), watch.log_key, [], 0)
    return seen


def _submit(watch: Watch, checkpoint: notes.Checkpoint, line: str) -> str:
    size = checkpoint.size
    body = json.dumps({"cosignature": line.rstrip("\n")}).encode()
    req = urllib.request.Request(  # noqa: S310
        watch.url(f"/checkpoints/{size}/cosignatures"),
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    status, answer = _request(req)
    if status != 201:
        raise Problem(f"the server did not take the cosignature of size {size}: {status} "
                      f"{_error_of(answer)}")  # fmt: skip
    try:
        result = json.loads(answer)
    except ValueError:
        raise Problem(f"the server's answer to cosignature {size} is not JSON") from None
    watch.submitted = (size, checkpoint.root)
    state = "final" if result.get("final") else "not final yet"
    return (f"cosigned size {size}: {result.get('cosigners')} of {result.get('quorum')} "
            f"witnesses, {state}")  # fmt: skip


def one_round(watch: Watch) -> str:
    """Fetch, verify, cosign and submit the newest checkpoint; say what happened."""
    raw = _get(watch.url("/checkpoint"))
    try:
        _, checkpoint, _ = notes.open_checkpoint(raw, watch.log_key, [], 0)
    except notes.NoteFailure as exc:
        # A checkpoint the pinned log key did not sign is not this log's: report, do not cosign.
        raise Problem(f"the served checkpoint does not verify under the log key: {exc}") from None
    if (checkpoint.size, checkpoint.root) == watch.submitted:
        return f"size {checkpoint.size} already cosigned; nothing new"
    seen = _last_seen(watch, checkpoint.origin)
    proof: list[bytes] = []
    if seen is not None and 0 < seen.size < checkpoint.size:
        proof = _consistency(watch, seen.size, checkpoint.size)
    line = witness.cosign(
        watch.state_dir, watch.log_key, watch.signer, raw, proof, int(time.time())
    )
    return _submit(watch, checkpoint, line)


def backoff(watch: Watch, failures: int) -> float:
    """Seconds to wait after ``failures`` failed rounds in a row: doubling, capped, jittered."""
    delay: float = min(watch.max_backoff, watch.interval * float(2 ** min(failures, 32)))
    # Jitter keeps several witnesses from hammering a server that comes back all at once.
    return delay * random.uniform(0.5, 1.0)  # noqa: S311


def _refuse(watch: Watch, exc: witness.WitnessRefusal) -> int:
    marker = refusal_path(watch.state_dir, watch.log_key)
    watch.state_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {exc}\n")
    watch.log(
        f"REFUSED: {exc}. The server shows a history that contradicts the one this witness "
        f"cosigned; it will never cosign this log again. Keep {watch.state_dir} as evidence, "
        f"tell the other stakeholders, and do not delete {marker.name} to 'fix' it"
    )
    return 1


def run(watch: Watch, *, once: bool = False) -> int:
    """Witness until stopped, or one round with ``once``.

    Returns 1 after a refusal (now or recorded earlier), 3 when the single round of ``once``
    failed for a reason worth retrying, else 0.
    """
    marker = refusal_path(watch.state_dir, watch.log_key)
    if marker.exists():
        watch.log(f"REFUSED earlier, not starting: {marker.read_text().strip()} ({marker})")
        return 1
    failures = 0
    while not watch.stop.is_set():
        try:
            watch.log(one_round(watch))
            failures = 0
        except witness.WitnessRefusal as exc:
            return _refuse(watch, exc)
        except (Problem, notes.NoteFailure) as exc:
            failures += 1
            watch.log(f"problem (attempt {failures}): {exc}")
            if once:
                return TRY_AGAIN
        if once:
            return 0
        delay = watch.interval if failures == 0 else backoff(watch, failures)
        watch.stop.wait(delay)
    watch.log("stopped")
    return 0
