/**
 * Load: 16 real worker processes on 4 nodes drain 5,000 tasks run by the stand-in `claude`. Every task is
 * executed exactly once (the stand-in's own log), none is lost, each ran on a node allowed to run it, and
 * each node claimed its tasks in priority order (FIFO within a level).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { PRIORITIES, type Task } from "../../runtime/api.js";
import { Store } from "../../runtime/store.js";
import { api, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokens } from "./harness.js";

afterAll(stopAll);

const NODES = { n1: { os: "debian" }, n2: { os: "debian" }, n3: { os: "macos" }, n4: { os: "macos" } } as const;
const TASKS = 5000;
const WORKERS_PER_NODE = 4;

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

it("16 workers run 5,000 tasks exactly once, on allowed nodes, in priority order", async () => {
  const dir = tempDir();
  const db = join(dir, "q.db");
  const log = join(dir, "runs.log");
  const server = await startServer({ db, tokens: writeTokens(dir, NODES), leaseSeconds: 20, claimWaitSeconds: 5 });
  const rand = rng(42);
  const specs = Array.from({ length: TASKS }, (_, i) => {
    const r = rand();
    const target = r < 0.4 ? (["n1", "n2", "n3", "n4"] as const)[Math.floor(rand() * 4)]! : "any";
    const tags: Record<string, string> = target === "any" && rand() < 0.3 ? { os: rand() < 0.5 ? "debian" : "macos" } : {};
    return { target, tags, prompt: `load-task-${i}`, priority: PRIORITIES[Math.floor(rand() * 3)]! };
  });
  // Submit everything first (32 requests in flight), so claim order can be checked against priorities.
  const ids = new Map<string, number>();
  for (let i = 0; i < specs.length; i += 32) {
    const batch = await Promise.all(specs.slice(i, i + 32).map((s) => api(server.url, "POST", "/v1/tasks", { token: tokenOf("n1"), body: s })));
    for (const r of batch) {
      expect(r.status).toBe(201);
      ids.set(r.body.prompt, r.body.id);
    }
  }
  expect(ids.size).toBe(TASKS);

  for (const node of Object.keys(NODES)) for (let i = 0; i < WORKERS_PER_NODE; i++) startWorker({ url: server.url, dir, node, extra: ["--home-root", join(dir, `homes-${i}`)], env: { FAKE_CLAUDE_LOG: log } });
  await waitUntil(
    "all tasks to finish",
    async () => (await api(server.url, "GET", "/v1/stats", { token: tokenOf("n1") })).body.byState.completed === TASKS,
    150,
  );
  expect((await api(server.url, "GET", "/v1/stats", { token: tokenOf("n1") })).body.byState).toEqual({ pending: 0, running: 0, completed: TASKS, failed: 0, cancelled: 0 });

  // Exactly once, by the stand-in's own record of its runs.
  const runs = readFileSync(log, "utf8").trim().split("\n");
  const prompts = runs.map((l) => l.slice(l.indexOf(" ") + 1));
  expect(runs.length).toBe(TASKS);
  expect(new Set(prompts).size).toBe(TASKS);
  expect(new Set(prompts)).toEqual(new Set(specs.map((s) => s.prompt)));
  // 16 distinct worker homes took part.
  expect(new Set(runs.map((l) => l.slice(0, l.indexOf(" ")))).size).toBe(16);

  const tasks: Task[] = (await api(server.url, "GET", `/v1/tasks?limit=10000&state=completed`, { token: tokenOf("n1") })).body.tasks;
  expect(tasks.length).toBe(TASKS);
  for (const t of tasks) {
    expect(t.attempts).toBe(1);
    const facts = { ...NODES[t.node as keyof typeof NODES], arch: "x86_64" } as Record<string, string>;
    expect(t.target === "any" || t.target === t.node).toBe(true);
    for (const [k, v] of Object.entries(t.tags)) expect(facts[k]).toBe(v);
  }

  // Priority order per node: with every task submitted before the workers started, each node's claims must be
  // non-decreasing in (priority, id). The claim sequence is read from the store after the server stops.
  server.child.kill("SIGTERM");
  await server.exited;
  const store = new Store(db, () => []);
  const order = store.claimOrder();
  store.close();
  expect(order.length).toBe(TASKS);
  const last = new Map<string, [number, number]>();
  let inversions = 0;
  for (const c of order) {
    const key: [number, number] = [PRIORITIES.indexOf(c.priority), c.id];
    const prev = last.get(c.node);
    if (prev && (key[0] < prev[0] || (key[0] === prev[0] && key[1] < prev[1]))) inversions++;
    last.set(c.node, key);
  }
  expect(inversions).toBe(0);
}, 240_000);
