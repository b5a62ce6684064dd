"""A WordPiece tokenizer built from the project's own corpora with the ``tokenizers`` library.

Text is lower-cased and split into words and punctuation (``"drawer-open"`` is ``drawer - open``). Every
word of the training corpus is one token; a word never seen is split into the longest known pieces
(``pushing`` -> ``push ##ing``), so an unseen inflection still shares its stem's embedding, and only
characters never seen map to ``[UNK]``. The tokenizer is a ``PreTrainedTokenizerFast`` so it is saved
beside the model (``tokenizer.json``) and reloaded with ``AutoTokenizer``-style ``from_pretrained``.

The vocabulary is made by a fixed rule rather than by ``WordPieceTrainer``, whose vocabulary (and so every
token id) changes from call to call on the same corpus: the special tokens, every word (sorted), every
character alone and as a ``##`` continuation, then the word endings of 2-4 characters shared by at least
two words (``##ing``, ``##ed``). The same corpus always gives the same ids, so a seeded run is repeatable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import WordPiece
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

PAD, BOS, EOS, UNK, SEP = "[PAD]", "[BOS]", "[EOS]", "[UNK]", "[SEP]"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, SEP)  # ids 0..4, in this order (the model config relies on it)
MAX_TEXT_WORDS = 96  # longer inputs are truncated with a warning (see ``encode_prompt``)
TOKENIZER_KIND = "wordpiece-fixed"  # part of the continual benchmark's run key: another kind makes old runs stale
ENDING_LENGTHS = (2, 3, 4)  # word endings kept as ``##`` pieces when at least two words share them


def corpus_words(corpus: Iterable[str]) -> list[str]:
    """The sorted distinct words of ``corpus`` after the tokenizer's own normalisation and splitting."""
    normalizer, splitter = _normalizer(), pre_tokenizers.Whitespace()
    found = {word for text in corpus for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text))}
    return sorted(found)


def vocabulary(words: Iterable[str]) -> dict[str, int]:
    """Token ids of a word list: specials, whole words, characters, ``##`` characters, shared endings."""
    words = sorted(set(words))
    characters = sorted({c for word in words for c in word})
    endings: dict[str, set[str]] = {}
    for word in words:
        for length in ENDING_LENGTHS:
            if len(word) > length:
                endings.setdefault(word[-length:], set()).add(word)
    shared = sorted(e for e, owners in endings.items() if len(owners) >= 2)
    tokens = [*SPECIAL_TOKENS, *words, *characters, *(f"##{c}" for c in characters), *(f"##{e}" for e in shared)]
    return {token: index for index, token in enumerate(dict.fromkeys(tokens))}


def _normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])


def train_tokenizer(corpus: Iterable[str], extra_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """The tokenizer of ``corpus`` (every word seen once is kept whole) plus ``extra_words``; deterministic."""
    texts = [*corpus, " ".join(extra_words)]
    tokenizer = Tokenizer(WordPiece(vocabulary(corpus_words(texts)), unk_token=UNK))
    tokenizer.normalizer = _normalizer()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK, sep_token=SEP
    )
    if [fast.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] != list(range(len(SPECIAL_TOKENS))):
        raise RuntimeError("special tokens did not get ids 0..4")
    return fast


def words(tokenizer: PreTrainedTokenizerFast, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_prompt(tokenizer: PreTrainedTokenizerFast, text: str, max_words: int = MAX_TEXT_WORDS) -> list[int]:
    """``[BOS] text [SEP]`` for a user's text: empty text is refused, over-long text is truncated (warning)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    ids = words(tokenizer, text)
    if not ids:
        raise ValueError(f"text {text!r} has no words the tokenizer can read")
    if len(ids) > max_words:
        logger.warning("text has %d tokens; only the first %d are read", len(ids), max_words)
        ids = ids[:max_words]
    unknown = sum(i == tokenizer.unk_token_id for i in ids)
    if unknown:
        logger.debug("%d of %d words of %r are unknown to the tokenizer", unknown, len(ids), text)
    return [tokenizer.bos_token_id, *ids, tokenizer.sep_token_id]
