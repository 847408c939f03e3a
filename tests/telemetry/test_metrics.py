"""/metrics on every service: its copy edges, change log, clock and HTTP, as Prometheus reads."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from serviceline.testing import ADMIN, in_process_line
from tests import builders

pytestmark = pytest.mark.anyio

START = datetime(2026, 10, 5, tzinfo=UTC)
FIND = "publish.course.find"
PROVIDERS = "publish.provider.find"


async def scrape(client: httpx.AsyncClient) -> dict[str, list[Sample]]:
    """Every sample the service exposes, by sample name, parsed as Prometheus parses them."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels`."""
    found = [s for s in samples.get(name, []) if labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0].value


async def test_a_consumer_serves_each_edge_s_runs_records_and_cost_from_its_logs(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        await builders.publish_course(
            line, builders.provider("1AB"), builders.course("4XYZ"), builders.site()
        )
        await line.control.advance(to=START + timedelta(minutes=30))
        runs = (await line["find"].get("/admin/copy-runs", headers=ADMIN)).json()["runs"]
        find = await scrape(line["find"])

        courses = [run for run in runs if run["edge"] == FIND]
        assert value(find, "serviceline_copy_runs_total", edge=FIND, outcome="finished") == len(
            courses
        )
        assert value(find, "serviceline_copy_runs_total", edge=FIND, outcome="failed") == 0
        assert value(find, "serviceline_copy_records_applied_total", edge=FIND, op="upsert") == 2
        assert value(find, "serviceline_copy_records_applied_total", edge=FIND, op="delete") == 0
        assert value(find, "serviceline_copy_records", edge=FIND) == 2
        assert value(find, "serviceline_copy_requests_total", edge=FIND) == sum(
            run["requests"] for run in courses
        )
        assert value(find, "serviceline_copy_received_bytes_total", edge=FIND) == sum(
            run["bytes"] for run in courses
        )
        assert value(find, "serviceline_copy_received_bytes_total", edge=FIND) > 0
        # the first run found both courses; the five-minute polls after it found nothing
        assert value(find, "serviceline_copy_empty_runs_total", edge=FIND) == len(courses) - 1
        assert value(find, "serviceline_copy_full_runs_total", edge=FIND) == sum(
            run["full"] for run in courses
        )
        assert value(find, "serviceline_copy_retries_total", edge=FIND) == 0
        edges = (await line["find"].get("/admin/edges", headers=ADMIN)).json()
        [cursor] = [edge for edge in edges if edge["edge"] == FIND]
        synced = datetime.fromisoformat(cursor["last_sync_at"]).timestamp()
        assert value(find, "serviceline_copy_last_sync_timestamp_seconds", edge=FIND) == synced
        assert (
            value(find, "serviceline_clock_timestamp_seconds")
            == (START + timedelta(minutes=30)).timestamp()
        )
        # every edge into Find is there, and only those: no series per record
        labelled = {s.labels["edge"] for s in find["serviceline_copy_records"]}
        assert labelled == {FIND, PROVIDERS}
        assert "serviceline_changelog_head" not in find  # Find owns nothing


async def test_an_owner_serves_its_change_log_head_and_size(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        publish = await scrape(line["publish"])
        log = (await line["publish"].get("/admin/changelog", headers=ADMIN)).json()["changes"]
        assert value(publish, "serviceline_changelog_head") == max(c["seq"] for c in log)
        by_entity = {s.labels["entity"]: s.value for s in publish["serviceline_changelog_entries"]}
        assert by_entity == {
            entity: sum(1 for c in log if c["entity"] == entity)
            for entity in {c["entity"] for c in log}
        }
        assert value(publish, "serviceline_changelog_pruned_through") == 0


async def test_failed_runs_and_their_retries_are_counted_and_survive_a_restart(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        fault = {"kind": "fail", "until": (START + timedelta(minutes=7)).isoformat()}
        assert (await line["publish"].post("/admin/faults", json=fault, headers=ADMIN)).is_success
        # the 00:05 run fails; its retries, 15 s and more apart, fail until 00:07
        await line.control.advance(to=START + timedelta(minutes=6))
        failing = await scrape(line["find"])
        failed = value(failing, "serviceline_copy_runs_total", edge=FIND, outcome="failed")
        retries = value(failing, "serviceline_copy_retries_total", edge=FIND)
        assert failed >= 2
        assert retries == failed - 1  # every failure but the first was a retry
        assert value(failing, "serviceline_copy_consecutive_failures", edge=FIND) == failed
        await line.control.advance(to=START + timedelta(minutes=10))
        healed = await scrape(line["find"])
        assert value(healed, "serviceline_copy_consecutive_failures", edge=FIND) == 0
        assert value(healed, "serviceline_copy_records_applied_total", edge=FIND, op="upsert") == 1
    # the figures are the logs': a service started again over them gives the same
    async with in_process_line(["publish", "find"], state_dir) as line:
        again = await scrape(line["find"])
    for name in (
        "serviceline_copy_runs_total",
        "serviceline_copy_retries_total",
        "serviceline_copy_records_applied_total",
        "serviceline_copy_requests_total",
        "serviceline_copy_received_bytes_total",
    ):
        assert again[name] == healed[name], name


async def test_http_requests_are_counted_by_route_template_and_status(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        find = line["find"]
        for key in ("a", "b", "c"):
            assert (await find.get(f"/copies/course/{key}")).status_code == 404
        assert (await find.get("/no/such/path/1")).status_code == 404
        assert (await find.get("/no/such/path/2")).status_code == 404
        assert (await find.get("/health")).status_code == 200
        samples = await scrape(find)
        requests = "serviceline_http_requests_total"
        assert (
            value(samples, requests, method="GET", route="/copies/{entity}/{key}", status="404")
            == 3
        )
        assert value(samples, requests, method="GET", route="unmatched", status="404") == 2
        assert value(samples, requests, method="GET", route="/health", status="200") == 1
        routes = {s.labels["route"] for s in samples[requests]}
        assert not any("/a" in route or "/1" in route for route in routes)
        durations = "serviceline_http_request_duration_seconds_count"
        assert value(samples, durations, method="GET", route="/health") == 1
        # each app counts its own: Publish's registry saw none of Find's requests
        await scrape(line["publish"])
        publish = await scrape(line["publish"])
        assert [(s.labels["route"], s.value) for s in publish[requests]] == [("/metrics", 1)]
