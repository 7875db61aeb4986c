"""Request and response bodies of POST /sentiment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.core.catalog import model_field
from app.core.text import UnicodeText


class SentimentRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # `"return_attention": 0` is not a boolean; say so rather than guess
        json_schema_extra={
            "examples": [
                {
                    "texts": [
                        "One of the best films I have seen this year: smart, funny and moving.",
                        "The plot made no sense.<br /><br />Two hours I will never get back.",
                    ],
                    "return_attention": False,
                }
            ]
        },
    )

    texts: list[UnicodeText] = Field(
        # Documented here, enforced with the service's own wording (app.core.limits.check_count).
        json_schema_extra={"minItems": 1},
        description="Texts to classify (1 to MAX_ITEMS_PER_REQUEST, each non-empty and at most "
        "MAX_TEXT_CHARS characters), in the served model's language (GET /models: "
        "preprocessing.language). `<br />` tags are treated as spaces.",
    )
    model: str | None = model_field()
    return_attention: bool = Field(
        False,
        description="Also return per-token attention weights. Only for a model with an attention "
        "head (GET /models: architecture.head == 'attention'); otherwise the request is rejected "
        "with 422 rather than silently answered without them.",
    )


class TokenWeight(BaseModel):
    token: str
    weight: float


class SentimentPrediction(BaseModel):
    label: str = Field(
        description="The most probable of the model's labels (from its bundle, GET /models: "
        "`labels`; `negative`/`positive` for the shipped IMDB model)."
    )
    probabilities: dict[str, float] = Field(
        description="Probability of each of the model's labels; they sum to 1."
    )
    tokens: int = Field(description="Tokens in the text, before truncation.")
    truncated: bool = Field(
        description="True when the text was longer than the model's max_length tokens and only "
        "its head and tail were read."
    )
    attention: list[TokenWeight] | None = Field(
        None, description="Attention weight of each token the model read, in order (when asked)."
    )


class SentimentResponse(BaseModel):
    model: str
    version: str
    max_length: int = Field(description="Tokens the model reads per text (head+tail truncation).")
    predictions: list[SentimentPrediction]
