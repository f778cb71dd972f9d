"""Renderers for the transparency report and the Art. 30 record: RFC 4180 CSV and self-contained HTML5 pages
(inline CSS and SVG only, so they pass a CSP of `default-src 'none'; style-src 'unsafe-inline'`).

They take the dicts built by `facewarden.governance.report_rules` and escape every text they write, agency ids
included: an id is whatever a tenant was named, so it is untrusted here."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from html import escape
from typing import Any

from facewarden.governance.report_rules import COUNTING_BASIS, REPORT_COUNTS

__all__ = ["processing_record_html", "report_csv", "report_html"]

# Column and series labels, keyed like REPORT_COUNTS.
_LABELS = {
    "requests_received": "Requests received", "approved": "Approved", "denied": "Denied", "pending": "Pending",
    "searches_run": "Searches run", "emergency_searches": "Emergency searches",
    "emergency_flagged": "Emergency searches flagged (no written request within 48 h)",
    "candidates_returned": "Candidates returned", "candidates_per_request": "Candidates per search (average)",
    "confirmed_leads": "Confirmed leads",
}
# What the chart shows per agency, with Okabe-Ito colours (distinguishable with the common colour-vision deficits).
_CHART_SERIES = (("requests_received", "#0072B2"), ("approved", "#009E73"), ("denied", "#D55E00"),
                 ("searches_run", "#E69F00"), ("confirmed_leads", "#CC79A7"))


# -- CSV ------------------------------------------------------------------------------------

_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value: str) -> str:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_LEADS) else value


def report_csv(report: dict[str, Any]) -> str:
    """The report as RFC 4180 CSV (CRLF line ends): a header line, one row per agency, then a totals row.
    The first column says which kind of row it is (`agency` or `total`), so no agency id can pass for the totals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "requesting_agency", *REPORT_COUNTS])
    for agency_row in report["agencies"]:
        writer.writerow(["agency", _csv_text(agency_row["requesting_tenant"]),
                         *(agency_row[key] for key in REPORT_COUNTS)])
    writer.writerow(["total", "", *(report["totals"][key] for key in REPORT_COUNTS)])
    return out.getvalue()


# -- HTML -----------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #bbb; padding: .35rem .6rem; vertical-align: top; }
th { background: #f0f0f0; text-align: left; }
td.n { text-align: right; }
tfoot td, tfoot th { font-weight: bold; background: #fafafa; }
dl { display: grid; grid-template-columns: max-content auto; gap: .25rem 1rem; }
dt { font-weight: bold; }
dd { margin: 0; }
ul { margin: .25rem 0; padding-left: 1.2rem; }
.note { color: #444; font-size: .92rem; }
svg { max-width: 100%; height: auto; }
"""


def _page(title: str, body: Iterable[str]) -> str:
    """A complete HTML5 page: no script, no external resource (the CSP forbids both)."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
        "",
    ])


def _nice_step(maximum: int) -> int:
    """A 1-2-5 tick step giving at most about five ticks up to `maximum`."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if maximum / (step * factor) <= 5:
                return step * factor
        step *= 10


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chart(report: dict[str, Any]) -> str:
    """Grouped bars per agency as inline SVG; every bar is one <rect> (the legend uses paths)."""
    agencies = report["agencies"]
    bar_w, bar_gap, group_gap = 18, 2, 36
    group_w = len(_CHART_SERIES) * (bar_w + bar_gap) - bar_gap
    left, right, top, plot_h = 64, 24, 24, 240
    legend_h = 24 * len(_CHART_SERIES)
    plot_w = max(len(agencies), 1) * (group_w + group_gap) + group_gap
    width = left + max(plot_w, 420) + right
    height = top + plot_h + 70 + legend_h
    base_y = top + plot_h
    maximum = max([agency[key] for agency in agencies for key, _ in _CHART_SERIES] + [1])
    step = _nice_step(maximum)
    y_max = -(-maximum // step) * step

    def y(value: int) -> float:
        return base_y - plot_h * value / y_max

    period = report["period"]
    desc = (f"Grouped bar chart of law-enforcement face searches from {period['since']} to {period['until']}: for "
            "each requesting agency, " + ", ".join(_LABELS[key].lower() for key, _ in _CHART_SERIES) + ". " +
            "; ".join(f"{a['requesting_tenant']}: " + ", ".join(f"{_LABELS[key].lower()} {a[key]}"
                                                               for key, _ in _CHART_SERIES) for a in agencies))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="chart-title chart-desc" font-family="sans-serif" '
        'font-size="12">',
        '<title id="chart-title">Law-enforcement requests, searches and confirmed leads per requesting agency</title>',
        f'<desc id="chart-desc">{escape(desc)}</desc>',
    ]
    # Y axis with gridlines and tick labels, then its label.
    for tick in range(0, y_max + 1, step):
        ty = y(tick)
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{left - 8}" y="{ty + 4:.1f}" text-anchor="end">{tick}</text>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base_y}" stroke="#333"/>')
    parts.append(f'<line x1="{left}" y1="{base_y}" x2="{left + plot_w}" y2="{base_y}" stroke="#333"/>')
    parts.append(f'<text x="16" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {top + plot_h / 2:.1f})">Count</text>')
    if not agencies:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle">'
                     "No law-enforcement activity in this period</text>")
    for index, agency in enumerate(agencies):
        gx = left + group_gap + index * (group_w + group_gap)
        name = agency["requesting_tenant"]
        for series, (key, colour) in enumerate(_CHART_SERIES):
            value = agency[key]
            bx = gx + series * (bar_w + bar_gap)
            parts.append(f'<rect x="{bx}" y="{y(value):.1f}" width="{bar_w}" height="{base_y - y(value):.1f}" '
                         f'fill="{colour}"><title>{escape(name)}: {escape(_LABELS[key].lower())} {value}</title>'
                         "</rect>")
        parts.append(f'<text x="{gx + group_w / 2:.1f}" y="{base_y + 18}" text-anchor="middle">'
                     f"<title>{escape(name)}</title>{escape(_short(name))}</text>")
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{base_y + 42}" text-anchor="middle">'
                 "Requesting agency</text>")
    # Legend: square swatches drawn as paths, so the only <rect> elements are bars.
    for series, (key, colour) in enumerate(_CHART_SERIES):
        ly = base_y + 60 + series * 24
        parts.append(f'<path d="M{left} {ly}h14v14h-14z" fill="{colour}"/>')
        parts.append(f'<text x="{left + 22}" y="{ly + 12}">{escape(_LABELS[key])}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def report_html(report: dict[str, Any]) -> str:
    """The transparency report as one self-contained HTML5 page: the period, a table of counts per agency with
    totals, and a grouped bar chart in inline SVG. No script and no external resource; every text is escaped."""
    period = report["period"]
    scope = report["administering_tenant"]
    title = "Law-enforcement face recognition transparency report"
    head = "".join(f'<th scope="col">{escape(_LABELS[key])}</th>' for key in REPORT_COUNTS)
    body_rows = [
        f'<tr><th scope="row">{escape(a["requesting_tenant"])}</th>'
        + "".join(f'<td class="n">{escape(str(a[key]))}</td>' for key in REPORT_COUNTS) + "</tr>"
        for a in report["agencies"]
    ]
    if not body_rows:
        body_rows = [f'<tr><td colspan="{len(REPORT_COUNTS) + 1}">No requests or searches in this period.</td></tr>']
    totals = report["totals"]
    foot = ('<tr><th scope="row">Total</th>'
            + "".join(f'<td class="n">{escape(str(totals[key]))}</td>' for key in REPORT_COUNTS) + "</tr>")
    body = [
        f"<h1>{escape(title)}</h1>",
        '<p class="note">' + escape(" · ".join(report.get("legal_references", []))) + "</p>",
        "<dl>",
        f"<dt>Administering agency</dt><dd>{escape(scope) if scope is not None else 'all administering agencies'}"
        "</dd>",
        f"<dt>Period</dt><dd>{escape(period['since'])} (inclusive) to {escape(period['until'])} (exclusive)</dd>",
        f"<dt>Generated</dt><dd>{escape(report['generated_at'])}</dd>",
        "</dl>",
        "<h2>Counts per requesting agency</h2>",
        "<table>",
        "<caption>Requests, searches and leads per requesting agency</caption>",
        f'<thead><tr><th scope="col">Requesting agency</th>{head}</tr></thead>',
        "<tbody>",
        *body_rows,
        "</tbody>",
        f"<tfoot>{foot}</tfoot>",
        "</table>",
        "<h2>Chart</h2>",
        "<figure>",
        _chart(report),
        "<figcaption>Requests received, approved and denied, searches run and confirmed leads per requesting "
        "agency.</figcaption>",
        "</figure>",
        "<h2>How this is counted</h2>",
        f'<p class="note">{escape(report.get("counting_basis", COUNTING_BASIS))}</p>',
        '<p class="note">This report contains no personal data: only agency identifiers and counts.</p>',
    ]
    return _page(title, body)


# -- GDPR Art. 30 record of processing activities -------------------------------------------

def _list(items: Iterable[str]) -> str:
    items = list(items)
    if not items:
        return "none"
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def processing_record_html(record: dict[str, Any]) -> str:
    """The Art. 30 record as one readable, self-contained HTML5 page; every text is escaped."""
    controller = record["controller"]
    title = "Record of processing activities (GDPR Art. 30)"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">Generated {escape(record["generated_at"])} from the live configuration'
        + (f" for tenant {escape(record['tenant_id'])}" if record.get("tenant_id") is not None else "")
        + ".</p>",
        "<h2>Controller</h2>",
        "<dl>",
        f"<dt>Name</dt><dd>{escape(controller['name'])}</dd>",
        f"<dt>Contact</dt><dd>{escape(controller['contact'])}</dd>",
        f"<dt>Data protection officer</dt><dd>{escape(controller['dpo_contact'] or 'not designated')}</dd>",
        "</dl>",
    ]
    if not record["processing_activities"]:
        body.append("<p>No purposes are configured.</p>")
    for activity in record["processing_activities"]:
        retention = activity["retention"]
        recipients = [f"{r['name']} ({r['tenant_id']}), {r['role']}" for r in activity["recipients"]]
        ends = retention["purpose_ends_at"]
        body += [
            f"<h2>{escape(activity['purpose'])} <small>({escape(activity['tenant_name'])}, tenant "
            f"{escape(activity['tenant_id'])})</small></h2>",
            "<dl>",
            f"<dt>Purpose</dt><dd>{escape(activity['description'])}</dd>",
            f"<dt>Legal bases</dt><dd>{escape(', '.join(activity['legal_bases']))}</dd>",
            f"<dt>Categories of data subjects</dt><dd>{_list(activity['data_subject_categories'])}</dd>",
            f"<dt>Categories of personal data</dt><dd>{_list(activity['personal_data_categories'])}</dd>",
            f"<dt>Enrolled subjects</dt><dd>{activity['enrolled_subjects']}</dd>",
            "<dt>Searchable by law enforcement</dt><dd>"
            + ("yes" if activity["law_enforcement_searchable"] else "no") + "</dd>",
            f"<dt>Recipients</dt><dd>{_list(recipients)}</dd>",
            f"<dt>Transfers to third countries</dt><dd>{_list(activity['third_country_transfers'])}</dd>",
            f"<dt>Retention</dt><dd>{retention['retention_days']} days. {escape(retention['note'])}"
            + (f" The purpose ends on {escape(ends)}." if ends else "") + "</dd>",
            "</dl>",
        ]
    body += ["<h2>Technical and organisational security measures</h2>", _list(record["security_measures"])]
    return _page(title, body)
