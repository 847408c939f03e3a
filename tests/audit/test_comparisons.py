"""A declared check compares two services' records as the topology says, over their APIs."""

import re
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException

from serviceline.audit.comparisons import Read, compare
from serviceline.audit.drift import Auditor
from serviceline.audit.findings import Difference, KeyDrift
from serviceline.consumer.known_walks import KnownRecords
from serviceline.model.topology import (
    Entity,
    Kind,
    Listing,
    Lookup,
    Normal,
    RecordCheck,
    Service,
    Side,
    Topology,
)
from serviceline.runtime.upstream import Upstream, UpstreamError
from serviceline.testing import AUDITOR_TOKEN

pytestmark = pytest.mark.anyio

PAGE = 2  # smaller than either side's records: every listing is read over several pages
NAMES = {"first_name": "first_names", "last_name": "surname", "tags": "tags", "grade": "grade"}
HR = Side(
    Listing("hr", "/people", after="id"),
    ("id",),
    NAMES,
    {"first_name": Normal.FIRST_WORD, "tags": Normal.SORTED},
)
PAYROLL = Side(
    Listing("payroll", "/records/person", items="records"),
    ("number",),
    {"first_name": "first_name", "last_name": "last_name", "tags": "tags", "grade": "grade"},
    {"tags": Normal.SORTED},
)
PEOPLE = RecordCheck("person in HR and payroll", "person", (HR, PAYROLL))
# the people of each tiny service, as its API answers them
HR_PEOPLE: list[dict[str, Any]] = [
    {"id": "1", "first_names": "Ada Mary", "surname": "Lovelace", "tags": ["b", "a"], "grade": 11},
    {"id": "2", "first_names": "Alan", "surname": "Turing", "tags": []},
    {"id": "3", "first_names": "Grace", "surname": "Hopper", "tags": []},
    {"id": "5", "first_names": "Edsger", "surname": "Dijkstra", "tags": None},
]
PAYROLL_PEOPLE: list[dict[str, Any]] = [
    {
        "number": "1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "tags": ["a", "b"],
        "grade": "11",
    },
    {"number": "2", "first_name": "Alan", "last_name": "Turin", "tags": []},
    {"number": "4", "first_name": "Katherine", "last_name": "Johnson", "tags": []},
    {"number": "5", "first_name": "Edsger", "last_name": "Dijkstra", "tags": None},
]


def line(*checks: RecordCheck) -> Topology:
    """A line of two services and one entity, with nothing copied: only the checks."""
    services = tuple(
        Service(name, name.title(), Kind.SERVICE, 9000 + number)
        for number, name in enumerate(("hr", "payroll", "ledger"))
    )
    return Topology(
        services, (Entity("person", ("hr", "payroll"), "id"),), (), (), (), tuple(checks)
    )


def authorised(authorization: str | None) -> None:
    if authorization != f"Bearer {AUDITOR_TOKEN}":
        raise HTTPException(401, "not the auditor")


def hr_app() -> FastAPI:
    """Its people as a list paged by `after` the last id and `limit`: a short page is the last."""
    app = FastAPI()

    @app.get("/people")
    def people(
        limit: int, after: str | None = None, authorization: str | None = Header(None)
    ) -> list[dict[str, Any]]:
        authorised(authorization)
        return [p for p in HR_PEOPLE if after is None or p["id"] > after][:limit]

    return app


def payroll_app() -> FastAPI:
    """Its people in the kernel's envelope: a page of records, and where the next starts."""
    app = FastAPI()

    @app.get("/records/person")
    def records(
        limit: int, after: str | None = None, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        authorised(authorization)
        rest = [p for p in PAYROLL_PEOPLE if after is None or p["number"] > after]
        more = len(rest) > limit
        return {"records": rest[:limit], "next_after": rest[limit - 1]["number"] if more else None}

    return app


def clients(apps: dict[str, FastAPI]) -> dict[str, httpx.AsyncClient]:
    return {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
        for name, app in apps.items()
    }


def auditor(topology: Topology, **apps: FastAPI) -> Auditor:
    return Auditor(clients=clients(apps), token=AUDITOR_TOKEN, topology=topology, page_size=PAGE)


async def test_two_services_that_both_create_a_record_conflict_where_they_hold_it_apart() -> None:
    [found] = await auditor(line(PEOPLE), hr=hr_app(), payroll=payroll_app()).comparisons()
    assert (found.name, found.entity, found.services) == (PEOPLE.name, "person", ["hr", "payroll"])
    # 1: the first of HR's given names, the tags in either order, 11 as "11": all alike
    # 5: no tags on either side is alike too
    assert found.counts == {**dict.fromkeys(found.counts, 0), "in_sync": 2, "conflicting": 3}
    assert found.keys == [
        KeyDrift(
            "2", "conflicting", [Difference("last_name", {"hr": "Turing", "payroll": "Turin"})]
        ),
        KeyDrift("3", "conflicting", [Difference("held", {"hr": True, "payroll": False})]),
        KeyDrift("4", "conflicting", [Difference("held", {"hr": False, "payroll": True})]),
    ]


async def test_a_check_runs_only_while_both_its_services_answer() -> None:
    assert await auditor(line(PEOPLE), hr=hr_app()).comparisons() == []


LEDGER = RecordCheck(
    "person in HR and the ledger",
    "person",
    (
        Side(
            Lookup("ledger", "/people/{key}"),
            fields={"first_name": "given", "last_name": "family"},
        ),
        Side(
            Listing("hr", "/people", after="id"),
            ("id",),
            {"first_name": "first_names", "last_name": "surname"},
            {"first_name": Normal.FIRST_WORD},
        ),
    ),
)


def ledger_read(held: Mapping[str, dict[str, str]], asked: list[str]) -> Read:
    """Reads of HR and of a ledger holding `held`, noting each path asked of the ledger."""

    def ledger(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        person = held.get(request.url.path.rsplit("/", 1)[-1])
        return httpx.Response(404) if person is None else httpx.Response(200, json=person)

    services = {
        "hr": clients({"hr": hr_app()})["hr"],
        "ledger": httpx.AsyncClient(transport=httpx.MockTransport(ledger), base_url="http://l"),
    }

    async def read(service: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
        response = await services[service].get(path, params=params, headers=headers)
        if response.status_code >= 400:
            raise UpstreamError(service, response.status_code, response.text)
        return response.json()

    return read


async def test_a_lookup_asks_one_key_at_a_time_for_the_keys_the_listed_side_holds() -> None:
    asked: list[str] = []
    held = {"1": {"given": "Ada", "family": "Lovelace"}, "2": {"given": "Alan", "family": "T"}}
    found = await compare(LEDGER, ledger_read(held, asked), PAGE, fan_out=2)
    assert sorted(asked) == ["/people/1", "/people/2", "/people/3", "/people/5"]
    assert found.services == ["ledger", "hr"]
    assert found.counts["in_sync"] == 1
    assert [(k.key, k.differences) for k in found.keys] == [
        ("2", [Difference("last_name", {"ledger": "T", "hr": "Turing"})]),
        ("3", [Difference("held", {"ledger": False, "hr": True})]),
        ("5", [Difference("held", {"ledger": False, "hr": True})]),
    ]


async def test_a_lookup_takes_known_answers_again_but_asks_of_keys_the_log_moved() -> None:
    asked: list[str] = []
    held = {"1": {"given": "Ada", "family": "Lovelace"}, "2": {"given": "Alan", "family": "T"}}
    read = ledger_read(held, asked)
    log: list[dict[str, Any]] = []

    def feed(request: httpx.Request) -> httpx.Response:
        since = int(request.url.params["since"])
        changes = [change for change in log if change["seq"] > since]
        return httpx.Response(200, json={"changes": changes, "next": 3, "has_more": False})

    transport = httpx.MockTransport(feed)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as feeds:
        ledger = Upstream("ledger", feeds)
        known = KnownRecords(head=1)
        await known.catch_up(ledger, ["person"])
        first = await compare(LEDGER, read, PAGE, 2, known)
        assert first == await compare(LEDGER, read, PAGE, 2)

        held["2"]["family"] = "Turing"
        held["3"] = {"given": "Grace", "family": "Hopper"}
        log += [{"seq": 2, "key": "2", "record": {}}, {"seq": 3, "key": "3", "record": {}}]
        known.head = 3
        await known.catch_up(ledger, ["person"])
        asked.clear()
        again = await compare(LEDGER, read, PAGE, 2, known)
        assert sorted(asked) == ["/people/2", "/people/3"], "1 and 5 are as the log left them"
        assert again == await compare(LEDGER, read, PAGE, 2)
        assert again.counts["in_sync"] == 3


async def test_records_copied_once_diverge_and_are_orphaned_but_the_source_alone_is_no_drift() -> (
    None
):
    """Payroll's people were copied from HR once: each is its own since, named by its row."""
    copied = RecordCheck(
        "person copied from HR",
        "person",
        (
            Side(
                Listing("payroll", "/records/person", items="records"),
                ("number",),
                {"last_name": "last_name"},
                named_by="first_name",
            ),
            Side(Listing("hr", "/people", after="id"), ("id",), {"last_name": "surname"}),
        ),
        copied_from="hr",
    )
    [found] = await auditor(line(copied), hr=hr_app(), payroll=payroll_app()).comparisons()
    # HR's 3 (Grace Hopper) was never copied: not the check's business
    assert found.counts == {
        **dict.fromkeys(found.counts, 0),
        "in_sync": 2,
        "diverged": 1,
        "orphaned": 1,
    }
    assert found.keys == [
        KeyDrift(
            "Alan", "diverged", [Difference("last_name", {"payroll": "Turin", "hr": "Turing"})]
        ),
        KeyDrift("Katherine", "orphaned", [Difference("number", {"hr": None})]),
    ]


@pytest.mark.parametrize(
    ("declare", "named"),
    [
        (lambda: Listing("hr", "people"), "'people'"),
        (lambda: Listing("hr", "/people", after="id", items="records"), "`after`"),
        (lambda: Lookup("hr", "/people"), "{key}"),
        (lambda: Side(Listing("hr", "/people")), "key names no field"),
        (lambda: Side(Lookup("hr", "/people/{key}"), ("id",)), "key ('id',)"),
        (lambda: Side(Listing("hr", "/people"), ("id",), {}, {"tags": Normal.SORTED}), "'tags'"),
        (lambda: RecordCheck("same", "person", (HR, HR)), "both sides read hr"),
        (
            lambda: RecordCheck("lopsided", "person", (HR, Side(PAYROLL.reading, ("number",)))),
            "['first_name', 'grade', 'last_name', 'tags']",
        ),
        (lambda: RecordCheck("from", "person", (HR, PAYROLL), copied_from="ledger"), "'ledger'"),
        (
            lambda: RecordCheck(
                "named",
                "person",
                (Side(HR.reading, ("id",), named_by="surname"), Side(PAYROLL.reading, ("number",))),
            ),
            "named_by on hr",
        ),
        (
            lambda: RecordCheck(
                "lookups",
                "person",
                (
                    Side(Lookup("hr", "/p/{key}")),
                    Side(Lookup("payroll", "/p/{key}")),
                ),
            ),
            "both sides are lookups",
        ),
        (lambda: line(PEOPLE, PEOPLE), "two comparisons"),
        (lambda: line(RecordCheck("pay", "salary", (HR, PAYROLL))), "entity 'salary'"),
        (
            lambda: line(
                RecordCheck("x", "person", (HR, Side(Listing("crm", "/p"), ("id",), NAMES)))
            ),
            "service 'crm'",
        ),
    ],
)
def test_a_bad_declaration_is_refused_naming_what_is_wrong(declare: Any, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        declare()
