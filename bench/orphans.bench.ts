/**
 * Bench: the orphan list the dashboard's tasks page builds on every render (runtime/api.ts `githubOrphans`).
 * Now: the newest task per issue from the partial index `tasks_github_issue` (issue key, id), and only those
 * rows that may be orphans read (`Store.githubOrphanCandidates`); baseline, measured in the same run on the
 * same database: what the page did before, read the newest 1,000 tasks of every kind
 * (`Store.list({ limit: 1000 })`) and pick the GitHub ones (which also missed issues older than those).
 *
 * Two databases of 50,000 tasks over 10 nodes, all finished (failed or completed) as the Store records them:
 * one where 2 % are `github-issue` tasks (1,000 tasks over 250 issues), one where every task is (50,000 over
 * 5,000 issues: the worst case, where the query reads every row). Figures are medians of 100 calls after 10
 * warm-up calls.
 *
 * Run alone with `npx tsx bench/orphans.bench.ts`; `npm run bench` runs it through bench/index.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { githubOrphans, type SubmitBody } from "../runtime/api.js";
import { Store } from "../runtime/store.js";

const TASKS = 50_000;
const NODES = Array.from({ length: 10 }, (_, i) => `node${i}`);

/** Median of `runs` timed calls of `fn` (after `warm` untimed ones), in milliseconds. */
function median(fn: () => unknown, runs = 100, warm = 10): number {
  for (let i = 0; i < warm; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  return t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
}

/** Fills a store with {@link TASKS} finished tasks, every `githubEvery`-th a `github-issue` task over `issues` issues. */
async function fill(file: string, githubEvery: number, issues: number): Promise<Store> {
  const s = new Store(file, (target) => (target === "any" ? NODES : [target]));
  let g = 0;
  for (let start = 0; start < TASKS; start += 5000) {
    const batch: Array<Promise<unknown>> = [];
    for (let i = start; i < Math.min(TASKS, start + 5000); i++) {
      const node = NODES[i % NODES.length]!;
      const github = i % githubEvery === 0 ? { owner: "acme", repo: `repo${g % 10}`, issue: 1 + (g++ % issues), base: null, draft: false } : undefined;
      const body: SubmitBody = { target: node, prompt: `task ${i}`, priority: "medium", model: "auto", tags: {}, timeoutSeconds: 60, maxAttempts: 1, github };
      batch.push(
        s.grouped(() => {
          const t = s.submit(body, node, [node], i);
          const c = s.claim(node, `${node}/w/0`, 60_000, i)!;
          const outcome = i % 7 === 0 ? "failed" : "completed";
          s.complete(t.id, node, { leaseId: c.leaseId, outcome, result: null, error: outcome === "failed" ? "Claude's run failed" : null, exitCode: 0, durationSeconds: 1, costUsd: null, chosenModel: null, modelReason: null, claimNext: false }, i + 1);
        }),
      );
    }
    await Promise.all(batch);
  }
  return s;
}

/** One database's figures, in milliseconds (medians). */
export interface OrphansBenchRow {
  githubTasks: number;
  nowMs: number;
  baselineMs: number;
}

/** Runs the bench; `log` gets one line per database. */
export async function runOrphansBench(log: (line: string) => void = console.log): Promise<OrphansBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "fleet-orphans-bench-"));
  const rows: OrphansBenchRow[] = [];
  try {
    for (const [every, issues] of [
      [50, 250],
      [1, 5000],
    ] as const) {
      const store = await fill(join(dir, `q${every}.db`), every, issues);
      const now = median(() => githubOrphans(store.githubOrphanCandidates()));
      const baseline = median(() => githubOrphans(store.list({ limit: 1000 })));
      const row = { githubTasks: Math.ceil(TASKS / every), nowMs: now, baselineMs: baseline };
      rows.push(row);
      log(`${TASKS} tasks, ${row.githubTasks} of them github-issue: orphan list ${now.toFixed(2)} ms (index of github-issue rows) vs ${baseline.toFixed(2)} ms (newest 1,000 tasks), ×${(baseline / now).toFixed(1)}`);
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await runOrphansBench();
