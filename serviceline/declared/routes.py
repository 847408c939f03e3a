"""A declared owner's write API for one entity: create, batch, list, read, change and delete."""

# no postponed annotations: FastAPI reads the request bodies made from the line file as they are
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel
from sqlmodel import Session, col, select

from serviceline.declared.spec import EntitySpec
from serviceline.declared.tables import write_bodies
from serviceline.model.credentials import Rule
from serviceline.owner.feed import Owned, add_new, new_record
from serviceline.runtime.crud import by_key, get_or_404, update_from
from serviceline.runtime.deps import ApiAuth, SessionDep, guard


def _taking(body: type[BaseModel] | type[list[Any]]) -> Callable[[Callable[..., Any]], Any]:
    """The handler's `body` annotated with a model made from the file, which FastAPI validates."""

    def typed(handler: Callable[..., Any]) -> Callable[..., Any]:
        handler.__annotations__["body"] = body
        return handler

    return typed


def entity_router(entity: EntitySpec, table: type[Owned], *, personal: bool) -> APIRouter:
    router = APIRouter(prefix=entity.path, tags=[entity.name])
    reads = [Depends(guard(Rule(f"{entity.owner}'s {entity.name}s")))] if personal else []
    create_body, update_body = write_bodies(entity)
    what = f"{entity.name} with {entity.key}"

    def find(session: Session, key: str) -> Owned:
        return get_or_404(session, table, key, field=entity.key, what=what)

    @router.get("", dependencies=reads)
    def list_records(
        session: SessionDep,
        after: str | None = None,
        limit: int = Query(500, ge=1, le=5000),
    ) -> list[dict[str, Any]]:
        key = col(getattr(table, entity.key))
        query = select(table).order_by(key).limit(limit)
        if after is not None:
            query = query.where(key > after)
        return [record.feed_record() for record in session.exec(query)]

    @router.get("/{key}", dependencies=reads)
    def read_record(key: str, session: SessionDep) -> dict[str, Any]:
        return find(session, key).feed_record()

    @router.post("", status_code=201, dependencies=[ApiAuth])
    @_taking(create_body)
    def create_record(body: Any, session: SessionDep) -> dict[str, Any]:
        record = new_record(table, body)
        if session.get(table, record.key) is not None:
            raise_conflict(entity, record.key)
        session.add(record)
        session.flush()
        return record.feed_record()

    @router.post("/batch", status_code=201, dependencies=[ApiAuth])
    @_taking(list[create_body])  # type: ignore[valid-type]
    def create_records(body: Any, session: SessionDep) -> dict[str, int]:
        records = [new_record(table, item, at=index) for index, item in enumerate(body)]
        keys = [record.key for record in records]
        seen: set[str] = set()
        for index, key in enumerate(keys):
            if key in seen:
                raise_conflict(entity, key, f"[{index}] ")
            seen.add(key)
        taken = by_key(session, table, keys)
        for index, key in enumerate(keys):
            if key in taken:
                raise_conflict(entity, key, f"[{index}] ")
        add_new(session, records)
        return {"created": len(records)}

    @router.patch("/{key}", dependencies=[ApiAuth])
    @_taking(update_body)
    def update_record(key: str, body: Any, session: SessionDep) -> dict[str, Any]:
        return update_from(session, find(session, key), body).feed_record()

    @router.delete("/{key}", status_code=204, dependencies=[ApiAuth])
    def delete_record(key: str, session: SessionDep) -> Response:
        session.delete(find(session, key))
        session.flush()
        return Response(status_code=204)

    return router


def raise_conflict(entity: EntitySpec, key: str, at: str = "") -> None:
    raise HTTPException(
        status.HTTP_409_CONFLICT, f"{at}{entity.key}: a {entity.name} {key!r} exists"
    )
