"""The ITT census as Register pulled it: an `<ITTRecord>` of `<Student>`s, F_* fields, "NULL"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from lines.becoming_a_teacher.stubs.hesa.models import ITTRecord, StudentPublic

COMMIT_FORMAT = "%Y-%m-%d %H:%M:%S"


def student_public(record: ITTRecord, collection: str) -> StudentPublic:
    """The record as HESA serves it in `collection`, e.g. C26053, whose records are 26053."""
    committed = record.updated_at.strftime(COMMIT_FORMAT) if record.updated_at else None
    return StudentPublic.model_validate(
        record, update={"recid": collection.removeprefix("C"), "commit_timestamp": committed}
    )


def _fields(parent: Element, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        SubElement(parent, name).text = "NULL" if value is None else str(value)


def render(students: Iterable[StudentPublic]) -> bytes:
    root = Element("ITTRecord")
    for student in students:
        fields = student.model_dump(mode="json", by_alias=True)
        placements = fields.pop("PLACEMENTS")
        element = SubElement(root, "Student")
        _fields(element, fields)
        if placements:
            nested = SubElement(element, "PLACEMENTS")
            for placement in placements:
                _fields(SubElement(nested, "PLACEMENT"), placement)
    xml: bytes = tostring(root, encoding="UTF-8", xml_declaration=True)
    return xml
