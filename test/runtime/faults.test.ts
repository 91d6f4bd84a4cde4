/**
 * A bad task never kills the worker: whatever a task holds or meets (a NUL byte in its prompt, a claude that is
 * not there, an AgentAPI that answers garbage, a repository that cannot be cloned), it ends as a failed run of
 * that task with the reason, and the worker process and its other slots keep going. Real queue and worker
 * processes; the NUL prompt is written into the queue's SQLite database directly, as the API refuses it at
 * submit since the input-validation fix (the worker must hold regardless of what the queue lets through).
 */
import Database from "better-sqlite3";
import { userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGarbageAgentApi } from "./fixtures/standins.js";
import { api, startServer, startWorker, stopAll, tempDir, waitUntil, writeTokens, type Proc, type ServerProc } from "./harness.js";

let dir: string;
let server: ServerProc;
const garbage: Array<{ close: () => Promise<void> }> = [];
const task = async (id: number) => (await api(server.url, "GET", `/v1/tasks/${id}`)).body;
const submit = async (body: Record<string, unknown>) => {
  const r = await api(server.url, "POST", "/v1/tasks", { body });
  expect(r.status).toBe(201);
  return r.body.id as number;
};
const final = (id: number) => waitUntil(`task ${id} to finish`, async () => ((await task(id)).finishedAt ? task(id) : null), 60);

beforeAll(async () => {
  dir = tempDir();
  const nodes = Object.fromEntries(["alpha", "nobin", "html", "shape", "repo"].map((n) => [n, {}]));
  server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, nodes), leaseSeconds: 3, claimWaitSeconds: 2 });
}, 60_000);
afterAll(async () => {
  await stopAll();
  await Promise.all(garbage.map((g) => g.close()));
});

describe("a task with a NUL byte in its prompt", () => {
  it("fails alone: the innocent task in the other slot completes on its first attempt and the worker keeps claiming", async () => {
    const innocent = await submit({ target: "alpha", prompt: "innocent FAKE:sleep=2" });
    const bad = await submit({ target: "alpha", prompt: "placeholder" });
    const db = new Database(join(dir, "q.db"));
    db.pragma("busy_timeout = 5000");
    db.prepare("UPDATE tasks SET prompt = ? WHERE id = ?").run("run this\u0000 and crash the worker", bad);
    db.close();
    expect((await task(bad)).prompt).toBe("run this\u0000 and crash the worker");

    const w: Proc = startWorker({ url: server.url, dir, node: "alpha", extra: ["--concurrency", "2"] });
    expect(await final(bad)).toMatchObject({
      state: "failed",
      attempts: 1,
      error: "the prompt contains a NUL byte (U+0000), which cannot be passed to claude on its command line; resubmit the task without it",
    });
    expect(await final(innocent)).toMatchObject({ state: "completed", attempts: 1, result: "stand-in ran with model haiku" });
    const after = await submit({ target: "alpha", prompt: "after the bad one" });
    expect(await final(after)).toMatchObject({ state: "completed", attempts: 1 });
    expect([w.child.exitCode, w.child.signalCode]).toEqual([null, null]);
  });
});

describe("executor errors are failed runs of that task, and the worker keeps going", () => {
  it.each([
    {
      what: "claude is not installed where --claude points",
      node: "nobin",
      extra: async () => ["--claude", "/nonexistent/claude"],
      task: { prompt: "Run uptime" },
      error: `cannot run /nonexistent/claude: not found, or not executable by ${userInfo().username}`,
    },
    {
      what: "AgentAPI's port answers an HTML page",
      node: "html",
      extra: async () => {
        const g = await startGarbageAgentApi("<html><body>502 Bad Gateway</body></html>", "text/html");
        garbage.push(g);
        return ["--executor", "agentapi", "--agentapi-url", g.url];
      },
      task: { prompt: "Run uptime" },
      error: 'AgentAPI GET /status answered something that is not JSON: "<html><body>502 Bad Gateway</body></html>"',
    },
    {
      what: "AgentAPI answers JSON of another shape",
      node: "shape",
      extra: async () => {
        const g = await startGarbageAgentApi('{"status":"dancing"}', "application/json");
        garbage.push(g);
        return ["--executor", "agentapi", "--agentapi-url", g.url];
      },
      task: { prompt: "Run uptime" },
      error: 'AgentAPI GET /status answered JSON that is not its documented shape (status: Invalid option: expected one of "stable"|"running"): {"status":"dancing"}',
    },
    {
      what: "the repository cannot be cloned",
      node: "repo",
      extra: async () => [],
      task: { prompt: "Run uptime", repo: "file:///nonexistent/repo.git" },
      error: "cannot clone file:///nonexistent/repo.git: fatal: '/nonexistent/repo.git' does not appear to be a git repository",
    },
  ])("$what", async ({ node, extra, task: t, error }) => {
    const w = startWorker({ url: server.url, dir, node, extra: await extra() });
    const id = await submit({ target: node, ...t });
    const done = await final(id);
    expect({ state: done.state, attempts: done.attempts, error: String(done.error).split("\n")[0] }).toEqual({ state: "failed", attempts: 1, error });
    // The same worker takes the next task: it is still claiming.
    const next = await submit({ target: node, prompt: "next" });
    await waitUntil(`task ${next} claimed`, async () => (await task(next)).attempts === 1, 30);
    expect([w.child.exitCode, w.child.signalCode]).toEqual([null, null]);
    expect(w.out()).toContain(`task ${id} failed in`);
  });
});
