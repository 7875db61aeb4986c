"""The NER bundle's `preprocessing` section: built by `training.ner.export`, read by `NerTask` at
start-up. The feature code (`app.ner.features`) is shared with training, so the section must
describe that same code: a bundle made by different feature code is refused, naming the field."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from app.core.bundle import Section
from app.core.text import CONLL_TOKENIZER_NAME
from app.core.vocab import TextSection
from app.ner.features import CASES, MAX_WORD_CHARS, PAD_ID


class CasingFeature(Section):
    values: list[str] = Field(description="Casing categories, by id.")
    definition: dict[str, str] = Field(description="What each category means.")

    @field_validator("values")
    @classmethod
    def _same_categories(cls, values: list[str]) -> list[str]:
        if values != CASES:
            raise ValueError(f"{values} differ from this service's casing categories {CASES}")
        return values


class NerSection(TextSection):
    # The network learnt from CoNLL-2003's own tokens; raw text is cut by the same rules.
    expected_tokenizer: ClassVar[str] = CONLL_TOKENIZER_NAME

    scheme: Literal["BIOES"] = Field(description="Tag scheme of the labels and crf.json.")
    source_scheme: str = Field(description="Tag scheme of the training files (converted to BIOES).")
    digits_fallback: str = Field(description="How an unknown word is looked up again.")
    casing_feature: CasingFeature
    chars_artifact: str = Field(description="Artifact holding the character vocabulary (JSON list).")
    char_vocab_size: int = Field(ge=2, description="Entries in the character vocabulary.")
    max_word_chars: int = Field(ge=2, description="Characters the char encoder reads per word.")
    long_word_rule: str = Field(description="Which characters a longer word keeps.")

    @field_validator("lowercase")
    @classmethod
    def _lowercased(cls, value: bool) -> bool:
        if not value:
            raise ValueError("this service's NER features look words up lower-cased")
        return value

    @field_validator("pad_id")
    @classmethod
    def _pad_is_zero(cls, value: int) -> int:
        # The network's embeddings reserve row 0 for padding (padding_idx=0); the encoder pads with it.
        if value != PAD_ID:
            raise ValueError(f"must be {PAD_ID}: the network and the encoder pad with id {PAD_ID}")
        return value

    @field_validator("max_word_chars")
    @classmethod
    def _same_word_cut(cls, value: int) -> int:
        if value != MAX_WORD_CHARS:
            raise ValueError(f"{value} differs from this service's {MAX_WORD_CHARS}")
        return value
