"""Knowledge bases in the backend: sources, their text, chunking and the ingestion worker."""
