"""The report page: one self-contained HTML file (inline CSS, no scripts, no network resources).

Figures are PNG files beside ``index.html``, referenced by relative file name; every piece of
text is escaped. :func:`render_page` assembles the page from :class:`Section` objects.
"""

from __future__ import annotations

import html
import math
from typing import Any, Mapping, Sequence

import attrs

__all__ = ["Section", "metrics_table", "render_page", "summary_list"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1500px;
       padding: 1.2em 2em 3em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1.2em; font-size: 0.92em; }
dl.summary dt { color: #666; }
dl.summary dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; }
figure { margin: 0.6em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, p.caption { color: #555; font-size: 0.92em; max-width: 70em; }
table.metrics { border-collapse: collapse; font-size: 0.9em; }
table.metrics th, table.metrics td { padding: 0.25em 0.7em; border-bottom: 1px solid #e5e5e5; text-align: right; }
table.metrics th { background: #f4f4f4; position: sticky; top: 0; }
table.metrics td.name, table.metrics th.name { text-align: left; font-family: ui-monospace, Menlo, Consolas, monospace; }
table.metrics tr.split td { background: #fafafa; font-weight: 600; text-align: left; }
td.good { color: #1a7f37; } td.bad { color: #b42318; }
.error { color: #b42318; font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; }
.key { display: inline-block; width: 0.9em; height: 0.9em; vertical-align: middle; margin: 0 0.3em 0 0.8em; }
"""


@attrs.frozen
class Section:
    """One part of the page: a figure (file beside the page), an HTML body, or an error note."""

    anchor: str
    title: str
    image: str | None = None  # relative file name of a PNG beside index.html
    caption: str = ""
    body_html: str = ""  # trusted, already escaped HTML (e.g. from metrics_table)
    error: str | None = None  # why the figure could not be drawn


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def summary_list(items: Sequence[tuple[str, Any]]) -> str:
    """A definition list of (label, value) pairs."""
    rows = "".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in items)
    return f'<dl class="summary">{rows}</dl>'


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


def _with_spread(value: Any, spread: Any) -> str:
    text = _number(value)
    if text == "n/a" or spread is None or (isinstance(spread, float) and not math.isfinite(spread)):
        return text
    return f"{text} &plusmn; {_number(spread)}"


def _verdict(record: Mapping[str, Any]) -> tuple[str, str]:
    """(css class, text): the value relative to the floor; green when at or beyond the floor (as
    good as real data against real data), red when no better than the Poisson baseline."""
    value, floor, baseline = record.get("value"), record.get("floor"), record.get("baseline")
    better = record.get("better", "")

    def finite(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if not finite(value) or better not in ("lower", "higher"):
        return "", ""
    sign = 1.0 if better == "lower" else -1.0
    css = ""
    if finite(baseline) and sign * (value - baseline) >= 0:
        css = "bad"
    elif finite(floor) and sign * (value - floor) <= 0:
        css = "good"
    text = f"{value / floor:.2g}&times;" if better == "lower" and finite(floor) and floor > 0 else ""
    return css, text


def metrics_table(records: Sequence[Mapping[str, Any]]) -> str:
    """The metrics records as an HTML table grouped by split (value &plusmn; spread, floor, baseline)."""
    if not records:
        return "<p>No metrics: run <code>ldns evaluate RUN</code> first.</p>"
    head = ("<tr><th class='name'>metric</th><th>value &plusmn; spread</th><th>floor (data vs data)</th>"
            "<th>Poisson baseline</th><th>unit</th><th>better</th><th>vs floor</th><th>trials (model / data)</th></tr>")
    rows = []
    splits: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        splits.setdefault(str(record.get("split", "")), []).append(record)
    for split, members in splits.items():
        model = members[0].get("model", "")
        rows.append(f"<tr class='split'><td colspan='8'>against the {_e(split)} split &mdash; samples "
                    f"{_e(model)}, {_e(members[0].get('folds', ''))} folds ({_e(members[0].get('protocol', ''))})</td></tr>")
        for r in members:
            css, verdict = _verdict(r)
            rows.append(
                f"<tr><td class='name'>{_e(r.get('metric', ''))}</td>"
                f"<td>{_with_spread(r.get('value'), r.get('spread'))}</td>"
                f"<td>{_with_spread(r.get('floor'), r.get('floor_spread'))}</td>"
                f"<td>{_with_spread(r.get('baseline'), r.get('baseline_spread'))}</td>"
                f"<td>{_e(r.get('unit', ''))}</td><td>{_e(r.get('better', ''))}</td>"
                f"<td class='{css}'>{verdict}</td>"
                f"<td>{_e(r.get('n_model', ''))} / {_e(r.get('n_data', ''))}</td></tr>")
    return f"<table class='metrics'>{head}{''.join(rows)}</table>"


def _section_html(section: Section) -> str:
    parts = [f"<section id='{_e(section.anchor)}'><h2>{_e(section.title)}</h2>"]
    if section.error is not None:
        parts.append(f"<p class='error'>This figure could not be drawn: {_e(section.error)}</p>")
    if section.image is not None and section.error is None:
        parts.append(f"<figure><img src='{_e(section.image)}' alt='{_e(section.title)}'>"
                     f"<figcaption>{_e(section.caption)}</figcaption></figure>")
    elif section.caption:
        parts.append(f"<p class='caption'>{_e(section.caption)}</p>")
    parts.append(section.body_html)
    parts.append("</section>")
    return "".join(parts)


def render_page(title: str, summary: Sequence[tuple[str, Any]], sections: Sequence[Section],
                legend: Sequence[tuple[str, str]] = ()) -> str:
    """The whole page. ``legend`` lists (name, colour) pairs shown once at the top."""
    nav = "".join(f"<a href='#{_e(s.anchor)}'>{_e(s.title)}</a>" for s in sections)
    keys = "".join(f"<span class='key' style='background:{_e(colour)}'></span>{_e(name)}" for name, colour in legend)
    body = "".join(_section_html(s) for s in sections)
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>{summary_list(summary)}"
            f"<p>Colours:{keys}</p><nav>{nav}</nav>{body}</body></html>\n")
