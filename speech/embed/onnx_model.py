"""all-MiniLM-L6-v2 as an ONNX Runtime graph, built from the packaged weights (nothing is downloaded), int8 for queries.

Why: a caller's question must be embedded within the turn's retrieval budget (30 ms p95 with the search, on 2 shared
cores). The numpy encoder (model.py) takes 9-15 ms for a 10-token question on an idle core; ONNX Runtime with
dynamically quantised int8 weights (per channel) takes about a third of that, and its vectors stay within cosine
0.99 of the float32 ones that index the documents (recall@3 unchanged: BENCHMARKS.md, "Knowledge base: retrieval
under 30 ms"). The graph is written from the safetensors checkpoint with the `onnx` package (the same BERT encoder
as model.py, exact-erf GELU), quantised once and cached as a file keyed by the checkpoint, so later starts only load
it (about 0.3 s).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from speech.common.onnx_int8 import exact_int8
from speech.embed.model import DIMENSIONS, HEADS, LAYERS, SentenceEncoder, read_checkpoint, read_tokenizer

log = logging.getLogger(__name__)
_GRAPH_VERSION = 1  # bump when build_graph changes: a new cache file


def build_graph(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """input_ids (B, L) int64 + attention_mask (B, L) float32 -> last hidden states (B, L, 384)."""
    initializers: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value if value.ndim == 0 else np.ascontiguousarray(value), name))
        return name

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{kind}_{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(x: str, prefix: str, weight: np.ndarray, bias: np.ndarray) -> str:
        return op("Add", [op("MatMul", [x, const(prefix + "_w", weight.T)]), const(prefix + "_b", bias)])

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", [x, const(prefix + "_g", weights[prefix + ".weight"]),
                                         const(prefix + "_beta", weights[prefix + ".bias"])], epsilon=1e-12, axis=-1)

    head = DIMENSIONS // HEADS
    for name, value in (("zero", 0), ("one", 1), ("two", 2)):
        const(name, np.array(value, np.int64))
    const("split_heads", np.array([0, 0, 3, HEADS, head], np.int64))
    const("merge_heads", np.array([0, 0, DIMENSIONS], np.int64))
    const("mask_axes", np.array([1, 2], np.int64))
    length = op("Gather", [op("Shape", ["input_ids"]), "one"], axis=0)
    positions = op("Range", ["zero", length, "one"])
    x = op("Add", [op("Add", [op("Gather", [const("word", weights["embeddings.word_embeddings.weight"]), "input_ids"]),
                              op("Gather", [const("pos", weights["embeddings.position_embeddings.weight"]),
                                            positions])]),
                   const("type0", weights["embeddings.token_type_embeddings.weight"][0])])
    x = layer_norm(x, "embeddings.LayerNorm")
    blocked = op("Sub", [const("onef", np.array(1.0, np.float32)), "attention_mask"])
    mask_bias = op("Unsqueeze", [op("Mul", [blocked, const("neg", np.array(-1e9, np.float32))]), "mask_axes"])
    scale = const("scale", np.array(head ** -0.5, np.float32))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        qkv_w = np.concatenate([weights[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")])
        qkv_b = np.concatenate([weights[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
        qkv = op("Transpose", [op("Reshape", [linear(x, f"qkv{i}", qkv_w, qkv_b), "split_heads"])],
                 perm=[2, 0, 3, 1, 4])  # (3, B, heads, L, head)
        q, k, v = (op("Gather", [qkv, index], axis=0) for index in ("zero", "one", "two"))
        scores = op("Add", [op("Mul", [op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])]), scale]),
                            mask_bias])
        attended = op("Reshape", [op("Transpose", [op("MatMul", [op("Softmax", [scores], axis=-1), v])],
                                     perm=[0, 2, 1, 3]), "merge_heads"])
        out = linear(attended, f"ao{i}", weights[p + "attention.output.dense.weight"],
                     weights[p + "attention.output.dense.bias"])
        x = layer_norm(op("Add", [out, x]), p + "attention.output.LayerNorm")
        inner = op("Gelu", [linear(x, f"in{i}", weights[p + "intermediate.dense.weight"],
                                   weights[p + "intermediate.dense.bias"])])
        out = linear(inner, f"out{i}", weights[p + "output.dense.weight"], weights[p + "output.dense.bias"])
        x = layer_norm(op("Add", [out, x]), p + "output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "length"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "length", DIMENSIONS])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    return model


def cached_int8_graph(model_zip: Path, cache_dir: Path) -> Path:
    """The int8 graph of this checkpoint in `cache_dir`, built and quantised on first use (a few seconds)."""
    stat = model_zip.stat()
    key = hashlib.sha256(f"{model_zip.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{_GRAPH_VERSION}".encode())
    target = cache_dir / f"minilm-int8-{key.hexdigest()[:16]}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    _, weights = read_checkpoint(model_zip)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(build_graph(weights), fp32)
        quantised = Path(tmp) / "int8.onnx"
        quantize_dynamic(fp32, quantised, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(quantised, target)  # atomic: a concurrent start sees the whole file or none
    log.info("built the int8 ONNX query encoder", extra={"path": str(target)})
    return target


class OnnxMiniLM(SentenceEncoder):
    """The int8 encoder on ONNX Runtime, one intra-op thread (a question is a handful of tokens)."""

    def __init__(self, model_zip: Path, cache_dir: Path) -> None:
        super().__init__(read_tokenizer(model_zip))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(cached_int8_graph(model_zip, cache_dir)), exact_int8(options),
                                             providers=["CPUExecutionProvider"])

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        hidden: np.ndarray = self._session.run(["hidden"], {"input_ids": ids, "attention_mask": mask})[0]
        return hidden
