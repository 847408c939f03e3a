"""A line's own API is read through the `Reader` it declares; the kernel's API by the kernel."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from serviceline.consumer.readers import (
    KernelReader,
    Page,
    ReadContext,
    SourceReader,
    SourceRecord,
    reader_for,
)
from serviceline.model.topology import (
    KERNEL_READER,
    Edge,
    Entity,
    Kind,
    Mechanism,
    Reader,
    Service,
    Topology,
)
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.settings import ClockMode
from serviceline.runtime.upstream import Upstream

pytestmark = pytest.mark.anyio


@dataclass
class PriceListReader:
    """A shop's nightly price list: every product, one page."""

    upstream: Upstream

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        body = await self.upstream.get_json("/price-list")
        yield Page([SourceRecord(str(row["sku"]), None, row) for row in body])


opened: list[ReadContext] = []


def open_price_list(context: ReadContext) -> SourceReader:
    opened.append(context)
    return PriceListReader(context.upstream)


PRICE_LIST = Reader(
    name="price_list",
    description="the catalogue's nightly price list",
    mechanisms=frozenset({Mechanism.SNAPSHOT}),
    opens=open_price_list,
)
MAPPING = {"sku": "sku", "price": "price"}


def shop(reader: Reader, mechanism: Mechanism = Mechanism.SNAPSHOT) -> Topology:
    return Topology(
        (
            Service("catalogue", "The catalogue", Kind.SERVICE, 9100),
            Service("basket", "The basket", Kind.SERVICE, 9101),
        ),
        (Entity("product", ("catalogue",), "sku"),),
        (),
        (Edge("catalogue", "basket", "product", mechanism, "0 2 * * *", MAPPING, reader=reader),),
        (),
    )


def context(edge: Edge, upstream: Upstream) -> ReadContext:
    clock = SimulatedClock(ClockMode.MANUAL, datetime(2026, 10, 1, tzinfo=UTC))
    return ReadContext(
        edge=edge, upstream=upstream, key_field="sku", clock=clock, year=2027, page_size=50
    )


def catalogue(handler: httpx.MockTransport) -> Upstream:
    client = httpx.AsyncClient(transport=handler, base_url="http://catalogue")
    return Upstream("catalogue", client)


async def test_a_declared_reader_is_opened_with_the_edges_context_and_reads_its_api() -> None:
    served = [{"sku": "A1", "price": 3}, {"sku": "B2", "price": 5}]
    upstream = catalogue(httpx.MockTransport(lambda request: httpx.Response(200, json=served)))
    [edge] = shop(PRICE_LIST).edges
    reader = reader_for(context(edge, upstream))
    assert isinstance(reader, PriceListReader)
    assert opened[-1].edge is edge
    assert opened[-1].page_size == 50
    pages = [page async for page in reader.pages(None)]
    assert [record.key for page in pages for record in page.records] == ["A1", "B2"]


async def test_the_kernels_own_api_is_read_by_the_kernels_reader() -> None:
    upstream = catalogue(httpx.MockTransport(lambda request: httpx.Response(404)))
    [edge] = shop(KERNEL_READER, Mechanism.FEED).edges
    reader = reader_for(context(edge, upstream))
    assert isinstance(reader, KernelReader)
    assert (reader.entity, reader.key_field, reader.page_size) == ("product", "sku", 50)


def test_a_declared_reader_is_read_only_the_ways_it_declares() -> None:
    topology = shop(PRICE_LIST)
    [edge] = topology.edges
    with pytest.raises(ValueError, match="through price_list, which can only be read by snapshot"):
        topology.with_overrides({edge.name: "updated_since"})


def test_a_reader_whose_records_are_the_owners_may_be_read_from_the_feed_instead() -> None:
    alike = Reader(
        name="catalogue_api",
        description="the catalogue's product API, its own field names",
        mechanisms=frozenset({Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT}),
        opens=open_price_list,
        feed_alike=True,
    )
    [edge] = shop(alike, Mechanism.UPDATED_SINCE).with_overrides({"*": "feed"}).edges
    assert (edge.mechanism, edge.reader) == (Mechanism.FEED, KERNEL_READER)
    listed = shop(PRICE_LIST)
    with pytest.raises(ValueError, match="through price_list, which can only be read by snapshot"):
        listed.with_overrides({listed.edges[0].name: "feed"})
