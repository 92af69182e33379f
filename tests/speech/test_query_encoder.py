"""The voice server's in-process query encoder (int8 ONNX MiniLM built from the packaged weights): its vectors rank
documents like the embeddings server's, the built graph is cached, and while it is not loaded (or cannot load)
questions go to the embeddings endpoint."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from core.knowledge.embeddings import EmbeddingsClient
from speech.embed.in_process import InProcessQueryEmbedder, bundled_query_embedder
from speech.embed.model import MiniLM, bundled_model_zip
from speech.embed.onnx_model import OnnxMiniLM
from voicectl.speech_auth import speech_token

QUESTIONS = ["How much does a teeth cleaning cost?", "Are you open on Sundays?", "Where can I park my car?"]
ANSWERS = ["A professional teeth cleaning costs 95 dollars.", "The clinic is closed on Sundays.",
           "Patients park for free in the Maplewood garage behind the building."]


def test_int8_query_vectors_agree_with_the_servers_and_the_graph_is_cached(tmp_path: Path) -> None:
    model_zip = bundled_model_zip()
    assert model_zip is not None
    encoder = OnnxMiniLM(model_zip, tmp_path)
    [cached] = list(tmp_path.glob("*.onnx"))
    built_at = cached.stat().st_mtime_ns
    reference = MiniLM(model_zip)
    queries, server_queries = encoder.embed(QUESTIONS), reference.embed(QUESTIONS)
    assert queries.shape == (3, 384) and np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    assert ((queries * server_queries).sum(1) > 0.97).all()
    documents = reference.embed(ANSWERS)  # documents are indexed by the server's float32 encoder
    assert ((queries @ documents.T).argmax(1) == [0, 1, 2]).all()
    OnnxMiniLM(model_zip, tmp_path)  # a second start loads the cached graph
    assert list(tmp_path.glob("*.onnx")) == [cached] and cached.stat().st_mtime_ns == built_at


async def test_questions_go_to_the_endpoint_until_the_encoder_is_loaded(embed_url: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        endpoint = EmbeddingsClient(http, embed_url, "all-MiniLM-L6-v2", lambda: speech_token("tests"))
        broken = InProcessQueryEmbedder(tmp_path / "missing.zip", tmp_path, endpoint)
        broken.start()
        broken.ready.wait(60)
        assert not broken.loaded
        np.testing.assert_allclose(await broken.embed(QUESTIONS), await endpoint.embed(QUESTIONS), atol=1e-6)

        assert bundled_query_embedder("text-embedding-3-small", tmp_path, endpoint) is None  # another model
        local = bundled_query_embedder("all-MiniLM-L6-v2", tmp_path, endpoint)
        assert local is not None
        local.start()
        local.ready.wait(120)
        assert local.loaded
        vectors = await local.embed(QUESTIONS)
        assert ((vectors * await endpoint.embed(QUESTIONS)).sum(1) > 0.97).all()
