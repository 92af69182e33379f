#!/usr/bin/env node
/**
 * End-to-end walk through the real UI served by the real backend, in Debian's Chromium driven by playwright-core.
 * Run by tests/ui/test_ui_e2e.py, one phase at a time (the Python side seeds data between phases):
 *
 *   node e2e/ui-e2e.mjs setup     register -> agent (every editor tab, two versions) -> number + carrier creds -> settings
 *   node e2e/ui-e2e.mjs review    login -> call log (search, CSV export) -> call detail (recording plays, transcript
 *                                 follows) -> analytics -> test call page -> phone layout -> accept the invitation
 *   node e2e/ui-e2e.mjs campaign  wizard with CSV row errors -> start -> live progress to completion -> report
 *   node e2e/ui-e2e.mjs testcall  a real browser test call (fake microphone: E2E_FAKE_AUDIO, a WAV) -> live
 *                                 transcript (agent greeting, caller line) -> keypad presses (the caller's
 *                                 "[DTMF 42]" turn) -> hang up -> the call in the call log
 *   node e2e/ui-e2e.mjs agenttests  the agent editor's Tests tab: Run tests (the agent's saved scenario, a real
 *                                 simulated call placed by the backend) -> queued/running -> passed, with transcript
 *   node e2e/ui-e2e.mjs prod      (tests/deploy/test_production_like.py, through nginx) sign in -> create an agent
 *                                 -> the same browser test call
 *
 * Environment: E2E_BASE_URL, E2E_ARTIFACTS (screenshots), E2E_STATE (JSON file shared between phases),
 * CHROMIUM_PATH (default /usr/bin/chromium), E2E_CAMPAIGN_BAD_CSV and E2E_CAMPAIGN_CSV (campaign phase).
 * Every page visited is screenshotted into E2E_ARTIFACTS; a failure saves FAILED-<step>.png and exits 1.
 */
import { chromium } from "playwright-core";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

// axe-core checks every screenshotted page against WCAG 2.1 A/AA (injected through the DevTools protocol, so the
// app's real CSP stays on).
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const a11yViolations = [];

const BASE = process.env.E2E_BASE_URL ?? "http://127.0.0.1:8000";
const OUT = process.env.E2E_ARTIFACTS ?? "test-artifacts/ui";
const STATE = process.env.E2E_STATE ?? join(OUT, "state.json");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const phase = process.argv[2];
mkdirSync(OUT, { recursive: true });

const state = existsSync(STATE) ? JSON.parse(readFileSync(STATE, "utf8")) : {};
const save = () => writeFileSync(STATE, JSON.stringify(state, null, 2));

let page;
let currentStep = "start";
const consoleErrors = [];

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

async function step(name, fn) {
  currentStep = name;
  const t0 = Date.now();
  await fn();
  console.log(`STEP ok   ${name} (${Date.now() - t0} ms)`);
}

async function auditA11y(name) {
  const hasAxe = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!hasAxe) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  for (const v of result.violations) {
    if (v.impact !== "serious" && v.impact !== "critical") continue;
    a11yViolations.push({ page: name, id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) });
  }
}

async function shot(name, opts = {}) {
  // Let fonts, charts and canvases settle so the picture shows the real state.
  await page.waitForTimeout(250);
  await auditA11y(name);
  const file = join(OUT, `${name}.png`);
  if (opts.fullPage ?? true) {
    // Grow the viewport to the whole page instead of stitching a scrolled capture, so sticky bars (top bar, the
    // editor's save bar) are drawn where a user sees them, not in the middle of the picture.
    const size = page.viewportSize();
    await page.evaluate(() => window.scrollTo(0, 0));
    const height = await page.evaluate(() => Math.ceil(document.documentElement.scrollHeight));
    await page.setViewportSize({ width: size.width, height: Math.max(size.height, Math.min(height, 6000)) });
    await page.waitForTimeout(150);
    await page.screenshot({ path: file });
    await page.setViewportSize(size);
  } else {
    await page.screenshot({ path: file });
  }
  console.log(`SHOT ${file}`);
}

async function newPage(browser, opts = {}) {
  const context = await browser.newContext({
    baseURL: BASE,
    viewport: opts.viewport ?? { width: 1366, height: 900 },
    deviceScaleFactor: 1,
    permissions: ["microphone"],
    acceptDownloads: true,
    colorScheme: "light",
    reducedMotion: "reduce",
  });
  const p = await context.newPage();
  p.setDefaultTimeout(20_000);
  p.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${p.url()}: ${m.text()}`);
  });
  p.on("pageerror", (e) => consoleErrors.push(`${p.url()}: uncaught ${e.message}`));
  return p;
}

async function login(email, password) {
  await page.goto("/login");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/agents/);
}

async function waitToast(text) {
  await page.locator(".toast", { hasText: text }).first().waitFor();
}

/* ------------------------------------------------------------------ phases */

async function setupPhase() {
  state.email = `e2e-${Date.now()}@example.com`;
  state.password = "correct-horse-battery-staple";
  save();

  await step("register", async () => {
    await page.goto("/");
    await page.waitForURL(/\/login/); // signed out: the app sends us to sign in
    await page.getByRole("link", { name: "Create an organisation" }).click();
    await page.getByRole("heading", { name: "Create your organisation" }).waitFor();
    await page.getByRole("button", { name: "Create account" }).click(); // empty form: errors next to fields
    await page.getByText("Enter a valid email address").waitFor();
    await shot("01-register-validation");
    await page.getByLabel("Your name").fill("Ada Operator");
    await page.getByLabel("Email").fill(state.email);
    await page.getByLabel("Password").fill(state.password);
    await page.getByLabel("Organisation name").fill("E2E Dental");
    await shot("02-register-filled");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(/\/agents$/);
    await page.getByText("No agents yet").waitFor();
    await shot("03-agents-empty");
  });

  await step("session survives a reload (httpOnly refresh cookie)", async () => {
    await page.reload();
    await page.getByRole("heading", { name: "Agents" }).waitFor();
    check(!(await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }))).includes("eyJ"), "no token in web storage");
  });

  await step("create agent", async () => {
    await page.getByRole("link", { name: "New agent" }).first().click();
    await page.waitForURL(/\/agents\/new$/);
    await page.getByLabel("Agent name").fill("E2E Receptionist");
    const prompt = page.getByLabel("System prompt");
    await prompt.fill("You are the receptionist of E2E Dental. Greet {{first_name}} by name and help with appointments.");
    await page.getByLabel("Greeting").fill("Hi {{first_name}}, this is E2E Dental. How can I help?");
    await page.getByLabel("Default for first_name").fill("there");
    await shot("04-agent-editor-conversation");

    await page.getByRole("tab", { name: "Voice" }).click();
    // The voice picker lists the TTS server's voices (through the backend) and plays a sample of the chosen one.
    const voice = page.getByRole("combobox", { name: "Voice", exact: true });
    await voice.locator("option", { hasText: "en_US-joe-medium" }).first().waitFor({ state: "attached" });
    await voice.selectOption("en_US-joe-medium");
    await page.getByLabel("Speed").fill("1.1");
    await page.getByLabel("Sample text").fill("Hello, this is E2E Dental.");
    const [sample] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/api/v1/voices/sample"), { timeout: 60_000 }),
      page.getByRole("button", { name: "Play sample of voice en_US-joe-medium" }).click(),
    ]);
    check(sample.status() === 200 && sample.headers()["content-type"] === "audio/wav", `sample answered ${sample.status()}`);
    const sampleBytes = (await sample.request().sizes()).responseBodySize;
    check(sampleBytes > 44 + 16000, `the sample has audio (${sampleBytes} bytes)`);
    // Playing (the Stop button) or already finished (Play again): either way no error is shown.
    await page.getByRole("button", { name: /Stop the sample|Play sample of voice/ }).first().waitFor();
    check((await page.locator(".card", { hasText: "Sample text" }).getByRole("alert").count()) === 0, "no sample error");
    await shot("05-agent-editor-voice");

    await page.getByRole("tab", { name: "STT · LLM · TTS" }).click();
    await page.getByLabel("Temperature").fill("0.4");
    await page.getByLabel("Boosted words").fill("Invisalign, E2E Dental");
    await shot("06-agent-editor-models");

    await page.getByRole("tab", { name: "Tools" }).click();
    await page.getByRole("button", { name: "Add tool" }).click();
    await page.getByLabel("Name", { exact: true }).fill("lookup_appointment");
    await page.getByLabel("URL").fill("https://crm.example.com/hooks/appointments");
    await page.getByLabel("Description").fill("Look up the caller's next appointment by their phone number.");
    const schema = page.getByLabel("Parameters (JSON schema)");
    await schema.fill('{"type":"object","properties":{},"required":["phone"]}');
    await page.getByText('"phone" is required but not declared in properties').waitFor();
    await shot("07-agent-editor-tools-invalid");
    await schema.fill(JSON.stringify({ type: "object", properties: { phone: { type: "string", description: "E.164 number" } }, required: ["phone"] }, null, 2));
    await page.getByText("Schema is valid.").waitFor();
    await shot("08-agent-editor-tools");

    await page.getByRole("tab", { name: "Transfers" }).click();
    await page.getByRole("button", { name: "Add target" }).click();
    await page.getByLabel("Name", { exact: true }).fill("Front desk");
    await page.getByLabel("Phone number").fill("+14155550188");
    await page.getByLabel("Mode").selectOption("warm");
    await page.getByLabel("When to transfer").fill("The caller asks for a human or has a billing dispute.");
    await shot("09-agent-editor-transfers");

    await page.getByRole("tab", { name: "Interruptions & silence" }).click();
    await page.getByLabel("Words needed to interrupt").fill("2");
    await page.getByLabel("Remind after (s of silence)").fill("6");
    await shot("10-agent-editor-behaviour");

    await page.getByRole("button", { name: "Create agent" }).click();
    await page.waitForURL(/\/agents\/[^/]+$/);
    await waitToast("created");
    state.agentId = page.url().split("/").pop();
    check(state.agentId && state.agentId !== "new", "agent id in the URL");
    save();
  });

  await step("save a second version and view the history", async () => {
    await page.getByRole("tab", { name: "Conversation" }).click();
    await page.getByLabel("Greeting").fill("Hello {{first_name}}! E2E Dental here. How can I help today?");
    await page.getByText("Unsaved changes").waitFor();
    await page.getByLabel("Change note (optional)").fill("Friendlier greeting");
    await page.getByRole("button", { name: "Save new version" }).click();
    await waitToast("Saved as version 2");
    await page.getByRole("tab", { name: "Version history" }).click();
    await page.getByRole("button", { name: /v1/ }).click();
    await page.getByRole("rowheader", { name: "greeting" }).waitFor();
    await shot("11-agent-version-history");
    await page.goto("/agents");
    await page.getByRole("link", { name: "E2E Receptionist" }).waitFor();
    await shot("12-agents-list");
  });

  await step("add a phone number linked to the agent", async () => {
    await page.goto("/numbers");
    await page.getByText("No phone numbers").waitFor();
    await page.getByRole("button", { name: "Add number" }).first().click();
    const dialog = page.getByRole("dialog", { name: "Add a phone number" });
    await dialog.getByLabel("Number").fill("415 555");
    await dialog.getByRole("button", { name: "Add number" }).click();
    await dialog.getByText(/Use E\.164/).waitFor();
    await dialog.getByLabel("Number").fill("+14155550123");
    await dialog.getByLabel("Carrier").selectOption("twilio");
    await dialog.getByLabel("Label (optional)").fill("Main line");
    await dialog.getByLabel("Answered by").selectOption({ label: "E2E Receptionist" });
    await shot("13-numbers-add-dialog", { fullPage: false });
    await dialog.getByRole("button", { name: "Add number" }).click();
    await page.getByRole("cell", { name: "+14155550123", exact: true }).waitFor();
    state.number = "+14155550123";
    save();
  });

  await step("carrier credentials are masked", async () => {
    const sid = process.env.E2E_TWILIO_SID ?? "AC0123456789abcdef0123456789abcdef";
    const token = process.env.E2E_TWILIO_TOKEN ?? "e2e-super-secret-auth-token-0123456789";
    await page.getByRole("button", { name: "Set Twilio credentials" }).click();
    await page.getByLabel("Account SID").fill(sid);
    await page.getByLabel("Auth token").fill(token);
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.getByTestId("twilio-token-masked").waitFor();
    const html = await page.content();
    check(!html.includes(token), "the auth token never comes back to the page");
    check(!html.includes(sid.slice(2)), "the account SID is masked");
    await shot("14-numbers");
  });

  await step("settings: members, invitation, API key, webhook, do-not-call", async () => {
    await page.goto("/settings");
    await page.getByRole("cell", { name: state.email }).waitFor();
    await page.getByLabel("Email").fill("grace@example.com");
    await page.getByLabel("Role").selectOption("admin");
    await page.getByRole("button", { name: "Invite" }).click();
    const link = await page.getByTestId("one-time-secret").textContent();
    check(link && /\/accept-invitation\?token=/.test(link), `an invitation link (${link})`);
    state.inviteLink = link.trim();
    save();
    await shot("15-settings-members");

    await page.getByRole("tab", { name: "API keys" }).click();
    await page.getByLabel("Key name").fill("CRM sync");
    await page.getByRole("button", { name: "Create key" }).click();
    await page.getByTestId("one-time-secret").waitFor();
    await page.getByRole("cell", { name: "CRM sync", exact: true }).waitFor();
    await shot("16-settings-api-keys");

    await page.getByRole("tab", { name: "Webhooks" }).click();
    await page.getByLabel("Endpoint URL").fill("https://crm.example.com/hooks/voice");
    await page.getByRole("checkbox", { name: /Transcript ready/ }).check();
    await page.getByRole("button", { name: "Add webhook" }).click();
    await page.getByTestId("one-time-secret").waitFor();
    await shot("17-settings-webhooks");

    await page.getByRole("tab", { name: "Do-not-call list" }).click();
    await page.getByRole("heading", { name: "Do-not-call numbers" }).waitFor();
    const dnc = process.env.E2E_DNC_NUMBER ?? "+14155550142";
    await page.getByLabel("Number", { exact: true }).fill(dnc);
    await page.getByRole("button", { name: "Check" }).click();
    await page.getByText("not listed").waitFor();
    await page.getByLabel("Reason (optional)").fill("Asked not to be called");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByRole("cell", { name: dnc, exact: true }).waitFor();
    await shot("18-settings-dnc");
  });

  await step("campaigns and test call pages render", async () => {
    await page.goto("/campaigns");
    await page.getByRole("heading", { name: "Campaigns", exact: true }).waitFor();
    await page.waitForLoadState("networkidle");
    await shot("19-campaigns");
    await page.goto("/test-call");
    await page.getByRole("button", { name: "Start call" }).waitFor();
    await shot("20-test-call");
  });
}

async function reviewPhase() {
  await step("login", async () => {
    await page.goto("/login");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("Email").fill(state.email);
    await page.getByLabel("Password").fill("wrong-password-123");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("Email or password is wrong.").waitFor();
    await shot("21-login-error");
    await login(state.email, state.password);
  });

  await step("call log: list, search, export", async () => {
    await page.goto("/calls");
    const link = page.getByRole("link", { name: /Call at/ });
    await link.first().waitFor();
    check((await link.count()) >= state.seededCalls, `the ${state.seededCalls} seeded calls are listed`);
    await shot("22-call-log");
    await page.getByLabel("Search transcripts and numbers").fill("appointment");
    await page.waitForURL(/q=appointment/);
    await page.waitForLoadState("networkidle");
    await link.first().waitFor();
    await shot("23-call-log-search");
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
    const file = join(OUT, "calls-export.csv");
    await download.saveAs(file);
    const csv = readFileSync(file, "utf8");
    check(csv.includes(state.callId), "the export contains the seeded call");
  });

  await step("call detail: the recording plays and the transcript follows", async () => {
    await page.goto(`/calls/${state.callId}`);
    const slider = page.getByRole("slider", { name: "Recording position" });
    await slider.waitFor();
    await page.getByTestId("transcript-turn").first().waitFor();
    check((await page.getByTestId("transcript-turn").count()) === state.turns, "every turn is shown");
    await shot("24-call-detail");
    await page.getByRole("button", { name: "Play recording" }).click();
    await page.waitForFunction(() => {
      const a = document.querySelector("[data-testid=recording-audio]");
      return a && !a.paused && a.currentTime > 0.8;
    }, null, { timeout: 15_000 });
    const playing = await page.evaluate(() => {
      const a = document.querySelector("[data-testid=recording-audio]");
      return { t: a.currentTime, d: a.duration };
    });
    check(playing.d > 3, `the recording has its real duration (${playing.d})`);
    // Jump to the last turn from the transcript: playback seeks there and that turn becomes current.
    const last = page.getByTestId("transcript-turn").last();
    await last.getByRole("button", { name: /Play from/ }).click();
    await page.waitForFunction(() => {
      const items = [...document.querySelectorAll("[data-testid=transcript-turn]")];
      return items.length && items[items.length - 1].getAttribute("aria-current") === "true";
    }, null, { timeout: 10_000 });
    await page.getByRole("button", { name: "Pause recording" }).click();
    await page.locator(".turn-latency summary").first().click();
    await shot("25-call-detail-playing");
  });

  await step("analytics", async () => {
    await page.goto("/analytics");
    await page.getByText("Calls", { exact: true }).first().waitFor();
    await page.getByRole("img", { name: /Calls per day/ }).waitFor();
    await shot("26-analytics");
  });

  await step("browser test call page", async () => {
    // A real call is placed in the `testcall` phase (it needs the voice server and speech servers).
    await page.goto("/test-call");
    await page.getByRole("button", { name: "Start call" }).waitFor();
    await shot("26b-test-call", { fullPage: false });
  });

  await step("phone-sized layout", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto("/calls");
    await page.getByRole("link", { name: /Call at/ }).first().waitFor();
    await shot("27-mobile-call-log", { fullPage: false });
    await page.getByRole("button", { name: "Menu" }).click();
    await page.getByRole("link", { name: "Analytics" }).waitFor();
    await shot("28-mobile-menu", { fullPage: false });
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  await step("keyboard: skip link and focus ring", async () => {
    await page.goto("/agents");
    await page.getByRole("heading", { name: "Agents" }).waitFor();
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement?.textContent);
    check(focused === "Skip to content", `first Tab lands on the skip link (got ${focused})`);
    await page.keyboard.press("Enter");
    await page.keyboard.press("Tab");
    await shot("29-keyboard-focus", { fullPage: false });
  });

  await step("sign out, accept the invitation as a new member", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/login/);
    await page.goto(state.inviteLink.replace(/^https?:\/\/[^/]+/, ""));
    await page.getByRole("heading", { name: "Join your team" }).waitFor();
    await page.getByLabel("Your name").fill("Grace Admin");
    await page.getByLabel("Choose a password").fill("another-long-password");
    await shot("30-accept-invitation");
    await page.getByRole("button", { name: "Accept invitation" }).click();
    await page.waitForURL(/\/agents/);
    await page.getByText("Grace Admin · admin").waitFor();
    await shot("31-invited-admin-agents");
  });
}

async function campaignPhase() {
  await login(state.email, state.password);
  await step("campaign wizard: draft, CSV row errors, a clean upload", async () => {
    await page.goto("/campaigns");
    await page.getByRole("link", { name: "New campaign" }).first().click();
    await page.getByLabel("Campaign name").fill("E2E reminders");
    await page.getByRole("checkbox", { name: new RegExp(state.number.replace("+", "\\+")) }).check();
    await shot("40-campaign-wizard-agent");
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByText("draft saved").waitFor();
    // A file with a bad row: the server rejects it whole and lists the bad line.
    await page.getByLabel("Contacts CSV").setInputFiles(process.env.E2E_CAMPAIGN_BAD_CSV);
    await page.getByText(/^[1-9]\d* row errors?$/).waitFor();
    await page.getByRole("cell", { name: "4", exact: true }).waitFor();
    await shot("41-campaign-wizard-row-errors");
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByText(/Fix the rows with errors/).waitFor();
    await page.getByLabel("Contacts CSV").setInputFiles(process.env.E2E_CAMPAIGN_CSV);
    await page.getByText("4 imported").waitFor();
    await shot("42-campaign-wizard-contacts");
    await page.getByRole("button", { name: "Next" }).click();
    // Calling hours: every day, all day, so the test never waits for a window.
    for (const day of ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]) {
      await page.getByRole("checkbox", { name: day, exact: true }).check();
      await page.getByLabel(`${day} from`).fill("00:00");
      await page.getByLabel(`${day} until`).fill("23:59");
    }
    await shot("43-campaign-wizard-hours");
    await page.getByRole("button", { name: "Next" }).click();
    // One dial per contact: busy / no answer / failed are final at once.
    for (const o of ["Busy", "No answer", "Failed", "Voicemail"]) await page.getByLabel(`${o}: dials in total`).fill("1");
    await page.getByLabel("Maximum new calls per second").fill("2");
    await shot("44-campaign-wizard-limits");
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByText("4 imported").waitFor();
    await shot("45-campaign-wizard-review");
    await page.getByRole("button", { name: "Start campaign" }).click();
    await page.waitForURL(/\/campaigns\/[^/]+$/);
    state.campaignId = page.url().split("/").pop();
    save();
  });
  await step("live progress reaches completion; outcome report", async () => {
    await page.getByRole("progressbar", { name: "Campaign progress" }).waitFor();
    await shot("46-campaign-running");
    await page.locator(".page-header .badge", { hasText: /^completed$/ }).waitFor({ timeout: 120_000 });
    const bar = page.getByRole("progressbar", { name: "Campaign progress" });
    await page.waitForFunction(() => {
      const b = document.querySelector("[role=progressbar]");
      return b && b.getAttribute("aria-valuenow") === b.getAttribute("aria-valuemax");
    });
    check((await bar.getAttribute("aria-valuenow")) === "4", "all 4 contacts done");
    await page.getByRole("cell", { name: "Do-not-call" }).waitFor();
    await shot("47-campaign-completed");
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download outcome report" }).click()]);
    await download.saveAs(join(OUT, "campaign-report.csv"));
    await page.goto("/campaigns");
    await page.getByRole("link", { name: "E2E reminders" }).waitFor();
    await shot("48-campaigns-list");
  });
}

/** Waits until the Python side has written `name` into the artifacts folder (it drives the call meanwhile). */
async function waitForFile(name, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(join(OUT, name))) {
    check(Date.now() < deadline, `timed out waiting for ${name}`);
    await page.waitForTimeout(100);
  }
}

async function livePhase() {
  await login(state.email, state.password);
  await step("live page: a call in progress appears, its live view follows new turns and a transfer", async () => {
    await page.getByRole("link", { name: "Live" }).click();
    const row = page.locator(`tr[data-call-id="${state.liveCallId}"]`);
    await row.waitFor();
    check((await row.textContent()).includes("+14155550100"), "the caller's number is listed");
    await shot("60-live-calls");
    await row.getByRole("link", { name: "Watch" }).click();
    await page.getByText("Hello, live caller").waitFor();
    writeFileSync(join(OUT, "live-view-open"), "1");
    await page.getByText("I want to talk to a person").waitFor();
    await page.locator('li[data-tool="transfer_call"]').waitFor();
    writeFileSync(join(OUT, "live-turn-seen"), "1");
    await page.getByText(/Ended: /).waitFor();
    await shot("61-live-call-view");
    await page.getByRole("link", { name: "All live calls" }).click();
    await page.getByText("No calls in progress").waitFor();
  });
  await step("privacy settings: retention periods saved", async () => {
    await page.goto("/settings?tab=privacy");
    await page.getByLabel("Delete recordings after").fill("30");
    await page.getByLabel("Delete transcripts after").fill("90");
    await page.getByLabel("Delete calls entirely after").fill("365");
    await page.getByRole("button", { name: "Save retention" }).click();
    await waitToast("Retention saved");
    await shot("62-privacy-settings");
  });
}

async function testCallPhase() {
  await step("sign in", () => login(state.email, state.password));
  await placeTestCall();
}

async function agentTestsPhase() {
  await step("sign in", () => login(state.email, state.password));
  await step("run the agent's tests from the editor", async () => {
    await page.goto(`/agents/${state.testsAgentId}`);
    await page.getByRole("tab", { name: "Tests" }).click();
    await page.getByText("Empty: the 1 scenario(s) saved with this agent.").waitFor();
    await page.getByRole("button", { name: "Run tests" }).click();
    const runs = page.getByRole("list", { name: "Test runs" });
    await runs.getByText(/queued|running/).first().waitFor({ timeout: 30_000 });
    await shot("70-agent-tests-running", { fullPage: false });
    await runs.locator(".badge", { hasText: "passed" }).first().waitFor({ timeout: 300_000 });
    check(await runs.getByText("1 passed, 0 failed, 0 skipped").count() === 1, "the run's counts");
    await runs.getByText("Transcript").first().click();
    await runs.getByText(/^caller: /).first().waitFor();
    await shot("71-agent-tests-passed");
  });
}

/** Production-like (tests/deploy/test_production_like.py): the UI through nginx, an account made through the
 * registration API (no demo seed). Sign in, create an agent in the editor, then a real browser test call. */
async function prodPhase() {
  await step("sign in through the proxy", () => login(state.email, state.password));
  await step("create an agent", async () => {
    await page.getByRole("link", { name: "New agent" }).first().click();
    await page.waitForURL(/\/agents\/new$/);
    await page.getByLabel("Agent name").fill("Production receptionist");
    await page.getByLabel("System prompt").fill("You are the receptionist of E2E Dental. Answer in one short sentence.");
    await page.getByLabel("Greeting").fill("Hello and thank you for calling E2E Dental. How can I help you today?");
    await shot("60-prod-agent-editor");
    await page.getByRole("button", { name: "Create agent" }).click();
    await page.waitForURL(/\/agents\/[^/]+$/);
    await waitToast("created");
    state.testCallAgentId = page.url().split("/").pop();
    check(state.testCallAgentId && state.testCallAgentId !== "new", "agent id in the URL");
    save();
  });
  await placeTestCall();
}

async function placeTestCall() {
  await step("place a browser test call", async () => {
    await page.goto("/test-call");
    await page.getByLabel("Agent").selectOption(state.testCallAgentId);
    await page.getByRole("button", { name: "Start call" }).click();
    await page.locator(".call-status").getByText("Live", { exact: true }).waitFor({ timeout: 30_000 });
    // Chromium's fake microphone plays E2E_FAKE_AUDIO (silence, a spoken question, silence) in a loop.
    const live = page.locator("ol.transcript-live");
    await live.locator(".turn-agent", { hasText: "thank you for calling E2E Dental" }).first().waitFor({ timeout: 60_000 });
    await live.locator(".turn-caller:not(.interim)").first().waitFor({ timeout: 120_000 });
    const callerLine = await live.locator(".turn-caller:not(.interim) .turn-text").first().innerText();
    check(/opening|hours|saturday/i.test(callerLine), `the caller line is the question: ${callerLine}`);
    state.testCallCallerLine = callerLine;
    // The keypad: each press is a DTMF keypress on the call; the agent's pipeline reports it as the caller's turn.
    const keypad = page.getByRole("group", { name: "Keypad" });
    await keypad.getByRole("button", { name: "Key 4" }).click();
    await keypad.getByRole("button", { name: "Key 2" }).click();
    await keypad.getByText("Pressed: 42").waitFor();
    await live.locator(".turn-caller:not(.interim)", { hasText: "[DTMF 42]" }).first().waitFor({ timeout: 60_000 });
    await shot("50-test-call-live", { fullPage: false });
    await page.getByRole("button", { name: "Hang up" }).click();
    await page.locator(".call-status").getByText("Call ended", { exact: true }).waitFor({ timeout: 30_000 });
    await page.getByRole("link", { name: "Open this call in the call log" }).waitFor();
    state.testCallId = (await page.getByRole("link", { name: "Open this call in the call log" }).getAttribute("href")).split("/").pop();
    save();
    await shot("51-test-call-ended", { fullPage: false });
  });

  await step("the test call is in the call log", async () => {
    await page.getByRole("link", { name: "Open this call in the call log" }).click();
    await page.waitForURL(/\/calls\/[^/]+$/);
    await page.getByText("(browser test)").first().waitFor({ timeout: 30_000 });
    await page.locator(".turn-caller").first().waitFor({ timeout: 60_000 });
    await shot("52-test-call-detail");
  });
}

/* ------------------------------------------------------------------ main */

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
    // The testcall phase speaks into the page through a WAV file instead of a microphone.
    ...(process.env.E2E_FAKE_AUDIO ? [`--use-file-for-fake-audio-capture=${process.env.E2E_FAKE_AUDIO}`] : []),
  ],
});
let code = 0;
try {
  page = await newPage(browser);
  if (phase === "setup") await setupPhase();
  else if (phase === "review") await reviewPhase();
  else if (phase === "campaign") await campaignPhase();
  else if (phase === "testcall") await testCallPhase();
  else if (phase === "prod") await prodPhase();
  else if (phase === "agenttests") await agentTestsPhase();
  else if (phase === "live") await livePhase();
  else throw new Error(`unknown phase ${phase}`);
  writeFileSync(join(OUT, `a11y-${phase}.json`), JSON.stringify(a11yViolations, null, 2));
  currentStep = "accessibility (axe-core, WCAG 2.1 AA)";
  check(!a11yViolations.length, `no serious accessibility violations:\n${a11yViolations.map((v) => `  ${v.page}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.join(", ")}`).join("\n")}`);
  console.log(`PHASE ok ${phase}`);
} catch (e) {
  code = 1;
  console.error(`STEP FAILED ${currentStep}: ${e?.stack ?? e}`);
  try {
    await page?.screenshot({ path: join(OUT, `FAILED-${phase}-${currentStep.replace(/[^a-z0-9]+/gi, "_")}.png`), fullPage: true });
  } catch {
    /* the page may be gone */
  }
} finally {
  if (consoleErrors.length) console.log(`BROWSER CONSOLE ERRORS:\n${consoleErrors.join("\n")}`);
  await browser.close();
}
process.exit(code);
