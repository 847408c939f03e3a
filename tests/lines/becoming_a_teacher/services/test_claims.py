"""Claims: amounts at the school's regional rate, hours capped per mentor, a second mentor owner."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from serviceline.testing import API, AUDITOR, LineUnderTest, in_process_line, names_field, refusal
from tests import builders
from tests.lines.becoming_a_teacher.services.test_placements import answered, at, rename_in_dqt

pytestmark = pytest.mark.anyio

LINE = ["gias", "publish", "dqt", "claims"]
TRAINED = ("1000001", "1000002", "1000003", "1000004", "1000005")


def refused(response: httpx.Response, code: int, field: str, *words: str) -> str:
    """A refusal naming `field`: pydantic's location, or our message's opening `path.field:`."""
    assert response.status_code == code, response.text
    detail = response.json()["detail"]
    if isinstance(detail, str):
        path = detail.split(":")[0]  # e.g. mentor_trainings[0].hours_completed
        assert path.rsplit(".", 1)[-1] == field, detail
    else:
        assert names_field(response, field), detail
    for word in words:
        assert word in response.text, response.text
    return response.text


async def copied(line: LineUnderTest, *schools: dict[str, Any]) -> None:
    """Schools in GIAS, providers 2FR and 1UR in Publish, teachers in DQT; copied into Claims."""
    answered(await line["gias"].post("/schools/batch", json=list(schools), headers=API), 201)
    for provider in (builders.provider(), builders.provider("1UR", name="Leeds Trinity")):
        answered(await line["publish"].post("/providers", json=provider, headers=API), 201)
    people = [builders.dqt_person(), *(builders.dqt_person(trn) for trn in TRAINED)]
    answered(await line["dqt"].post("/v3/teachers/batch", json=people, headers=API), 201)
    await line.control.run_job("gias", "gias.daily_extract")
    for edge in LINE[:2]:
        await line.control.run_edge(f"{edge}.{'school' if edge == 'gias' else 'provider'}.claims")


async def mentors(line: LineUnderTest, school_urn: str, *trns: str) -> None:
    body = [builders.mentor(trn, school_urn=school_urn) for trn in trns]
    answered(await line["claims"].post("/mentors/batch", json=body, headers=API), 201)


async def claimed(line: LineUnderTest, body: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = answered(
        await line["claims"].post("/claims", json=body, headers=API), 201
    )
    return claim


async def test_the_amount_is_the_hours_at_the_schools_regional_rate(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(
            line,
            builders.school("100000"),
            builders.school("100001", la_name="Barnet"),
            builders.school("100002", la_name="Slough", region_code="J"),
            builders.school("100003", la_name="Leeds", region_code="D"),
        )
        for urn, trns in (
            ("100000", ["1000001"]),
            ("100001", ["1000002"]),
            ("100002", ["1000003"]),
            ("100003", ["1000004", "1000005"]),
        ):
            await mentors(line, urn, *trns)
        expected = (
            ("100000", {"1000001": 16}, "53.60", "857.60"),
            ("100001", {"1000002": 7}, "48.25", "337.75"),
            ("100002", {"1000003": 3}, "45.10", "135.30"),
            ("100003", {"1000004": 11, "1000005": 5}, "43.80", "700.80"),
        )
        for urn, hours, rate, amount in expected:
            lines = [builders.mentor_training(trn, n) for trn, n in hours.items()]
            # an amount given by the school is no part of the claim: Claims computes it
            claim = await claimed(line, builders.claim(*lines, school_urn=urn, amount="9999.99"))
            assert (claim["funding_available_per_hour"], claim["amount"]) == (rate, amount)
            assert Decimal(claim["amount"]) == Decimal(rate) * sum(hours.values())
            assert claim["hours_completed"] == sum(hours.values())
        rest = answered(
            await line["claims"].get("/claims", params={"school_urn": "100003"}, headers=AUDITOR)
        )
        assert [(c["funding_region"], c["amount"]) for c in rest] == [("Rest of England", "700.80")]
        lines = answered(await line["claims"].get(f"/claims/{rest[0]['id']}", headers=AUDITOR))[
            "mentor_trainings"
        ]
        assert [(t["mentor_trn"], t["amount"]) for t in lines] == [
            ("1000004", "481.80"),
            ("1000005", "219.00"),
        ]
        fringe = answered(await line["claims"].get("/schools/100002"))
        assert (fringe["funding_region"], fringe["funding_available_per_hour"]) == (
            "Fringe",
            "45.10",
        )


async def test_hours_are_capped_per_mentor_provider_and_academic_year(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"))
        await mentors(line, "100000", "1000001", "1000002", "1000003")
        claims = line["claims"]
        one = builders.mentor_training("1000001", 16)

        # from the 2025 academic year, 16 hours of initial training
        over = builders.claim(builders.mentor_training("1000001", 17))
        refused(
            await claims.post("/claims", json=over, headers=API), 422, "hours_completed", "16 of 16"
        )
        first = await claimed(line, builders.claim(one))
        assert first["mentor_trainings"][0]["training_type"] == "initial"
        assert first["mentor_trainings"][0]["hours_allowed"] == 16
        # drafts use no hours: a second draft is allowed, and refused at submission
        second = await claimed(line, builders.claim(builders.mentor_training("1000001", 10)))
        signed = {"submitted_by": "Jane Smith"}
        answered(await claims.post(f"/claims/{first['id']}/submit", json=signed, headers=API))
        after = answered(await claims.get(f"/claims/{second['id']}", headers=AUDITOR))
        assert after["mentor_trainings"][0]["hours_claimed_elsewhere"] == 16
        late = await claims.post(f"/claims/{second['id']}/submit", json=signed, headers=API)
        refused(late, 422, "hours_completed", "0 of 16")
        assert (
            answered(await claims.get(f"/claims/{second['id']}", headers=AUDITOR))["status"]
            == "draft"
        )
        other_provider = builders.claim(one, provider_code="1UR", submitted_by="Jane Smith")
        assert (await claimed(line, other_provider))["status"] == "submitted"

        # before the 2025 academic year, 20 hours; a year later, 6 hours of refresher training
        past = builders.mentor_training("1000002", 21)
        early = builders.claim(past, academic_year=2024, submitted_by="Jane Smith")
        refused(
            await claims.post("/claims", json=early, headers=API), 422, "hours_completed", "of 20"
        )
        early["mentor_trainings"] = [builders.mentor_training("1000002", 20)]
        assert (await claimed(line, early))["claim_window"] == "2024 to 2025"
        refresher = builders.claim(builders.mentor_training("1000002", 7))
        refused(
            await claims.post("/claims", json=refresher, headers=API),
            422,
            "hours_completed",
            "6 of 6 hours of refresher",
        )
        called_initial = builders.claim(
            builders.mentor_training("1000002", 6, training_type="initial")
        )
        refused(
            await claims.post("/claims", json=called_initial, headers=API), 422, "training_type"
        )
        refreshed = await claimed(line, builders.claim(builders.mentor_training("1000002", 6)))
        training = refreshed["mentor_trainings"][0]
        assert (training["training_type"], training["hours_allowed"]) == ("refresher", 6)

        # a draft claim of an earlier year trained nobody: 2026's training is still initial
        drafted = builders.claim(builders.mentor_training("1000003", 10), academic_year=2025)
        earlier = await claimed(line, drafted)
        fresh = await claimed(line, builders.claim(builders.mentor_training("1000003", 16)))
        assert fresh["mentor_trainings"][0]["training_type"] == "initial"
        too_many = builders.claim(builders.mentor_training("1000003", 17), academic_year=2025)
        refused(await claims.post("/claims", json=too_many, headers=API), 422, "hours_completed")
        # once the earlier claim is submitted, the draft is refresher training when it is submitted
        answered(await claims.post(f"/claims/{earlier['id']}/submit", json=signed, headers=API))
        path = f"/claims/{fresh['id']}"
        refused(
            await claims.post(f"{path}/submit", json=signed, headers=API),
            422,
            "hours_completed",
            "6 of 6 hours of refresher",
        )
        six = [builders.mentor_training("1000003", 6)]
        answered(await claims.put(f"{path}/mentor_trainings", json=six, headers=API))
        submitted = answered(await claims.post(f"{path}/submit", json=signed, headers=API))
        assert submitted["mentor_trainings"][0]["training_type"] == "refresher"


async def test_bad_claims_are_refused_naming_the_field(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"), builders.school("100001"))
        await mentors(line, "100000", "1000001")
        await mentors(line, "100001", "1000002")
        claims = line["claims"]
        good = builders.mentor_training("1000001", 4)
        for body, field in (
            (builders.claim(good, school_urn="999999"), "school_urn"),
            (builders.claim(good, school_urn="1000"), "school_urn"),
            (builders.claim(good, provider_code="3XX"), "provider_code"),
            (builders.claim(good, academic_year=2027), "academic_year"),
            (builders.claim(builders.mentor_training("12345")), "mentor_trn"),
            (builders.claim(builders.mentor_training("1000002")), "mentor_trn"),
            (builders.claim(good, good), "mentor_trn"),
            (builders.claim(builders.mentor_training("1000001", 0)), "hours_completed"),
            (
                builders.claim(builders.mentor_training("1000001", hours_completed=4.5)),
                "hours_completed",
            ),
            (
                builders.claim(builders.mentor_training("1000001", date_completed="2026-11-01")),
                "date_completed",
            ),
            (builders.claim(good, submitted_by=None), "submitted_by"),
        ):
            refused(await claims.post("/claims", json=body, headers=API), 422, field)
        batch = [builders.claim(good), builders.claim(good, provider_code="3XX")]
        answer = await claims.post("/claims/batch", json=batch, headers=API)
        assert refusal(answer).startswith("[1] provider_code:"), answer.text
        assert answered(await claims.get("/claims", headers=AUDITOR)) == []
        assert (await claims.post("/claims", json=builders.claim(good))).status_code == 401


async def test_a_submitted_claim_is_settled_and_says_who_submitted_it(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"))
        await mentors(line, "100000", "1000001", "1000002")
        claims = line["claims"]
        claim = await claimed(line, builders.claim())
        assert (claim["status"], claim["amount"], claim["version"]) == ("draft", "0.00", 1)
        assert len(claim["reference"]) == 8
        assert claim["reference"].isdigit()
        path = f"/claims/{claim['id']}"
        signed = {"submitted_by": "Jane Smith"}
        refused(
            await claims.post(f"{path}/submit", json=signed, headers=API), 422, "mentor_trainings"
        )

        one = builders.mentor_training("1000001", 5)
        added = answered(await claims.post(f"{path}/mentor_trainings", json=one, headers=API), 201)
        assert (added["amount"], added["version"]) == ("268.00", 2)
        again = await claims.post(f"{path}/mentor_trainings", json=one, headers=API)
        refused(again, 409, "mentor_trn")
        late = builders.mentor_training("1000002", 2, date_completed="2026-12-01")
        refused(
            await claims.post(f"{path}/mentor_trainings", json=late, headers=API),
            422,
            "date_completed",
        )
        both = [builders.mentor_training("1000001", 10), builders.mentor_training("1000002", 2)]
        replaced = answered(await claims.put(f"{path}/mentor_trainings", json=both, headers=API))
        assert (replaced["hours_completed"], replaced["amount"], replaced["version"]) == (
            12,
            "643.20",
            3,
        )

        await line.control.advance(to=at(5, 10))
        done = answered(await claims.post(f"{path}/submit", json=signed, headers=API))
        assert (done["status"], done["submitted_at"], done["submitted_by"]) == (
            "submitted",
            "2026-10-05T10:00:00Z",
            "Jane Smith",
        )
        refused(await claims.post(f"{path}/submit", json=signed, headers=API), 409, "status")
        refused(await claims.put(f"{path}/mentor_trainings", json=both, headers=API), 409, "status")
        listed = answered(
            await claims.get("/claims", params={"status": "submitted"}, headers=AUDITOR)
        )
        assert [c["id"] for c in listed] == [claim["id"]]
        feed = answered(await claims.get("/feed/claim", headers=AUDITOR))
        assert [c["version"] for c in feed["changes"]] == [1, 2, 3, 4]
        assert feed["changes"][-1]["record"]["status"] == "submitted"

        many = answered(
            await claims.post("/claims/batch", json=[builders.claim()] * 50, headers=API), 201
        )
        references = {c["reference"] for c in many} | {claim["reference"]}
        assert len(references) == 51
        assert all(len(reference) == 8 for reference in references)


async def test_a_school_closed_in_gias_stays_in_claims_while_a_claim_names_it(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        urns = ["100000", "100001", "100002"]
        await copied(line, *(builders.school(urn) for urn in urns))
        claims = line["claims"]
        await claimed(line, builders.claim(school_urn="100000"))
        answered(await claims.patch("/schools/100001", json={"claims_service": True}, headers=API))
        for urn in urns:
            closed = {"status_code": "2"}
            answered(await line["gias"].patch(f"/schools/{urn}", json=closed, headers=API))
        await line.control.advance(to=at(6, 23, 30))
        assert (await claims.get("/schools/100002")).status_code == 404
        for urn in urns[:2]:
            school = answered(await claims.get(f"/schools/{urn}"))
            assert school["source_deleted_at"] == "2026-10-06T23:30:00Z"
        refused(await claims.post("/claims", json=builders.claim(), headers=API), 422, "school_urn")


async def test_a_mentors_two_owners_disagree_until_the_nightly_sync(state_dir: Path) -> None:
    async with in_process_line([*LINE, "placements"], state_dir) as line:
        await copied(line, builders.school("100000"), builders.school("100001"))
        await line.control.run_edge("gias.school.placements")
        placements, claims = line["placements"], line["claims"]
        answered(await placements.post("/mentors", json=builders.mentor(), headers=API), 201)
        rename_in_dqt(state_dir, "1234567", "Margaret", "Okafor")
        in_claims = builders.mentor(school_urn="100001")
        answered(await claims.post("/mentors", json=in_claims, headers=API), 201)

        owners = {
            name: answered(await client.get("/feed/mentor", headers=AUDITOR))["changes"]
            for name, client in (("placements", placements), ("claims", claims))
        }
        assert {name: [c["key"] for c in changes] for name, changes in owners.items()} == {
            "placements": ["1234567"],
            "claims": ["1234567"],
        }
        records = {name: changes[0]["record"] for name, changes in owners.items()}
        assert (records["placements"]["last_name"], records["claims"]["last_name"]) == (
            "Thompson",
            "Okafor",
        )
        assert (records["placements"]["school_urns"], records["claims"]["school_urns"]) == (
            ["100000"],
            ["100001"],
        )

        await line.control.advance(to=at(5, 0, 5))
        placed = answered(await placements.get("/mentors/1234567", headers=AUDITOR))
        claiming = answered(await claims.get("/mentors/1234567", headers=AUDITOR))
        assert placed["last_name"] == claiming["last_name"] == "Okafor"
        assert (placed["school_urns"], claiming["school_urns"]) == (["100000"], ["100001"])
        assert (placed["version"], claiming["version"]) == (2, 1)


def season() -> list[dict[str, Any]]:
    """Claims whose allowances hang on the claims before them: earlier years, drafts, providers."""
    signed = {"submitted_by": "Jane Smith"}
    one, two, three = TRAINED[:3]
    return [
        builders.claim(builders.mentor_training(one, 20), academic_year=2024, **signed),
        builders.claim(builders.mentor_training(one, 6), academic_year=2025, **signed),
        builders.claim(builders.mentor_training(two, 10), academic_year=2025, **signed),
        builders.claim(builders.mentor_training(two, 6), academic_year=2025, **signed),
        builders.claim(builders.mentor_training(three, 10), academic_year=2025),
        builders.claim(builders.mentor_training(three, 16), academic_year=2025, **signed),
        builders.claim(builders.mentor_training(one, 16), provider_code="1UR", **signed),
        builders.claim(builders.mentor_training(two, 6), builders.mentor_training(three, 6)),
        builders.claim(builders.mentor_training(two, 4), builders.mentor_training(three, 2)),
    ]


async def claims_as_made(line: LineUnderTest) -> list[dict[str, Any]]:
    """Every claim with its mentors' allowances, without what differs by chance (id, number)."""
    claims = line["claims"]
    listed = answered(await claims.get("/claims", headers=AUDITOR))
    made = [answered(await claims.get(f"/claims/{c['id']}", headers=AUDITOR)) for c in listed]
    return sorted(
        ({k: v for k, v in claim.items() if k not in ("id", "reference")} for claim in made),
        key=lambda claim: (claim["academic_year"], str(claim["mentor_trainings"])),
    )


async def test_a_batch_of_claims_is_allowed_the_hours_its_claims_made_one_by_one_are(
    state_dir: Path,
) -> None:
    for name in ("single", "batch"):
        (state_dir / name).mkdir()
    async with (
        in_process_line(LINE, state_dir / "single") as single,
        in_process_line(LINE, state_dir / "batch") as batch,
    ):
        for line in (single, batch):
            await copied(line, builders.school("100000"))
            await mentors(line, "100000", *TRAINED)
        one_by_one = [await claimed(single, body) for body in season()]
        at_once = answered(
            await batch["claims"].post("/claims/batch", json=season(), headers=API), 201
        )
        drop = ("id", "reference", "mentor_trainings")
        assert [{k: v for k, v in c.items() if k not in drop} for c in at_once] == [
            {k: v for k, v in c.items() if k not in drop} for c in one_by_one
        ]
        assert await claims_as_made(batch) == await claims_as_made(single)
        kinds = [[t["training_type"] for t in c["mentor_trainings"]] for c in one_by_one]
        once, twice = ["initial"], ["refresher", "refresher"]
        assert kinds == [once, ["refresher"], once, once, once, once, once, twice, twice]
        # a claim submitted as it is made is a draft first: two versions either way
        assert await versions(batch) == await versions(single) == [1] * 9 + [2] * 6


async def versions(line: LineUnderTest) -> list[int]:
    feed = answered(await line["claims"].get("/feed/claim", headers=AUDITOR))
    return sorted(change["version"] for change in feed["changes"])


async def test_a_claim_over_its_allowance_refuses_its_batch_naming_its_index(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"))
        await mentors(line, "100000", *TRAINED)
        signed = {"submitted_by": "Jane Smith"}
        trn = TRAINED[3]
        batch = [
            builders.claim(builders.mentor_training(TRAINED[4], 3)),
            builders.claim(builders.mentor_training(trn, 12), **signed),
            builders.claim(builders.mentor_training(trn, 4)),
            builders.claim(builders.mentor_training(trn, 5), **signed),
        ]
        answer = await line["claims"].post("/claims/batch", json=batch, headers=API)
        assert answer.status_code == 422, answer.text
        assert refusal(answer) == (
            f"[3] mentor_trainings[0].hours_completed: {trn} has 4 of 16 hours of initial "
            "training left with provider 2FR in 2026 to 2027"
        )
        assert answered(await line["claims"].get("/claims", headers=AUDITOR)) == []
        empty = [builders.claim(builders.mentor_training(trn, 4)), builders.claim(**signed)]
        answer = await line["claims"].post("/claims/batch", json=empty, headers=API)
        assert refusal(answer) == "[1] mentor_trainings: a claim needs a mentor's training"
        assert answered(await line["claims"].get("/claims", headers=AUDITOR)) == []
