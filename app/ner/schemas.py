"""Request and response bodies of `POST /ner`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.core.catalog import model_field
from app.core.text import UnicodeText

CONFIDENCE_DOC = (
    "Probability under the CRF (forward-backward marginal) that exactly this token span carries "
    "this entity's tag sequence (S-X, or B-X I-X... E-X): the share of all tag paths, weighted by "
    "their probability, that contain this entity with these boundaries and this type."
)


class NerRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"texts": ["Angela Merkel met Emmanuel Macron in Paris on Tuesday."]},
                {
                    "tokens": [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]],
                    "return_tags": True,
                },
            ]
        },
    )

    texts: list[UnicodeText] | None = Field(
        None,
        json_schema_extra={"minItems": 1},
        description="Raw texts in the served model's language (`preprocessing.language` in "
        "GET /models), tokenised by the service with that language's rules: English the way "
        "CoNLL-2003 was (spaCy's rule-based tokenizer keeping intra-word hyphens whole: "
        "`Hewlett-Packard`, `2-1`), any other language with spaCy's rule-based tokenizer for it. "
        "Entity offsets are character offsets into each text. Give either `texts` or `tokens`.",
    )
    tokens: list[list[UnicodeText]] | None = Field(
        None,
        json_schema_extra={"minItems": 1},
        description="Pre-tokenised sentences. Entity offsets are character offsets into the "
        "sentence's tokens joined by single spaces (`' '.join(tokens)`).",
    )
    model: str | None = model_field()
    return_tags: bool = Field(False, description="Also return each token with its BIOES tag.")


class Entity(BaseModel):
    text: str = Field(description="The entity's surface string: `source[start:end]`.")
    label: str = Field(
        description="The entity type: one of the served model's types, which come from its "
        "training data (its tags are the manifest's `labels` in GET /models; the shipped "
        "CoNLL-2003 model has PER, ORG, LOC and MISC)."
    )
    start: int = Field(description="Character offset of the first character (inclusive).")
    end: int = Field(description="Character offset after the last character (exclusive).")
    confidence: float = Field(ge=0.0, le=1.0, description=CONFIDENCE_DOC)


class TaggedToken(BaseModel):
    text: str
    start: int
    end: int
    tag: str = Field(description="BIOES tag (O, B-X, I-X, E-X, S-X) from Viterbi decoding.")


class NerResult(BaseModel):
    entities: list[Entity]
    tokens: list[TaggedToken] | None = Field(None, description="Only when `return_tags` is true.")


class NerResponse(BaseModel):
    model: str
    version: str
    results: list[NerResult] = Field(description="One result per input text/sentence, in order.")
