"""Security headers on every response, pages and API alike (docs/web.md).

The content security policy allows no inline script or style and no other origin: every script
and stylesheet is a file under /static/ (one exception, chosen by the response: a self-contained
document may keep ``INLINE_STYLE_POLICY``, inline style but still no inline script). HSTS is
sent only on requests that arrived over TLS (the request's scheme, which uvicorn sets from
X-Forwarded-Proto only for the proxies it was told to trust with --forwarded-allow-ips). A
response that sets no Cache-Control gets ``no-store``: pages and API answers carry personal data.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"
# The offline API docs (Swagger UI, ReDoc) start themselves with an inline script: their pages
# get the same headers but a policy that allows that one inline script.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
DOCS_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'unsafe-inline'"
).replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# A self-contained document (the renewal report: its own <style> and matplotlib's SVG charts,
# styled by attributes) may ask for inline style, never for inline script: a response that sets
# exactly this policy keeps it; any other policy a response sets is replaced by the site's.
INLINE_STYLE_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)
OWN_POLICIES = frozenset({INLINE_STYLE_POLICY})


class SecurityHeaders:
    """ASGI middleware: add the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; set the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        docs = path in DOCS_PATHS
        tls = scope.get("scheme") == "https"

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                own = headers.get("content-security-policy")
                for name, value in HEADERS.items():
                    headers[name] = value
                if docs:
                    headers["Content-Security-Policy"] = DOCS_POLICY
                elif own in OWN_POLICIES:
                    headers["Content-Security-Policy"] = own
                if tls:
                    headers["Strict-Transport-Security"] = HSTS
                # Records and pages are personal data: no browser or proxy keeps a copy unless
                # the response says otherwise (the static files are cached for a day).
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, secured)
