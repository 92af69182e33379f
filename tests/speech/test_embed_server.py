"""The embedded embedding server (python -m speech.embed) through its OpenAI-compatible API: the shape OpenAI
clients expect, base64 encoding, clear 4xx on bad input, and vectors that mean something (a question is closer to
its answer than to an unrelated sentence)."""

from __future__ import annotations

import base64

import httpx
import numpy as np

from voicectl.speech_auth import speech_headers


def test_openai_compatible_embeddings(embed_url: str) -> None:
    texts = ["How much does a teeth cleaning cost?", "A professional teeth cleaning costs 95 dollars.",
             "The parking garage is behind the building."]
    resp = httpx.post(f"{embed_url}/embeddings", headers=speech_headers("tests"),
                      json={"input": texts, "model": "all-MiniLM-L6-v2"}, timeout=60)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert [d["index"] for d in body["data"]] == [0, 1, 2] and body["usage"]["prompt_tokens"] > 10
    vectors = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3

    one = httpx.post(f"{embed_url}/embeddings", headers=speech_headers("tests"),
                     json={"input": texts[0], "encoding_format": "base64"}, timeout=60)
    decoded = np.frombuffer(base64.b64decode(one.json()["data"][0]["embedding"]), dtype=np.float32)
    assert np.allclose(decoded, vectors[0], atol=1e-5)  # a batch and a single text give the same vector

    assert httpx.get(f"{embed_url}/models", headers=speech_headers("tests"), timeout=10).json()["data"][0]["id"] == "all-MiniLM-L6-v2"


def test_bad_input_gets_a_clear_4xx(embed_url: str) -> None:
    for body in ({"input": []}, {"input": ["x"] * 1000}, {"input": "x" * 9000}, {"input": 5}, {"nothing": 1}):
        resp = httpx.post(f"{embed_url}/embeddings", headers=speech_headers("tests"), json=body, timeout=30)
        assert 400 <= resp.status_code < 500, (body if len(str(body)) < 100 else "big", resp.status_code)
