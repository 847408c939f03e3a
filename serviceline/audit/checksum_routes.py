"""Range checksums of an edge: the owner serves its projected records', the consumer its copies'."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy import Engine

from serviceline.audit.checksums import (
    MOST_BUCKETS,
    ConsumerSide,
    OwnerSide,
    Side,
    UnsupportedEdgeError,
    checksums,
    range_rows,
)
from serviceline.model.credentials import Rule
from serviceline.model.topology import Edge
from serviceline.runtime.deps import BearerDep, Kernel, KernelDep, SessionDep, authorize

MAX_ROWS = 5000
From = Query(None, alias="from", description="first key of the range (keys compare as text)")
To = Query(None, alias="to", description="the key the range stops before")
Buckets = Query(16, ge=1, le=MOST_BUCKETS, description="sub-ranges cut at quantiles of the keys")
Split = Query(None, description="explicit keys to cut at, instead of quantiles")


def _edge(kernel: Kernel, name: str) -> Edge:
    try:
        return kernel.topology.edge(name)
    except KeyError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no edge named {name!r}") from error


def guard_edge(edge: str, kernel: KernelDep, request: Request, bearer: BearerDep) -> None:
    """An edge of a personal entity: its rows and their sums are the operator's and auditor's."""
    entity = _edge(kernel, edge).entity
    if kernel.topology.entity(entity).personal:
        authorize(kernel, request, bearer, Rule(f"{kernel.name}'s checksums of {entity}"))


checksum_router = APIRouter(
    prefix="/checksums", tags=["checksums"], dependencies=[Depends(guard_edge)]
)


def _owner_side(kernel: Kernel, name: str) -> OwnerSide:
    edge = _edge(kernel, name)
    model = kernel.owned.get(edge.entity)
    if edge.owner != kernel.name:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"{kernel.name} does not own the records of {edge.name}: {edge.owner} does",
        )
    if model is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"{kernel.name} serves its {edge.entity} records from a fixed list, not a versioned "
            "table, so it keeps no row hashes to sum",
        )
    try:
        return OwnerSide(edge, model)
    except UnsupportedEdgeError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error


def _consumer_side(kernel: Kernel, name: str) -> ConsumerSide:
    edge = _edge(kernel, name)
    if edge.name not in kernel.copier.edges:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{kernel.name} keeps no copies of {edge.name}"
        )
    return ConsumerSide(edge, kernel.copier.targets[edge.entity].model)


def _checksums(
    side: Side,
    engine: Engine,
    start: str | None,
    end: str | None,
    buckets: int,
    split: list[str] | None,
) -> dict[str, Any]:
    if split is not None and split != sorted(split):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "split: keys must be in order")
    if split is not None and len(split) >= MOST_BUCKETS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"split: no more than {MOST_BUCKETS - 1} keys, cutting {MOST_BUCKETS} buckets",
        )
    cut = checksums(side, engine, start, end, buckets, split)
    return {"edge": side.edge.name, "buckets": [bucket.view() for bucket in cut]}


def _rows(side: Side, session: SessionDep, start: str | None, end: str | None) -> dict[str, Any]:
    rows = range_rows(side, session, start, end, MAX_ROWS + 1)
    if len(rows) > MAX_ROWS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"from: the range holds more than {MAX_ROWS} rows; ask for its checksums instead",
        )
    return {"edge": side.edge.name, "rows": rows}


def _serve(kind: str, noun: str, side_of: Callable[[Kernel, str], Side]) -> None:
    """The checksums and rows of one side of an edge: records an owner serves, or copies."""

    def read_checksums(
        edge: str,
        kernel: KernelDep,
        start: str | None = From,
        end: str | None = To,
        buckets: int = Buckets,
        split: list[str] | None = Split,
    ) -> dict[str, Any]:
        # not the request's session: keeping the hashes up to date commits as it goes
        return _checksums(side_of(kernel, edge), kernel.engine, start, end, buckets, split)

    def read_rows(
        edge: str,
        kernel: KernelDep,
        session: SessionDep,
        start: str | None = From,
        end: str | None = To,
    ) -> dict[str, Any]:
        return _rows(side_of(kernel, edge), session, start, end)

    checksum_router.get(f"/{kind}/{{edge}}", name=f"read_{noun}_checksums")(read_checksums)
    checksum_router.get(f"/{kind}/{{edge}}/rows", name=f"read_{noun}_rows")(read_rows)


_serve("records", "record", _owner_side)
_serve("copies", "copy", _consumer_side)
