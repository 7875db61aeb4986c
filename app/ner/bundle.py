"""The NER bundle's `preprocessing` section: built by `training.ner.export`, read by `NerTask` at
start-up. The feature code (`app.ner.features`) is shared with training, so the section must
describe that same code: a bundle made by different feature code is refused, naming the field."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from app.core.bundle import Section
from app.core.text import CONLL_TOKENIZER_NAME, Token, tokenize_blank, tokenize_conll
from app.core.text import tokenizer_name as blank_tokenizer_name
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


def tokenizer_name(language: str) -> str:
    """The tokenizer raw text in `language` is cut with: English keeps the CoNLL-2003 rules the
    shipped model learnt from; any other language gets spaCy's rule-based tokenizer for it."""
    return CONLL_TOKENIZER_NAME if language == "en" else blank_tokenizer_name(language)


def tokenizer_for(language: str) -> Callable[[str], list[Token]]:
    return tokenize_conll if language == "en" else partial(tokenize_blank, language=language)


class NerSection(TextSection):
    # English: the network learnt from CoNLL-2003's own tokens; raw text is cut by the same rules.
    # Other languages: see `tokenizer_name`; the check follows `language`.
    expected_tokenizer: ClassVar[str] = CONLL_TOKENIZER_NAME

    language: str = Field(
        "en",
        pattern=r"^[a-z]{2,3}$",
        description="Language of the training text (ISO 639 code); raw text is tokenised with its "
        "rules. Bundles written before the field existed are English.",
    )
    scheme: Literal["BIOES"] = Field(description="Tag scheme of the labels and crf.json.")
    source_scheme: str = Field(description="Tag scheme of the training files (converted to BIOES).")
    digits_fallback: str = Field(description="How an unknown word is looked up again.")
    casing_feature: CasingFeature
    chars_artifact: str = Field(description="Artifact holding the character vocabulary (JSON list).")
    char_vocab_size: int = Field(ge=2, description="Entries in the character vocabulary.")
    max_word_chars: int = Field(ge=2, description="Characters the char encoder reads per word.")
    long_word_rule: str = Field(description="Which characters a longer word keeps.")

    @field_validator("tokenizer")
    @classmethod
    def _this_tokenizer(cls, value: str) -> str:
        return value  # checked against `language` below, once both are read

    @model_validator(mode="after")
    def _tokenizer_of_language(self) -> NerSection:
        # Ids only mean the same thing when the text is cut into the same tokens.
        expected = tokenizer_name(self.language)
        if self.tokenizer != expected:
            raise ValueError(
                f"trained with tokenizer {self.tokenizer!r}; for language {self.language!r} this "
                f"service tokenises with {expected!r}"
            )
        return self

    def tokenize(self) -> Callable[[str], list[Token]]:
        return tokenizer_for(self.language)

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
