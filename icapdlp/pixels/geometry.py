"""Rectangles in stored-image coordinates and why each one is redacted."""

from __future__ import annotations

from dataclasses import dataclass

#: closed set of reasons a box is redacted; these strings are report keys and review labels
SOURCE_HEADER = "header-match"
SOURCE_NER = "ner"
SOURCE_ALL_TEXT = "all-text"
SOURCES = (SOURCE_HEADER, SOURCE_NER, SOURCE_ALL_TEXT)


@dataclass(frozen=True)
class Box:
    """Half-open rectangle [x0, x1) x [y0, y1) in pixel columns / rows."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def padded(self, pad: int, rows: int, cols: int) -> "Box":
        """Grow by ``pad`` on every side, clipped to the image."""
        return Box(max(0, self.x0 - pad), max(0, self.y0 - pad), min(cols, self.x1 + pad), min(rows, self.y1 + pad))

    def union(self, other: "Box") -> "Box":
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def contains(self, other: "Box") -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and self.x1 >= other.x1 and self.y1 >= other.y1

    def intersects(self, other: "Box") -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1


@dataclass(frozen=True)
class Redaction:
    """One box to fill and why: ``source`` from :data:`SOURCES`, ``label`` e.g. the entity type.

    Labels are closed-set words (entity types, header attribute groups), never the text found.
    """

    box: Box
    source: str
    label: str
