"""The sentiment bundle's `preprocessing` section: built by `training.sentiment.export`, read by
`SentimentTask` at start-up."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from app.core.text import tokenizer_name
from app.core.vocab import TextSection

_SPACY_BLANK = re.compile(r"spacy\.blank\('([a-z]{2,3})'\) tokenizer")


class SentimentSection(TextSection):
    # Any language's rule-based spaCy tokenizer; `language` says which one (checked below).
    expected_tokenizer: ClassVar[str] = tokenizer_name("<language>")

    language: str = Field(
        "en",
        pattern=r"^[a-z]{2,3}$",
        description="spaCy language code; the text is cut by `spacy.blank(language)`'s tokenizer "
        "(absent in bundles made before there was a choice: English).",
    )
    spacy_version: str = Field(description="spaCy version the training text was tokenised with.")
    html_breaks: str = Field(description="How `<br />` tags are treated (both in training and here).")
    max_length: int = Field(ge=1, description="Tokens the model reads per text.")
    truncation: Literal["head+tail"] = Field(description="Which tokens a longer text keeps.")
    head_tokens: int = Field(ge=0, description="Tokens kept from the start of a longer text.")
    tail_tokens: int = Field(ge=0, description="Tokens kept from its end: max_length - head_tokens.")

    @classmethod
    def accepts_tokenizer(cls, value: str) -> bool:
        return _SPACY_BLANK.fullmatch(value) is not None

    @model_validator(mode="after")
    def _tokenizer_is_the_languages(self) -> SentimentSection:
        if self.tokenizer != tokenizer_name(self.language):
            raise ValueError(
                f"tokenizer {self.tokenizer!r} is not language {self.language!r}'s "
                f"({tokenizer_name(self.language)!r})"
            )
        return self

    @model_validator(mode="after")
    def _window_adds_up(self) -> SentimentSection:
        if self.head_tokens + self.tail_tokens != self.max_length:
            raise ValueError(
                f"head_tokens {self.head_tokens} + tail_tokens {self.tail_tokens} "
                f"!= max_length {self.max_length}"
            )
        return self
