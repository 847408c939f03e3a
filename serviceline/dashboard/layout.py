"""The line as a picture: columns by group and data flow, computed from the topology alone.

Services go into columns by how far down the copies they sit (longest path from an owner that
copies nothing), kept in their group's block of columns. Between two columns runs a gap where
edges bend and where each copy's label sits; a line that skips columns passes them in a lane of
its own, so no line crosses a box. Order within a column comes from barycentre sweeps, heights
from an isotonic fit of each item to its neighbours: no coordinates are written by hand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from serviceline.model.topology import CommandPath, Edge, Kind, Topology

NODE_WIDTH = 104.0
NODE_HEIGHT = 62.0
LABEL_WIDTH = 136.0
LABEL_HEADER = 15.0
ROW_TOP = 17.0  # a row's first line, the entity, in bold
ROW_LINE = 11.0  # each line of text below it
ROW_LINES = 3  # the lines below the entity a row has room for unless told otherwise
GUTTER = 16.0  # room beside a column's boxes for lines to bend
SPACING = 10.0  # between boxes stacked in one column
LANE = 8.0  # between lines passing a column side by side: apart enough to follow by eye
GRAVITY = 0.5  # how strongly every item is held towards the middle line
CENTRING = 0.6  # how far each column is moved towards being centred on it, at each sweep
MARGIN = 8.0
GROUP_PAD = 8.0
GROUP_FONT = 11.5
GROUP_LINE = 14.0
# rough advance widths of the page's sans-serif in ems, to fit text into boxes drawn server-side
CHAR_WIDTH = 0.5
BOLD_WIDTH = 0.53

Point = tuple[float, float]


@dataclass(frozen=True)
class Link:
    """All that is drawn from one end to another: copies of one pair, or commands.

    A command every member of a group sends to the same target is one link from the group.
    """

    source: str  # a service, or a group's kind for a group's commands
    target: str
    copies: tuple[Edge, ...] = ()
    commands: tuple[CommandPath, ...] = ()

    @property
    def lines(self) -> int:
        return len(self.copies) or 1


@dataclass(eq=False)
class Item:
    """One thing stacked in a column: a service, a link's label box, or a link passing by."""

    slot: int
    height: float
    node: str | None = None
    link: Link | None = None
    label: bool = False
    y: float = 0.0  # centre
    neighbours: list[Item] = field(default_factory=list, repr=False)

    @property
    def top(self) -> float:
        return self.y - self.height / 2


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class NodeBox(Box):
    name: str
    kind: Kind


@dataclass(frozen=True)
class GroupBox(Box):
    kind: Kind
    title: tuple[str, ...]  # its lines


@dataclass(frozen=True)
class LabelBox(Box):
    link: Link
    rows: tuple[tuple[Edge, Box], ...]


@dataclass(frozen=True)
class Route:
    """One line: a copy edge, or a link's commands; points joined by horizontal-tangent curves."""

    points: tuple[Point, ...]
    edge: Edge | None = None
    commands: tuple[CommandPath, ...] = ()
    source: str = ""
    target: str = ""


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    nodes: dict[str, NodeBox]
    groups: tuple[GroupBox, ...]
    labels: tuple[LabelBox, ...]
    copies: tuple[Route, ...]
    commands: tuple[Route, ...]


def fit(text: str, width: float, size: float, bold: bool = False) -> str:
    """`text`, cut short with an ellipsis where it would overflow `width` pixels."""
    most = int(width / (size * (BOLD_WIDTH if bold else CHAR_WIDTH)))
    return text if len(text) <= most else text[: max(most - 1, 1)].rstrip() + "…"


def wrap(
    text: str, width: float, size: float, lines: int | None = None, bold: bool = False
) -> list[str]:
    """Words into lines of `width` pixels: all of them, or at most `lines`, the last cut short."""
    return _joined(text.split(), " ", width, size, lines, bold)


def wrap_parts(parts: Sequence[str], width: float, size: float, bold: bool = False) -> list[str]:
    """`a · b · c` into as many lines of `width` pixels as it takes, breaking between parts."""
    joined = _joined(parts, " · ", width, size, None, bold)
    return [piece for line in joined for piece in wrap(line, width, size, bold=bold)]


def _joined(
    parts: Sequence[str], by: str, width: float, size: float, lines: int | None, bold: bool
) -> list[str]:
    most = int(width / (size * (BOLD_WIDTH if bold else CHAR_WIDTH)))
    wrapped: list[str] = []
    for word in parts:
        if wrapped and len(wrapped[-1]) + len(by) + len(word) <= most:
            wrapped[-1] += by + word
        else:
            wrapped.append(word)
    if lines is not None and len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], " ".join(wrapped[lines - 1 :])]
    return [fit(line, width, size, bold) for line in wrapped]


def ranks(topology: Topology) -> dict[str, int]:
    """How far down the copies each service sits: the longest chain of copies that reaches it."""
    rank = {service.name: 0 for service in topology.services}
    for _ in topology.services:
        changed = False
        for edge in topology.edges:
            if rank[edge.consumer] < rank[edge.owner] + 1:
                rank[edge.consumer] = rank[edge.owner] + 1
                changed = True
        if not changed:
            return rank
    raise ValueError("the copy edges form a cycle: no service can be drawn after its owners")


def columns(topology: Topology) -> dict[str, int]:
    """Each service's column: groups side by side in data-flow order, ranks within a group."""
    rank = ranks(topology)
    members: dict[Kind, list[str]] = defaultdict(list)
    for service in topology.services:
        members[service.kind].append(service.name)

    def flow(kind: Kind) -> float:
        return sum(rank[name] for name in members[kind]) / len(members[kind])

    column: dict[str, int] = {}
    start = 0
    for kind in sorted(members, key=flow):
        levels = sorted({rank[name] for name in members[kind]})
        for name in members[kind]:
            column[name] = start + levels.index(rank[name])
        start += len(levels)
    return column


def links(topology: Topology) -> list[Link]:
    """Copies bundled by pair; commands bundled by group where the whole group sends them."""
    found: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for edge in topology.edges:
        found[edge.owner, edge.consumer].append(edge)
    result = [
        Link(source, target, copies=tuple(edges)) for (source, target), edges in found.items()
    ]
    kinds = {service.name: service.kind for service in topology.services}
    members: dict[Kind, set[str]] = defaultdict(set)
    for name, kind in kinds.items():
        members[kind].add(name)
    by_target: dict[tuple[Kind, str], list[CommandPath]] = defaultdict(list)
    for command in topology.commands:
        by_target[kinds[command.caller], command.target].append(command)
    for (kind, target), commands in by_target.items():
        callers = {command.caller for command in commands}
        if len(members[kind]) > 1 and callers == members[kind]:
            result.append(Link(kind.value, target, commands=tuple(commands)))
        else:
            result += [Link(c.caller, target, commands=(c,)) for c in commands]
    return result


def row_height(lines: int) -> float:
    """A copy's row with `lines` lines of text under its entity."""
    return ROW_TOP + ROW_LINE * lines + 4


def _label_height(link: Link, lines: Mapping[str, int]) -> float:
    rows = sum(row_height(lines.get(edge.name, ROW_LINES)) for edge in link.copies)
    return LABEL_HEADER + rows + 4


def _chain_slots(start: int, end: int) -> list[int]:
    """The slots between two columns' slots a line passes, in the order it passes them."""
    step = 1 if end > start else -1
    return list(range(start + step, end, step))


@dataclass
class _Grid:
    slots: list[list[Item]]
    chains: list[tuple[Link, list[Item]]]  # each link's items from its source to its target

    def connect(self) -> None:
        for _, chain in self.chains:
            for one, other in pairwise(chain):
                one.neighbours.append(other)
                other.neighbours.append(one)


def _grid(
    topology: Topology, lines: Mapping[str, int]
) -> tuple[_Grid, dict[str, int], dict[str, int]]:
    """Every service in its column's slot, every link's chain through the slots between its
    ends, its label in the gap with the least in it so far; with the columns and first order."""
    column = columns(topology)
    count = max(column.values()) + 1
    slots: list[list[Item]] = [[] for _ in range(2 * count - 1)]
    nodes = {}
    for service in topology.services:
        item = Item(2 * column[service.name], NODE_HEIGHT, node=service.name)
        slots[item.slot].append(item)
        nodes[service.name] = item
    group_columns: dict[str, list[int]] = defaultdict(list)
    for service in topology.services:
        group_columns[service.kind.value].append(column[service.name])
    load: dict[int, float] = defaultdict(float)
    chains: list[tuple[Link, list[Item]]] = []
    drawn = links(topology)
    # copies with fewest places for a label first, so the others can go where there is room
    for link in sorted(drawn, key=lambda lk: _span(lk, column)):
        target = nodes[link.target]
        if link.source in nodes:
            source = nodes[link.source]
        else:
            spanned = group_columns[link.source]
            nearest = min(spanned, key=lambda c: abs(c - column[link.target]))
            source = Item(2 * nearest, 0.0, link=link)
            slots[source.slot].append(source)
        passed = _chain_slots(source.slot, target.slot)
        label_slot = None
        if link.copies:
            # the emptiest gap; on a tie the one nearest the consumer
            label_slot = min(reversed(passed[::2]), key=lambda s: load[s])
            load[label_slot] += _label_height(link, lines)
        chain = [source]
        for slot in passed:
            is_label = slot == label_slot
            height = _label_height(link, lines) if is_label else LANE * (link.lines - 1)
            item = Item(slot, height, link=link, label=is_label)
            slots[slot].append(item)
            chain.append(item)
        chain.append(target)
        chains.append((link, chain))
    grid = _Grid(slots, chains)
    grid.connect()
    return grid, column, {s.name: i for i, s in enumerate(topology.services)}


def _span(link: Link, column: dict[str, int]) -> int:
    if not link.copies:
        return len(column)
    return abs(column[link.target] - column[link.source])


def _order(grid: _Grid, first: dict[str, int]) -> None:
    """Barycentre sweeps, then swaps of neighbours while a swap saves crossings."""
    for slot in grid.slots:
        slot.sort(key=lambda item: first.get(item.node or "", len(first)))
    best = [list(slot) for slot in grid.slots]
    fewest = _crossings(grid.slots)
    forward = list(range(1, len(grid.slots)))
    for sweep in range(8):
        down = sweep % 2 == 0
        for s in forward if down else forward[::-1][1:]:
            side = s - 1 if down else s + 1
            position = {id(item): i for i, item in enumerate(grid.slots[side])}
            here = {id(item): i for i, item in enumerate(grid.slots[s])}

            def centre(
                item: Item,
                position: dict[int, int] = position,
                here: dict[int, int] = here,
                side: int = side,
            ) -> float:
                near = [position[id(n)] for n in item.neighbours if n.slot == side]
                return sum(near) / len(near) if near else here[id(item)]

            grid.slots[s].sort(key=centre)
        _transpose(grid.slots)
        crossings = _crossings(grid.slots)
        if crossings < fewest:
            fewest = crossings
            best = [list(slot) for slot in grid.slots]
    grid.slots[:] = best


def _transpose(slots: list[list[Item]]) -> None:
    improved = True
    while improved:
        improved = False
        for s, slot in enumerate(slots):
            for i in range(len(slot) - 1):
                one, other = slot[i], slot[i + 1]
                if _between(slots, s, other, one) < _between(slots, s, one, other):
                    slot[i], slot[i + 1] = other, one
                    improved = True


def _between(slots: list[list[Item]], s: int, upper: Item, lower: Item) -> int:
    """Crossings of the lines of two neighbours in a column, with `upper` above `lower`."""
    total = 0
    for side in (s - 1, s + 1):
        if not 0 <= side < len(slots):
            continue
        position = {id(item): i for i, item in enumerate(slots[side])}
        for a in upper.neighbours:
            for b in lower.neighbours:
                if a.slot == side == b.slot and position[id(a)] > position[id(b)]:
                    total += _weight(upper, a) * _weight(lower, b)
    return total


def _weight(item: Item, neighbour: Item) -> int:
    link = item.link or neighbour.link
    return link.lines if link is not None else 1


def _crossings(slots: Sequence[list[Item]]) -> int:
    total = 0
    for s, slot in enumerate(slots[:-1]):
        position = {id(item): i for i, item in enumerate(slots[s + 1])}
        pairs = sorted(
            (i, position[id(n)], _weight(item, n))
            for i, item in enumerate(slot)
            for n in item.neighbours
            if n.slot == s + 1
        )
        total += sum(
            w1 * w2
            for k, (_, low, w1) in enumerate(pairs)
            for i2, high, w2 in pairs[k + 1 :]
            if high < low and i2 != pairs[k][0]
        )
    return total


def _fit(items: Sequence[Item], wanted: Sequence[float]) -> None:
    """Centres as near the wanted ones as the order and the spacing allow (least squares)."""
    offsets = [0.0]
    for one, other in pairwise(items):
        offsets.append(offsets[-1] + one.height / 2 + _gap(one, other) + other.height / 2)
    blocks: list[list[float]] = []  # [mean, weight]
    for target in (w - o for w, o in zip(wanted, offsets, strict=True)):
        blocks.append([target, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight = blocks.pop()
            blocks[-1][0] = (blocks[-1][0] * blocks[-1][1] + mean * weight) / (
                blocks[-1][1] + weight
            )
            blocks[-1][1] += weight
    fitted = [mean for mean, weight in blocks for _ in range(int(weight))]
    for item, z, offset in zip(items, fitted, offsets, strict=True):
        item.y = z + offset


def _gap(one: Item, other: Item) -> float:
    boxes = (one.node or one.label) and (other.node or other.label)
    return SPACING if boxes else LANE * 2


def _place(grid: _Grid) -> None:
    for slot in grid.slots:
        _fit(slot, [0.0] * len(slot))
    order = list(range(len(grid.slots)))
    for sweep in range(24):
        for s in order if sweep % 2 == 0 else order[::-1]:
            items = grid.slots[s]
            # each item between its neighbours, held towards one middle line, and the column
            # towards being centred on it, so the columns do not drift apart into a diagonal
            wanted = [
                sum(n.y for n in item.neighbours) / (len(item.neighbours) + GRAVITY)
                for item in items
            ]
            _fit(items, wanted)
            if items:
                middle = (items[0].top + items[-1].top + items[-1].height) / 2
                for item in items:
                    item.y -= middle * CENTRING


def _bands(count: int) -> list[tuple[float, float]]:
    """Where each slot's boxes stand, left to right: a gap has room beside its labels to bend."""
    bands = []
    x = MARGIN + GROUP_PAD
    for s in range(count):
        if s % 2:
            bands.append((x + GUTTER, x + GUTTER + LABEL_WIDTH))
            x += GUTTER + LABEL_WIDTH + GUTTER
        else:
            bands.append((x, x + NODE_WIDTH))
            x += NODE_WIDTH
    return bands


def layout(topology: Topology, lines: Mapping[str, int] | None = None) -> Layout:
    """The picture, each copy's row tall enough for the lines of text `lines` gives it."""
    grid, column, first = _grid(topology, lines or {})
    _order(grid, first)
    _place(grid)
    bands = _bands(len(grid.slots))
    kinds = {service.name: service.kind for service in topology.services}

    # the groups' boxes take what lies in their columns; their headings need room above
    group_slots: dict[Kind, list[int]] = defaultdict(list)
    for name, kind in kinds.items():
        group_slots[kind].append(2 * column[name])
    spans = {kind: range(min(s), max(s) + 1) for kind, s in group_slots.items()}
    inside = {
        kind: [item for s in span for item in grid.slots[s] if item.node or item.label]
        for kind, span in spans.items()
    }
    titles = {
        kind: wrap(
            topology.group_title(kind).upper(),
            bands[span.stop - 1][1] - bands[span.start][0],
            GROUP_FONT,
            2,
            bold=True,
        )
        for kind, span in spans.items()
    }
    heading = {kind: GROUP_LINE * len(lines) + 6 for kind, lines in titles.items()}
    top = min(
        min(item.top for item in items) - GROUP_PAD - heading[kind]
        for kind, items in inside.items()
    )
    every = [item for slot in grid.slots for item in slot]
    top = min(top, min(item.top for item in every))
    shift = MARGIN - top
    for item in every:
        item.y += shift

    nodes = {
        item.node: NodeBox(
            bands[item.slot][0], item.top, NODE_WIDTH, item.height, item.node, kinds[item.node]
        )
        for item in every
        if item.node
    }
    groups = []
    for kind, span in spans.items():
        left = bands[span.start][0] - GROUP_PAD
        right = bands[span.stop - 1][1] + GROUP_PAD
        upper = min(item.top for item in inside[kind]) - GROUP_PAD - heading[kind]
        lower = max(item.top + item.height for item in inside[kind]) + GROUP_PAD
        box = GroupBox(left, upper, right - left, lower - upper, kind, tuple(titles[kind]))
        groups.append(box)
    group_box = {g.kind.value: g for g in groups}

    labels = []
    rows: dict[str, float] = {}  # edge name -> the middle of its row
    for item in every:
        if item.label and item.link is not None:
            x0 = bands[item.slot][0]
            boxed = []
            y = item.top + LABEL_HEADER
            for edge in item.link.copies:
                row = Box(x0, y, LABEL_WIDTH, row_height((lines or {}).get(edge.name, ROW_LINES)))
                boxed.append((edge, row))
                rows[edge.name] = row.y + row.height / 2
                y += row.height
            labels.append(LabelBox(x0, item.top, LABEL_WIDTH, item.height, item.link, tuple(boxed)))

    routes = _routes(grid, bands, nodes, group_box, rows)
    right = max(band[1] for band in bands) + GROUP_PAD + MARGIN
    bottom = max(max(item.top + item.height for item in every), max(g.y + g.height for g in groups))
    return Layout(
        width=right,
        height=bottom + MARGIN,
        nodes=nodes,
        groups=tuple(groups),
        labels=tuple(labels),
        copies=tuple(r for r in routes if r.edge is not None),
        commands=tuple(r for r in routes if r.edge is None),
    )


def _routes(
    grid: _Grid,
    bands: list[tuple[float, float]],
    nodes: dict[str, NodeBox],
    groups: dict[str, GroupBox],
    rows: dict[str, float],
) -> list[Route]:
    """Every line through its chain, each meeting its boxes at a port of its own."""
    lines: list[tuple[Link, Edge | None, list[Point]]] = []
    for link, chain in grid.chains:
        forward = chain[-1].slot > chain[0].slot
        for i, edge in enumerate(link.copies or (None,)):
            middle: list[Point] = []
            for item in chain[1:-1]:
                left, right = bands[item.slot]
                # a line meets its own row in its label box, and keeps its lane elsewhere
                y = rows[edge.name] if item.label and edge is not None else item.top + i * LANE
                entry, exit_ = (left, right) if forward else (right, left)
                middle += [(entry, y), (exit_, y)]
            lines.append((link, edge, middle))

    # ports: each line meets a box's side at its own height, in the order of where it goes
    ends: dict[tuple[str, str], list[tuple[float, int, str]]] = defaultdict(list)
    for n, (link, _, middle) in enumerate(lines):
        forward = middle[-1][0] > middle[0][0]
        ends[link.source, "right" if forward else "left"].append((middle[0][1], n, "start"))
        ends[link.target, "left" if forward else "right"].append((middle[-1][1], n, "end"))
    ports: dict[tuple[int, str], Point] = {}
    for (name, side), meeting in ends.items():
        meeting.sort()
        box: Box = nodes[name] if name in nodes else groups[name]
        x = box.x + box.width if side == "right" else box.x
        if name in nodes:
            for k, (_, n, end) in enumerate(meeting):
                ports[n, end] = (x, box.y + box.height * (k + 1) / (len(meeting) + 1))
        else:
            for _, n, end in meeting:
                ports[n, end] = (x, lines[n][2][0][1])

    return [
        Route(
            (ports[n, "start"], *middle, ports[n, "end"]),
            edge=edge,
            commands=link.commands,
            source=link.source,
            target=link.target,
        )
        for n, (link, edge, middle) in enumerate(lines)
    ]


def path(points: Sequence[Point]) -> str:
    """SVG path data: straight where a line passes a column, curves where it changes height."""
    x, y = points[0]
    parts = [f"M{x:.1f},{y:.1f}"]
    for (x0, y0), (x1, y1) in pairwise(points):
        if abs(y1 - y0) < 0.5:
            parts.append(f"L{x1:.1f},{y1:.1f}")
        else:
            mid = (x0 + x1) / 2
            parts.append(f"C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
    return " ".join(parts)
