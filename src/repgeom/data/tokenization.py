"""Tokenizers: a byte-level BPE trained by the workflow, or a model's own tokenizer."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<|pad|>"
MASK = "<|mask|>"


def train_bpe(
    docs: Iterable[str], vocab_size: int, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE with end-of-text, padding and mask tokens (ids 0, 1, 2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS, PAD, MASK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS,
        eos_token=EOS,
        pad_token=PAD,
        mask_token=MASK,
        unk_token=None,
    )


def load_tokenizer(path_or_id: str | Path, revision: str | None = None) -> PreTrainedTokenizerFast:
    """A tokenizer saved with save_pretrained, or a hub model's (cache only when offline)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path_or_id), revision=revision)


def special_ids(tok: PreTrainedTokenizerFast) -> list[int]:
    """Ids of every special token, sorted."""
    return sorted(set(tok.all_special_ids))
