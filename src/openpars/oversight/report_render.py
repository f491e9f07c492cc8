"""The renewal report as an HTML page (tables and matplotlib SVG charts) and as a PDF.

One template renders the document of ``report.py``; the PDF is WeasyPrint's rendering of the
very same HTML, so the two never disagree. Charts are drawn with matplotlib's object API (no
global pyplot state, safe in a server's threads) as SVG with text kept as text, embedded in the
page; every number in a table links to the API path listing the audit entries behind it.
The what-if section is rendered only when the document carries a replay result.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from openpars.oversight.report import OversightReport, ReportFormat, canonical, sha256

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

_TEMPLATE = _ENV.from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Renewal report: {{ r.agreement.name }} ({{ r.start }} to {{ r.end }})</title>
{% if icon %}<link rel="icon" href="{{ icon }}" type="image/svg+xml">{% endif %}
<style>
body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; margin: 1.5em; color: #111; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #999; padding: 2px 6px; text-align: left; vertical-align: top; }
td.n { text-align: right; } .note { color: #444; font-size: 9pt; }
svg { max-width: 100%; height: auto; }
@page { size: A4; margin: 1.5cm; }
nav a { margin-right: 1em; }
</style></head><body>
{% if links %}<nav aria-label="Report">{% for label, href, download in links %}<a href="{{ href }}"
{%- if download %} download="{{ download }}"{% endif %}>{{ label }}</a>{% endfor %}</nav>{% endif %}
<main>
<h1>Renewal report: {{ r.agreement.name }}</h1>
<p>Agreement {{ r.agreement.id }} (version {{ r.agreement.current_version }},
{{ r.agreement.status }}), grantee {{ r.agreement.grantee_agency }}
(agency {{ r.agreement.grantee_agency_id }}). Period {{ r.start }} to {{ r.end }} (UTC, both days
included). Generated {{ r.generated_at.isoformat() }} from log leaves [0, {{ r.tree_size }});
newest signed checkpoint:
{{ r.checkpoint_size if r.checkpoint_size is not none else "none yet" }}.</p>
{% if sha %}<p>SHA-256 of this report's canonical JSON: <code>{{ sha }}</code></p>{% endif %}
<p class="note">Every number links to the audit entries behind it
(<code>GET {{ host }}/api/v1/oversight/reports/entries</code>), each with the path of its inclusion
proof, so any figure can be proved from the log.</p>

<h2>Headline figures</h2>
<table><tr><th>figure</th><th>value</th><th>share</th><th>audit entries</th></tr>
{% for f in headline %}<tr><td>{{ f.label }}</td><td class="n">{{ f.value }}</td>
<td class="n">{{ pct(f.share) }}{% if f.of %} of {{ f.of }}{% endif %}</td>
<td class="n"><a href="{{ host }}{{ f.entries_path }}">{{ f.entries }}</a></td></tr>
{% endfor %}</table>

<h2>Unexplained share by reason</h2>
{{ charts.reasons }}
<table><tr><th>code</th><th>pairs</th><th>share of pairs</th><th>audit entries</th></tr>
{% for f in codes %}<tr><td>{{ f.key }}</td><td class="n">{{ f.value }}</td>
<td class="n">{{ pct(f.share) }}</td>
<td class="n"><a href="{{ host }}{{ f.entries_path }}">{{ f.entries }}</a></td></tr>
{% endfor %}</table>

<h2>Refusals by reason</h2>
{% if refusals %}<table><tr><th>error code</th><th>refused</th><th>share</th></tr>
{% for f in refusals %}<tr><td>{{ f.key.partition(":")[2] }}</td>
<td class="n"><a href="{{ host }}{{ f.entries_path }}">{{ f.value }}</a></td>
<td class="n">{{ pct(f.share) }}</td></tr>
{% endfor %}</table>{% else %}<p>No request by the grantee's accounts was refused.</p>{% endif %}

<h2>Detector flags and review findings</h2>
{% if r.detectors %}<table><tr><th>detector</th><th>flags</th><th>reviewed (closed)</th>
<th>findings</th></tr>
{% for d in r.detectors %}<tr><td>{{ d.detector }}</td>
<td class="n"><a href="{{ host }}{{ d.entries_path }}">{{ d.flags }}</a></td>
<td class="n">{{ d.closed }}</td>
<td>{% for k, v in d.findings.items() %}{{ k }}: {{ v }}{% if not loop.last %}, {% endif %}
{% else %}none yet{% endfor %}</td></tr>
{% endfor %}</table>
<table><tr><th>flag</th><th>detector</th><th>raised</th><th>user</th><th>rule</th>
<th>threshold</th><th>case</th><th>finding</th><th>entries</th></tr>
{% for f in r.flags %}<tr><td>{{ f.id }}</td><td>{{ f.detector }}</td>
<td>{{ f.raised_at.isoformat(timespec="seconds") }}</td><td>{{ f.subject_user_id or "" }}</td>
<td>{{ f.rule }}</td><td class="n">{{ f.threshold if f.threshold is not none else "" }}</td>
<td>{{ f.case_id or "" }} {{ f.case_state or "" }}</td><td>{{ f.finding or "" }}</td>
<td class="n"><a href="{{ host }}{{ f.entries_path }}">{{ f.entries }}</a></td></tr>
{% endfor %}</table>
{% if r.flags_total > r.flags|length %}<p class="note">{{ r.flags|length }} of
{{ r.flags_total }} flags listed; the rest are in the drill-down of each detector.</p>{% endif %}
{% else %}<p>No detector raised a flag about this agreement in the period.</p>{% endif %}

<h2>Weekly trends by agency and purpose</h2>
{{ charts.weekly }}
{{ charts.share }}
<table><tr><th>week of</th><th>agency</th><th>purpose</th><th>queries</th><th>pairs</th>
<th>explained</th><th>never charged</th></tr>
{% for w in r.weekly %}<tr><td>{{ w.week }}</td><td>{{ w.agency }}</td><td>{{ w.purpose }}</td>
<td class="n"><a href="{{ host }}{{ w.entries_path }}">{{ w.queries }}</a></td>
<td class="n">{{ w.pairs }}</td>
<td class="n">{{ w.explained }}</td><td class="n">{{ w.never_charged }}</td></tr>
{% else %}<tr><td colspan="7">No external query in the period.</td></tr>{% endfor %}</table>

{% if r.what_if is not none %}
<h2 id="what-if">What-if replay</h2>
<table>{% for k, v in r.what_if.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
</table>
{% endif %}

<h2>How the figures are made</h2>
<p class="note">Explanation thresholds: {% for k, v in r.rules.items() %}{{ k }} = {{ v }}{% if
not loop.last %}; {% endif %}{% endfor %}. Rules and reason codes: docs/oversight.md.
Refusals name no agreement (the request was refused before one applied): they are those of the
grantee agency's accounts.</p>
</main>
</body></html>
"""
)


def _pct(share: float | None) -> str:
    return "" if share is None else f"{share:.1%}"


def _svg(figure: Any) -> Markup:
    """A matplotlib figure as inline SVG (text as text, no timestamps, stable ids)."""
    _configure()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])  # noqa: S704 - matplotlib's own SVG output


def _configure() -> None:
    """Process-wide, once, before any chart (rc_context would race between server threads):
    SVG text stays text (searchable, extractable from the PDF) and ids are reproducible."""
    import matplotlib as mpl

    mpl.rcParams["svg.fonttype"] = "none"
    mpl.rcParams["svg.hashsalt"] = "openpars-report"


def _charts(report: OversightReport) -> dict[str, Markup]:
    from matplotlib.figure import Figure

    charts: dict[str, Markup] = {}
    reasons = [f for f in report.figures if f.key.startswith("reason:") and f.value]
    if reasons:
        fig = Figure(figsize=(7, 0.4 + 0.35 * len(reasons)))
        ax = fig.subplots()
        ax.barh([f.key.partition(":")[2] for f in reasons], [f.value for f in reasons])
        ax.set_xlabel("unexplained pairs")
        ax.set_title("Unexplained pairs by reason")
        charts["reasons"] = _svg(fig)
    weeks = sorted({w.week for w in report.weekly})
    if weeks:
        series: dict[str, dict[str, int]] = defaultdict(dict)
        share_num: dict[str, int] = defaultdict(int)
        share_den: dict[str, int] = defaultdict(int)
        for w in report.weekly:
            series[f"agency {w.agency} / {w.purpose}"][w.week] = w.queries
            share_num[w.week] += w.explained
            share_den[w.week] += w.pairs
        fig = Figure(figsize=(7, 3))
        ax = fig.subplots()
        for label, counts in sorted(series.items()):
            ax.plot(weeks, [counts.get(week, 0) for week in weeks], marker="o", label=label)
        ax.set_title("Queries per week by agency and purpose")
        ax.set_ylabel("queries")
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(fontsize="small")
        charts["weekly"] = _svg(fig)
        fig = Figure(figsize=(7, 2.5))
        ax = fig.subplots()
        shares = [share_num[w] / share_den[w] * 100 if share_den[w] else 0 for w in weeks]
        ax.bar(weeks, shares)
        ax.set_ylim(0, 100)
        ax.set_title("Explained share of pairs per week (%)")
        ax.tick_params(axis="x", labelrotation=45)
        charts["share"] = _svg(fig)
    return defaultdict(Markup, charts)


def render_html(
    report: OversightReport,
    *,
    sha: str | None = None,
    host: str = "",
    links: Sequence[tuple[str, str, str | None]] = (),
    icon: str | None = None,
) -> str:
    """The report as one self-contained HTML page; links are ``host`` (e.g.
    ``https://pars.example.org``; empty: paths on the serving site) + API paths. ``links``
    (label, href, download file name or None) head the page when it is served on the site, and
    ``icon`` is then the site's favicon."""
    headline_keys = (
        "queries",
        "persons_viewed",
        "never_charged",
        "pairs",
        "explained",
        "unexplained",
        "refusals",
        "flags",
    )
    by_key = {f.key: f for f in report.figures}
    return _TEMPLATE.render(
        r=report,
        sha=sha,
        host=host.rstrip("/"),
        headline=[by_key[k] for k in headline_keys],
        codes=[f for f in report.figures if f.key.startswith(("rule:", "reason:"))],
        refusals=[f for f in report.figures if f.key.startswith("refusal:")],
        charts=_charts(report),
        pct=_pct,
        links=links,
        icon=icon,
    )


def render_pdf(html: str) -> bytes:
    """The PDF of the same HTML (WeasyPrint; needs the system's pango, see `make install`)."""
    try:
        from weasyprint import HTML
    except OSError as exc:  # pragma: no cover - depends on the host's libraries
        raise RuntimeError(
            "the PDF report needs the pango library (Debian: apt-get install libpango-1.0-0 "
            f"libpangoft2-1.0-0); WeasyPrint could not load it: {exc}"
        ) from exc
    pdf = HTML(string=html).write_pdf()
    assert pdf is not None
    return bytes(pdf)


MEDIA_TYPES = {
    ReportFormat.HTML: "text/html; charset=utf-8",
    ReportFormat.PDF: "application/pdf",
    ReportFormat.JSON: "application/json",
}


def render(
    report: OversightReport, output: ReportFormat, *, content: bytes | None = None, host: str = ""
) -> bytes:
    """The report in one format. JSON is the canonical bytes (``content`` when the caller holds
    the stored bytes), so ``sha256sum`` of the file is the report's SHA-256."""
    if output is ReportFormat.JSON:
        return content if content is not None else canonical(report)
    digest = sha256(report) if content is None else _hash(content)
    html = render_html(report, sha=digest, host=host)
    return html.encode("utf-8") if output is ReportFormat.HTML else render_pdf(html)


def _hash(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()
