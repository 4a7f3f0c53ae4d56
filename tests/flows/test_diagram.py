"""The flow diagram: a pure function from a definition (and an execution's path) to SVG."""

import copy
import math
import random
import re
import xml.etree.ElementTree as ET

import pytest
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from contactcenter.flows.diagram import BOX_H, BOX_W, MARGIN, flow_diagram_svg

NS = "{http://www.w3.org/2000/svg}"


def _state(name, type_, transitions, **properties):
    return {"name": name, "type": type_, "properties": properties, "transitions": transitions}


def _match(next_, friendly_name, value):
    condition = {"friendly_name": friendly_name, "type": "equal_to", "value": value}
    return {"event": "match", "next": next_, "conditions": [condition]}


# The sample of the docs: cancel an appointment, or talk to an agent.
FLOW = {
    "initial_state": "Trigger",
    "states": [
        _state(
            "Trigger",
            "trigger",
            [{"event": "incomingMessage", "next": "menu"}, {"event": "incomingRequest"}],
        ),
        _state(
            "menu",
            "send-and-wait-for-reply",
            [
                {"event": "incomingMessage", "next": "answer"},
                {"event": "timeout", "next": "goodbye"},
                {"event": "deliveryFailure"},
            ],
            body="Reply 1 to cancel your appointment, 2 to talk to an agent.",
        ),
        _state(
            "answer",
            "split-based-on",
            [
                {"event": "noMatch", "next": "menu"},
                _match("ask_document", "Cancel", "1"),
                {
                    "event": "match",
                    "next": "agent",
                    "conditions": [{"type": "equal_to", "value": "2"}],
                },
            ],
            input="{{widgets.menu.inbound.Body}}",
        ),
        _state(
            "ask_document",
            "send-and-wait-for-reply",
            [{"event": "incomingMessage", "next": "save"}, {"event": "timeout", "next": "goodbye"}],
            body="Your document number, please.",
        ),
        _state("save", "set-variables", [{"event": "next", "next": "cancel"}], variables=[]),
        _state(
            "cancel",
            "run-function",
            [{"event": "success", "next": "done"}, {"event": "fail", "next": "failed"}],
            function="cancel_appointment",
        ),
        _state("done", "send-message", [{"event": "sent"}], body="Cancelled. See you!"),
        _state("failed", "send-message", [{"event": "sent"}], body="Sorry, that did not work."),
        _state("agent", "send-to-agent", [{"event": "callComplete"}], workflow="Appointments"),
        _state("goodbye", "send-message", [{"event": "sent"}], body="No answer: goodbye!"),
    ],
}
TRANSITIONS_WITH_NEXT = 11

PATH = [
    {"name": "Trigger", "event": "incomingMessage", "index": 0},
    {"name": "menu", "event": "incomingMessage", "index": 1},
    {"name": "answer", "event": "noMatch", "index": 2},
    {"name": "menu", "event": "incomingMessage", "index": 3},
    {"name": "answer", "event": "match", "index": 4},
    {"name": "ask_document", "event": "incomingMessage", "index": 5},
    {"name": "save", "event": "next", "index": 6},
    {"name": "cancel", "event": "success", "index": 7},
    {"name": "done", "event": "", "index": 8},
]


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def _states(root: ET.Element) -> dict[str, ET.Element]:
    groups = [g for g in root.iter(f"{NS}g") if "state" in _classes(g)]
    return {g.get("data-state"): g for g in groups}


def _edges(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{NS}g") if "edge" in _classes(g)]


def _labels(root: ET.Element) -> dict[str, str]:
    """Edge id → its label text."""
    return {
        g.get("data-edge"): g.find(f"{NS}text").text
        for g in root.iter(f"{NS}g")
        if "fd-label" in _classes(g)
    }


def _box(group: ET.Element) -> tuple[float, float]:
    rect = next(r for r in group.iter(f"{NS}rect") if "fd-box" in _classes(r))
    return float(rect.get("x")), float(rect.get("y"))


def _texts(group: ET.Element) -> list[str]:
    return [t.text or "" for t in group.iter(f"{NS}text")]


def test_svg_root_is_an_accessible_scalable_image():
    root = _parse(flow_diagram_svg(FLOW))
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.find(f"{NS}title").text.startswith("Flow diagram")
    x, y, width, height = map(float, root.get("viewBox").split())
    boxes = [_box(g) for g in _states(root).values()]
    assert x <= min(bx for bx, _ in boxes) and y <= min(by for _, by in boxes)
    assert x + width >= max(bx for bx, _ in boxes) + BOX_W
    assert y + height >= max(by for _, by in boxes) + BOX_H
    assert "var(--body-fg" in flow_diagram_svg(FLOW)  # themed by the admin's variables


def test_one_box_per_state_with_name_type_and_summary():
    states = _states(_parse(flow_diagram_svg(FLOW)))
    assert set(states) == {s["name"] for s in FLOW["states"]}
    for name, group in states.items():
        assert name in _texts(group)
    assert "Send & wait for reply" in _texts(states["menu"])
    assert any(t.startswith("Reply 1 to cancel") for t in _texts(states["menu"]))
    assert any(t.startswith("{{widgets.menu.inbound") for t in _texts(states["answer"]))
    assert "cancel_appointment" in _texts(states["cancel"])
    assert "Appointments" in _texts(states["agent"])


def test_type_labels_come_from_the_labels_mapping():
    labels = {"send-and-wait-for-reply": "Enviar y esperar", "trigger": "Disparador"}
    states = _states(_parse(flow_diagram_svg(FLOW, labels=labels)))
    assert "Enviar y esperar" in _texts(states["menu"])
    assert "Disparador" in _texts(states["Trigger"])
    assert "Set variables" in _texts(states["save"])  # not in the mapping: the default


def test_http_request_summary_is_method_and_host():
    flow = {
        "states": [
            _state("Trigger", "trigger", [{"event": "incomingMessage", "next": "call"}]),
            _state(
                "call", "make-http-request", [], method="post", url="https://api.example.com/x?y=1"
            ),
        ]
    }
    states = _states(_parse(flow_diagram_svg(flow)))
    assert "POST api.example.com" in _texts(states["call"])


def test_one_arrow_per_transition_with_a_next_and_its_label():
    root = _parse(flow_diagram_svg(FLOW))
    edges = _edges(root)
    assert len(edges) == TRANSITIONS_WITH_NEXT
    for edge in edges:
        path = edge.find(f"{NS}path")
        assert path.get("d").startswith("M")
        assert path.get("marker-end", "").startswith("url(#")
    labels = _labels(root)
    by_pair = {(e.get("data-source"), e.get("data-target")): labels[e.get("id")] for e in edges}
    assert by_pair[("Trigger", "menu")] == "incomingMessage"
    assert by_pair[("answer", "menu")] == "noMatch"
    assert by_pair[("answer", "ask_document")] == "Cancel"  # the condition's friendly name
    assert by_pair[("answer", "agent")] == "equal_to 2"  # no friendly name: type and value


def test_long_labels_are_truncated():
    flow = copy.deepcopy(FLOW)
    flow["states"][2]["transitions"][1]["conditions"][0]["friendly_name"] = "x" * 80
    root = _parse(flow_diagram_svg(flow))
    texts = list(_labels(root).values())
    long = [t for t in texts if t.startswith("xxx")]
    assert long and len(long[0]) <= 24 and long[0].endswith("…")


def test_user_text_is_escaped():
    evil = "<script>alert(1)</script>"
    flow = {
        "initial_state": evil,
        "states": [
            _state(evil, "trigger", [{"event": "incomingMessage", "next": "say"}]),
            _state("say", "send-message", [{"event": "sent", "next": evil}], body=evil),
        ],
    }
    svg = flow_diagram_svg(flow, path=[{"name": evil, "event": "incomingMessage", "index": 0}])
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    root = _parse(svg)
    assert evil in _states(root)
    assert not list(root.iter("script")) and not list(root.iter(f"{NS}script"))


def test_control_characters_do_not_break_the_xml():
    flow = {"states": [_state("bad\x00\x0bname", "send-message", [], body="\x01hi")]}
    _parse(flow_diagram_svg(flow))


def test_offsets_are_used_when_every_state_has_one():
    flow = copy.deepcopy(FLOW)
    offsets = {}
    for i, state in enumerate(flow["states"]):
        # Negative, Studio-like, and in an order unlike the BFS layers.
        offsets[state["name"]] = (-400 + (i % 3) * 300, -200 + (i // 3) * 250)
        state["properties"]["offset"] = dict(zip(("x", "y"), offsets[state["name"]], strict=True))
    boxes = {name: _box(g) for name, g in _states(_parse(flow_diagram_svg(flow))).items()}
    assert min(x for x, _ in boxes.values()) == MARGIN
    assert min(y for _, y in boxes.values()) == MARGIN
    names = list(offsets)
    for a in names:
        for b in names:
            for axis in (0, 1):
                if offsets[a][axis] < offsets[b][axis]:
                    assert boxes[a][axis] < boxes[b][axis]
                elif offsets[a][axis] == offsets[b][axis]:
                    assert boxes[a][axis] == boxes[b][axis]
    _assert_no_overlap(boxes)


def test_bunched_offsets_are_scaled_apart():
    flow = copy.deepcopy(FLOW)
    for i, state in enumerate(flow["states"]):
        state["properties"]["offset"] = {"x": (i % 2) * 40, "y": (i // 2) * 20}
    boxes = {name: _box(g) for name, g in _states(_parse(flow_diagram_svg(flow))).items()}
    _assert_no_overlap(boxes)


def test_without_offsets_layers_go_down_from_the_trigger():
    flow = copy.deepcopy(FLOW)
    flow["states"][1]["properties"]["offset"] = {"x": 10, "y": 10}  # only one: ignored
    boxes = {name: _box(g) for name, g in _states(_parse(flow_diagram_svg(flow))).items()}
    top = min(y for _, y in boxes.values())
    assert boxes["Trigger"][1] == top
    assert [name for name, (_, y) in boxes.items() if y == top] == ["Trigger"]
    for parent, child in [
        ("Trigger", "menu"),
        ("menu", "answer"),
        ("answer", "ask_document"),
        ("answer", "agent"),
        ("ask_document", "save"),
        ("save", "cancel"),
        ("cancel", "done"),
        ("cancel", "failed"),
    ]:
        assert boxes[child][1] > boxes[parent][1], (parent, child)
    assert boxes["ask_document"][1] == boxes["agent"][1]  # siblings share a layer
    assert boxes["done"][1] == boxes["failed"][1]
    _assert_no_overlap(boxes)


def test_unreachable_states_go_in_a_last_layer():
    flow = copy.deepcopy(FLOW)
    flow["states"].append(_state("orphan", "send-message", [{"event": "sent", "next": "menu"}]))
    boxes = {name: _box(g) for name, g in _states(_parse(flow_diagram_svg(flow))).items()}
    assert boxes["orphan"][1] > max(y for name, (_, y) in boxes.items() if name != "orphan")


def test_an_unreachable_chain_is_laid_out_below_as_its_own_tree():
    flow = copy.deepcopy(FLOW)
    flow["states"] += [
        _state("draft_a", "send-message", [{"event": "sent", "next": "draft_b"}]),
        _state("draft_b", "send-message", [{"event": "sent", "next": "draft_a"}]),
        _state("draft_c", "send-message", [{"event": "sent", "next": "draft_b"}]),
    ]
    boxes = {name: _box(g) for name, g in _states(_parse(flow_diagram_svg(flow))).items()}
    drafts = {"draft_a", "draft_b", "draft_c"}
    lowest_reachable = max(y for name, (_, y) in boxes.items() if name not in drafts)
    assert all(boxes[name][1] > lowest_reachable for name in drafts)
    assert boxes["draft_b"][1] > boxes["draft_c"][1]  # the root (nothing leads to it) on top


def test_a_self_loop_is_drawn():
    flow = copy.deepcopy(FLOW)
    flow["states"][1]["transitions"].append({"event": "deliveryFailure", "next": "menu"})
    root = _parse(flow_diagram_svg(flow))
    loops = [e for e in _edges(root) if e.get("data-source") == e.get("data-target") == "menu"]
    assert len(loops) == 1 and _labels(root)[loops[0].get("id")] == "deliveryFailure"


def test_loops_back_up_go_round_the_side():
    root = _parse(flow_diagram_svg(FLOW))
    boxes = {name: _box(g) for name, g in _states(root).items()}
    loop = next(
        e
        for e in _edges(root)
        if e.get("data-source") == "answer" and e.get("data-target") == "menu"
    )
    xs = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", loop.find(f"{NS}path").get("d"))[::2]]
    left, right = boxes["menu"][0], boxes["menu"][0] + BOX_W
    assert min(xs) < left or max(xs) > right  # outside the two boxes, not through them


def test_path_highlights_visited_states_and_taken_transitions():
    root = _parse(flow_diagram_svg(FLOW, path=PATH))
    states = _states(root)
    visited = {name for name, g in states.items() if "visited" in _classes(g)}
    assert visited == {step["name"] for step in PATH}
    assert all("visited" not in _classes(states[n]) for n in ("agent", "goodbye", "failed"))
    assert "final" in _classes(states["done"])
    assert [n for n, g in states.items() if "final" in _classes(g)] == ["done"]
    taken = {
        (e.get("data-source"), e.get("data-target")) for e in _edges(root) if "taken" in _classes(e)
    }
    assert taken == {
        ("Trigger", "menu"),
        ("menu", "answer"),
        ("answer", "menu"),
        ("answer", "ask_document"),
        ("ask_document", "save"),
        ("save", "cancel"),
        ("cancel", "done"),
    }
    taken_marker = {
        e.find(f"{NS}path").get("marker-end") for e in _edges(root) if "taken" in _classes(e)
    }
    other_marker = {
        e.find(f"{NS}path").get("marker-end") for e in _edges(root) if "taken" not in _classes(e)
    }
    assert len(taken_marker) == 1 and len(other_marker) == 1 and taken_marker != other_marker


def test_path_badges_show_the_visit_order():
    root = _parse(flow_diagram_svg(FLOW, path=PATH))
    badges = {
        g.get("data-state"): g.find(f"{NS}text").text
        for g in root.iter(f"{NS}g")
        if "fd-badge" in _classes(g)
    }
    assert badges == {
        "Trigger": "1",
        "menu": "2, 4",
        "answer": "3, 5",
        "ask_document": "6",
        "save": "7",
        "cancel": "8",
        "done": "9",
    }


def test_a_split_match_is_told_apart_by_its_target():
    path = [
        {"name": "answer", "event": "match", "index": 0},
        {"name": "agent", "event": "", "index": 1},
    ]
    root = _parse(flow_diagram_svg(FLOW, path=path))
    taken = [
        (e.get("data-source"), e.get("data-target")) for e in _edges(root) if "taken" in _classes(e)
    ]
    assert taken == [("answer", "agent")]


def test_without_a_path_nothing_is_highlighted_or_muted():
    svg = flow_diagram_svg(FLOW)
    root = _parse(svg)
    for group in root.iter(f"{NS}g"):
        assert not _classes(group) & {"visited", "taken", "final", "muted"}


def test_output_is_deterministic_and_ids_differ_between_diagrams():
    first = flow_diagram_svg(FLOW, path=PATH)
    assert first == flow_diagram_svg(copy.deepcopy(FLOW), path=copy.deepcopy(PATH))
    other = flow_diagram_svg(FLOW)
    first_id, other_id = _parse(first).get("id"), _parse(other).get("id")
    assert first_id != other_id
    for svg, prefix in ((first, first_id), (other, other_id)):
        markers = [m.get("id") for m in _parse(svg).iter(f"{NS}marker")]
        assert markers and all(m.startswith(prefix) for m in markers)
        assert f"#{prefix} " in svg  # its styles are scoped to itself


def test_unknown_types_are_drawn_with_a_warning():
    flow = {
        "states": [
            _state("Trigger", "trigger", [{"event": "x", "next": "odd"}]),
            _state("odd", "capture-payments", []),
        ]
    }
    states = _states(_parse(flow_diagram_svg(flow)))
    assert "unknown" in _classes(states["odd"])
    assert any("capture-payments" in t for t in _texts(states["odd"]))
    assert "unknown" not in _classes(states["Trigger"])


@pytest.mark.parametrize(
    "definition",
    [
        {},
        {"states": None},
        {"states": "nope"},
        {"states": [None, 5, "x", {}, {"name": ""}, {"name": 5}]},
        {"states": [{"name": "a", "transitions": "nope"}, {"name": "a", "type": "trigger"}]},
        {
            "states": [
                {"name": "a", "type": 7, "properties": [], "transitions": [None, 1, {"next": "b"}]}
            ]
        },
        {"states": [{"name": "a", "transitions": [{"event": "x", "next": "a"}]}]},  # a self-loop
        {"states": [{"name": "a", "properties": {"offset": {"x": "1", "y": None}}}]},
        {"states": [{"name": n, "properties": {"offset": {"x": 0, "y": 0}}} for n in "abc"]},
        {
            "states": [
                {"name": "a", "transitions": [{"event": "match", "next": "a", "conditions": "x"}]}
            ]
        },
        {
            "initial_state": ["x"],
            "states": [{"name": "a", "properties": {"offset": {"x": float("nan"), "y": 1}}}],
        },
        {
            "states": [
                {
                    "name": "a",
                    "properties": {"body": {"x": 1}, "url": "http://[::1"},
                    "type": "make-http-request",
                }
            ]
        },
        {1: "mixed", "a": "keys", "states": []},
        [],
        None,
    ],
)
def test_malformed_definitions_do_not_crash(definition):
    _parse(flow_diagram_svg(definition))
    _parse(
        flow_diagram_svg(
            definition, path=[None, {"name": 3}, {"name": "a", "event": None}, {"name": "zz"}]
        )
    )


@pytest.mark.parametrize("seed", range(60))
def test_random_flows_render_well_formed(seed):
    """Random graphs, bunched or scattered offsets (or none): no crash, valid XML, every
    transition drawn."""
    rng = random.Random(seed)
    count = rng.randint(1, 14)
    names = [f"s{i}" for i in range(count)]
    types = ["trigger", "send-message", "split-based-on", "run-function", "odd-type"]
    spread = rng.choice([0, 30, 120, 400])
    states = []
    for name in names:
        transitions = [
            {"event": f"e{j}", "next": rng.choice([*names, "missing", None])}
            for j in range(rng.randint(0, 4))
        ]
        properties = {
            "offset": {"x": rng.randint(-spread, spread), "y": rng.randint(-spread, spread)}
        }
        states.append(
            _state(name, rng.choice(types), transitions, **(properties if spread else {}))
        )
    path = [
        {"name": rng.choice(names), "event": "e0", "index": i} for i in range(rng.randint(0, 6))
    ]
    svg = flow_diagram_svg({"initial_state": "s0", "states": states}, path=path)
    root = _parse(svg)
    drawn = sum(1 for s in states for t in s["transitions"] if t["next"] in names)
    assert len(_states(root)) == count and len(_edges(root)) == drawn
    numbers = root.get("viewBox").split()
    for element in root.iter(f"{NS}rect"):
        numbers += [element.get(a) for a in ("x", "y", "width", "height") if element.get(a)]
    for element in root.iter(f"{NS}path"):
        numbers += re.findall(r"[-\d.]+", re.sub(r"[A-Za-z,]", " ", element.get("d", "")))
    assert all(math.isfinite(float(n)) for n in numbers)


def test_malformed_path_and_labels_do_not_crash():
    _parse(flow_diagram_svg(FLOW, path="nope", labels={"trigger": 5}))  # type: ignore[arg-type]
    _parse(flow_diagram_svg(FLOW, labels=["not", "a", "dict"]))  # type: ignore[arg-type]
    _parse(flow_diagram_svg(FLOW, path=[{"name": "ghost", "event": "x"}, {"name": "menu"}]))


def test_edges_to_unknown_states_are_skipped():
    flow = copy.deepcopy(FLOW)
    flow["states"][0]["transitions"].append({"event": "incomingParent", "next": "deleted"})
    assert len(_edges(_parse(flow_diagram_svg(flow)))) == TRANSITIONS_WITH_NEXT


def test_a_large_flow_renders():
    states = [
        _state(
            f"s{i}",
            "send-and-wait-for-reply" if i % 3 else "split-based-on",
            [{"event": "a", "next": f"s{i + 1}"}, {"event": "b", "next": f"s{(i * 7) % 120}"}],
        )
        for i in range(120)
    ]
    root = _parse(flow_diagram_svg({"initial_state": "s0", "states": states}))
    assert len(_states(root)) == 120


def test_the_admin_include_wraps_the_svg():
    html = render_to_string(
        "admin/flows/diagram.html", {"diagram": mark_safe(flow_diagram_svg(FLOW))}
    )
    assert '<div class="flow-diagram">' in html and "<svg" in html
    assert ".flow-diagram" in html and "overflow-x: auto" in html
    assert "<h2>" in html


def _assert_no_overlap(boxes: dict[str, tuple[float, float]]) -> None:
    items = list(boxes.items())
    for i, (a, (ax, ay)) in enumerate(items):
        for b, (bx, by) in items[:i]:
            apart = abs(ax - bx) >= BOX_W or abs(ay - by) >= BOX_H
            assert apart, f"{a} overlaps {b}"


def test_a_bilingual_body_shows_its_first_branchs_words_not_the_liquid_tags():
    body = "{% if flow.variables.language == 'es' %}Hola, ¿qué tal?{% else %}Hi there{% endif %}"
    definition = {
        "initial_state": "Trigger",
        "states": [
            _state("Trigger", "trigger", [{"event": "incomingMessage", "next": "hello"}]),
            _state("hello", "send-message", [], body=body),
        ],
    }
    texts = _texts(_states(_parse(flow_diagram_svg(definition)))["hello"])
    assert "Hola, ¿qué tal?" in texts
    assert not any("{%" in text for text in texts)
