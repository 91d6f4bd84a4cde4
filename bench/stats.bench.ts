/**
 * Bench: the queue's stats at 100,000 tasks. `GET /v1/stats` (and `fleet task status`, `/metrics`) read the
 * counts and spend tables the store's triggers keep (runtime/store.ts), so they cost the same at any number of
 * tasks; the baseline, measured in the same run on the same database, is what they did before: count the
 * whole task table by state and by node, and sum today's spend from its index.
 *
 * The database: 100,000 tasks over 10 nodes, finished over the last 30 days (90 % completed with a cost, 6 %
 * failed, 2 % cancelled, 2 % still pending), made through the Store as the server makes them (group commits).
 * Figures are medians of 200 calls after 20 warm-up calls; the server's answer through fastify (`inject`) too.
 *
 * Run alone with `npx tsx bench/stats.bench.ts`; `npm run bench` runs it through bench/index.ts.
 */
import Database from "better-sqlite3";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { SubmitBody } from "../runtime/api.js";
import { parseTokensFile, tokenSha256 } from "../runtime/config.js";
import { createQueueServer, utcDayStart } from "../runtime/server.js";
import { Store } from "../runtime/store.js";

const TASKS = 100_000;
const NODES = Array.from({ length: 10 }, (_, i) => `node${i}`);
const DAY = 86_400_000;

/** Median of `runs` timed calls of `fn` (after `warm` untimed ones), in milliseconds. */
async function median(fn: () => unknown, runs = 200, warm = 20): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint();
    await fn();
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  return t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
}

/** Fills `file` with {@link TASKS} tasks through the Store, in group commits of 5,000. */
async function fill(file: string): Promise<void> {
  const s = new Store(file, (target) => (target === "any" ? NODES : [target]));
  const now = Date.now();
  for (let start = 0; start < TASKS; start += 5000) {
    const batch: Array<Promise<unknown>> = [];
    for (let i = start; i < Math.min(TASKS, start + 5000); i++) {
      const node = NODES[i % NODES.length]!;
      const at = now - Math.floor(((TASKS - i) / TASKS) * 30 * DAY);
      const body: SubmitBody = { target: node, prompt: `task ${i}`, priority: "medium", model: "auto", tags: {}, timeoutSeconds: 60, maxAttempts: 1 };
      batch.push(
        s.grouped(() => {
          const t = s.submit(body, node, [node], at);
          const r = i % 50;
          if (r === 0 || r === 1) return; // 2 % pending
          const c = s.claim(node, `${node}/w/0`, 60_000, at)!;
          if (r === 2) return void s.cancel(t.id, at); // running with a cancel requested…
          const outcome = r < 6 ? "failed" : "completed";
          s.complete(t.id, node, { leaseId: c.leaseId, outcome, result: null, error: null, exitCode: 0, durationSeconds: 1, costUsd: r % 2 ? 0.01 : null, chosenModel: null, modelReason: null, claimNext: false }, at + 1000);
        }),
      );
    }
    await Promise.all(batch);
  }
  s.close();
}

/** The bench's figures, in milliseconds (medians). */
export interface StatsBenchResult {
  tasks: number;
  keptMs: number;
  scanMs: number;
  httpMs: number;
}

/** Runs the bench; `log` gets one line of figures. */
export async function runStatsBench(log: (line: string) => void = console.log): Promise<StatsBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "fleet-stats-bench-"));
  try {
    const file = join(dir, "q.db");
    await fill(file);
    const since = utcDayStart(Date.now());
    // Opened first: the store drops the old spend index as it opens.
    const store = new Store(file, () => []);
    // Baseline: the whole-table counts stats made before, with the spend index it had.
    const db = new Database(file);
    db.exec("CREATE INDEX IF NOT EXISTS tasks_spend ON tasks(finished_at, node, cost_usd) WHERE cost_usd IS NOT NULL");
    const byState = db.prepare("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state");
    const byNode = db.prepare("SELECT COALESCE(node, target) AS node, state, COUNT(*) AS n FROM tasks GROUP BY COALESCE(node, target), state");
    const spent = db.prepare("SELECT node, SUM(cost_usd) AS s FROM tasks WHERE finished_at >= ? AND node IS NOT NULL AND cost_usd IS NOT NULL GROUP BY node");
    const scanMs = await median(() => [byState.all(), byNode.all(), spent.all(since)], 50, 5);
    const keptMs = await median(() => store.stats(since));
    store.close();
    db.exec("DROP INDEX tasks_spend");
    db.close();
    // The server's answer, through fastify.
    const tokensFile = join(dir, "tokens.json");
    writeFileSync(tokensFile, JSON.stringify({ nodes: Object.fromEntries(NODES.map((n) => [n, { tokenSha256: tokenSha256(`${n}-bench-token-0123456789`), os: "debian", arch: "x86_64" }])), ntfy: null }));
    const q = createQueueServer({ db: file, tokens: parseTokensFile(readFileSync(tokensFile, "utf8"), tokensFile), retentionDays: 0 });
    const headers = { authorization: `Bearer node0-bench-token-0123456789` };
    const httpMs = await median(async () => {
      const r = await q.app.inject({ method: "GET", url: "/v1/stats", headers });
      if (r.statusCode !== 200) throw new Error(`GET /v1/stats answered ${r.statusCode}: ${r.body}`);
    });
    await q.close();
    const f = (ms: number) => `${ms < 1 ? ms.toFixed(3) : ms.toFixed(1)} ms`;
    log(`${TASKS.toLocaleString("en")} tasks: Store.stats ${f(keptMs)} (kept counts) vs ${f(scanMs)} (whole-table count, as before) = ${(scanMs / keptMs).toFixed(0)}× faster; GET /v1/stats ${f(httpMs)} through fastify`);
    return { tasks: TASKS, keptMs, scanMs, httpMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runStatsBench();
}
