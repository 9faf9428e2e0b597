"""Diagrams of a topology as SVG, drawn from the same data as the topology page when the site is built
(rempart/mkdocs_hooks.py): the network (sites, zones, hosts, the floating entry points, the mesh)
and the data flows (the flow matrix between functions). Plain SVG written here: no diagram library,
nothing fetched when a page is viewed, the same drawing for the same data."""

from __future__ import annotations

from xml.sax.saxutils import escape

from .rules import as_list, hosts_with

FONT = 'font-family="DejaVu Sans, Verdana, sans-serif"'
ZONE_FILLS = ["#eef2fb", "#f7f7f7"]
OUTSIDE = ("internet", "operators")


def _text(x: float, y: float, text: str, size: int = 12, weight: str = "normal", anchor: str = "start", fill: str = "#222") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" {FONT} font-size="{size}" font-weight="{weight}" text-anchor="{anchor}" '
            f'fill="{fill}">{escape(text)}</text>')


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-labelledby="title">',
        f"<title id=\"title\">{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#444"/></marker></defs>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        *body,
        "</svg>",
        "",
    ])


def network_svg(topology: dict, env: str) -> str:
    """Sites as columns, zones as rows, each host in its cell with its functions and overlay address;
    the floating public addresses above the hosts that share them; the mesh that links every host."""
    sites, zones = list(topology["sites"]), list(topology["zones"])
    cells: dict[tuple[str, str], list[str]] = {}
    for name, host in topology["hosts"].items():
        cells.setdefault((host["site"], host["zone"]), []).append(name)
    # A host's box fits its name, every line of its functions and its overlay address.
    functions = {name: _wrap(as_list(host["functions"]), 32) for name, host in topology["hosts"].items()}
    left, col, gap, top = 170, 230, 10, 120
    box_h = 44 + 14 * max(len(lines) for lines in functions.values())
    rows = {zone: max([len(cells.get((site, zone), [])) for site in sites] + [1]) for zone in zones}
    width = left + col * len(sites) + 20
    body, y = [], top
    body.append(_text(12, 26, f"Network of environment {env}: sites, zones and hosts", 16, "bold"))
    body.append(_text(12, 46, "Every host talks to every other only over the WireGuard mesh "
                              f"(overlay {topology['ranges'].get('overlay', '?')}); nftables admits the flow matrix only.", 11, fill="#444"))
    for index, site in enumerate(sites):
        x = left + col * index + col / 2
        about = topology["sites"][site]
        body.append(_text(x, 80, site, 14, "bold", "middle"))
        body.append(_text(x, 96, f"{about['purpose']}, {about['jurisdiction']}", 11, anchor="middle", fill="#555"))
    for number, zone in enumerate(zones):
        height = rows[zone] * (box_h + gap) + gap
        body.append(f'<rect x="4" y="{y:.0f}" width="{width - 8:.0f}" height="{height:.0f}" fill="{ZONE_FILLS[number % 2]}" '
                    'stroke="#c8cfdd"/>')
        body.append(_text(14, y + 22, f"zone {zone}", 13, "bold"))
        body.append(_text(14, y + 40, f"protection {topology['zones'][zone]['protection']}", 11, fill="#555"))
        for index, site in enumerate(sites):
            for slot, name in enumerate(sorted(cells.get((site, zone), []))):
                host = topology["hosts"][name]
                x, hy = left + col * index + 10, y + gap + slot * (box_h + gap)
                body.append(f'<rect x="{x:.0f}" y="{hy:.0f}" width="{col - 20:.0f}" height="{box_h}" rx="6" fill="#ffffff" '
                            'stroke="#3f51b5" stroke-width="1.5"/>')
                body.append(_text(x + 10, hy + 19, name, 13, "bold"))
                for line, words in enumerate(functions[name]):
                    body.append(_text(x + 10, hy + 35 + 14 * line, words, 11))
                body.append(_text(x + 10, hy + box_h - 8, f"overlay {host['overlay']}", 10, fill="#555"))
        y += height + 6
    floating = topology.get("floating") or {}
    notes = []
    for function, entry in floating.items():
        holders = ", ".join(hosts_with(topology, function))
        names = ", ".join(as_list(entry.get("names", [])))
        notes.append(f"Floating public address of {function}: {entry.get('public', '?')}"
                     + (f" ({names})" if names else "") + f", held by one of {holders} (VRRP over the mesh).")
    for number, note in enumerate(notes):
        body.append(_text(12, y + 20 + 18 * number, note, 11, fill="#222"))
    return _svg(width, y + 20 + 18 * len(notes) + 10, f"Network of environment {env}", body)


def _wrap(items: list[str], width: int) -> list[str]:
    """``items`` joined with commas into lines of at most ``width`` characters (an item is never cut)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            lines.append(item)
    return lines


def _end_zone(topology: dict, end: str) -> str:
    if end in OUTSIDE:
        return "outside"
    if end in topology["zones"]:
        return end
    hosts = hosts_with(topology, end) or ([end] if end in topology["hosts"] else [])
    return topology["hosts"][hosts[0]]["zone"] if hosts else "outside"


def flows_svg(topology: dict, states: dict[int, str] | None = None) -> str:
    """The flow matrix as a graph: each end (a function, a zone, `all`, the outside) once, in its zone's
    row; each flow an arrow with its services; planned flows dashed; flows within one function written
    on the function itself."""
    flows = topology["flows"]
    ends: list[str] = []
    for flow in flows:
        for end in (flow["from"], flow["to"]):
            if end not in ends and end != "all":
                ends.append(end)
    rows = ["outside", *topology["zones"]]
    placed: dict[str, list[str]] = {row: [] for row in rows}
    # In each row, the ends with the fewest flows first: the busiest (monitoring) on the right, where
    # its arrows cross the fewest others.
    degree = {end: sum(end in (flow["from"], flow["to"]) for flow in flows) for end in ends}
    for end in sorted(ends, key=lambda e: (degree[e], ends.index(e))):
        placed[_end_zone(topology, end)].append(end)
    box_w, box_h, col, row_h, left, top = 150, 44, 190, 120, 130, 80
    columns = max(len(v) for v in placed.values())
    width = left + col * columns + 170
    where: dict[str, tuple[float, float]] = {}
    body = [_text(12, 26, "Data flows: the flow matrix between functions", 16, "bold"),
            _text(12, 46, "Solid: built; dashed: planned or only the receiving side built. "
                          "The firewall admits exactly these flows.", 11, fill="#444")]
    for number, row in enumerate(rows):
        y = top + number * row_h
        body.append(f'<rect x="4" y="{y - 18:.0f}" width="{width - 8:.0f}" height="{row_h - 10}" fill="{ZONE_FILLS[number % 2]}" stroke="#c8cfdd"/>')
        body.append(_text(14, y + 8, "outside" if row == "outside" else f"zone {row}", 12, "bold"))
        for index, end in enumerate(placed[row]):
            x = left + col * index
            where[end] = (x + box_w / 2, y + box_h / 2)
    all_x, all_y = width - 90, top + row_h * (len(rows) - 1) / 2 + box_h / 2
    where["all"] = (all_x, all_y)
    loops: dict[str, list[str]] = {}
    edges = []
    for number, flow in enumerate(flows):
        label = ", ".join(flow["services"])
        if flow["from"] == flow["to"]:
            loops.setdefault(flow["from"], []).append(label)
            continue
        (x1, y1), (x2, y2) = where[flow["from"]], where[flow["to"]]
        # Leave and reach the boxes at their edges; bend a little so that opposite flows stay apart.
        x1, y1 = _border(x1, y1, x2, y2, box_w, box_h)
        x2, y2 = _border(x2, y2, x1, y1, box_w, box_h)
        mx, my = (x1 + x2) / 2 + (y2 - y1) * 0.08, (y1 + y2) / 2 - (x2 - x1) * 0.08
        dashed = "" if (states or {}).get(number, "built") == "built" else ' stroke-dasharray="6 4"'
        edges.append(f'<path d="M {x1:.0f} {y1:.0f} Q {mx:.0f} {my:.0f} {x2:.0f} {y2:.0f}" fill="none" stroke="#444" '
                     f'stroke-width="1.3"{dashed} marker-end="url(#arrow)"/>')
        lx, ly = (x1 + 2 * mx + x2) / 4, (y1 + 2 * my + y2) / 4  # the curve's own middle
        edges.append(f'<text x="{lx:.0f}" y="{ly:.0f}" {FONT} font-size="10" text-anchor="middle" fill="#1a237e" '
                     f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{escape(label)}</text>')
    for end, (cx, cy) in where.items():
        w = box_w
        fill = "#fff8e1" if end in (*OUTSIDE, "all") else "#ffffff"
        body.append(f'<rect x="{cx - w / 2:.0f}" y="{cy - box_h / 2:.0f}" width="{w}" height="{box_h}" rx="6" fill="{fill}" '
                    'stroke="#3f51b5" stroke-width="1.5"/>')
        body.append(_text(cx, cy + (0 if end in loops else 5), "all hosts" if end == "all" else end, 13, "bold", "middle"))
        if end in loops:
            body.append(_text(cx, cy + 16, "↻ " + "; ".join(loops[end]), 10, anchor="middle", fill="#1a237e"))
    height = top + row_h * len(rows)
    return _svg(width, height, "Data flows of the flow matrix", body + edges)


def _border(x: float, y: float, tx: float, ty: float, w: float, h: float) -> tuple[float, float]:
    """Where the line from a box's centre (x, y) towards (tx, ty) leaves the box."""
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return x, y
    scale = min((w / 2) / abs(dx) if dx else float("inf"), (h / 2) / abs(dy) if dy else float("inf"))
    return x + dx * scale, y + dy * scale
