"""A record system's own API: the universities that run it, as each sets itself up."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from lines.becoming_a_teacher.systems.record_system.models import (
    InstitutionCreate,
    InstitutionRecord,
)
from serviceline.runtime.crud import get_or_404
from serviceline.runtime.db import upsert
from serviceline.runtime.deps import ApiAuth, ClockDep, SessionDep


def institutions_router(model: type[InstitutionRecord]) -> APIRouter:
    """List, read and set up the universities this system runs, kept in `model`."""
    router = APIRouter(tags=["institutions"])

    @router.get("/institutions")
    def list_institutions(session: SessionDep) -> list[InstitutionRecord]:
        return list(session.exec(select(model).order_by(col(model.provider_code))))

    @router.get("/institutions/{provider_code}")
    def read_institution(provider_code: str, session: SessionDep) -> InstitutionRecord:
        return get_or_404(session, model, provider_code, field="provider_code", what="institution")

    @router.post("/institutions/batch", dependencies=[ApiAuth])
    def create_institutions(
        body: list[InstitutionCreate], session: SessionDep, clock: ClockDep
    ) -> dict[str, int]:
        """Set up many universities at once; one already set up takes the new UKPRN and name."""
        rows = [
            model.model_validate(b, update={"set_up_at": clock.now()}).model_dump() for b in body
        ]
        upsert(session, model, rows, "provider_code")
        return {"set_up": len(rows)}

    return router
