import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../api/http";
import { json, mockApi, renderApp, sessionRoutes } from "../../test/utils";
import { KnowledgePage } from "./KnowledgePage";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

const KB = { id: "kb1", name: "Clinic", description: "", source_count: 2, chunk_count: 7, created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z" };
const source = (over: object) => ({
  id: "s1", knowledge_base_id: "kb1", name: "prices.pdf", kind: "pdf", size_bytes: 2048, status: "ready", error: null,
  progress: 1, pages: 2, chunk_count: 7, revision: 1, attempts: 0, metadata: {}, created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z", ...over,
});

describe("knowledge page", () => {
  it("lists sources with status, chunks and size; a failed one says why", async () => {
    mockApi({
      ...sessionRoutes(),
      "GET /api/v1/knowledge-bases": () => [KB],
      "GET /api/v1/knowledge-bases/kb1/sources": () => [
        source({}),
        source({ id: "s2", name: "scan.pdf", status: "failed", chunk_count: 0, error: "no text found: the document may contain only images" }),
      ],
    });
    renderApp(<KnowledgePage />, { route: "/knowledge", path: "/knowledge" });
    const rows = await screen.findAllByRole("row");
    expect(within(rows[1]).getByText("prices.pdf")).toBeInTheDocument();
    expect(within(rows[1]).getByText("ready")).toBeInTheDocument();
    expect(within(rows[1]).getByText("2.0 KB")).toBeInTheDocument();
    expect(within(rows[2]).getByText("failed")).toBeInTheDocument();
    expect(within(rows[2]).getByText(/only images/)).toBeInTheDocument();
  });

  it("uploads a file and tests a question, showing chunks and scores", async () => {
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/knowledge-bases": () => [KB],
      "GET /api/v1/knowledge-bases/kb1/sources": () => [source({})],
      "POST /api/v1/knowledge-bases/kb1/sources": () => json(source({ id: "s3", name: "faq.md", status: "queued" }), 202),
      "POST /api/v1/knowledge-bases/kb1/search": () => ({
        duration_ms: 12.5,
        chunks: [{ chunk_id: "s1-1-0", kb_id: "kb1", source_id: "s1", source_name: "prices.pdf", page: 2,
                   text: "Teeth whitening costs 349 dollars.", score: 0.71, vector_score: 0.68, keyword_score: 0.83 }],
      }),
    });
    renderApp(<KnowledgePage />, { route: "/knowledge", path: "/knowledge" });
    const user = userEvent.setup();
    const input = await screen.findByLabelText(/Upload PDF/);
    await user.upload(input, new File(["# FAQ"], "faq.md", { type: "text/markdown" }));
    await waitFor(() => expect(calls.some((c) => c.method === "POST" && c.url.endsWith("/sources"))).toBe(true));
    const upload = calls.find((c) => c.method === "POST" && c.url.endsWith("/sources"))!;
    expect((upload.body as FormData).get("file")).toBeInstanceOf(File);

    await user.type(screen.getByLabelText("Question"), "How much is whitening?");
    await user.click(screen.getByRole("button", { name: "Search" }));
    const result = await screen.findByRole("status");
    expect(within(result).getByText("Teeth whitening costs 349 dollars.")).toBeInTheDocument();
    expect(within(result).getByText("score 0.71")).toBeInTheDocument();
    expect(within(result).getByText(/prices\.pdf, p\. 2/)).toBeInTheDocument();
    expect(calls.find((c) => c.url.endsWith("/search"))!.body).toEqual({ question: "How much is whitening?", top_k: 3 });
  });
});
