"""Self-contained HTML reports with inline SVG plots (no plotting library, opens anywhere)."""

import html
import math

W, H, PAD = 560, 240, 40
COLORS = ["#2b7bb9", "#d9534f", "#5cb85c", "#f0ad4e", "#6f42c1", "#17a2b8", "#888888"]


def _frame(title, body, xlabel="", ylabel=""):
    return (
        '<figure><svg viewBox="0 0 %d %d" width="%d" height="%d" role="img" '
        'aria-label="%s">%s'
        '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>'
        '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>'
        '<text x="%d" y="%d" font-size="11" text-anchor="middle">%s</text>'
        '<text x="12" y="%d" font-size="11" transform="rotate(-90 12 %d)" '
        'text-anchor="middle">%s</text></svg><figcaption>%s</figcaption></figure>'
        % (W, H, W, H, html.escape(title), body, PAD, H - PAD, W - 10, H - PAD, PAD, 10, PAD,
           H - PAD, W // 2, H - 8, html.escape(xlabel), H // 2, H // 2, html.escape(ylabel),
           html.escape(title))
    )


def _ticks(lo, hi, axis, n=5):
    out = []
    for i in range(n + 1):
        v = lo + (hi - lo) * i / n
        if axis == "x":
            x = PAD + (W - PAD - 10) * i / n
            out.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>'
                       % (x, H - PAD + 14, _fmt(v)))
        else:
            y = H - PAD - (H - PAD - 10) * i / n
            out.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%s</text>'
                       % (PAD - 4, y + 3, _fmt(v)))
    return "".join(out)


def _fmt(v):
    return "%d" % v if abs(v) >= 10 or v == int(v) else "%.2g" % v


def histogram(values, title, xlabel, bins=30):
    if not values:
        return _frame(title, "", xlabel, "count")
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    top = max(counts)
    bw = (W - PAD - 10) / bins
    bars = "".join(
        '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
        % (PAD + i * bw, H - PAD - (H - PAD - 10) * c / top, bw - 1,
           (H - PAD - 10) * c / top, COLORS[0])
        for i, c in enumerate(counts))
    return _frame(title, bars + _ticks(lo, hi, "x") + _ticks(0, top, "y"), xlabel, "count")


def lines(series, title, xlabel, ylabel):
    """series: {name: [(x, y), ...]}"""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return _frame(title, "", xlabel, ylabel)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(0, min(p[1] for p in pts)), max(p[1] for p in pts)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1
    body = []
    for i, (name, s) in enumerate(series.items()):
        path = " ".join("%.1f,%.1f" % (PAD + (W - PAD - 10) * (x - x0) / (x1 - x0),
                                       H - PAD - (H - PAD - 10) * (y - y0) / (y1 - y0))
                        for x, y in s)
        c = COLORS[i % len(COLORS)]
        body.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>'
                    % (c, path))
        body.append('<text x="%d" y="%d" font-size="10" fill="%s">%s</text>'
                    % (W - 150, 16 + 12 * i, c, html.escape(name)))
    return _frame(title, "".join(body) + _ticks(x0, x1, "x") + _ticks(y0, y1, "y"),
                  xlabel, ylabel)


def bars(counts, title, ylabel="count"):
    """counts: {label: value}"""
    items = list(counts.items())
    if not items:
        return _frame(title, "", "", ylabel)
    top = max(v for _, v in items) or 1
    bw = (W - PAD - 10) / len(items)
    body = []
    for i, (label, v) in enumerate(items):
        h = (H - PAD - 10) * (math.log10(v + 1) / math.log10(top + 1))
        body.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                    % (PAD + i * bw + 2, H - PAD - h, bw - 4, h, COLORS[i % len(COLORS)]))
        body.append('<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%s</text>'
                    % (PAD + i * bw + bw / 2, H - PAD - h - 3, v))
        body.append('<text x="%.1f" y="%d" font-size="9" text-anchor="middle">%s</text>'
                    % (PAD + i * bw + bw / 2, H - PAD + 12, html.escape(str(label))[:14]))
    return _frame(title + " (log scale)", "".join(body), "", ylabel)


def page(title, summary_rows, figures, notes=()):
    rows = "".join("<tr><th>%s</th><td>%s</td></tr>" % (html.escape(str(k)), html.escape(str(v)))
                   for k, v in summary_rows)
    notes_html = "".join("<p>%s</p>" % html.escape(n) for n in notes)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>%s</title><style>"
        "body{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 8px;"
        "text-align:left}figure{display:inline-block;margin:8px}"
        "figcaption{font-size:12px;text-align:center}</style></head><body><h1>%s</h1>"
        "<table>%s</table>%s<div>%s</div></body></html>"
        % (html.escape(title), html.escape(title), rows, notes_html, "".join(figures))
    )
