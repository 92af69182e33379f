#!/usr/bin/env node
// Regenerates the typed API client: dumps the backend's OpenAPI (when the repo's Python venv is there) into
// openapi.json, then turns it into src/api/schema.d.ts with openapi-typescript.
//   npm run gen:api            dump + generate
//   npm run gen:api -- --no-dump   generate from the committed openapi.json only
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const frontend = join(here, "..");
const repo = join(frontend, "..");
const python = join(repo, ".venv", "bin", "python");
const spec = join(frontend, "openapi.json");

if (!process.argv.includes("--no-dump")) {
  if (!existsSync(python)) {
    console.error(`[gen:api] ${python} not found: run the repo bootstrap, or pass --no-dump`);
    process.exit(1);
  }
  const code = [
    "import json, sys",
    "from backend.main import create_app",
    "sys.stdout.write(json.dumps(create_app().openapi(), indent=1, sort_keys=True))",
  ].join("\n");
  const out = execFileSync(python, ["-c", code], { cwd: repo, encoding: "utf8", maxBuffer: 64 << 20 });
  writeFileSync(spec, `${out}\n`);
  console.log(`[gen:api] wrote ${spec}`);
}

const bin = join(frontend, "node_modules", ".bin", "openapi-typescript");
execFileSync(bin, [spec, "-o", join(frontend, "src", "api", "schema.d.ts"), "--root-types", "--alphabetize", "--default-non-nullable", "false"], { stdio: "inherit", cwd: frontend });
