/// <reference types="vitest" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The backend is same-origin in every deployment (it serves dist/ itself, or nginx proxies /api to it), so the app
// only ever uses relative /api/v1 URLs. In dev, Vite forwards /api (HTTP, SSE and WebSocket) to the local backend.
const backend = process.env.VITE_BACKEND_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  server: {
    host: "127.0.0.1",
    port: 5173,
    proxy: {
      "/api": { target: backend, changeOrigin: false, ws: true },
    },
  },
  build: {
    outDir: "dist",
    sourcemap: true,
    target: "es2022",
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    css: false,
    // The machine running the suite may have 2 cores: long form flows get room without being flaky.
    testTimeout: 20_000,
  },
});
