"""The sentiment bundle's `preprocessing` section: built by `training.sentiment.export`, read by
`SentimentTask` at start-up."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from app.core.vocab import TextSection


class SentimentSection(TextSection):
    spacy_version: str = Field(description="spaCy version the training text was tokenised with.")
    html_breaks: str = Field(description="How `<br />` tags are treated (both in training and here).")
    max_length: int = Field(ge=1, description="Tokens the model reads per text.")
    truncation: Literal["head+tail"] = Field(description="Which tokens a longer text keeps.")
    head_tokens: int = Field(ge=0, description="Tokens kept from the start of a longer text.")
    tail_tokens: int = Field(ge=0, description="Tokens kept from its end: max_length - head_tokens.")

    @model_validator(mode="after")
    def _window_adds_up(self) -> SentimentSection:
        if self.head_tokens + self.tail_tokens != self.max_length:
            raise ValueError(
                f"head_tokens {self.head_tokens} + tail_tokens {self.tail_tokens} "
                f"!= max_length {self.max_length}"
            )
        return self
