/**
 * Retention and kept counts: the counts and spend tables the store's triggers keep agree with a count over
 * the whole task table after every kind of change; a purge deletes old final tasks and the stats keep
 * counting them; a database made before the counts table gets it filled as it opens; the server purges on
 * start and `POST /v1/purge` / `fleet task purge` purge by hand (operator only). Real SQLite files, the real
 * server (inject) and the real CLI process.
 */
import Database from "better-sqlite3";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SubmitBody } from "../../runtime/api.js";
import { parseTokensFile } from "../../runtime/config.js";
import { createQueueServer } from "../../runtime/server.js";
import { Store } from "../../runtime/store.js";
import { fleetRun, tempDir, tokenOf, writeTokens } from "./harness.js";

const DAY = 86_400_000;
const NOW = Date.UTC(2030, 0, 15, 12);
const body = (target: string, prompt = "p"): SubmitBody => ({ target, prompt, priority: "medium", model: "auto", tags: {}, timeoutSeconds: 60, maxAttempts: 1 });
const eligible = (target: string) => (target === "any" ? ["alpha", "beta"] : [target]);

/** Counts and spend as a whole-table scan finds them (what stats computed before the counts table). */
function scan(file: string, sinceMs: number) {
  const db = new Database(file, { readonly: true });
  try {
    const byState: Record<string, number> = { pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const r of db.prepare("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state").all() as Array<{ state: string; n: number }>) byState[r.state] = r.n;
    const byNode: Record<string, Record<string, number>> = {};
    for (const r of db.prepare("SELECT COALESCE(node, target) AS node, state, COUNT(*) AS n FROM tasks GROUP BY 1, 2").all() as Array<{ node: string; state: string; n: number }>) {
      byNode[r.node] = { ...byNode[r.node], [r.state]: r.n };
    }
    const spent = Object.fromEntries((db.prepare("SELECT node, SUM(cost_usd) AS s FROM tasks WHERE finished_at >= ? AND cost_usd IS NOT NULL AND node IS NOT NULL GROUP BY node").all(sinceMs) as Array<{ node: string; s: number }>).map((r) => [r.node, r.s]));
    return { byState, byNode, spentByNode: spent };
  } finally {
    db.close();
  }
}

/** Every kind of change a task goes through, from `t0` (ms): submits, claims, reports, cancels, expiries, releases, interactive claims. */
function workload(s: Store, t0: number): void {
  const ids: number[] = [];
  for (let i = 0; i < 12; i++) ids.push(s.submit(body(i % 3 === 0 ? "any" : i % 2 ? "alpha" : "beta", `t${i}`), "alpha", i % 3 === 0 ? ["alpha", "beta"] : [i % 2 ? "alpha" : "beta"], t0).id);
  const a = s.claim("alpha", "alpha/w/0", 1000, t0)!;
  s.complete(a.task.id, "alpha", { leaseId: a.leaseId, outcome: "completed", result: "ok", error: null, exitCode: 0, durationSeconds: 1, costUsd: 0.25, chosenModel: null, modelReason: null, claimNext: false }, t0 + 10);
  const b = s.claim("beta", "beta/w/0", 1000, t0)!;
  s.complete(b.task.id, "beta", { leaseId: b.leaseId, outcome: "failed", result: null, error: "x", exitCode: 1, durationSeconds: 1, costUsd: 1.5, chosenModel: null, modelReason: null, claimNext: false }, t0 + 20);
  s.claim("alpha", "alpha/w/1", 1000, t0); // expires below: maxAttempts 1, so it fails
  const r = s.claim("beta", "beta/w/1", 1000, t0)!;
  s.release(r.task.id, r.leaseId);
  s.cancel(ids[11]!, t0 + 30);
  s.expireLeases(t0 + 5000);
  const taken = s.claimTask(ids[10]!, { node: null, worker: "laptop", claimedBy: "alice" }, 1000, t0 + 40);
  expect(taken?.kind).toBe("ok");
  s.finishClaimed(ids[10]!, "completed", "done by hand", "alice", t0 + 50);
}

describe("kept counts", () => {
  it("agree with a whole-table count after every kind of change, and outlive a purge", () => {
    const file = join(tempDir(), "q.db");
    const s = new Store(file, eligible);
    workload(s, NOW - 40 * DAY);
    workload(s, NOW);
    const today = NOW - (NOW % DAY);
    const before = s.stats(today);
    const { byState, byNode, spentByNode } = scan(file, today);
    expect({ byState: before.byState, byNode: before.byNode, spentByNode: before.spentByNode }).toEqual({ byState, byNode, spentByNode });
    expect(before).toMatchObject({ byState: { pending: 14, running: 0, completed: 4, failed: 4, cancelled: 2 }, spentByNode: { alpha: 0.25, beta: 1.5 }, purged: 0 });
    // The old workload finished 40 days ago: a 30-day purge takes its 5 final tasks and nothing else.
    expect(s.purge(NOW - 30 * DAY)).toBe(5);
    expect(s.purge(NOW - 30 * DAY)).toBe(0);
    expect(s.list({ limit: 10_000 }).length).toBe(19);
    expect(s.stats(today)).toEqual({ ...before, purged: 5 });
    s.close();
  });

  it("a database made before the counts and spend tables gets them filled as it opens", () => {
    const file = join(tempDir(), "q.db");
    const s = new Store(file, eligible);
    workload(s, NOW);
    const expected = s.stats(NOW - (NOW % DAY));
    s.close();
    const db = new Database(file);
    db.exec("DROP TRIGGER counts_insert; DROP TRIGGER counts_update; DROP TRIGGER spend_update; DROP TABLE counts; DROP TABLE spend");
    db.close();
    const reopened = new Store(file, eligible);
    expect(reopened.stats(NOW - (NOW % DAY))).toEqual(expected);
    reopened.close();
  });
});

describe("retention in the server and by hand", () => {
  let q: ReturnType<typeof createQueueServer>;
  let tokens: string;
  let db: string;
  const inject = async (who: string, payload: unknown) => {
    const r = await q.app.inject({ method: "POST", url: "/v1/purge", headers: { authorization: `Bearer ${tokenOf(who)}` }, payload: payload as object });
    return { status: r.statusCode, body: r.json() };
  };

  beforeAll(async () => {
    const dir = tempDir();
    tokens = writeTokens(dir, { alpha: {}, beta: {} }, null, { alice: "operator", bob: "viewer" });
    db = join(dir, "q.db");
    // 6 tasks: 2 finished 40 days ago, 2 finished 10 days ago, 1 finished now, 1 pending.
    const s = new Store(db, eligible);
    const now = Date.now();
    for (const [i, at] of [now - 40 * DAY, now - 40 * DAY, now - 10 * DAY, now - 10 * DAY, now].entries()) {
      s.submit(body("alpha", `old ${i}`), "alpha", ["alpha"], at);
      const c = s.claim("alpha", "w", 1000, at)!;
      s.complete(c.task.id, "alpha", { leaseId: c.leaseId, outcome: i % 2 ? "failed" : "completed", result: null, error: null, exitCode: 0, durationSeconds: 1, costUsd: null, chosenModel: null, modelReason: null, claimNext: false }, at);
    }
    s.submit(body("beta", "waiting"), "alpha", ["beta"], now);
    s.close();
    const file = parseTokensFile(readFileSync(tokens, "utf8"), tokens);
    q = createQueueServer({ db, tokens: { ...file, retentionDays: 30 } });
    await q.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(() => q?.close());

  it("purges the tasks past retention on start; stats keep counting them", async () => {
    expect(q.store.list({ limit: 100 }).map((t) => t.id)).toEqual([6, 5, 4, 3]);
    const stats = (await q.app.inject({ method: "GET", url: "/v1/stats", headers: { authorization: `Bearer ${tokenOf("bob")}` } })).json();
    expect(stats).toMatchObject({ byState: { pending: 1, running: 0, completed: 3, failed: 2, cancelled: 0 }, purged: 2, byNode: { alpha: { completed: 3, failed: 2 }, beta: { pending: 1 } } });
  });

  it.each([
    ["a viewer", "bob", { olderThanSeconds: 86_400 }, 403, { error: "POST /v1/purge needs an operator token; this is viewer bob's token" }],
    ["a node", "alpha", { olderThanSeconds: 86_400 }, 403, { error: "POST /v1/purge needs an operator token; this is node alpha's token" }],
    ["under a minute", "alice", { olderThanSeconds: 59 }, 400, { error: 'field "olderThanSeconds": at least 60 seconds' }],
    ["a fraction", "alice", { olderThanSeconds: 60.5 }, 400, { error: 'field "olderThanSeconds": a whole number of seconds' }],
    ["a string", "alice", { olderThanSeconds: "30d" }, 400, { error: 'field "olderThanSeconds": expected number, got string' }],
  ] as const)("POST /v1/purge refuses %s, and deletes nothing", async (_n, who, payload, status, answer) => {
    expect(await inject(who, payload)).toEqual({ status, body: answer });
    expect(q.store.list({ limit: 100 }).length).toBe(4);
  });

  it("fleet task purge --older-than: an operator purges by hand; bad durations are exit 2", async () => {
    const env = { FLEET_QUEUE_URL: `http://127.0.0.1:${(q.app.server.address() as { port: number }).port}`, FLEET_TOKEN: tokenOf("alice") };
    for (const [arg, message] of [
      ["30", '--older-than must be a duration from 1m to 36500d: a whole number and s, m, h or d (e.g. 30d, 12h, 90m), got "30".'],
      ["59s", '--older-than must be a duration from 1m to 36500d: a whole number and s, m, h or d (e.g. 30d, 12h, 90m), got "59s".'],
      ["-1d", '--older-than must be a duration from 1m to 36500d: a whole number and s, m, h or d (e.g. 30d, 12h, 90m), got "-1d".'],
    ]) {
      const r = await fleetRun(["task", "purge", `--older-than=${arg}`], env);
      expect({ code: r.code, first: r.out.split("\n")[0] }).toEqual({ code: 2, first: message });
    }
    expect(q.store.list({ limit: 100 }).length).toBe(4);
    const r = await fleetRun(["task", "purge", "--older-than", "5d"], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Purged 2 tasks finished before \d{4}-\d\d-\d\dT[\d:.]+Z \(4 purged in all; stats still count them\)\.\n$/);
    expect(q.store.list({ limit: 100 }).map((t) => t.id)).toEqual([6, 5]);
    const status = await fleetRun(["task", "status"], env);
    expect(status.out).toContain("Completed 3, failed 2, cancelled 0 (4 of them purged); spent today $0.00");
  });
});
