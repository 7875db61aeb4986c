"""The bundle fields every text model shares, named the same in every task, and the check that a
vocabulary artifact matches them."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from app.core.bundle import Bundle, Section
from app.core.text import TOKENIZER_NAME

# Every vocabulary (words, characters) of every text model reserves these two entries.
PAD, UNK = "<pad>", "<unk>"


class TextSection(Section):
    """How a text model's text was tokenised and how tokens map to ids."""

    # The tokenizer this service runs for the task; a bundle made with another is refused.
    expected_tokenizer: ClassVar[str] = TOKENIZER_NAME

    tokenizer: str = Field(description="Name of the tokenizer; must be the one this service runs.")
    lowercase: bool = Field(description="Tokens are lower-cased before the vocabulary lookup.")
    vocab_artifact: str = Field(description="Artifact holding the vocabulary, one token per line.")
    vocab_size: int = Field(ge=2, description="Entries in the vocabulary artifact.")
    pad_id: int = Field(ge=0, description=f"Id of {PAD!r}: the padding id.")
    unk_id: int = Field(ge=0, description=f"Id of {UNK!r}: tokens missing from the vocabulary.")

    @field_validator("tokenizer")
    @classmethod
    def _this_tokenizer(cls, value: str) -> str:
        # Ids only mean the same thing when the text is cut into the same tokens.
        if not cls.accepts_tokenizer(value):
            raise ValueError(
                f"trained with tokenizer {value!r}, this service tokenises with {cls.expected_tokenizer!r}"
            )
        return value

    @classmethod
    def accepts_tokenizer(cls, value: str) -> bool:
        """Whether this service can cut text as `value` names (a section whose tokenizer depends
        on another field, such as a language, checks that pairing itself)."""
        return value == cls.expected_tokenizer

    @model_validator(mode="after")
    def _ids_in_vocabulary(self) -> TextSection:
        for name, value in (("pad_id", self.pad_id), ("unk_id", self.unk_id)):
            if value >= self.vocab_size:
                raise ValueError(f"{name} {value} is outside the vocabulary (size {self.vocab_size})")
        if self.pad_id == self.unk_id:
            raise ValueError("pad_id and unk_id must differ")
        return self

    def vocabulary_index(
        self, bundle: Bundle, artifact: str, words: list[str], size_field: str = "vocab_size"
    ) -> dict[str, int]:
        """`words` (artifact `artifact`'s entries) as token -> id, checked against the section:
        as many entries as `size_field` says, PAD at pad_id and UNK at unk_id."""
        size = getattr(self, size_field)
        if len(words) != size:
            raise bundle.field_error(size_field, f"{size}, but artifact {artifact!r} holds {len(words)}")
        for name, at, token in (("pad_id", self.pad_id, PAD), ("unk_id", self.unk_id, UNK)):
            if words[at] != token:
                raise bundle.field_error(
                    name, f"entry {at} of artifact {artifact!r} is {words[at]!r}, not {token!r}"
                )
        return {w: i for i, w in enumerate(words)}
