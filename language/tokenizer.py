"""A WordPiece tokenizer trained on the project's own corpora with the ``tokenizers`` library.

Text is lower-cased and split into words and punctuation (``"drawer-open"`` is ``drawer - open``). Every
word of the training corpus is one token; a word never seen is split into the longest known pieces
(``pushing`` -> ``push ##ing``), so an unseen inflection still shares its stem's embedding, and only
characters never seen map to ``[UNK]``. The tokenizer is a ``PreTrainedTokenizerFast`` so it is saved
beside the model (``tokenizer.json``) and reloaded with ``AutoTokenizer``-style ``from_pretrained``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

PAD, BOS, EOS, UNK, SEP = "[PAD]", "[BOS]", "[EOS]", "[UNK]", "[SEP]"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, SEP)  # ids 0..4, in this order (the model config relies on it)
MAX_TEXT_WORDS = 96  # longer inputs are truncated with a warning (see ``encode_prompt``)
TOKENIZER_KIND = "wordpiece"  # part of the continual benchmark's run key: another kind makes old runs stale
MAX_VOCABULARY = 30_000  # far above the project's corpora: every training word stays whole


def train_tokenizer(corpus: Iterable[str], extra_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Learn the vocabulary of ``corpus`` (every word seen once is kept whole) plus ``extra_words``."""
    tokenizer = Tokenizer(WordPiece(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece()
    trainer = WordPieceTrainer(
        vocab_size=MAX_VOCABULARY, special_tokens=list(SPECIAL_TOKENS), min_frequency=1, show_progress=False
    )
    tokenizer.train_from_iterator(list(corpus) + [" ".join(extra_words)], trainer=trainer)
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


def decode_words(tokenizer: PreTrainedTokenizerFast, ids: Iterable[int]) -> str:
    """Text of generated ids (special tokens dropped), with ``drawer - open`` joined back to ``drawer-open``."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    return re.sub(r"\s*-\s*", "-", text).strip()
