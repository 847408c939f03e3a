"""A line written as YAML: checked as it is read, run by generic owners and consumers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from serviceline.declared.line import declared_line
from serviceline.declared.spec import LineFileError, read_spec, schema
from serviceline.declared.workload import Changes, ChangeWorkload
from serviceline.model.lines import Line, Size, load_line
from serviceline.testing import API, API_TOKEN, ROOT, in_process_line

EXAMPLES = Path(ROOT) / "examples"
LINE_FILES = sorted(EXAMPLES.glob("*/line.yaml"))
SHOP = EXAMPLES / "shop" / "line.yaml"
HOSPITAL = EXAMPLES / "hospital" / "line.yaml"
# the smallest line: one owner, one consumer, one edge
TINY: dict[str, Any] = {
    "title": "Tiny",
    "services": [
        {"name": "owner", "title": "The owner", "port": 9500},
        {"name": "copier", "title": "The copier", "port": 9501},
    ],
    "entities": [
        {"name": "item", "owner": "owner", "key": "code", "fields": {"label": "string"}},
    ],
    "edges": [{"entity": "item", "consumer": "copier"}],
}


def shop() -> Line:
    return load_line(str(SHOP))


def written(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def changed(spec: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(spec))
    change(copy)
    return copy


def test_the_schema_editors_use_is_the_one_the_kernel_checks_with() -> None:
    shipped = json.loads((EXAMPLES / "line.schema.json").read_text(encoding="utf-8"))
    assert shipped == schema()


@pytest.mark.parametrize("path", LINE_FILES, ids=lambda p: p.parent.name)
def test_every_example_line_is_valid_by_the_schema_and_the_kernel(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema())
    line = load_line(str(path))
    assert line.topology.title
    assert line.seeded
    assert len(LINE_FILES) >= 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s["entities"][0].update(owner="nobody"), "entities[0].owner: no service"),
        (lambda s: s["entities"][0]["fields"].update(code="string"), "entities[0].fields: 'code'"),
        (lambda s: s["entities"][0]["fields"].update(size="huge"), "entities.0.fields.size"),
        (lambda s: s["entities"][0].update(fields={}), "entities.0.fields"),
        (lambda s: s["services"].append(s["services"][0]), "services: 'owner' is named twice"),
        (lambda s: s["services"][1].update(port=9500), "ports: 9500 is named twice"),
        (lambda s: s["edges"][0].update(consumer="owner"), "edges[0].consumer: owner owns item"),
        (lambda s: s["edges"][0].update(consumer="x"), "edges[0].consumer: no service named"),
        (lambda s: s["edges"][0].update(entity="x"), "edges[0].entity: no entity named"),
        (lambda s: s["edges"][0].update(mapping={"label": "label"}), "edges[0].mapping: the first"),
        (lambda s: s["edges"][0].update(mapping={"code": "c", "x": "x"}), "edges[0].mapping.x"),
        (lambda s: s["edges"][0].update(editable=["colour"]), "edges[0].editable: 'colour'"),
        (lambda s: s["edges"][0].update(scope={"include": {"x": ["1"]}}), "edges[0].scope.x"),
        (lambda s: s["edges"][0].update(mechanism="event"), "edges.0.mechanism"),
        (lambda s: s["edges"][0].update(schedule="often"), "edges.0.schedule"),
        (lambda s: s.update(colour="blue"), "colour: Extra inputs"),
    ],
)
def test_a_line_file_that_cannot_run_is_refused_naming_the_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], named: str
) -> None:
    with pytest.raises(LineFileError, match=r"line\.yaml: ") as refused:
        read_spec(written(tmp_path, changed(TINY, change)))
    assert named in str(refused.value)


def test_a_file_that_is_not_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "line.yaml"
    path.write_text("title: [unclosed", encoding="utf-8")
    with pytest.raises(LineFileError, match=f"^{path}: "):
        read_spec(path)


def test_a_line_whose_tables_another_line_holds_is_refused(tmp_path: Path) -> None:
    shop()  # its tables are this process's
    clash = changed(TINY, lambda s: s["services"][0].update(name="catalogue"))
    clash["entities"][0].update(owner="catalogue", name="product")
    clash["edges"][0].update(entity="product")
    with pytest.raises(LineFileError, match="catalogue_product: this process already has"):
        declared_line(written(tmp_path, clash))


def test_the_topology_is_the_files_own() -> None:
    topology = shop().topology
    assert topology.title == "Corner shop"
    orders = topology.edge("catalogue.product.orders")
    assert (orders.mechanism, orders.schedule) == ("updated_since", "*/15 * * * *")
    assert dict(orders.mapping) == {"sku": "sku", "name": "name", "price": "price"}
    search = topology.edge("catalogue.product.search")
    assert not search.scope.admits({"in_stock": False})
    assert search.scope.admits({"in_stock": True})
    customers = topology.edge("accounts.customer.orders")
    assert customers.editable == {"postcode"}
    # no mapping: every field, as the owner names it, the key first
    assert list(customers.mapping) == ["customer_id", "name", "email", "postcode"]
    assert topology.entity("customer").personal


PRODUCT = {"sku": "TEA-1", "name": "Assam", "category": "tea", "price": 3.5, "in_stock": True}


@pytest.mark.anyio
async def test_an_owners_write_api_refuses_bad_records_naming_the_field(state_dir: Path) -> None:
    async with in_process_line(["catalogue"], state_dir, line=shop()) as line:
        catalogue = line["catalogue"]
        assert (await catalogue.post("/products", json=PRODUCT, headers=API)).status_code == 201
        again = await catalogue.post("/products", json=PRODUCT, headers=API)
        assert (again.status_code, again.json()["detail"]) == (
            409,
            "sku: a product 'TEA-1' exists",
        )
        bad = await catalogue.post("/products", json={**PRODUCT, "price": "dear"}, headers=API)
        assert bad.status_code == 422
        assert [p["loc"] for p in bad.json()["detail"]] == [["body", "price"]]
        batch = [{**PRODUCT, "sku": "TEA-2"}, {**PRODUCT, "sku": "TEA-3", "in_stock": "maybe"}]
        refused = await catalogue.post("/products/batch", json=batch, headers=API)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", 1, "in_stock"]
        twice = await catalogue.post("/products/batch", json=[batch[0], batch[0]], headers=API)
        assert (twice.status_code, twice.json()["detail"]) == (
            409,
            "[1] sku: a product 'TEA-2' exists",
        )
        nulled = await catalogue.patch("/products/TEA-1", json={"name": None}, headers=API)
        assert nulled.status_code == 422
        unknown = await catalogue.patch("/products/TEA-1", json={"colour": "red"}, headers=API)
        assert unknown.status_code == 422
        listed = (await catalogue.get("/products")).json()
        assert [p["sku"] for p in listed] == ["TEA-1"]
        assert listed[0]["name"] == "Assam"
        assert (await catalogue.post("/products", json=PRODUCT)).status_code == 401


@pytest.mark.anyio
async def test_a_personal_entity_is_read_only_with_a_credential(state_dir: Path) -> None:
    async with in_process_line(["accounts"], state_dir, line=shop()) as line:
        person = {"customer_id": "C1", "name": "Ada", "email": "ada@example.com"}
        assert (await line["accounts"].post("/customers", json=person, headers=API)).is_success
        assert (await line["accounts"].get("/customers/C1")).status_code == 401
        read = await line["accounts"].get("/customers/C1", headers=API)
        assert (read.status_code, read.json()["postcode"]) == (200, None)


@pytest.mark.anyio
async def test_a_seeded_line_starts_in_sync_and_drifts_until_each_copy_reads(
    state_dir: Path,
) -> None:
    names = [s.name for s in shop().topology.services]
    async with in_process_line(names, state_dir, line=shop()) as line:
        # a scenario's own records are not a seed
        assert (await line["catalogue"].post("/products", json=PRODUCT, headers=API)).is_success
        assert not await shop().already_seeded(line.clients, API_TOKEN)
        counts = await shop().seed(line.clients, line.control, API_TOKEN, Size.SMALL, 3)
        assert counts == {"products": 40, "customers": 20}
        assert await shop().already_seeded(line.clients, API_TOKEN)
        report = await line.auditor().audit()
        assert all(edge.counts["in_sync"] > 0 for edge in report.edges), report
        assert [e.keys for e in report.edges] == [[]] * len(report.edges), report
        changed = await line["catalogue"].patch(
            "/products/PRO000001", json={"name": "Renamed"}, headers=API
        )
        assert changed.is_success
        stale = {e.edge: e.counts["stale"] for e in (await line.auditor().audit()).edges}
        assert stale["catalogue.product.basket"] == 1
        await line.control.advance("1m")
        basket = await line.copy_of("basket", "product", "PRO000001")
        assert basket["name"] == "Renamed"
        orders = await line.copy_of("orders", "product", "PRO000001")
        assert orders["name"] != "Renamed"  # the orders read every quarter hour


def planned(workload: str, seed: int) -> list[tuple[datetime, str, str]]:
    start = datetime(2026, 10, 5, tzinfo=UTC)
    changes = Changes(
        read_spec(SHOP),
        ChangeWorkload.named(workload),
        {},
        API_TOKEN,
        seed=seed,
        start=start,
        end=start + timedelta(days=7),
    )
    return [(p.at, p.entity, p.op) for p in changes.plan(["product", "customer"])]


def test_the_default_workload_is_the_files_rates_drawn_the_same_for_a_seed() -> None:
    week = planned("default", 1)
    assert week == planned("default", 1)
    assert week != planned("default", 2)
    products = [p for p in week if p[1] == "product"]
    assert len(products) == 48 * 7
    assert {op for _, _, op in products} == {"create", "update", "delete"}
    assert len([p for p in week if p[1] == "customer"]) == 6 * 7
    assert not [p for p in week if p[1:] == ("customer", "delete")]  # its delete_share is 0
    assert len(planned("x0.5", 1)) == len(week) // 2
    assert [p[0] for p in week] == sorted(p[0] for p in week)


@pytest.mark.parametrize("name", ["busy", "x", "0.5", "xhalf"])
def test_a_workload_a_declared_line_cannot_run_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"^workload: '{name}'"):
        shop().workloads.check(name)


@pytest.mark.anyio
async def test_the_workload_writes_through_the_owners_apis(state_dir: Path) -> None:
    hospital = load_line(str(HOSPITAL))
    async with in_process_line(["pas"], state_dir, line=hospital) as line:
        await hospital.seed(line.clients, line.control, API_TOKEN, Size.SMALL, 1)
        start = datetime(2026, 10, 5, tzinfo=UTC)
        events = hospital.workloads.events(
            "default", line.clients, API_TOKEN, seed=1, start=start, end=start + timedelta(1)
        )
        await events.prepare()
        assert events.targets_at(start + timedelta(1)) == {"pas"}
        fired = await events.fire(start + timedelta(1))
        assert fired == 60
        assert events.next_at() is None
        assert events.failures.total() == 0
        assert events.counts["patient.changed"] > events.counts["patient.created"] > 0
        feed = await line["pas"].get("/feed/patient", params={"limit": 1000}, headers=API)
        # a change to the value a field already holds is no change, and logs none
        written = events.counts["patient.created"] + events.counts["patient.deleted"]
        assert 50 + written < len(feed.json()["changes"]) <= 50 + fired


def test_a_line_file_is_told_to_other_processes_by_its_absolute_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serviceline.model.lines import LineSettings, line_name

    relative = SHOP.relative_to(Path(ROOT))
    monkeypatch.chdir(ROOT)
    assert line_name(LineSettings(line=str(relative))) == str(SHOP)
    assert line_name(LineSettings(line="becoming_a_teacher")) == "becoming_a_teacher"
