"""Finishing a logon in the pages, as a person does: the one-time code (enrolling an
authenticator first when the account has none), then the system-use banner."""

from __future__ import annotations

import re
import weakref

from fastapi.testclient import TestClient
from httpx2 import Response

from openpars.db import utcnow
from openpars.identity import mfa_crypto as crypto


def csrf_of(page: Response) -> str:
    """The CSRF token of the first form of a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def finish_logon(web: TestClient, *, totp: str | None = None, next_path: str = "/") -> str:
    """Follow /login/next through the code (or enrolment) and the banner; the TOTP secret.

    ``web`` does not follow redirects. An account with no authenticator enrols one here.
    """
    query = {"next": next_path} if next_path != "/" else {}
    step = web.get("/login/next", params=query)
    assert step.status_code == 303, step.text
    where = step.headers["location"]
    if where.startswith("/login/enrol"):
        intro = web.get(where)
        started = web.post("/login/enrol", data={"csrf_token": csrf_of(intro), "next": next_path})
        assert started.status_code == 200, started.text
        secret = re.search(r'id="mfa-secret">([A-Z2-7]+)<', started.text)
        assert secret, started.text
        totp = secret.group(1)
        done = web.post(
            "/login/enrol/confirm",
            data={
                "csrf_token": csrf_of(started),
                "code": crypto.code_at(totp, utcnow()),
                "next": next_path,
            },
        )
        assert done.status_code == 200, done.text
        assert len(re.findall(r"<li><code>[a-z2-9-]{14}</code></li>", done.text)) == 10
        where = re.search(r'class="button primary" href="([^"]+)"', done.text).group(1)  # type: ignore[union-attr]
    elif where.startswith("/login/code"):
        assert totp is not None, "the account is enrolled: pass its TOTP secret"
        form = web.get(where)
        proved = web.post(
            "/login/code",
            data={
                "csrf_token": csrf_of(form),
                "code": crypto.code_at(totp, utcnow()),
                "next": next_path,
            },
        )
        assert proved.status_code == 303, proved.text
        where = proved.headers["location"]
    assert where.startswith("/login/banner"), where
    banner = web.get(where)
    assert "System use notice" in banner.text
    agreed = web.post("/login/banner", data={"csrf_token": csrf_of(banner), "next": next_path})
    assert agreed.status_code == 303, agreed.text
    assert agreed.headers["location"] == next_path
    assert totp is not None
    return totp


_SECRETS: weakref.WeakKeyDictionary[object, dict[str, str]] = weakref.WeakKeyDictionary()


def finish_logon_as(web: TestClient, store: object, username: str, next_path: str = "/") -> str:
    """``finish_logon`` remembering each user's authenticator per database (``store``): the
    first logon enrols one, later logons of the same user in the same test prove its code."""
    secrets = _SECRETS.setdefault(store, {})
    secrets[username] = finish_logon(web, totp=secrets.get(username), next_path=next_path)
    return secrets[username]
