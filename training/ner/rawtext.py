"""Raw text versus a file's own tokens: how the served tokenizer cuts a labelled file's
sentences once they are written out as running text, and what that costs in entity F1.

Each sentence is detokenised into the plain text a user would post (`detokenise`); then
  1. the served tokenizer's tokens are compared with the file's (`boundary_mismatches`);
  2. the same sentences go through the service's own NER pipeline twice, pre-tokenised
     (`tokens`) and as raw text (`texts`), and both answers are scored against the gold entities
     by character span (conlleval rules: exact span and type) (`score_through_api`).
`python -m bench.ner_tokens` runs this over CoNLL-2003 eng.testb through HTTP; each
`python -m training.ner` run over its test file, through the bundle it is about to ship.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from app.core.text import Token, tokenize
from training.ner.conlleval import score_spans
from training.ner.data import Sentence

CharSpan = tuple[int, int, str]
# A request body in, the response body out (an HTTP client's post, or a task's `answer`).
Post = Callable[[dict[str, Any]], dict[str, Any]]

# Penn-Treebank-style glue: no space before closing punctuation and clitics, none after openers.
_NO_SPACE_BEFORE = frozenset(
    {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "''", "...", "'s", "'S", "n't", "N'T"}
    | {"'re", "'ve", "'ll", "'d", "'m", "'RE", "'VE", "'LL", "'D", "'M"}
)
_NO_SPACE_AFTER = frozenset({"(", "[", "{", "$", "``"})


def detokenise(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The sentence as running text, and each word's [start, end) in it. Straight double quotes
    alternate between opening (glued to the next word) and closing (glued to the previous)."""
    parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos, glue_next, quote_open = 0, True, False
    for word in words:
        glue = glue_next or word in _NO_SPACE_BEFORE
        glue_next = word in _NO_SPACE_AFTER
        if word == '"':
            glue = glue or quote_open
            glue_next = not quote_open
            quote_open = not quote_open
        if not glue:
            parts.append(" ")
            pos += 1
        parts.append(word)
        offsets.append((pos, pos + len(word)))
        pos += len(word)
    return "".join(parts), offsets


def boundary_mismatches(
    sentences: Sequence[Sentence], tokenizer: Callable[[str], list[Token]]
) -> tuple[int, int, Counter[str]]:
    """(sentences whose tokens differ, gold tokens whose boundaries the tokenizer misses, the
    missed gold tokens by text)."""
    bad_sentences, missed = 0, Counter[str]()
    for s in sentences:
        text, offsets = detokenise(s.words)
        got = {(t.start, t.end) for t in tokenizer(text)}
        lost = [text[a:b] for a, b in offsets if (a, b) not in got]
        bad_sentences += bool(lost) or len(got) != len(offsets)
        missed.update(lost)
    return bad_sentences, sum(missed.values()), missed


def gold_char_spans(s: Sentence, offsets: Sequence[tuple[int, int]]) -> list[CharSpan]:
    return [(offsets[a][0], offsets[b - 1][1], label) for a, b, label in s.spans()]


def _space_joined(words: Sequence[str]) -> list[tuple[int, int]]:
    offsets, pos = [], 0
    for w in words:
        offsets.append((pos, pos + len(w)))
        pos += len(w) + 1
    return offsets


def score_through_api(post: Post, sentences: Sequence[Sentence], how: str, batch: int) -> dict[str, Any]:
    """Entity P/R/F1 of the service's answers, by character span. `how`: "tokens" posts the
    file's own tokens (spans in the tokens joined by single spaces), "texts" posts the
    detokenised text, "spacy" posts the detokenised text cut by spaCy's default English rules as
    `tokens` (what the service did before it had CoNLL rules) and maps the answer back onto the
    text. `post` sends one `/ner` body and returns the answer's body."""
    gold: list[list[CharSpan]] = []
    predicted: list[list[CharSpan]] = []
    for i in range(0, len(sentences), batch):
        chunk = sentences[i : i + batch]
        docs = [detokenise(s.words) for s in chunk]
        if how == "texts":
            body: dict[str, Any] = {"texts": [text for text, _ in docs]}
        elif how == "spacy":
            cut = [tokenize(text) for text, _ in docs]
            body = {"tokens": [[t.text for t in toks] for toks in cut]}
        else:
            body = {"tokens": [s.words for s in chunk]}
            docs = [(" ".join(s.words), _space_joined(s.words)) for s in chunk]
        for j, (s, (_, offsets), result) in enumerate(zip(chunk, docs, post(body)["results"], strict=True)):
            gold.append(gold_char_spans(s, offsets))
            spans = [(e["start"], e["end"], e["label"]) for e in result["entities"]]
            if how == "spacy":  # offsets into the space-joined tokens -> offsets into the text
                joined = _space_joined([t.text for t in cut[j]])
                back = {a: t.start for (a, _), t in zip(joined, cut[j], strict=True)}
                back |= {b: t.end for (_, b), t in zip(joined, cut[j], strict=True)}
                spans = [(back[a], back[b], label) for a, b, label in spans]
            predicted.append(spans)
    return score_spans(gold, predicted)
