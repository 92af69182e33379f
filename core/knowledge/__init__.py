"""Knowledge bases: embeddings client, vector store and retrieval, shared by the backend (ingestion, the test box)
and the call pipeline (retrieval on each caller turn)."""
