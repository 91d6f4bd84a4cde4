// @needs git
/**
 * Worker daemon end to end: real queue and worker processes, the stand-in `claude`, real HTTP stand-ins for
 * ntfy and AgentAPI, driven through the `fleet task` CLI.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkoutName } from "../../runtime/checkout.js";
import { startAgentApi, startNtfy } from "./fixtures/standins.js";
import { api, fleetRun, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokens, type ServerProc } from "./harness.js";

let dir: string;
let server: ServerProc;
let ntfy: Awaited<ReturnType<typeof startNtfy>>;
let agentapi: Awaited<ReturnType<typeof startAgentApi>>;
let argvDir: string;
const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => fleetRun(["task", ...args], { FLEET_QUEUE_URL: server.url, FLEET_TOKEN: tokenOf("alpha"), ...extraEnv });
const task = async (id: number) => (await api(server.url, "GET", `/v1/tasks/${id}`)).body;

/** Reads the stand-in's argv records: one per run, newest last by mtime order of pid files is not reliable, so by content. */
function argvRecords(): Array<{ home: string; cwd: string; credential: string; fleetToken: string; argv: string[] }> {
  return readdirSync(argvDir).map((f) => {
    const text = readFileSync(join(argvDir, f), "utf8");
    const [home, cwd, credential, fleetToken, ...rest] = text.split("\n");
    return { home: home!.slice(5), cwd: cwd!.slice(4), credential: credential!.slice(11), fleetToken: fleetToken!.slice(12), argv: rest.join("\n").split("\0").slice(0, -1) };
  });
}

beforeAll(async () => {
  dir = tempDir();
  argvDir = join(dir, "argv");
  mkdirSync(argvDir);
  ntfy = await startNtfy();
  agentapi = await startAgentApi();
  const tokens = writeTokens(
    dir,
    { alpha: { os: "debian", budgetUsdPerSession: 5 }, beta: { os: "macos", arch: "aarch64" }, gamma: { budgetUsdPerSession: 1 }, delta: {} },
    { url: ntfy.url, topic: "fleet-tasks", token: "tk_teststandin" },
  );
  server = await startServer({ db: join(dir, "q.db"), tokens, leaseSeconds: 3, claimWaitSeconds: 2 });
  const envFile = join(dir, "claude.env");
  writeFileSync(envFile, "ANTHROPIC_API_KEY=sk-ant-test-not-real\n", { mode: 0o600 });
  startWorker({ url: server.url, dir, node: "alpha", extra: ["--env-file", envFile], env: { FAKE_CLAUDE_ARGV_DIR: argvDir, FLEET_TOKEN: tokenOf("alpha") } });
}, 60_000);
afterAll(async () => {
  await stopAll();
  await ntfy.close();
  await agentapi.close();
});

describe("worker daemon, claude-print executor", () => {
  it("runs a delegated task: argv, isolated HOME, credentials, model choice, cost, ntfy", async () => {
    const r = await cli(["delegate", "alpha", "Refactor the parser module", "--wait", "--json"]);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect(t).toMatchObject({
      id: 1,
      state: "completed",
      node: "alpha",
      attempts: 1,
      model: "auto",
      chosenModel: "sonnet",
      modelReason: 'keyword "refactor"',
      result: "stand-in ran with model sonnet",
      error: null,
      exitCode: 0,
      costUsd: 0.0123,
      submittedBy: "alpha",
    });
    const [rec] = argvRecords();
    expect(rec).toEqual({
      home: join(dir, "homes", "alpha-0"),
      cwd: join(dir, "homes", "alpha-0"),
      credential: "set",
      fleetToken: "",
      argv: ["-p", "--model", "sonnet", "--output-format", "stream-json", "--verbose", "--max-budget-usd", "5.00", "--", "Refactor the parser module"],
    });
    await waitUntil("the ntfy publish", () => ntfy.published.length === 1);
    expect(ntfy.published[0]).toEqual({
      topic: "fleet-tasks",
      title: "Task #1 completed on alpha",
      priority: "3",
      tags: "white_check_mark,node-alpha",
      click: `${server.url}/tasks/1`,
      authorization: "Bearer tk_teststandin",
      body: "stand-in ran with model sonnet",
    });
  });

  it("reports a failed run with exit code 1 and a high-priority notification", async () => {
    const r = await cli(["delegate", "alpha", "Run uptime FAKE:error", "--model", "opus", "--wait"]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("Task #2  failed");
    expect(r.out).toContain("  model      opus → opus (requested)");
    expect(r.out).toContain("  error      claude error_during_execution (is_error), exit 1");
    await waitUntil("the ntfy publish", () => ntfy.published.length === 2);
    expect(ntfy.published[1]).toMatchObject({ title: "Task #2 failed on alpha", priority: "4", tags: "x,node-alpha" });
  });

  it("stops a running task when it is cancelled, at the next heartbeat", async () => {
    const sub = await cli(["delegate", "alpha", "long job FAKE:sleep=60"]);
    expect(sub.out).toContain("Task #3 queued for alpha (priority medium, model auto).");
    await waitUntil("task 3 running", async () => (await task(3)).state === "running");
    const c = await cli(["cancel", "3"]);
    expect(c.out).toContain("Task #3 is running on alpha; its worker stops it at the next heartbeat.");
    const w = await cli(["wait", "3", "--timeout", "20"]);
    expect(w.code).toBe(1);
    expect(await task(3)).toMatchObject({ state: "cancelled", error: "cancelled while running", cancelRequested: true });
  });

  it("kills a run at the task's timeout", async () => {
    const r = await cli(["delegate", "alpha", "slow FAKE:sleep=60", "--task-timeout", "1", "--wait", "--timeout", "20"]);
    expect(r.code).toBe(1);
    expect(await task(4)).toMatchObject({ state: "failed", error: "timed out after 1 s" });
  });

  it("runs in the task's working directory and fails cleanly when it does not exist", async () => {
    const r = await cli(["delegate", "alpha", "pwd please", "--cwd", argvDir, "--wait"]);
    expect(r.code).toBe(0);
    expect(argvRecords().some((x) => x.cwd === argvDir && x.argv.at(-1) === "pwd please")).toBe(true);
    const bad = await cli(["delegate", "alpha", "pwd please", "--cwd", "/nonexistent/dir", "--wait"]);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("  error      working directory /nonexistent/dir does not exist on node alpha");
  });

  it("runs a --repo task in a clone under the slot's home, pulling it on the next task", async () => {
    const repo = join(dir, "src-repo");
    const git = (...args: string[]) => execFileSync("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", "-C", repo, ...args]);
    mkdirSync(repo);
    git("init", "-q");
    writeFileSync(join(repo, "README"), "v1\n");
    git("add", "README");
    git("commit", "-q", "-m", "v1");
    const clone = join(dir, "homes", "alpha-0", "repos", checkoutName(`file://${repo}`));
    expect((await cli(["delegate", "alpha", "read the repo", "--repo", `file://${repo}`, "--wait"])).code).toBe(0);
    expect(readFileSync(join(clone, "README"), "utf8")).toBe("v1\n");
    writeFileSync(join(repo, "README"), "v2\n");
    git("commit", "-q", "-am", "v2");
    expect((await cli(["delegate", "alpha", "read the repo again", "--repo", `file://${repo}`, "--wait"])).code).toBe(0);
    expect(readFileSync(join(clone, "README"), "utf8")).toBe("v2\n");
    expect(argvRecords().filter((r) => r.argv.at(-1)?.startsWith("read the repo")).map((r) => r.cwd)).toEqual([clone, clone]);
  });

  it("lists and shows tasks, and rejects bad CLI input with exit 2", async () => {
    const list = await cli(["list", "--status", "completed", "--json"]);
    expect(JSON.parse(list.out.slice(list.out.indexOf("["))).map((t: { id: number }) => t.id)).toEqual([8, 7, 5, 1]);
    expect((await cli(["priority", "1", "urgent"])).out).toContain('priority must be one of high, medium, low, got "urgent".');
    const bad = await cli(["delegate", "alpha", "x", "--tag", "gpu"]);
    expect(bad.code).toBe(2);
    expect(bad.out).toContain('--tag must be key=value (e.g. --tag os=macos or --tag gpu=true), got "gpu".');
    const refused = await cli(["delegate", "omega", "x"]);
    expect(refused.code).toBe(2);
    expect(refused.out).toContain('queue refused (HTTP 400): field "target": unknown node "omega"; known nodes: alpha, beta, gamma, delta, or "any"');
    const noToken = await fleetRun(["task", "list"], { FLEET_QUEUE_URL: server.url, FLEET_TOKEN: "" });
    expect(noToken.code).toBe(2);
    expect(noToken.out).toContain("no queue token: pass --token-file FILE (mode 0600) or set FLEET_TOKEN.");
  });
});

describe("budget caps", () => {
  it("passes the remaining daily budget as --max-budget-usd and stops claiming over the cap", async () => {
    const w = startWorker({ url: server.url, dir, node: "gamma", env: { FAKE_CLAUDE_ARGV_DIR: argvDir, FAKE_CLAUDE_COST: "0.6" } });
    for (const n of [1, 2]) expect((await cli(["delegate", "gamma", `budget run ${n}`, "--wait"])).code).toBe(0);
    const runs = argvRecords().filter((r) => r.argv.at(-1)?.startsWith("budget run"));
    expect(runs.map((r) => [r.argv.at(-1), r.argv[r.argv.indexOf("--max-budget-usd") + 1]]).sort()).toEqual([
      ["budget run 1", "1.00"],
      ["budget run 2", "0.40"],
    ]);
    const third = await cli(["delegate", "gamma", "budget run 3"]);
    const id = Number(/Task #(\d+)/.exec(third.out)![1]);
    await waitUntil("the worker to say it is over budget", () => w.out().includes("worker gamma: node is over its daily budget; claiming nothing until 00:00 UTC"));
    expect((await task(id)).state).toBe("pending");
    const status = await cli(["status"]);
    expect(status.out).toContain("gamma (debian/x86_64):\n  ✓ Online (over-budget: spent $1.20 of $1.00 today (UTC))");
    expect(status.out).toContain(`  #${id} [gamma] medium  budget run 3`);
    await cli(["cancel", String(id)]);
  });
});

describe("graceful shutdown and --once", () => {
  it("SIGTERM releases a task that outlives the grace period, without counting the attempt", async () => {
    const w = startWorker({ url: server.url, dir, node: "delta", extra: ["--grace-seconds", "0.3"] });
    const sub = await cli(["delegate", "delta", "FAKE:sleep=60 hold"]);
    const id = Number(/Task #(\d+)/.exec(sub.out)![1]);
    await waitUntil("the task running", async () => (await task(id)).state === "running");
    w.child.kill("SIGTERM");
    expect(await w.exited).toBe(0);
    expect(w.out()).toContain(`task ${id} released to the queue`);
    expect(await task(id)).toMatchObject({ state: "pending", attempts: 0 });
    const once = startWorker({ url: server.url, dir, node: "delta", extra: ["--once", "--grace-seconds", "0.3"] });
    await waitUntil("the once worker to take it", async () => (await task(id)).state === "running");
    await cli(["cancel", String(id)]);
    expect(await once.exited).toBe(1);
  });

  it("--once exits 0 after one completed task", async () => {
    const sub = await cli(["delegate", "delta", "Run uptime"]);
    const id = Number(/Task #(\d+)/.exec(sub.out)![1]);
    const once = startWorker({ url: server.url, dir, node: "delta", extra: ["--once"] });
    expect(await once.exited).toBe(0);
    expect((await task(id)).state).toBe("completed");
  });

  it("a worker whose token belongs to another node exits 2", async () => {
    const r = await fleetRun(["worker", "--queue", server.url, "--token-file", join(dir, "alpha.token"), "--node", "beta", "--once"]);
    expect(r.code).toBe(2);
    expect(r.out).toContain("worker: the token belongs to node alpha, not beta; fix --node or --token-file");
  });
});

describe("agentapi executor", () => {
  it("sends the prompt to AgentAPI, waits for stable and stores the agent's reply", async () => {
    startWorker({ url: server.url, dir, node: "beta", extra: ["--executor", "agentapi", "--agentapi-url", agentapi.url] });
    const r = await cli(["delegate", "any", "Run uptime on the mac", "--tag", "os=macos", "--wait", "--json"]);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect(t).toMatchObject({ node: "beta", state: "completed", result: "agent reply to: Run uptime on the mac", costUsd: null, chosenModel: "haiku" });
  });
});

describe("agentapi executor, cancelled", () => {
  it("interrupts the agent with an Escape keystroke", async () => {
    agentapi.setReplyAfterMs(60_000);
    const sub = await cli(["delegate", "beta", "a long agent job"]);
    const id = Number(/Task #(\d+)/.exec(sub.out)![1]);
    await waitUntil("the agent to be running", async () => (await task(id)).state === "running");
    await cli(["cancel", String(id)]);
    expect((await cli(["wait", String(id), "--timeout", "20"])).code).toBe(1);
    expect(await task(id)).toMatchObject({ state: "cancelled", error: "cancelled while running" });
    expect(agentapi.raw).toEqual(["\u001b"]);
    agentapi.setReplyAfterMs(200);
  });
});

describe("presence", () => {
  it("a node whose worker dies goes offline after the presence window", async () => {
    const d = tempDir();
    const s = await startServer({ db: join(d, "q.db"), tokens: writeTokens(d, { alpha: {} }), claimWaitSeconds: 1, extra: ["--presence-seconds", "1"] });
    const env = { FLEET_QUEUE_URL: s.url, FLEET_TOKEN: tokenOf("alpha") };
    expect((await fleetRun(["task", "status"], env)).out).toContain("alpha (debian/x86_64):\n  ✗ Offline, last seen never");
    const w = startWorker({ url: s.url, dir: d, node: "alpha" });
    await waitUntil("alpha online", async () => (await fleetRun(["task", "status"], env)).out.includes("alpha (debian/x86_64):\n  ✓ Online (idle), last seen"));
    w.child.kill("SIGKILL");
    await w.exited;
    await waitUntil("alpha offline", async () => /alpha \(debian\/x86_64\):\n  ✗ Offline, last seen \d+s ago/.test((await fleetRun(["task", "status"], env)).out));
  });
});

describe("ntfy down", () => {
  it("never fails or loses a task", async () => {
    const d = tempDir();
    // A port that was just free: nothing listens there (connection refused).
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const tokens = writeTokens(d, { alpha: {} }, { url: `http://127.0.0.1:${port}`, topic: "fleet-tasks", token: "tk_x" });
    const s = await startServer({ db: join(d, "q.db"), tokens, leaseSeconds: 1.5, claimWaitSeconds: 2 });
    const w = startWorker({ url: s.url, dir: d, node: "alpha" });
    const env = { FLEET_QUEUE_URL: s.url, FLEET_TOKEN: tokenOf("alpha") };
    for (const p of ["first", "second"]) expect((await fleetRun(["task", "delegate", "alpha", p, "--wait"], env)).code).toBe(0);
    await waitUntil("the ntfy warnings", () => w.out().includes("ntfy notification for task 2 not sent (ntfy unreachable: ECONNREFUSED"));
    expect(w.out()).toContain("ntfy notification for task 1 not sent (ntfy unreachable: ECONNREFUSED");
    expect((await api(s.url, "GET", "/v1/stats", { token: tokenOf("alpha") })).body.byState).toEqual({ pending: 0, running: 0, completed: 2, failed: 0, cancelled: 0 });
  });
});
