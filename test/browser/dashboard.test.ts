/**
 * Browser level: the queue's web dashboard in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against a real `fleet queue serve` for the nine nodes of the shipped fleet.yaml, real
 * `fleet worker`s with the stand-in claude on two of them, and the AgentAPI stand-in.
 * Texts are asserted through the DOM; full-page screenshots go to a temp dir and must not be blank; axe-core
 * checks each page for serious or critical accessibility violations.
 *
 * @needs chromium
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import { queueFacts } from "../../roles/queue/render.js";
import type { TokensFile } from "../../runtime/config.js";
import { sendHealth, type StatusReport } from "../../cli/status.js";
import { startAgentApi } from "../runtime/fixtures/standins.js";
import { api, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokens, type ServerProc } from "../runtime/harness.js";

/** Debian's chromium on PATH (test/run.mjs installs the package for files that declare `@needs chromium`). */
const CHROMIUM = spawnSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).stdout.trim();
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let dir: string;
let shots: string;
let server: ServerProc;
let browser: Browser;
let agent: Awaited<ReturnType<typeof startAgentApi>>;

beforeAll(async () => {
  dir = tempDir("fleet-browser-");
  shots = tempDir("fleet-shots-");
  // The nine nodes of the shipped fleet.yaml, with their public facts as the queue role writes them; the
  // orchestrator's AgentAPI is the stand-in, the other agents' addresses a closed port (not reachable).
  agent = await startAgentApi(300);
  const facts = queueFacts(loadFleet("fleet.yaml")).nodes as Record<string, TokensFile["nodes"][string]>;
  const nodes = Object.fromEntries(
    Object.entries(facts).map(([name, n]) => [name, { ...n, agentapi: n.agentapi === null ? null : name === "arch-orchestrator" ? agent.url : "http://127.0.0.1:2" }]),
  );
  const tokens = writeTokens(dir, nodes, null, { ann: "operator", bob: "viewer" });
  // More sign-ins than the default 10 a minute happen here; the limit itself is tested on a queue of its own.
  server = await startServer({ db: join(dir, "queue.db"), tokens, leaseSeconds: 3, extra: ["--logins-per-minute", "100"] });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  await agent?.close();
});

/** A fresh browser context (own cookies) signed in with `person`'s token. */
async function signIn(person: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(server.url + "/");
  expect(new URL(page.url()).pathname).toBe("/login");
  await page.getByLabel(/Your token/).fill(tokenOf(person));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/fleet$/);
  return { ctx, page };
}

/** Saves a full-page screenshot and checks it is not one flat colour (a blank page). */
async function screenshot(page: Page, name: string): Promise<void> {
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  // Decode the PNG in the page itself and count distinct pixel colours.
  const b64 = readFileSync(file).toString("base64");
  const colours = await page.evaluate(async (data) => {
    const img = new Image();
    img.src = `data:image/png;base64,${data}`;
    await img.decode();
    const c = document.createElement("canvas");
    [c.width, c.height] = [img.width, img.height];
    const g = c.getContext("2d")!;
    g.drawImage(img, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < px.length && seen.size < 50; i += 4 * 97) seen.add((px[i]! << 16) | (px[i + 1]! << 8) | px[i + 2]!);
    return seen.size;
  }, b64);
  expect(colours, `${name}.png is blank`).toBeGreaterThan(3);
}

/** axe-core's serious and critical violations on the page, as "rule: target" lines. */
async function axeViolations(page: Page): Promise<string[]> {
  // Injected through the DevTools protocol (page.evaluate), which the page's CSP does not govern.
  await page.evaluate(AXE);
  const r = await page.evaluate(async () => (globalThis as unknown as { axe: { run: () => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe.run());
  return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

describe("dashboard in Chromium", () => {
  it("a node's token opens no page; a person's does; the fleet page shows presence and spend", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(server.url + "/login");
    await page.getByLabel(/Your token/).fill(tokenOf("arch-orchestrator"));
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#err-token").textContent()).toBe("this is a node's token; it works for the API, not here: sign in with a person's token (operator or viewer)");
    await page.getByLabel(/Your token/).fill("nobody-token-0123456789");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#err-token").textContent()).toBe("unknown token");
    expect((await ctx.cookies()).some((c) => c.name === "fleet_session")).toBe(false);
    await ctx.close();

    startWorker({ url: server.url, dir, node: "arch-orchestrator" });
    await waitUntil("arch-orchestrator online", async () => (await api(server.url, "GET", "/v1/nodes", { token: tokenOf("ann") })).body.nodes[0].online);
    const { ctx: c2, page: p2 } = await signIn("ann");
    const cookie = (await c2.cookies()).find((c) => c.name === "fleet_session")!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", secure: false });
    expect(await p2.locator("#who").textContent()).toBe("ann (operator)");
    expect(await p2.locator("#nodes caption").textContent()).toBe("1 of 9 nodes online");
    expect(await p2.locator('tr[data-node="arch-orchestrator"] .presence').textContent()).toBe("online");
    expect(await p2.locator('tr[data-node="windows-desktop"] .presence').textContent()).toBe("offline");
    expect(await p2.locator('tr[data-node="arch-orchestrator"] td').last().textContent()).toBe(" $0.00 of $20.00");
    expect(await p2.locator('tr[data-node="windows-desktop"] td').last().textContent()).toBe(" $0.00 of $5.00");
    // rpi1's worker starts while the page is open: its presence changes without a reload.
    await p2.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    startWorker({ url: server.url, dir, node: "rpi1" });
    await expect.poll(() => p2.locator('tr[data-node="rpi1"] .presence').textContent(), { timeout: 10_000 }).toBe("online");
    expect(await p2.locator("#nodes caption").textContent()).toBe("2 of 9 nodes online");
    expect(await p2.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7);
    await screenshot(p2, "fleet");
    expect(await axeViolations(p2)).toEqual([]);
    await c2.close();
  });

  it("an operator submits in the form and watches the task go to completed without reload", async () => {
    const { ctx, page } = await signIn("ann");
    await page.getByRole("link", { name: "Submit a task" }).click();
    expect(await axeViolations(page)).toEqual([]);

    // Bad input: the API's own one-line message beside the field, nothing written.
    await page.getByLabel("Target node").selectOption("arch-orchestrator");
    await page.getByLabel("Prompt").fill("FAKE:sleep=1.5 say hi");
    await page.getByLabel(/Timeout/).fill("soon");
    await page.getByRole("button", { name: "Submit" }).click();
    expect(await page.locator("#err-timeoutSeconds").textContent()).toBe('field "timeoutSeconds": expected number, got string');
    expect(await page.getByLabel("Prompt").inputValue()).toBe("FAKE:sleep=1.5 say hi");
    expect((await api(server.url, "GET", "/v1/tasks", { token: tokenOf("ann") })).body.tasks).toEqual([]);

    // The tasks page stays open in a second tab and must see the task arrive and change state live.
    const list = await ctx.newPage();
    await list.goto(server.url + "/tasks");
    expect(await list.locator("#tasks caption").textContent()).toBe("0 task(s), newest first");
    await list.evaluate(() => ((window as unknown as { marker: number }).marker = 42)); // gone after a reload

    await page.getByLabel(/Timeout/).fill("120");
    await page.getByRole("button", { name: "Submit" }).click();
    await page.waitForURL(/\/tasks\/1$/);
    expect(await page.locator("h1").textContent()).toBe("Task #1");
    expect(await page.locator("#prompt").textContent()).toBe("FAKE:sleep=1.5 say hi");

    await expect.poll(() => list.locator("#task-1 .state").textContent(), { timeout: 10_000 }).toBe("running");
    await expect.poll(() => list.locator("#task-1 .state").textContent(), { timeout: 15_000 }).toBe("completed");
    await expect.poll(() => page.locator("#state").textContent(), { timeout: 5_000 }).toBe("completed");
    expect(await list.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(await list.locator("#task-1 td").nth(3).textContent()).toBe("arch-orchestrator");
    expect(await page.locator("#exit-code").textContent()).toBe("0");
    expect(await page.locator("#attempts").textContent()).toBe("1 of 3");
    expect(await page.locator("#leases li").allTextContents()).toEqual([
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d leased to arch-orchestrator \(arch-orchestrator\S*\)$/),
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d completed on arch-orchestrator$/),
    ]);
    expect(await page.locator("#result").textContent()).toBe("stand-in ran with model haiku");
    expect(await list.locator("#task-1 td").nth(4).textContent()).toMatch(/^haiku \(auto\): ./);
    expect(await page.getByRole("button", { name: "Cancel task" }).count()).toBe(0);
    await screenshot(list, "tasks");
    await screenshot(page, "task");
    expect(await axeViolations(list)).toEqual([]);
    expect(await axeViolations(page)).toEqual([]);
    await ctx.close();
  });

  it("the submit form takes a GitHub issue: a bad reference, and a queue with no GitHub token, are said beside the field; nothing is written", async () => {
    const { ctx, page } = await signIn("ann");
    const before = (await api(server.url, "GET", "/v1/stats", { token: tokenOf("ann") })).body.byState.pending;
    await page.goto(server.url + "/tasks/new");
    const field = page.getByLabel(/GitHub issue to turn into a pull request/);
    await field.fill("acme/widgets");
    await page.getByRole("button", { name: "Submit" }).click();
    expect(await page.locator("#err-github").textContent()).toBe('field "github": expected <owner>/<repo>#<issue number>, e.g. acme/widgets#12, got "acme/widgets"');
    await page.getByLabel(/GitHub issue to turn into a pull request/).fill("acme/widgets#3");
    await page.getByRole("button", { name: "Submit" }).click();
    expect(await page.locator("#err-github").textContent()).toBe('field "github": this queue has no GitHub token; start it with --github-token-file to take GitHub issue tasks');
    expect(await page.getByLabel(/GitHub issue to turn into a pull request/).inputValue()).toBe("acme/widgets#3");
    expect(await axeViolations(page)).toEqual([]);
    expect((await api(server.url, "GET", "/v1/stats", { token: tokenOf("ann") })).body.byState.pending).toBe(before);
    await ctx.close();
  });

  it("a task submitted from the API shows in an open tasks page within a second; an operator re-prioritises and cancels it", async () => {
    const { ctx, page } = await signIn("ann");
    await page.goto(server.url + "/tasks?node=windows-desktop");
    expect(await page.locator("#tasks caption").textContent()).toBe("0 task(s), filtered, newest first");
    const t0 = Date.now();
    // windows-desktop has no worker: the task stays pending.
    const sub = await api(server.url, "POST", "/v1/tasks", { token: tokenOf("arch-orchestrator"), body: { target: "windows-desktop", prompt: "<b>not bold</b> & wait" } });
    expect(sub.status).toBe(201);
    const id = sub.body.id as number;
    await page.locator(`#task-${id}`).waitFor({ timeout: 1000 });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await page.locator(`#task-${id} .state`).textContent()).toBe("pending");
    expect(await page.locator(`#task-${id} .prompt`).textContent()).toBe("<b>not bold</b> & wait");

    await page.getByRole("link", { name: `#${id}` }).click();
    expect(await page.locator("#priority").textContent()).toBe("medium");
    await page.getByLabel("Priority").selectOption("high");
    await page.getByRole("button", { name: "Set priority" }).click();
    await page.waitForURL(new RegExp(`/tasks/${id}$`));
    expect(await page.locator("#priority").textContent()).toBe("high");
    expect((await api(server.url, "GET", `/v1/tasks/${id}`, { token: tokenOf("ann") })).body.priority).toBe("high");
    // A note (fleet task note) arrives on the open page without a reload.
    expect((await api(server.url, "POST", `/v1/tasks/${id}/notes`, { token: tokenOf("ann"), body: { text: "waiting for <the> Windows box" } })).status).toBe(201);
    await expect.poll(() => page.locator("#notes pre").allTextContents(), { timeout: 5_000 }).toEqual(["waiting for <the> Windows box"]);
    expect(await page.locator("#notes .who").textContent()).toBe("ann");
    await page.getByRole("button", { name: "Cancel task" }).click();
    await page.waitForURL(new RegExp(`/tasks/${id}$`));
    expect(await page.locator("#state").textContent()).toBe("cancelled");
    expect((await api(server.url, "GET", `/v1/tasks/${id}`, { token: tokenOf("ann") })).body.state).toBe("cancelled");
    await ctx.close();
  });

  it("a link to a task (as in a notification) opens sign-in first, then that task", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(server.url + "/tasks/1");
    expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe("/login?next=%2Ftasks%2F1");
    await page.getByLabel(/Your token/).fill(tokenOf("bob"));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/tasks\/1$/);
    expect(await page.locator("h1").textContent()).toBe("Task #1");
    // Elsewhere is refused: the fleet page instead.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.goto(server.url + "/login?next=%2F%2Fevil.example%2F");
    await page.getByLabel(/Your token/).fill(tokenOf("bob"));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/fleet$/);
    expect(new URL(page.url()).host).toBe(new URL(server.url).host);
    await ctx.close();
  });

  it("a viewer sees no submit or cancel, and a forged POST gets 403", async () => {
    const pending = await api(server.url, "POST", "/v1/tasks", { token: tokenOf("ann"), body: { target: "windows-desktop", prompt: "stay pending" } });
    const id = pending.body.id as number;
    const { ctx, page } = await signIn("bob");
    expect(await page.locator("#who").textContent()).toBe("bob (viewer)");
    expect(await page.getByRole("link", { name: "Submit a task" }).count()).toBe(0);
    await page.goto(`${server.url}/tasks/${id}`);
    expect(await page.locator("#state").textContent()).toBe("pending");
    expect(await page.getByRole("button", { name: "Cancel task" }).count()).toBe(0);
    expect(await page.getByRole("button", { name: "Set priority" }).count()).toBe(0);
    const form = await page.goto(server.url + "/tasks/new");
    expect(form!.status()).toBe(403);
    expect(await page.locator("#err-page").textContent()).toBe("viewer bob may not change tasks; an operator's token may");

    // Forged from the viewer's own session, with the session's valid CSRF token (from the sign-out form).
    await page.goto(server.url + "/fleet");
    const csrf = await page.locator('form[action="/logout"] input[name="_csrf"]').inputValue();
    const forged = await page.request.post(`${server.url}/tasks/${id}/cancel`, { form: { _csrf: csrf } });
    expect(forged.status()).toBe(403);
    const submit = await page.request.post(`${server.url}/tasks`, { form: { _csrf: csrf, target: "windows-desktop", prompt: "forged" } });
    expect(submit.status()).toBe(403);
    const prio = await page.request.post(`${server.url}/tasks/${id}/priority`, { form: { _csrf: csrf, priority: "high" } });
    expect(prio.status()).toBe(403);
    expect((await api(server.url, "GET", `/v1/tasks/${id}`, { token: tokenOf("ann") })).body.priority).toBe("medium");
    expect((await api(server.url, "GET", `/v1/tasks/${id}`, { token: tokenOf("ann") })).body.state).toBe("pending");
    expect((await api(server.url, "GET", "/v1/tasks?node=windows-desktop", { token: tokenOf("ann") })).body.tasks.some((t: { prompt: string }) => t.prompt === "forged")).toBe(false);
    await ctx.close();
  });

  it("a stale CSRF token (from before a new sign-in) and a missing one are refused", async () => {
    const pending = await api(server.url, "POST", "/v1/tasks", { token: tokenOf("ann"), body: { target: "windows-desktop", prompt: "keep me" } });
    const id = pending.body.id as number;
    const { ctx, page } = await signIn("ann");
    await page.goto(`${server.url}/tasks/${id}`);
    const stale = await page.locator(`form[action="/tasks/${id}/cancel"] input[name="_csrf"]`).inputValue();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/login$/);
    await page.getByLabel(/Your token/).fill(tokenOf("ann"));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/fleet$/);

    const r = await page.request.post(`${server.url}/tasks/${id}/cancel`, { form: { _csrf: stale } });
    expect(r.status()).toBe(403);
    expect(await r.text()).toContain("invalid CSRF token");
    const none = await page.request.post(`${server.url}/tasks/${id}/cancel`, { form: {} });
    expect(none.status()).toBe(403);
    expect((await api(server.url, "GET", `/v1/tasks/${id}`, { token: tokenOf("ann") })).body.state).toBe("pending");
    await ctx.close();
  });

  it("the fleet page shows each node's profile, roles and the health fleet status reported, live", async () => {
    const { ctx, page } = await signIn("bob");
    expect(await page.locator('tr[data-node="rpi1"] .profile').textContent()).toBe("headless-agent");
    expect(await page.locator('tr[data-node="rpi1"] .roles').textContent()).toBe("tailscale, claude, iceccd, toolchains, agentapi, worker (agent)");
    expect(await page.locator('tr[data-node="macbook2"] .roles').textContent()).toBe("tailscale, claude, iceccd");
    expect(await page.locator('tr[data-node="rpi1"] .health').textContent()).toBe("not checked");
    expect(await page.locator("#health-summary").textContent()).toBe("No health report yet: run fleet status --report with an operator's token (for example from the drift check).");
    // What `fleet status --report` sends (cli/status.ts sendHealth), arriving while the page is open.
    const row = (node: string, healthy: boolean, problems: string[]) => ({ node, host: node, os: "raspios", reach: problems[0] === "offline" ? "offline" : "ok", sshMs: 9, tailscale: null, agentapi: null, disk: null, worker: null, exposed: [], roles: [], healthy, problems });
    const report = { fleet: "mesh", healthy: false, nodes: [row("rpi1", true, []), row("rpi2", false, ["iceccd: iceccd.service is inactive", "worker: not seen by the queue yet"]), row("rpi3", false, ["offline"])] } as unknown as StatusReport;
    expect(await sendHealth(server.url, tokenOf("bob"), report)).toMatchObject({ ok: false });
    expect(await sendHealth(server.url, tokenOf("ann"), report)).toEqual({ ok: true });
    await expect.poll(() => page.locator('tr[data-node="rpi1"] .health').textContent(), { timeout: 5_000 }).toBe("healthy");
    expect(await page.locator('tr[data-node="rpi2"] .health li').allTextContents()).toEqual(["iceccd: iceccd.service is inactive", "worker: not seen by the queue yet"]);
    expect(await page.locator('tr[data-node="rpi3"] .health').textContent()).toBe("problems:offline");
    expect(await page.locator('tr[data-node="imac"] .health').textContent()).toBe("not checked");
    expect(await page.locator("#health-summary").textContent()).toMatch(/^Health as fleet status --report judged 3 node\(s\), latest at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: 2 with problems\.$/);
    await screenshot(page, "fleet-health");
    expect(await axeViolations(page)).toEqual([]);
    await ctx.close();
  });

  it("the tasks page filters by tag", async () => {
    const mk = (tags: Record<string, string>, prompt: string) => api(server.url, "POST", "/v1/tasks", { token: tokenOf("ann"), body: { target: "any", tags, prompt } });
    const a = (await mk({ gpu: "gtx980" }, "tagged gpu")).body.id as number;
    expect((await mk({}, "untagged")).status).toBe(201);
    const { ctx, page } = await signIn("bob");
    await page.goto(server.url + "/tasks");
    await page.getByLabel("Tag").fill("gpu=gtx980");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/tag=gpu%3Dgtx980/);
    expect(await page.locator("#tasks tbody tr").evaluateAll((rows) => rows.map((r) => r.id))).toEqual([`task-${a}`]);
    expect(await page.locator(`#task-${a} .tags`).textContent()).toBe("gpu=gtx980");
    const bad = await page.goto(server.url + "/tasks?tag=nvme");
    expect(bad!.status()).toBe(400);
    expect(await page.locator("#err-page").textContent()).toBe('query "tag" must be name=value, got "nvme"');
    await ctx.close();
  });

  it("an operator talks to an agent through the queue; a viewer only reads; unreachable agents say why", async () => {
    const { ctx, page } = await signIn("ann");
    await page.getByRole("link", { name: "Agents" }).click();
    expect(await page.locator('tr[data-node="arch-orchestrator"] .agent-status').textContent()).toBe("stable");
    expect(await page.locator('tr[data-node="rpi2"] .agent-status').textContent()).toBe("unreachable: AgentAPI GET /status: ECONNREFUSED");
    expect(await page.locator("#agents caption").textContent()).toBe("6 agent(s)");
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole("link", { name: "arch-orchestrator" }).click();
    await page.waitForURL(/\/agents\/arch-orchestrator$/);
    expect(await page.locator("#agent-status").textContent()).toBe("stable");
    expect(await page.locator(".message pre").allTextContents()).toEqual(["Welcome to Claude Code"]);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 5));
    await page.getByLabel("Message to arch-orchestrator").fill("list the <files> & exit");
    await page.getByRole("button", { name: "Send" }).click();
    await page.waitForURL(/\/agents\/arch-orchestrator$/);
    // The reply arrives through the page's event stream, without a reload.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 6));
    await expect.poll(() => page.locator(".message pre").allTextContents(), { timeout: 10_000 }).toEqual(["Welcome to Claude Code", "list the <files> & exit", "agent reply to: list the <files> & exit"]);
    await expect.poll(() => page.locator("#agent-status").textContent(), { timeout: 5_000 }).toBe("stable");
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(6);
    await screenshot(page, "agent");
    expect(await axeViolations(page)).toEqual([]);

    // While the agent works, a second message is refused by AgentAPI: its reason shows beside the field.
    agent.setReplyAfterMs(5_000);
    await page.getByLabel("Message to arch-orchestrator").fill("first");
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByLabel("Message to arch-orchestrator").fill("second");
    const refused = page.waitForResponse((r) => r.url().endsWith("/agents/arch-orchestrator/message"));
    await page.getByRole("button", { name: "Send" }).click();
    expect((await refused).status()).toBe(409);
    expect(await page.locator("#err-content").textContent()).toBe("arch-orchestrator did not take the message: AgentAPI POST /message: HTTP 400 the agent is not stable");
    expect(await page.getByLabel("Message to arch-orchestrator").inputValue()).toBe("second");
    await page.getByRole("button", { name: "Interrupt (Escape)" }).click();
    await expect.poll(() => page.locator("#agent-status").textContent(), { timeout: 5_000 }).toBe("stable");
    expect(agent.raw).toEqual(["\u001b"]);
    agent.setReplyAfterMs(300);
    expect(await page.locator(".message pre").allTextContents()).not.toContain("second");

    const down = await page.goto(server.url + "/agents/rpi3");
    expect(down!.status()).toBe(200);
    expect(await page.locator("#err-agent").textContent()).toBe("AgentAPI GET /status: ECONNREFUSED");
    expect((await page.goto(server.url + "/agents/macbook2"))!.status()).toBe(404);
    expect(await page.locator("#err-page").textContent()).toBe("node macbook2 runs no AgentAPI (role agentapi)");
    expect((await page.goto(server.url + "/agents/nobody"))!.status()).toBe(404);
    await ctx.close();

    const viewer = await signIn("bob");
    await viewer.page.goto(server.url + "/agents/arch-orchestrator");
    expect(await viewer.page.locator(".message pre").count()).toBeGreaterThan(2);
    expect(await viewer.page.getByRole("button", { name: "Send" }).count()).toBe(0);
    const csrf = await viewer.page.locator('form[action="/logout"] input[name="_csrf"]').inputValue();
    const before = (await (await fetch(agent.url + "/messages")).json()).messages.length;
    const forged = await viewer.page.request.post(`${server.url}/agents/arch-orchestrator/message`, { form: { _csrf: csrf, content: "forged" } });
    expect(forged.status()).toBe(403);
    const interrupt = await viewer.page.request.post(`${server.url}/agents/arch-orchestrator/interrupt`, { form: { _csrf: csrf } });
    expect(interrupt.status()).toBe(403);
    expect((await (await fetch(agent.url + "/messages")).json()).messages.length).toBe(before);
    expect((await fetch(server.url + "/events/agents/arch-orchestrator")).status).toBe(401);
    expect((await fetch(server.url + "/events/agents/nobody")).status).toBe(401);
    await viewer.ctx.close();
  });

  it("the charts page draws tasks per minute and spend per node with uPlot", async () => {
    const { ctx, page } = await signIn("bob");
    await page.goto(server.url + "/charts");
    await page.locator('#chart-tasks[data-drawn="true"] canvas').waitFor({ timeout: 10_000 });
    await page.locator('#chart-spend[data-drawn="true"] canvas').waitFor({ timeout: 10_000 });
    const stats = (await api(server.url, "GET", "/v1/stats", { token: tokenOf("ann") })).body;
    expect(await page.locator('#task-totals td[data-state="completed"]').textContent()).toBe(String(stats.byState.completed));
    expect(await page.locator('#task-totals td[data-state="cancelled"]').textContent()).toBe(String(stats.byState.cancelled));
    expect(await page.locator("#spend-totals tbody th").allTextContents()).toEqual(Object.keys(queueFacts(loadFleet("fleet.yaml")).nodes as object));
    // uPlot's legend names every series: the four task series and the nine nodes.
    expect(await page.locator("#chart-tasks .u-legend .u-label").allTextContents()).toEqual(["Time", "submitted", "completed", "failed", "cancelled"]);
    expect(await page.locator("#chart-spend .u-legend .u-label").count()).toBe(10);
    await screenshot(page, "charts");
    expect(await axeViolations(page)).toEqual([]);
    await ctx.close();
  });

  it("limits sign-in attempts to 10 a minute per client address (a queue of its own, so the other tests' sign-ins do not count)", async () => {
    const d = tempDir("fleet-browser-rl-");
    const other = await startServer({ db: join(d, "queue.db"), tokens: writeTokens(d, { solo: {} }, null, { ann: "operator" }) });
    const attempt = () => fetch(other.url + "/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "token=wrong-token-0123456789", redirect: "manual" });
    const codes: number[] = [];
    for (let i = 0; i < 10; i++) codes.push((await attempt()).status);
    expect(codes).toEqual(Array(10).fill(401));
    const refused = await attempt();
    expect(refused.status).toBe(429);
    expect(await refused.text()).toMatch(/Rate limit exceeded/);
    // Even the right token waits out the window.
    const right = await fetch(other.url + "/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${tokenOf("ann")}`, redirect: "manual" });
    expect(right.status).toBe(429);
  });

  it("sends security headers; the API still wants a bearer token and refuses form bodies", async () => {
    const res = await fetch(server.url + "/login");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(res.headers.get("content-security-policy")).not.toContain("upgrade-insecure-requests");
    expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect((await api(server.url, "GET", "/v1/tasks", { token: null })).status).toBe(401);
    const form = await fetch(server.url + "/v1/tasks", { method: "POST", headers: { authorization: `Bearer ${tokenOf("ann")}`, "content-type": "application/x-www-form-urlencoded" }, body: "target=windows-desktop&prompt=x" });
    expect(form.status).toBe(415);
    expect((await fetch(server.url + "/assets/htmx.min.js")).status).toBe(200);
    expect((await fetch(server.url + "/assets/htmx.js")).status).toBe(404);
    expect((await fetch(server.url + "/assets/uPlot.iife.min.js")).status).toBe(200);
    expect((await fetch(server.url + "/assets/uPlot.esm.js")).status).toBe(404);
    expect((await fetch(server.url + "/charts.json")).status).toBe(401);
    expect((await fetch(server.url + "/events")).status).toBe(401);
  });
});
