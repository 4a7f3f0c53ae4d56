"""A bot flow (Studio's definition JSON) drawn as an inline SVG, for the admin's flow and
execution pages.

Pure: no database, no request, no randomness. The same input gives the same string, ids
included: they come from a hash of the input, so two different diagrams on one page never
share a marker. Every piece of text comes from admins or imported JSON and is escaped (and
stripped of characters XML cannot carry).

Layout: Studio's canvas positions (`properties.offset`) when every state has one, otherwise
layers by BFS depth from the initial state (an end state sinks below its deepest parent;
unreachable states follow in layers of their own). A transition going down to a box it can
reach without crossing another is a smooth curve; the others (loops back up, long jumps) run
in a channel of their own beside the boxes they pass, and one within a row dips under it.
Styling is by the admin's CSS variables (with fallbacks), so light and dark themes both work.
"""

import hashlib
import json
import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

from django.utils.html import escape

BOX_W = 200
BOX_H = 64
BOX_RADIUS = 8
COL_GAP = 56  # between boxes of one layer
ROW_GAP = 104  # between layers: room for the curves and their labels
MARGIN = 24
# Canvas offsets are scaled until every pair of boxes is this far apart on one axis.
OFFSET_GAP_X = 48
OFFSET_GAP_Y = 80
MIN_SCALE = 0.25
MAX_SCALE = 8.0  # beyond this the offsets are too bunched to mean anything: lay out instead

MIN_DOWN_GAP = 24  # vertical room a transition needs to be drawn as a curve going down
CHANNEL_GAP = 28  # from the outermost box passed to a side channel
LANE_GAP = 18  # between two side channels
CORRIDOR = 16  # how far below (above) a box a side route turns when it leaves (enters) there
CORRIDOR_STEP = 7  # between side routes turning below (above) the same box
UNDER_DEPTH = 26  # how far below a row a transition within the row dips
SELF_LOOP = 40  # how far a transition back to its own state bulges out
CORNER = 10
PORT_PAD_X = 28
PORT_PAD_Y = 14

NAME_SIZE = 13
TYPE_SIZE = 10.5
SUMMARY_SIZE = 11
LABEL_SIZE = 11
BADGE_SIZE = 10.5
TEXT_X = 16  # text inset from the box's left edge, after the type stripe
LABEL_CHARS = 24
SUMMARY_CHARS = 30

DEFAULT_LABELS: dict[str, str] = {
    "trigger": "Trigger",
    "send-message": "Send message",
    "send-and-wait-for-reply": "Send & wait for reply",
    "split-based-on": "Split based on",
    "set-variables": "Set variables",
    "run-subflow": "Run subflow",
    "run-function": "Run function",
    "make-http-request": "Make HTTP request",
    "send-to-agent": "Send to agent",
}
ALIASES: dict[str, str] = {"send-to-flex": "send-to-agent"}
TYPE_COLOURS: dict[str, str] = {
    "trigger": "#7c3aed",
    "send-message": "#0284c7",
    "send-and-wait-for-reply": "#2563eb",
    "split-based-on": "#0d9488",
    "set-variables": "#64748b",
    "run-subflow": "#9333ea",
    "run-function": "#db2777",
    "make-http-request": "#4f46e5",
    "send-to-agent": "#16a34a",
}
WARNING_COLOUR = "#d97706"

# Characters XML 1.0 cannot carry at all: one in a state name would break the whole page.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPACES = re.compile(r"\s+")

Point = tuple[float, float]
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(eq=False)
class _State:
    name: str
    type: str  # aliases resolved
    raw_type: str
    props: dict
    order: int
    x: float = 0.0
    y: float = 0.0

    @property
    def right(self) -> float:
        return self.x + BOX_W

    @property
    def bottom(self) -> float:
        return self.y + BOX_H

    @property
    def cx(self) -> float:
        return self.x + BOX_W / 2

    @property
    def cy(self) -> float:
        return self.y + BOX_H / 2

    @property
    def rect(self) -> Rect:
        return (self.x, self.y, self.right, self.bottom)

    @property
    def known(self) -> bool:
        return self.type in DEFAULT_LABELS


@dataclass(eq=False)
class _Edge:
    order: int
    source: _State
    target: _State
    event: str
    label: str
    kind: str = ""  # "down" | "up" | "side" | "under" | "self"
    side: str = ""  # side routes: "left" | "right"
    exit: str = ""  # side routes: "side" | "bottom"
    entry: str = ""  # side routes: "side" | "top"
    start: Point = (0.0, 0.0)
    end: Point = (0.0, 0.0)
    channel: float = 0.0  # side routes: x of the vertical run; under routes: y of the dip
    exit_dy: float = CORRIDOR  # side routes leaving through the bottom: where they turn
    entry_dy: float = CORRIDOR  # side routes entering through the top: where they turn
    d: str = ""
    label_rect: Rect | None = None
    taken: bool = False


@dataclass
class _Trail:
    visits: dict[str, list[int]] = field(default_factory=dict)
    final: str | None = None
    active: bool = False  # a path was given: what it did not visit is muted


# ---------------------------------------------------------------- public


def flow_diagram_svg(
    definition: dict,
    *,
    path: list[dict] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """The flow as an SVG string, safe to insert into a page.

    `path` is an execution's steps in order (`name`, `event`, `index`): the states it visited
    are highlighted with their visit order (1 for the first step), the transitions it took
    drawn in the accent colour and its last state marked. `labels` maps a widget type to its
    display label (translated by the caller).
    """
    prefix = _prefix(definition, path, labels)
    states, edges, initial = _parse(definition)
    if not states:
        return _empty_svg(prefix)
    if not _place_by_offsets(states):
        _place_by_layers(states, edges, initial)
    trail = _trail(path, states, edges)
    _route(states, edges)
    _place_labels(states, edges)
    return _render(prefix, states, edges, trail, labels if isinstance(labels, dict) else {})


# ---------------------------------------------------------------- reading the definition


def _parse(definition: Any) -> tuple[list[_State], list[_Edge], _State | None]:
    """The states worth drawing (named, first of each name) and their transitions to known
    states; anything malformed is skipped."""
    raw = definition.get("states") if isinstance(definition, dict) else None
    items = [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []
    by_name: dict[str, _State] = {}
    kept: list[tuple[_State, Any]] = []
    for item in items:
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or name in by_name:
            continue
        raw_type = item.get("type") if isinstance(item.get("type"), str) else ""
        props = item.get("properties") if isinstance(item.get("properties"), dict) else {}
        state = _State(name, ALIASES.get(raw_type, raw_type), raw_type, props, len(by_name))
        by_name[name] = state
        kept.append((state, item.get("transitions")))
    edges: list[_Edge] = []
    for state, transitions in kept:
        for transition in transitions if isinstance(transitions, list) else []:
            target = (
                by_name.get(_str(transition.get("next"))) if isinstance(transition, dict) else None
            )
            if target is not None:
                event = _str(transition.get("event"))
                edges.append(_Edge(len(edges), state, target, event, _edge_label(transition)))
    return list(by_name.values()), edges, _initial(definition, by_name)


def _initial(definition: Any, by_name: dict[str, _State]) -> _State | None:
    named = definition.get("initial_state") if isinstance(definition, dict) else None
    if isinstance(named, str) and named in by_name:
        return by_name[named]
    triggers = [state for state in by_name.values() if state.type == "trigger"]
    return (triggers or list(by_name.values()) or [None])[0]


def _edge_label(transition: dict) -> str:
    """The event, or for a split's `match` what it matches (Studio's friendly name)."""
    event = _str(transition.get("event"))
    conditions = transition.get("conditions")
    if event == "match" and isinstance(conditions, list):
        first = next((c for c in conditions if isinstance(c, dict)), None)
        if first is not None:
            text = _str(first.get("friendly_name")).strip()
            if not text:
                text = f"{_str(first.get('type'))} {_str(first.get('value'))}".strip()
            if text:
                event = text if len(conditions) == 1 else f"{text} +{len(conditions) - 1}"
    return _truncate(_one_line(event), LABEL_CHARS)


def _summary(state: _State) -> str:
    """One line saying what the widget does, for the types where that fits."""
    props = state.props
    if state.type in ("send-message", "send-and-wait-for-reply"):
        return _one_line(_without_tags(_str(props.get("body"))))
    if state.type == "split-based-on":
        return _one_line(props.get("input"))
    if state.type == "run-function":
        return _one_line(props.get("function") or props.get("function_sid") or props.get("url"))
    if state.type == "make-http-request":
        method = _one_line(props.get("method") or "GET").upper()
        return f"{method} {_host(props.get('url'))}".strip()
    if state.type == "send-to-agent":
        return _one_line(props.get("workflow") or props.get("workflow_sid"))
    if state.type == "run-subflow":
        return _one_line(props.get("flow_sid"))
    return ""


_LIQUID_TAG = re.compile(r"\{%.*?%\}", re.S)


def _without_tags(text: str) -> str:
    """A body's text without Liquid tags ({% if %}…): the words, not the machinery. A body
    with one branch per language shows the first branch."""
    first = _LIQUID_TAG.split(text)
    words = [part for part in first if part.strip()]
    return words[0] if words else text


def _host(url: Any) -> str:
    text = _one_line(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError:  # a malformed IPv6 literal, say
        host = ""
    return host or text


def _trail(path: Any, states: list[_State], edges: list[_Edge]) -> _Trail:
    """Visit orders per state, the final state, and which transitions were taken."""
    trail = _Trail(active=isinstance(path, list) and bool(path))
    if not trail.active:
        return trail
    names = {state.name for state in states}
    # (name, event) per step, None for a step naming no drawn state (deleted since, say).
    steps = [
        (_str(step.get("name")), _str(step.get("event")))
        if isinstance(step, dict) and _str(step.get("name")) in names
        else None
        for step in path
    ]
    for order, step in enumerate(steps, start=1):
        if step is not None:
            trail.visits.setdefault(step[0], []).append(order)
            trail.final = step[0]
    for step, following in pairwise(steps):
        if step is not None and following is not None:
            _mark_taken(edges, step[0], step[1], following[0])
    return trail


def _mark_taken(edges: list[_Edge], name: str, event: str, next_name: str) -> None:
    """The transition from `name` to `next_name`: by its event too when several lead there
    (a split's `match` transitions share one event, but not a target)."""
    candidates = [e for e in edges if e.source.name == name and e.target.name == next_name]
    chosen = [e for e in candidates if e.event == event] or candidates
    if chosen:
        chosen[0].taken = True


# ---------------------------------------------------------------- layout


def _place_by_offsets(states: list[_State]) -> bool:
    """Studio's canvas positions, normalised to the margin and scaled so boxes don't
    overlap; False (and nothing placed) when some state has none or they are unusable."""
    points: list[Point] = []
    for state in states:
        offset = state.props.get("offset")
        x = offset.get("x") if isinstance(offset, dict) else None
        y = offset.get("y") if isinstance(offset, dict) else None
        if not (_is_number(x) and _is_number(y)):
            return False
        points.append((float(x), float(y)))
    scale = _offset_scale(points)
    if scale is None:
        return False
    min_x = min(x for x, _ in points)
    min_y = min(y for _, y in points)
    for state, (x, y) in zip(states, points, strict=True):
        state.x = round(MARGIN + (x - min_x) * scale)
        state.y = round(MARGIN + (y - min_y) * scale)
    return True


def _offset_scale(points: list[Point]) -> float | None:
    """The smallest scale that keeps every pair of boxes apart on at least one axis."""
    if len(points) < 2:
        return 1.0
    needed = 0.0
    for i, (x1, y1) in enumerate(points):
        for x2, y2 in points[:i]:
            dx, dy = abs(x1 - x2), abs(y1 - y2)
            by_x = (BOX_W + OFFSET_GAP_X) / dx if dx else math.inf
            by_y = (BOX_H + OFFSET_GAP_Y) / dy if dy else math.inf
            needed = max(needed, min(by_x, by_y))
    if needed > MAX_SCALE:
        return None
    return max(needed, MIN_SCALE)


def _place_by_layers(states: list[_State], edges: list[_Edge], initial: _State | None) -> None:
    """Layers by BFS depth, top to bottom; each box as close as its order allows to the
    mean of its parents above, which keeps most transitions short and vertical."""
    layers = _layers(states, edges, initial)
    depth = {state.name: k for k, layer in enumerate(layers) for state in layer}
    parents: dict[str, list[_State]] = {}
    for edge in edges:
        parents.setdefault(edge.target.name, []).append(edge.source)
    placed: list[_State] = []
    for k, layer in enumerate(layers):
        wanted: dict[str, float] = {}
        for state in layer:
            above = [p.cx for p in parents.get(state.name, []) if depth[p.name] < k]
            if above:
                wanted[state.name] = sum(above) / len(above) - BOX_W / 2
        layer.sort(key=lambda s: wanted.get(s.name, math.inf))  # stable: BFS order for ties
        start = min((s.x for s in placed), default=0.0)
        _spread(layer, wanted, start)
        for state in layer:
            state.y = MARGIN + k * (BOX_H + ROW_GAP)
        placed.extend(layer)
    shift = MARGIN - min(state.x for state in states)
    for state in states:
        state.x = round(state.x + shift)


def _layers(states: list[_State], edges: list[_Edge], initial: _State | None) -> list[list[_State]]:
    """BFS layers from the initial state; below them, what it cannot reach, in layers of its
    own from its roots (states no other unreachable state leads to): a disconnected draft
    stays a readable tree instead of one long row."""
    children: dict[str, list[_State]] = {}
    for edge in edges:
        children.setdefault(edge.source.name, []).append(edge.target)
    seen: set[str] = set()
    layers = _bfs([initial] if initial is not None else [], children, seen, edges)
    while len(seen) < len(states):
        rest = [state for state in states if state.name not in seen]
        names = {state.name for state in rest}
        fed = {e.target.name for e in edges if e.source.name in names and e.source is not e.target}
        roots = [state for state in rest if state.name not in fed] or rest[:1]  # [:1]: a cycle
        layers += _bfs(roots, children, seen, edges)
    return [layer for layer in layers if layer]


def _bfs(
    roots: list[_State], children: dict[str, list[_State]], seen: set[str], edges: list[_Edge]
) -> list[list[_State]]:
    layers: list[list[_State]] = []
    queue: deque[tuple[_State, int]] = deque((root, 0) for root in roots)
    seen.update(root.name for root in roots)
    while queue:
        state, k = queue.popleft()
        if k == len(layers):
            layers.append([])
        layers[k].append(state)
        for child in children.get(state.name, []):
            if child.name not in seen:
                seen.add(child.name)
                queue.append((child, k + 1))
    _sink(layers, edges)
    return layers


def _sink(layers: list[list[_State]], edges: list[_Edge]) -> None:
    """Move each end state (one with no way out) just below its deepest parent: a shared
    "goodbye" reached from several depths then takes only arrows going down, not loops."""
    depth = {state.name: k for k, layer in enumerate(layers) for state in layer}
    with_a_way_out = {edge.source.name for edge in edges if edge.target is not edge.source}
    for k, layer in enumerate(layers):
        for state in list(layer):
            if state.name in with_a_way_out:
                continue
            above = [
                depth[e.source.name]
                for e in edges
                if e.target is state and e.source is not state and e.source.name in depth
            ]
            deepest = max(above, default=-1)
            if deepest + 1 > k:
                layer.remove(state)
                while len(layers) <= deepest + 1:
                    layers.append([])
                layers[deepest + 1].append(state)


def _spread(layer: list[_State], wanted: dict[str, float], start: float) -> None:
    """Left to right without overlap, then shifted as a whole towards where it wants to be."""
    cursor: float | None = None
    for state in layer:
        x = wanted.get(state.name, cursor if cursor is not None else start)
        state.x = x if cursor is None else max(x, cursor)
        cursor = state.x + BOX_W + COL_GAP
    misses = [wanted[s.name] - s.x for s in layer if s.name in wanted]
    if misses:
        shift = sum(misses) / len(misses)
        for state in layer:
            state.x += shift


# ---------------------------------------------------------------- routing


def _route(states: list[_State], edges: list[_Edge]) -> None:
    pairs = {(edge.source.order, edge.target.order) for edge in edges}
    for edge in edges:
        _classify(edge, states, (edge.target.order, edge.source.order) in pairs)
    _assign_ports(states, edges)
    _assign_channels(states, edges)
    _assign_ports(states, edges, by_channel=True)
    _stagger_corridors(edges)
    for edge in edges:
        edge.d = _path_data(edge)


def _classify(edge: _Edge, states: list[_State], has_reverse: bool) -> None:
    source, target = edge.source, edge.target
    if source is target:
        edge.kind = "self"  # a small loop on the side with room for it
        edge.side = (
            "left"
            if _blocked(source, "right", states) and not _blocked(source, "left", states)
            else "right"
        )
    elif target.y - source.bottom >= MIN_DOWN_GAP and _curve_clear(edge, "down", states):
        edge.kind = "down"
    elif (
        # Going back up: a clear diagonal curve is fine, but not one that would run beside
        # a forward arrow between the same boxes (a loop back goes round the side instead).
        MIN_DOWN_GAP <= source.y - target.bottom <= 2 * ROW_GAP
        and not has_reverse
        and BOX_W * 0.75 <= abs(target.cx - source.cx) <= 3 * BOX_W
        and _curve_clear(edge, "up", states)
    ):
        edge.kind = "up"
    elif abs(target.cy - source.cy) < BOX_H and _row_clear(source, target, states):
        edge.kind = "under"
    else:
        edge.kind = "side"
        plans = [_side_plan(source, target, states, side) for side in ("right", "left")]
        _cost, edge.side, edge.exit, edge.entry = min(plans)


def _curve_clear(edge: _Edge, kind: str, states: list[_State]) -> bool:
    source, target = edge.source, edge.target
    if kind == "down":
        start, end = (source.cx, source.bottom), (target.cx, target.y)
    else:
        start, end = (source.cx, source.y), (target.cx, target.bottom)
    points = [_bezier(*_curve_controls(start, end), t / 16) for t in range(1, 16)]
    others = [s for s in states if s is not edge.source and s is not edge.target]
    return not any(_inside(point, s.rect, 6) for point in points for s in others)


def _row_clear(source: _State, target: _State, states: list[_State]) -> bool:
    """Whether the dip under a row stays clear of the boxes below it."""
    x0, x1 = sorted((source.cx, target.cx))
    floor = max(source.bottom, target.bottom)
    band = (x0, floor, x1, floor + UNDER_DEPTH + 8)
    return not any(_overlaps(band, s.rect) for s in states if s is not source and s is not target)


def _side_plan(source: _State, target: _State, states: list[_State], side: str) -> tuple:
    """(cost, side, exit, entry) of going round on `side`: leave and enter through the
    side when nothing stands beside the box there, else turn in the corridor below/above."""
    exit_ = "bottom" if _blocked(source, side, states) else "side"
    entry = "top" if _blocked(target, side, states) else "side"
    low, high = _span_ys(source, target, exit_, entry)
    channel = _channel_base((source, target), states, side, low, high)
    leave = (source.right if side == "right" else source.x) if exit_ == "side" else source.cx
    arrive = (target.right if side == "right" else target.x) if entry == "side" else target.cx
    cost = abs(channel - leave) + abs(channel - arrive)
    cost += (exit_ != "side") * BOX_W + (entry != "side") * BOX_W
    return (round(cost, 3), side, exit_, entry)


def _blocked(state: _State, side: str, states: list[_State]) -> bool:
    for other in states:
        if other is state or other.y >= state.bottom or other.bottom <= state.y:
            continue
        if (other.cx > state.cx) == (side == "right"):
            return True
    return False


def _span_ys(source: _State, target: _State, exit_: str, entry: str) -> tuple[float, float]:
    leave = source.cy if exit_ == "side" else source.bottom + CORRIDOR
    arrive = target.cy if entry == "side" else target.y - CORRIDOR
    return min(leave, arrive), max(leave, arrive)


def _channel_base(
    edge_ends: tuple[_State, _State], states: list[_State], side: str, low: float, high: float
) -> float:
    """Just outside every box beside the vertical run, and outside both ends."""
    passed = [s for s in states if s.y < high + 4 and s.bottom > low - 4] + list(edge_ends)
    if side == "right":
        return max(s.right for s in passed) + CHANNEL_GAP
    return min(s.x for s in passed) - CHANNEL_GAP


def _assign_ports(states: list[_State], edges: list[_Edge], *, by_channel: bool = False) -> None:
    """Spread the ends meeting one side of a box, ordered by where their other end lies so
    they don't cross right at the box. Side routes turning below/above a box take its
    outermost ports; once their channels are known, the outer channel the outer port, and
    on a left/right side: runs going up above runs going down, each nested by channel."""
    ports: dict[tuple[int, str], list[tuple[float, int, _Edge, str]]] = {}

    def attach(state: _State, where: str, key: float, edge: _Edge, end: str) -> None:
        ports.setdefault((state.order, where), []).append((key, edge.order, edge, end))

    far = 1e9

    def beside(state: _State, other: _State, edge: _Edge) -> float:
        if not by_channel:
            return other.cy
        distance = abs(edge.channel - state.cx)
        return distance if other.cy < state.cy else far - distance

    for edge in edges:
        source, target = edge.source, edge.target
        if edge.kind == "down":
            attach(source, "bottom", target.cx, edge, "start")
            attach(target, "top", source.cx, edge, "end")
        elif edge.kind == "up":
            attach(source, "top", target.cx, edge, "start")
            attach(target, "bottom", source.cx, edge, "end")
        elif edge.kind == "under":
            attach(source, "bottom", target.cx, edge, "start")
            attach(target, "bottom", source.cx, edge, "end")
        elif edge.kind == "side":
            outward = edge.channel if by_channel else (far if edge.side == "right" else -far)
            if edge.exit == "side":
                attach(source, edge.side, beside(source, target, edge), edge, "start")
            else:
                attach(source, "bottom", outward, edge, "start")
            if edge.entry == "side":
                attach(target, edge.side, beside(target, source, edge), edge, "end")
            else:
                attach(target, "top", outward, edge, "end")
        else:  # self: two neighbouring ports, between the runs going up and those going down
            attach(source, edge.side, far / 2 if by_channel else source.cy - 0.5, edge, "start")
            attach(source, edge.side, far / 2 + 1 if by_channel else source.cy + 0.5, edge, "end")
    by_order = {state.order: state for state in states}
    for (order, where), ends in ports.items():
        _spread_ports(by_order[order], where, sorted(ends, key=lambda e: (e[0], e[1])))


def _spread_ports(state: _State, where: str, ends: list[tuple[float, int, _Edge, str]]) -> None:
    count = len(ends)
    for i, (_key, _order, edge, end) in enumerate(ends):
        if where in ("top", "bottom"):
            span = BOX_W - 2 * PORT_PAD_X
            point = (state.x + PORT_PAD_X + span * (i + 0.5) / count, state.y)
            if where == "bottom":
                point = (point[0], state.bottom)
        else:
            span = BOX_H - 2 * PORT_PAD_Y
            y = state.y + PORT_PAD_Y + span * (i + 0.5) / count
            point = (state.right if where == "right" else state.x, y)
        if end == "start":
            edge.start = point
        else:
            edge.end = point


def _assign_channels(states: list[_State], edges: list[_Edge]) -> None:
    """Each side route its own vertical channel, each dip under a row its own depth: shorter
    spans inside, longer ones outside them, so loops nest instead of crossing."""
    _assign_dips([edge for edge in edges if edge.kind == "under"])
    routes = [edge for edge in edges if edge.kind == "side"]
    routes.sort(key=lambda e: (_span(e)[1] - _span(e)[0], e.order))
    done: list[_Edge] = []
    for edge in routes:
        low, high = _span(edge)
        step = LANE_GAP if edge.side == "right" else -LANE_GAP
        edge.channel = _channel_base((edge.source, edge.target), states, edge.side, low, high)
        while any(_lane_taken(edge, other) for other in done):
            edge.channel += step
        done.append(edge)


def _assign_dips(dips: list[_Edge]) -> None:
    dips.sort(key=lambda e: (abs(e.end[0] - e.start[0]), e.order))
    done: list[_Edge] = []
    for edge in dips:
        edge.channel = max(edge.source.bottom, edge.target.bottom) + UNDER_DEPTH
        low, high = sorted((edge.start[0], edge.end[0]))
        while any(
            abs(other.channel - edge.channel) < LANE_GAP / 2
            and low < max(other.start[0], other.end[0]) + 6
            and min(other.start[0], other.end[0]) < high + 6
            for other in done
        ):
            edge.channel += LANE_GAP * 0.75
        done.append(edge)


def _stagger_corridors(edges: list[_Edge]) -> None:
    """Side routes turning under (over) one box each turn at their own depth: the one in
    the outer channel nearest the box, so none crosses another's run."""
    exits: dict[tuple[int, str], list[_Edge]] = {}
    entries: dict[tuple[int, str], list[_Edge]] = {}
    for edge in edges:
        if edge.kind == "side" and edge.exit == "bottom":
            exits.setdefault((edge.source.order, edge.side), []).append(edge)
        if edge.kind == "side" and edge.entry == "top":
            entries.setdefault((edge.target.order, edge.side), []).append(edge)
    for group in exits.values():
        group.sort(key=lambda e: (-abs(e.channel - e.source.cx), e.order))
        for i, edge in enumerate(group):
            edge.exit_dy = CORRIDOR + i * CORRIDOR_STEP
    for group in entries.values():
        group.sort(key=lambda e: (-abs(e.channel - e.target.cx), e.order))
        for i, edge in enumerate(group):
            edge.entry_dy = CORRIDOR + i * CORRIDOR_STEP


def _span(edge: _Edge) -> tuple[float, float]:
    leave = edge.start[1] if edge.exit == "side" else edge.start[1] + edge.exit_dy
    arrive = edge.end[1] if edge.entry == "side" else edge.end[1] - edge.entry_dy
    return min(leave, arrive), max(leave, arrive)


def _lane_taken(edge: _Edge, other: _Edge) -> bool:
    if other.side != edge.side or abs(other.channel - edge.channel) >= LANE_GAP / 2:
        return False
    low, high = _span(edge)
    other_low, other_high = _span(other)
    return low < other_high + 6 and other_low < high + 6


def _route_points(edge: _Edge) -> list[Point]:
    """The corners of an orthogonal route (side and under kinds)."""
    (sx, sy), (tx, ty) = edge.start, edge.end
    if edge.kind == "under":
        return [(sx, sy), (sx, edge.channel), (tx, edge.channel), (tx, ty)]
    points = [(sx, sy)]
    if edge.exit == "bottom":
        points.append((sx, sy + edge.exit_dy))
    points.append((edge.channel, points[-1][1]))
    arrive_y = ty if edge.entry == "side" else ty - edge.entry_dy
    points.append((edge.channel, arrive_y))
    if edge.entry == "top":
        points.append((tx, arrive_y))
    points.append((tx, ty))
    return points


def _path_data(edge: _Edge) -> str:
    if edge.kind in ("down", "up"):
        c1, c2 = _curve_controls(edge.start, edge.end)[1:3]
        return f"M{_pt(edge.start)} C{_pt(c1)} {_pt(c2)} {_pt(edge.end)}"
    if edge.kind == "self":
        (x, y1), (_x, y2) = edge.start, edge.end
        reach = SELF_LOOP if edge.side == "right" else -SELF_LOOP
        c1, c2 = (x + reach, y1 - 16), (x + reach, y2 + 16)
        return f"M{_pt(edge.start)} C{_pt(c1)} {_pt(c2)} {_pt(edge.end)}"
    return _rounded(_route_points(edge))


def _curve_controls(start: Point, end: Point) -> tuple[Point, Point, Point, Point]:
    """A vertical S-curve: leaves and arrives straight, whichever way it goes."""
    pull = max(abs(end[1] - start[1]) * 0.5, 20) * (1 if end[1] >= start[1] else -1)
    return (start, (start[0], start[1] + pull), (end[0], end[1] - pull), end)


def _rounded(points: list[Point]) -> str:
    """An orthogonal polyline with rounded corners."""
    points = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    parts = [f"M{_pt(points[0])}"]
    for prev, corner, nxt in zip(points, points[1:], points[2:], strict=False):
        radius = min(CORNER, _dist(prev, corner) / 2, _dist(corner, nxt) / 2)
        parts.append(f"L{_pt(_toward(corner, prev, radius))}")
        parts.append(f"Q{_pt(corner)} {_pt(_toward(corner, nxt, radius))}")
    parts.append(f"L{_pt(points[-1])}")
    return " ".join(parts)


# ---------------------------------------------------------------- edge labels


def _place_labels(states: list[_State], edges: list[_Edge]) -> None:
    """Each label at the first of its candidate spots that overlaps no box and no label
    placed before it (taken transitions first: theirs matter most)."""
    boxes = [_grow(state.rect, 3) for state in states]
    placed: list[Rect] = []
    for edge in sorted(edges, key=lambda e: (not e.taken, e.order)):
        if not edge.label:
            continue
        candidates = list(_label_spots(edge))
        free = (r for r in candidates if not any(_overlaps(r, o) for o in boxes + placed))
        edge.label_rect = next(free, candidates[0])
        placed.append(_grow(edge.label_rect, 2))


def _label_spots(edge: _Edge) -> Iterator[Rect]:
    """Where the label may go, best first: on the curve, on a dip's run, or beside a side
    channel (outwards, so it covers no box)."""
    width = _text_width(edge.label, LABEL_SIZE, bold=edge.taken) + 14
    height = LABEL_SIZE + 7

    def at(x: float, y: float, anchor: str = "middle") -> Rect:
        left = {"middle": x - width / 2, "start": x, "end": x - width}[anchor]
        return (left, y - height / 2, left + width, y + height / 2)

    if edge.kind in ("down", "up"):
        controls = _curve_controls(edge.start, edge.end)
        for t in (0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8):
            yield at(*_bezier(*controls, t))
    elif edge.kind == "self":
        (x, top), (_x, bottom) = edge.start, edge.end
        outward, anchor = (1, "start") if edge.side == "right" else (-1, "end")
        yield at(x + outward * (SELF_LOOP * 0.75 + 4), (top + bottom) / 2, anchor)
        # No room beside it: over or under the box's corner, in the gap between rows.
        yield at(x + outward * SELF_LOOP * 0.4, edge.source.y - height / 2 - 4)
        yield at(x + outward * SELF_LOOP * 0.4, edge.source.bottom + height / 2 + 4)
    elif edge.kind == "under":
        for f in (0.5, 0.3, 0.7, 0.15, 0.85):
            yield at(edge.start[0] + (edge.end[0] - edge.start[0]) * f, edge.channel)
    else:
        low, high = _span(edge)
        outward = ("start", 5) if edge.side == "right" else ("end", -5)
        for f in (0.5, 0.3, 0.7, 0.15, 0.85):
            yield at(edge.channel + outward[1], low + (high - low) * f, outward[0])


# ---------------------------------------------------------------- rendering


def _render(
    prefix: str,
    states: list[_State],
    edges: list[_Edge],
    trail: _Trail,
    labels: dict[str, str],
) -> str:
    bounds = _bounds(states, edges)
    x0, y0 = math.floor(bounds[0] - MARGIN), math.floor(bounds[1] - MARGIN)
    width = math.ceil(bounds[2] + MARGIN) - x0
    height = math.ceil(bounds[3] + MARGIN) - y0
    title = f"Flow diagram: {len(states)} states, {len(edges)} transitions"
    ordered = sorted(edges, key=lambda e: (e.taken, e.order))  # taken ones drawn on top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{prefix}" class="flow-diagram-svg"'
        f' role="img" aria-labelledby="{prefix}-title" viewBox="{x0} {y0} {width} {height}"'
        f' width="100%" style="max-width:{width}px;min-width:{math.ceil(width * 0.8)}px">',
        f'<title id="{prefix}-title">{escape(title)}</title>',
        _defs(prefix),
        '<g class="edges">',
        *(_edge_svg(prefix, edge, trail) for edge in ordered),
        "</g>",
        '<g class="states">',
        *(_state_svg(state, trail, labels) for state in states),
        "</g>",
        '<g class="edge-labels">',
        *(_label_svg(prefix, edge, trail) for edge in ordered if edge.label_rect),
        "</g>",
        '<g class="badges">',
        *(_badges_svg(state, trail) for state in states if state.name in trail.visits),
        "</g>",
        "</svg>",
    ]
    return "".join(part for part in parts if part)


def _defs(prefix: str) -> str:
    """Markers and styles; selectors are scoped by the svg's id because an inline <style>
    applies to the whole page."""
    s = f"#{prefix}"
    css = (
        f"{s}{{font-family:var(--font-family-primary,-apple-system,'Segoe UI',system-ui,Roboto,"
        f"'Helvetica Neue',Arial,sans-serif);color:var(--body-fg,#333)}}"
        f"{s} .fd-box{{fill:var(--body-bg,#fff);stroke:var(--border-color,#bbb);stroke-width:1.2}}"
        f"{s} .fd-tint{{fill:none}}"
        f"{s} .fd-name{{fill:var(--body-fg,#333);font-size:{NAME_SIZE}px;font-weight:600}}"
        f"{s} .fd-type{{fill:var(--body-quiet-color,#666);font-size:{TYPE_SIZE}px;"
        f"letter-spacing:.02em}}"
        f"{s} .fd-summary{{fill:var(--body-quiet-color,#666);font-size:{SUMMARY_SIZE}px}}"
        f"{s} .unknown .fd-box{{stroke:{WARNING_COLOUR};stroke-dasharray:5 3}}"
        f"{s} .unknown .fd-type{{fill:{WARNING_COLOUR}}}"
        f"{s} .visited .fd-box{{stroke:var(--link-fg,#417690);stroke-width:2.4}}"
        f"{s} .visited .fd-tint{{fill:var(--link-fg,#417690);fill-opacity:.09}}"
        f"{s} .fd-final-ring{{fill:none;stroke:var(--link-fg,#417690);stroke-width:1.4;"
        f"stroke-dasharray:4 3}}"
        f"{s} .muted{{opacity:.5}}"
        f"{s} .fd-arrow{{fill:none;stroke:var(--body-quiet-color,#888);stroke-width:1.5}}"
        f"{s} .taken .fd-arrow{{stroke:var(--link-fg,#417690);stroke-width:2.6}}"
        f"{s} .fd-head{{fill:var(--body-quiet-color,#888)}}"
        f"{s} .fd-head-taken{{fill:var(--link-fg,#417690)}}"
        f"{s} .fd-label rect{{fill:var(--body-bg,#fff);stroke:var(--hairline-color,#e0e0e0)}}"
        f"{s} .fd-label text{{fill:var(--body-quiet-color,#555);font-size:{LABEL_SIZE}px}}"
        f"{s} .fd-label.taken rect{{stroke:var(--link-fg,#417690)}}"
        f"{s} .fd-label.taken text{{fill:var(--link-fg,#417690);font-weight:600}}"
        f"{s} .fd-badge rect{{fill:var(--link-fg,#417690)}}"
        f"{s} .fd-badge text{{fill:var(--body-bg,#fff);font-size:{BADGE_SIZE}px;font-weight:700}}"
        f"{s} .fd-badge.final rect{{fill:var(--body-fg,#333)}}"
    )
    marker = (
        '<marker id="{id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="{size}"'
        ' markerHeight="{size}" markerUnits="userSpaceOnUse" orient="auto">'
        '<path class="{cls}" d="M0,0 L10,5 L0,10 L2.5,5 z"/></marker>'
    )
    return (
        f"<defs><style>{css}</style>"
        + marker.format(id=f"{prefix}-arrow", size=9, cls="fd-head")
        + marker.format(id=f"{prefix}-arrow-taken", size=11, cls="fd-head-taken")
        + "</defs>"
    )


def _state_svg(state: _State, trail: _Trail, labels: dict[str, str]) -> str:
    classes = ["state"]
    if not state.known:
        classes.append("unknown")
    if state.name in trail.visits:
        classes.append("visited")
    elif trail.active:
        classes.append("muted")
    if state.name == trail.final:
        classes.append("final")
    type_label = _type_label(state, labels)
    x, y = state.x, state.y
    text_width = BOX_W - TEXT_X - 10
    parts = [
        f'<g class="{" ".join(classes)}" data-state="{_attr(state.name)}"'
        f' data-type="{_attr(state.raw_type)}">',
        f"<title>{_text(state.name)} · {_text(type_label)}</title>",
    ]
    if state.name == trail.final:
        ring = _grow(state.rect, 5)
        parts.append(
            f'<rect class="fd-final-ring" x="{_n(ring[0])}" y="{_n(ring[1])}"'
            f' width="{_n(ring[2] - ring[0])}" height="{_n(ring[3] - ring[1])}"'
            f' rx="{BOX_RADIUS + 4}"/>'
        )
    box = f'x="{_n(x)}" y="{_n(y)}" width="{BOX_W}" height="{BOX_H}" rx="{BOX_RADIUS}"'
    colour = TYPE_COLOURS.get(state.type, WARNING_COLOUR)
    parts += [
        f'<rect class="fd-box" {box}/>',
        f'<rect class="fd-tint" {box}/>',
        f'<path class="fd-stripe" fill="{colour}" d="{_stripe(x, y)}"/>',
        _text_svg(
            "fd-name", x + TEXT_X, y + 21, _fit(state.name, NAME_SIZE, text_width, bold=True)
        ),
        _text_svg("fd-type", x + TEXT_X, y + 37, _fit(type_label, TYPE_SIZE, text_width)),
    ]
    summary = _truncate(_summary(state), SUMMARY_CHARS)
    if summary:
        fitted = _fit(summary, SUMMARY_SIZE, text_width)
        parts.append(_text_svg("fd-summary", x + TEXT_X, y + 53, fitted))
    parts.append("</g>")
    return "".join(parts)


def _type_label(state: _State, labels: dict[str, str]) -> str:
    for key in (state.raw_type, state.type):
        if isinstance(labels.get(key), str) and labels[key]:
            return labels[key]
    if state.type in DEFAULT_LABELS:
        return DEFAULT_LABELS[state.type]
    return f"⚠ {state.raw_type or 'no type'}"


def _stripe(x: float, y: float) -> str:
    """The type's colour down the box's left edge, following its rounded corners."""
    r = BOX_RADIUS
    return (
        f"M{_n(x + r)},{_n(y)} A{r},{r} 0 0 0 {_n(x)},{_n(y + r)} V{_n(y + BOX_H - r)}"
        f" A{r},{r} 0 0 0 {_n(x + r)},{_n(y + BOX_H)} H{_n(x + r - 3)}"
        f" A{r - 3},{r - 3} 0 0 1 {_n(x + 3)},{_n(y + BOX_H - r)} V{_n(y + r)}"
        f" A{r - 3},{r - 3} 0 0 1 {_n(x + r - 3)},{_n(y)} Z"
    )


def _edge_svg(prefix: str, edge: _Edge, trail: _Trail) -> str:
    classes = "edge taken" if edge.taken else ("edge muted" if trail.active else "edge")
    marker = f"{prefix}-arrow-taken" if edge.taken else f"{prefix}-arrow"
    return (
        f'<g class="{classes}" id="{prefix}-e{edge.order}" data-source="{_attr(edge.source.name)}"'
        f' data-target="{_attr(edge.target.name)}" data-event="{_attr(edge.event)}">'
        f'<path class="fd-arrow" d="{edge.d}" marker-end="url(#{marker})"/></g>'
    )


def _label_svg(prefix: str, edge: _Edge, trail: _Trail) -> str:
    x0, y0, x1, y1 = edge.label_rect
    classes = "fd-label taken" if edge.taken else ("fd-label muted" if trail.active else "fd-label")
    tooltip = f"{edge.source.name} → {edge.target.name} ({edge.event})"
    return (
        f'<g class="{classes}" data-edge="{prefix}-e{edge.order}">'
        f"<title>{_text(tooltip)}</title>"
        f'<rect x="{_n(x0)}" y="{_n(y0)}" width="{_n(x1 - x0)}" height="{_n(y1 - y0)}"'
        f' rx="{_n((y1 - y0) / 2)}"/>'
        f'<text x="{_n((x0 + x1) / 2)}" y="{_n((y0 + y1) / 2 + LABEL_SIZE * 0.36)}"'
        f' text-anchor="middle">{_text(edge.label)}</text></g>'
    )


def _badges_svg(state: _State, trail: _Trail) -> str:
    orders = trail.visits[state.name]
    text = (
        ", ".join(map(str, orders))
        if len(orders) <= 3
        else f"{orders[0]}, {orders[1]} … {orders[-1]}"
    )
    width = max(_text_width(text, BADGE_SIZE, bold=True) + 10, 18)
    x, y = state.right - width - 10, state.y - 9
    final = " final" if state.name == trail.final else ""
    steps = ", ".join(map(str, orders))
    return (
        f'<g class="fd-badge{final}" data-state="{_attr(state.name)}">'
        f"<title>{_text(f'{state.name}: steps {steps}')}</title>"
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="18" rx="9"/>'
        f'<text x="{_n(x + width / 2)}" y="{_n(y + 9 + BADGE_SIZE * 0.36)}"'
        f' text-anchor="middle">{_text(text)}</text></g>'
    )


def _text_svg(cls: str, x: float, y: float, text: str) -> str:
    return f'<text class="{cls}" x="{_n(x)}" y="{_n(y)}">{_text(text)}</text>'


def _bounds(states: list[_State], edges: list[_Edge]) -> Rect:
    rects = [_grow(state.rect, 10) for state in states]  # badges and the final ring
    for edge in edges:
        points = _route_points(edge) if edge.kind in ("side", "under") else [edge.start, edge.end]
        if edge.kind == "self":
            reach = SELF_LOOP * 0.75 * (1 if edge.side == "right" else -1)
            points.append((edge.start[0] + reach, edge.start[1]))
        rects.extend((x, y, x, y) for x, y in points)
        if edge.label_rect:
            rects.append(edge.label_rect)
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )


def _empty_svg(prefix: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{prefix}" class="flow-diagram-svg"'
        f' role="img" aria-labelledby="{prefix}-title" viewBox="0 0 320 64" width="100%"'
        ' style="max-width:320px">'
        f'<title id="{prefix}-title">Flow diagram: no states</title>'
        '<text x="160" y="36" text-anchor="middle" font-size="13"'
        ' fill="var(--body-quiet-color, #666)">No states to draw</text></svg>'
    )


# ---------------------------------------------------------------- small helpers


def _prefix(definition: Any, path: Any, labels: Any) -> str:
    """An id prefix that depends only on the input: deterministic, yet distinct for two
    different diagrams on one page."""
    try:
        blob = json.dumps([definition, path, labels], sort_keys=True, default=repr)
    except (TypeError, ValueError):  # mixed key types, cycles
        blob = repr([definition, path, labels])
    return (
        "fd" + hashlib.sha1(blob.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()[:10]
    )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _one_line(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return ""
    return _SPACES.sub(" ", _str(value)).strip()


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fit(text: str, size: float, width: float, *, bold: bool = False) -> str:
    """`text`, cut with an ellipsis where it would overflow `width` px."""
    if _text_width(text, size, bold=bold) <= width:
        return text
    while text and _text_width(text + "…", size, bold=bold) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _text_width(text: str, size: float, *, bold: bool = False) -> float:
    """An estimate (no font metrics here) by character class, calibrated on DejaVu Sans, a
    wide fallback: narrower system fonts just get more room."""
    total = 0.0
    for char in text:
        if char in "iljtfrI.,:;'!|() ":
            total += 0.32
        elif char in "mwMW@%":
            total += 0.86
        elif char.isupper() or char.isdigit():
            total += 0.64
        elif ord(char) > 0x2E7F:  # CJK and emoji are about square
            total += 1.0
        else:
            total += 0.55
    return total * size * (1.22 if bold else 1.09)


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))


def _attr(value: str) -> str:
    return escape(_NOT_XML.sub("", value).replace("\n", " "))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _n(value: float) -> str:
    rounded = round(value, 1)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.1f}"


def _pt(point: Point) -> str:
    return f"{_n(point[0])},{_n(point[1])}"


def _bezier(p0: Point, p1: Point, p2: Point, p3: Point, t: float) -> Point:
    u = 1 - t
    a, b, c, d = u**3, 3 * u * u * t, 3 * u * t * t, t**3
    return (
        a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
        a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1],
    )


def _dist(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _toward(origin: Point, target: Point, distance: float) -> Point:
    length = _dist(origin, target)
    if not length:
        return origin
    f = distance / length
    return (origin[0] + (target[0] - origin[0]) * f, origin[1] + (target[1] - origin[1]) * f)


def _inside(point: Point, rect: Rect, pad: float) -> bool:
    return rect[0] - pad <= point[0] <= rect[2] + pad and rect[1] - pad <= point[1] <= rect[3] + pad


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _grow(rect: Rect, by: float) -> Rect:
    return (rect[0] - by, rect[1] - by, rect[2] + by, rect[3] + by)
