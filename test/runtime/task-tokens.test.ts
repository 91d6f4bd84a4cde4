/**
 * Task tokens (issue 14, delegation from inside a task): the queue mints one per worker lease, the worker hands
 * it to Claude's run in a 0600 file, and with it the run may submit child tasks out of what is left of its
 * budget and read and wait for itself and its children, nothing else, until its lease ends. Real queue and
 * worker processes with the stand-in claude, and the raw API with a lease taken by hand.
 *
 * The tasks here run as the worker's own user: this machine has no sudo, so a `--run-as` slot user cannot be
 * started, and "a task cannot read the node's token file" is checked on the test nodes (test/hosts). Here the
 * run's environment and argv are checked to hold neither the node's token nor the task's.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SubmitBodySchema } from "../../runtime/schemas.js";
import { tokenSha256 } from "../../runtime/config.js";
import { Store } from "../../runtime/store.js";
import { api, FLEET_BIN, fleetRun, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokens, type ServerProc } from "./harness.js";

afterAll(stopAll);

/** Polls task `id` (as the operator) until it is final. */
const finished = (url: string, id: number) =>
  waitUntil(`task ${id} to finish`, async () => {
    const t = (await api(url, "GET", `/v1/tasks/${id}`, { token: tokenOf("ops") })).body;
    return t.finishedAt ? t : null;
  });

/** A shell command line inside a task that runs this checkout's `fleet` (the stand-in claude runs it with sh). */
const fleetCmd = (args: string) => `"${process.execPath}" "${FLEET_BIN}" ${args}`;

describe("a task run by a worker delegates with its task token", () => {
  let dir: string;
  let server: ServerProc;
  beforeAll(async () => {
    dir = tempDir();
    mkdirSync(join(dir, "argv-alpha"));
    const tokens = writeTokens(dir, { alpha: { budgetUsdPerSession: 1 }, beta: {} }, null, { ops: "operator" });
    server = await startServer({ db: join(dir, "q.db"), tokens, claimWaitSeconds: 2 });
    startWorker({ url: server.url, dir, node: "alpha", env: { FAKE_CLAUDE_ARGV_DIR: join(dir, "argv-alpha") } });
    startWorker({ url: server.url, dir, node: "beta" });
  }, 60_000);

  it("`fleet task delegate beta … --wait` inside the task completes with a child, shown as such by the API and `fleet task show`", async () => {
    const sub = await api(server.url, "POST", "/v1/tasks", { token: tokenOf("ops"), body: { target: "alpha", prompt: `FAKE:exec=${fleetCmd('task delegate beta "Summarise the logs" --wait')}` } });
    expect(sub.status).toBe(201);
    const parent = await finished(server.url, sub.body.id);
    expect(parent.state).toBe("completed");
    const lines = (parent.result as string).split("\n");
    expect(lines.slice(0, 2)).toEqual([`Task #${sub.body.id + 1} queued for beta; waiting…`, `Task #${sub.body.id + 1}  completed`]);
    expect(lines.at(-1)).toBe("exit 0");
    const childId = sub.body.id + 1;

    const [p, c] = [(await api(server.url, "GET", `/v1/tasks/${sub.body.id}`, { token: tokenOf("ops") })).body, (await api(server.url, "GET", `/v1/tasks/${childId}`, { token: tokenOf("ops") })).body];
    expect([p.parent, p.children, p.budgetUsd]).toEqual([null, [childId], 1]);
    expect([c.parent, c.children, c.submittedBy, c.node, c.state, c.budgetUsd]).toEqual([sub.body.id, [], "alpha", "beta", "completed", 1]);

    const env = { FLEET_QUEUE_URL: server.url, FLEET_TOKEN: tokenOf("ops") };
    /** `show`'s budget and tree lines (those above the prompt: the result below may quote other tasks). */
    const treeLines = (out: string) => out.split("\n").slice(0, out.split("\n").findIndex((l) => l.startsWith("  prompt "))).filter((l) => /^  (tree|budget) |^ {13}[└├]/.test(l));
    const showParent = await fleetRun(["task", "show", String(sub.body.id)], env);
    expect(showParent.code).toBe(0);
    expect(treeLines(showParent.out)).toEqual(["  budget     $1.00", `  tree       #${sub.body.id} completed (this task)`, `             └ #${childId} completed`]);
    const showChild = await fleetRun(["task", "show", String(childId)], env);
    expect(treeLines(showChild.out)).toEqual(["  budget     $1.00", `  tree       #${sub.body.id} completed (parent)`, `             └ #${childId} completed (this task)`]);
  });

  it("the dashboard's task page links a task's parent and children", async () => {
    const login = await fetch(server.url + "/login", { method: "POST", body: new URLSearchParams({ token: tokenOf("ops") }), redirect: "manual" });
    expect(login.status).toBe(303);
    const cookie = login.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const page = async (id: number) => (await (await fetch(`${server.url}/tasks/${id}`, { headers: { cookie } })).text()).split("\n").filter((l) => /<dt>(Parent|Children)<\/dt>/.test(l));
    expect(await page(1)).toEqual(['<dt>Children</dt><dd id="children"><a href="/tasks/2">#2</a> completed</dd>']);
    expect(await page(2)).toEqual(['<dt>Parent</dt><dd id="parent"><a href="/tasks/1">#1</a></dd>']);
  });

  it("hands the token over in a 0600 file named by FLEET_TOKEN_FILE, never in the run's environment or argv, and removes it after the run", async () => {
    const seen = join(dir, "seen");
    const prompt = `FAKE:exec=stat -c %a "$FLEET_TOKEN_FILE" > ${seen}.mode; cp "$FLEET_TOKEN_FILE" ${seen}.token; env > ${seen}.env; echo "$FLEET_TOKEN_FILE"`;
    const sub = await api(server.url, "POST", "/v1/tasks", { token: tokenOf("ops"), body: { target: "alpha", prompt } });
    const t = await finished(server.url, sub.body.id);
    const file = join(dir, "homes", "alpha-0", ".fleet-task-token");
    expect(t.result).toBe(`${file}\nexit 0`);
    expect(readFileSync(`${seen}.mode`, "utf8")).toBe("600\n");
    const token = readFileSync(`${seen}.token`, "utf8").trim();
    expect(token).toMatch(/^fkt_[A-Za-z0-9_-]{43}$/);
    const env = readFileSync(`${seen}.env`, "utf8");
    expect(env.split("\n").filter((l) => l.startsWith("FLEET_"))).toEqual([`FLEET_QUEUE_URL=${server.url}`, `FLEET_TOKEN_FILE=${file}`].sort());
    expect(env.includes(token)).toBe(false);
    expect(env.includes(tokenOf("alpha"))).toBe(false);
    const argv = readdirSync(join(dir, "argv-alpha")).map((f) => readFileSync(join(dir, "argv-alpha", f), "utf8"));
    expect(argv.some((a) => a.includes(token) || a.includes(tokenOf("alpha")))).toBe(false);
    expect(existsSync(file)).toBe(false);
    // Its lease is over: the copy the run kept is worth nothing.
    expect(await api(server.url, "GET", `/v1/tasks/${sub.body.id}`, { token })).toEqual({
      status: 401,
      body: { error: `task ${sub.body.id}'s token expired with its lease (the task is completed); a task token works only while its task runs` },
    });
  });
});

describe("what a task token may do (raw API, a lease taken by hand)", () => {
  let url: string;
  const ops = tokenOf("ops");
  const claim = async (node: string) => (await api(url, "POST", "/v1/claim", { token: tokenOf(node), body: { node, worker: `${node}/test/0`, waitSeconds: 0 } })).body;
  /** A fresh queue (alpha with a $1 daily cap, beta without) for each test. */
  beforeEach(async () => {
    const dir = tempDir();
    url = (await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: { budgetUsdPerSession: 1 }, beta: {} }, null, { ops: "operator" }) })).url;
  }, 60_000);

  it("reads and waits for its own task and children, submits children within the budget, and nothing else; 401 once the lease ends", async () => {
    const own = (await api(url, "POST", "/v1/tasks", { token: ops, body: { target: "alpha", prompt: "parent" } })).body.id;
    const other = (await api(url, "POST", "/v1/tasks", { token: ops, body: { target: "beta", prompt: "unrelated" } })).body.id;
    const lease = await claim("alpha");
    expect([lease.task.id, lease.maxBudgetUsd, lease.task.budgetUsd]).toEqual([own, 1, 1]);
    const token = lease.taskToken as string;
    const as = (method: string, path: string, body?: unknown) => api(url, method, path, { token, body });
    const may = "a task's token may only submit child tasks (POST /v1/tasks) and read or wait for its own task and its children";
    const me = `task ${own}'s token (on node alpha)`;

    for (const [method, path, body] of [
      ["GET", "/v1/tasks", undefined],
      ["GET", "/v1/stats", undefined],
      ["GET", "/v1/nodes", undefined],
      ["POST", "/v1/tasks/:id/cancel", undefined],
      ["POST", "/v1/tasks/:id/notes", { text: "hi" }],
      ["POST", "/v1/claim", { node: "alpha", worker: "x", waitSeconds: 0 }],
      ["POST", "/v1/tasks/:id/heartbeat", { leaseId: lease.leaseId }],
    ] as const) {
      expect(await as(method, path.replace(":id", String(other)), body)).toEqual({ status: 403, body: { error: `${method} ${path}: ${may}; this is ${me}` } });
    }
    expect(await as("GET", `/v1/tasks/${other}`)).toEqual({ status: 403, body: { error: `task ${other} is not task ${own} or one of its children: ${may}` } });
    expect(await as("GET", `/v1/tasks/${other}/wait?timeoutSeconds=0`)).toEqual({ status: 403, body: { error: `task ${other} is not task ${own} or one of its children: ${may}` } });
    expect((await as("GET", `/v1/tasks/${own}`)).body).toMatchObject({ id: own, parent: null, children: [] });

    const first = await as("POST", "/v1/tasks", { target: "beta", prompt: "child one", budgetUsd: 0.6 });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ parent: own, budgetUsd: 0.6, submittedBy: "alpha", state: "pending" });
    // The parent's run reported $0.25 spent so far with its heartbeat.
    expect((await api(url, "POST", `/v1/tasks/${own}/heartbeat`, { token: tokenOf("alpha"), body: { leaseId: lease.leaseId, spentUsd: 0.25 } })).status).toBe(200);
    expect(await as("POST", "/v1/tasks", { target: "beta", prompt: "too big", budgetUsd: 0.2 })).toEqual({
      status: 403,
      body: { error: `field "budgetUsd": task ${own} has $0.15 left for a child task, not $0.20 (budget $1.00, spent so far ~$0.25, held or spent by 1 child task(s) $0.60)` },
    });
    const second = await as("POST", "/v1/tasks", { target: "any", prompt: "child two: the rest" });
    expect(second.body).toMatchObject({ parent: own, budgetUsd: 0.15 });
    expect(await as("POST", "/v1/tasks", { target: "beta", prompt: "one more" })).toEqual({
      status: 403,
      body: { error: `task ${own} has no budget left for a child task (budget $1.00, spent so far ~$0.25, held or spent by 2 child task(s) $0.75)` },
    });
    expect((await as("GET", `/v1/tasks/${own}`)).body.children).toEqual([first.body.id, second.body.id]);
    expect((await as("GET", `/v1/tasks/${first.body.id}/wait?timeoutSeconds=0`)).body).toMatchObject({ id: first.body.id, parent: own, children: [] });
    // A node's token sees the children its tasks submitted (submitted by the node).
    expect((await api(url, "GET", `/v1/tasks/${second.body.id}`, { token: tokenOf("alpha") })).status).toBe(200);

    // The child's own lease gets a token of its own, which does not reach its parent or sibling.
    const beta = await claim("beta");
    expect([beta.task.id, beta.maxBudgetUsd]).toEqual([other, null]);
    const betaToken = beta.taskToken as string;
    expect(betaToken).not.toBe(token);
    expect(await api(url, "GET", `/v1/tasks/${own}`, { token: betaToken })).toEqual({ status: 403, body: { error: `task ${own} is not task ${other} or one of its children: ${may}` } });
    // Released (a worker stopping): the lease is over, so is its token.
    expect((await api(url, "POST", `/v1/tasks/${other}/release`, { token: tokenOf("beta"), body: { leaseId: beta.leaseId } })).status).toBe(200);
    expect(await api(url, "GET", `/v1/tasks/${other}`, { token: betaToken })).toEqual({
      status: 401,
      body: { error: `task ${other}'s token expired with its lease (the task is pending); a task token works only while its task runs` },
    });

    expect((await api(url, "POST", `/v1/tasks/${own}/complete`, { token: tokenOf("alpha"), body: { leaseId: lease.leaseId, outcome: "completed", result: "done" } })).status).toBe(200);
    for (const path of [`/v1/tasks/${own}`, `/v1/tasks/${first.body.id}`]) {
      expect(await as("GET", path)).toEqual({ status: 401, body: { error: `task ${own}'s token expired with its lease (the task is completed); a task token works only while its task runs` } });
    }
    expect(await as("POST", "/v1/tasks", { target: "beta", prompt: "after the end" })).toEqual({
      status: 401,
      body: { error: `task ${own}'s token expired with its lease (the task is completed); a task token works only while its task runs` },
    });
    // The operator sees the whole family.
    expect((await api(url, "GET", `/v1/tasks/${own}`, { token: ops })).body).toMatchObject({ state: "completed", children: [first.body.id, second.body.id] });
  });

  it("a lease that expires takes its token with it", async () => {
    const dir = tempDir();
    const short = (await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: {} }, null, { ops: "operator" }), leaseSeconds: 0.5 })).url;
    const id = (await api(short, "POST", "/v1/tasks", { token: ops, body: { target: "alpha", prompt: "abandoned" } })).body.id;
    const lease = (await api(short, "POST", "/v1/claim", { token: tokenOf("alpha"), body: { node: "alpha", worker: "alpha/test/0", waitSeconds: 0 } })).body;
    expect((await api(short, "GET", `/v1/tasks/${id}`, { token: lease.taskToken })).status).toBe(200);
    await waitUntil("the lease to expire", async () => (await api(short, "GET", `/v1/tasks/${id}`, { token: ops })).body.state === "pending");
    expect(await api(short, "GET", `/v1/tasks/${id}`, { token: lease.taskToken })).toEqual({
      status: 401,
      body: { error: `task ${id}'s token expired with its lease (the task is pending); a task token works only while its task runs` },
    });
  });

  it("leases of a node without a budget cap give children no cap unless they ask for one", async () => {
    const id = (await api(url, "POST", "/v1/tasks", { token: ops, body: { target: "beta", prompt: "uncapped parent" } })).body.id;
    const lease = await claim("beta");
    expect([lease.task.id, lease.maxBudgetUsd]).toEqual([id, null]);
    const token = lease.taskToken as string;
    const free = await api(url, "POST", "/v1/tasks", { token, body: { target: "alpha", prompt: "free child" } });
    const capped = await api(url, "POST", "/v1/tasks", { token, body: { target: "alpha", prompt: "capped child", budgetUsd: 2.5 } });
    expect([free.status, free.body.budgetUsd, capped.status, capped.body.budgetUsd]).toEqual([201, null, 201, 2.5]);
  });
});

describe("the store: the parent column and task tokens", () => {
  const body = (prompt: string) => SubmitBodySchema.parse({ target: "alpha", prompt });
  const NOW = Date.UTC(2026, 11, 7, 12);

  it("a database made before parents and budgets gets their columns as it opens; its tasks have neither", () => {
    const file = join(tempDir(), "q.db");
    const s = new Store(file, () => ["alpha"]);
    s.submit(body("made before"), "ops", ["alpha"], NOW);
    s.close();
    const db = new Database(file);
    db.exec("DROP INDEX tasks_parent; ALTER TABLE tasks DROP COLUMN parent; ALTER TABLE tasks DROP COLUMN budget_usd; ALTER TABLE tasks DROP COLUMN spent_usd");
    db.close();
    const reopened = new Store(file, () => ["alpha"]);
    expect(reopened.get(1)).toMatchObject({ prompt: "made before", parent: null, budgetUsd: null });
    reopened.submit(body("child"), "alpha", ["alpha"], NOW, { parent: 1, budgetUsd: 0.5 });
    expect(reopened.children(1)).toEqual([{ id: 2, state: "pending", budgetUsd: 0.5, costUsd: null }]);
    reopened.close();
  });

  it("keeps a task token's hash only, good while its lease holds, and forgets it when its task is purged", () => {
    const file = join(tempDir(), "q.db");
    const s = new Store(file, () => ["alpha"]);
    s.submit(body("parent"), "ops", ["alpha"], NOW);
    const hash = tokenSha256("fkt_test-token");
    const c = s.claim("alpha", "alpha/w/0", 60_000, NOW, 2.5, hash)!;
    expect(c.task.budgetUsd).toBe(2.5);
    expect(s.taskToken(hash)).toMatchObject({ taskId: 1, live: true });
    const db = new Database(file, { readonly: true });
    expect(db.prepare("SELECT * FROM task_tokens").all()).toEqual([{ token_sha256: hash, task_id: 1, lease_id: c.leaseId }]);
    db.close();
    s.complete(1, "alpha", { leaseId: c.leaseId, outcome: "completed", result: "ok", error: null, exitCode: 0, durationSeconds: 1, costUsd: 0.1, chosenModel: null, modelReason: null, claimNext: false }, NOW);
    expect(s.taskToken(hash)).toMatchObject({ taskId: 1, live: false, task: { state: "completed" } });
    expect(s.purge(NOW + 1)).toBe(1);
    expect(s.taskToken(hash)).toBeUndefined();
    s.close();
  });
});
