"""The dashboard's /metrics: drift by class, changes waiting and each change's lag, per edge."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serviceline.dashboard.metrics import LAG_BUCKETS
from serviceline.testing import API, in_process_line
from tests import builders
from tests.dashboard.test_dashboard import dashboard_of
from tests.telemetry.test_metrics import scrape, value

pytestmark = pytest.mark.anyio

START = datetime(2026, 10, 5, tzinfo=UTC)
APPLY = "publish.course.apply"
FIND = "publish.course.find"


async def test_drift_and_waiting_changes_per_edge_follow_the_line(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "find", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, board),
    ):
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        await line.control.advance(to=START + timedelta(hours=1))
        renamed = {"name": "Art, Craft and Design"}
        assert (
            await line["publish"].patch(f"/courses/{uuid}", json=renamed, headers=API)
        ).is_success
        await board.look(check=True)
        samples = await scrape(dashboard)

        assert value(samples, "serviceline_drift_records", edge=APPLY, **{"class": "stale"}) == 1
        assert value(samples, "serviceline_drift_records", edge=APPLY, **{"class": "in_sync"}) == 0
        assert value(samples, "serviceline_copy_changes_waiting", edge=APPLY) == 1
        assert value(samples, "serviceline_copy_oldest_waiting_age_seconds", edge=APPLY) == 0
        assert (
            value(samples, "serviceline_drift_checked_timestamp_seconds")
            == (START + timedelta(hours=1)).timestamp()
        )
        # an edge whose ends are down is not checked, so it has no figure at all
        assert not [
            s
            for s in samples["serviceline_drift_records"]
            if s.labels["edge"] == ("publish.course.register")
        ]

        await line.control.advance(to=START + timedelta(hours=2))
        await board.look(check=True)
        healed = await scrape(dashboard)
        assert value(healed, "serviceline_drift_records", edge=APPLY, **{"class": "in_sync"}) == 1
        assert value(healed, "serviceline_copy_changes_waiting", edge=APPLY) == 0


async def test_the_lag_of_every_delivered_change_is_a_histogram_per_edge(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "find", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, board),
    ):
        # no lag is measured until someone reads /metrics: a page alone pulls no logs
        assert board.lag is None
        await scrape(dashboard)
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        await line.control.advance(to=START + timedelta(hours=1))
        await board.look(check=True)
        assert board.lag is not None
        samples = await scrape(dashboard)

        for edge in (FIND, APPLY):
            stats = board.lag.edges[edge].stats
            assert stats.delivered >= 1
            count = value(samples, "serviceline_copy_lag_seconds_count", edge=edge)
            assert count == stats.delivered
            assert value(samples, "serviceline_copy_lag_seconds_sum", edge=edge) == sum(stats.lags)
            buckets = {
                s.labels["le"]: s.value
                for s in samples["serviceline_copy_lag_seconds_bucket"]
                if s.labels["edge"] == edge
            }
            assert list(buckets) == [*(str(float(b)) for b in LAG_BUCKETS), "+Inf"]
            assert buckets["+Inf"] == count
            outcome = "serviceline_copy_changes"
            assert value(samples, outcome, edge=edge, outcome="delivered") == stats.delivered
            assert value(samples, outcome, edge=edge, outcome="pending") == stats.pending
        # Find follows Publish's feed every 5 minutes: each change made at 00:00 arrived at 00:05
        find = [
            s for s in samples["serviceline_copy_lag_seconds_bucket"] if s.labels["edge"] == FIND
        ]
        at = {s.labels["le"]: s.value for s in find}
        assert at["60.0"] == 0
        assert at["300.0"] == at["+Inf"]
        # a journey is served once every copy on it runs: Register's is not running here
        assert board.lag.journeys == {}
        assert "serviceline_journey_lag_seconds_count" not in samples
