"""Tag schemes for NER: CoNLL-2003 ships IOB1, the model is trained in BIOES, users get spans.

A span is `(start, end, type)` over token indices with `end` exclusive. Span extraction follows
`conlleval`: an ill-formed sequence (I- after O, E- without B-) still yields spans rather than
dropping tokens, so scores computed from predictions match the reference script.
"""

from __future__ import annotations

from collections.abc import Sequence

Span = tuple[int, int, str]


def _split(tag: str) -> tuple[str, str]:
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def iob1_spans(tags: Sequence[str]) -> list[Span]:
    """Spans of an IOB1 (or IOB2) sequence: a chunk starts at B-, or at I- whose predecessor is
    O or of another type; it ends where the next tag does not continue it."""
    spans: list[Span] = []
    start, kind = -1, ""
    for i, tag in enumerate(tags):
        prefix, t = _split(tag)
        continues = prefix == "I" and t == kind and start >= 0
        if not continues:
            if start >= 0:
                spans.append((start, i, kind))
            start, kind = (i, t) if prefix in ("B", "I") else (-1, "")
    if start >= 0:
        spans.append((start, len(tags), kind))
    return spans


def bioes_spans(tags: Sequence[str]) -> list[Span]:
    """Spans of a BIOES sequence. Well-formed input maps one to one; a decoder's rare ill-formed
    output is read leniently (I-/E- continuing a chunk of the same type, anything else opens)."""
    spans: list[Span] = []
    start, kind = -1, ""
    for i, tag in enumerate(tags):
        prefix, t = _split(tag)
        if prefix in ("I", "E") and start >= 0 and t == kind:
            pass
        else:
            if start >= 0:
                spans.append((start, i, kind))
                start, kind = -1, ""
            if prefix != "O":
                start, kind = i, t
        if prefix in ("E", "S") and start >= 0:
            spans.append((start, i + 1, kind))
            start, kind = -1, ""
    if start >= 0:
        spans.append((start, len(tags), kind))
    return spans


def spans_to_bioes(spans: Sequence[Span], length: int) -> list[str]:
    tags = ["O"] * length
    for start, end, kind in spans:
        if end - start == 1:
            tags[start] = f"S-{kind}"
        else:
            tags[start] = f"B-{kind}"
            for i in range(start + 1, end - 1):
                tags[i] = f"I-{kind}"
            tags[end - 1] = f"E-{kind}"
    return tags


def iob1_to_bioes(tags: Sequence[str]) -> list[str]:
    return spans_to_bioes(iob1_spans(tags), len(tags))


def bioes_tagset(types: Sequence[str]) -> list[str]:
    """Tag list with "O" first (index 0), then B/I/E/S per type in a fixed order."""
    return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in "BIES"]
