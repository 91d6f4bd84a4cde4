/**
 * Crashes: `kill -9` of a worker mid-task (its lease expires, the task is re-queued and completed by another
 * worker) and of the queue server under load (after a restart every acknowledged task is there, and none
 * ran or completed twice).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { api, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokens } from "./harness.js";

afterAll(stopAll);

describe("crashes", () => {
  it("kill -9 of a worker mid-task: the lease expires and another worker completes the task", async () => {
    const dir = tempDir();
    const log = join(dir, "runs.log");
    writeFileSync(log, "");
    const server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: {} }), leaseSeconds: 2, claimWaitSeconds: 2 });
    const a = startWorker({ url: server.url, dir, node: "alpha", extra: ["--home-root", join(dir, "a")], env: { FAKE_CLAUDE_LOG: log } });
    const sub = await api(server.url, "POST", "/v1/tasks", { body: { target: "alpha", prompt: "crash-me FAKE:sleep=1.5" } });
    const id = sub.body.id as number;
    const first = await waitUntil("worker A to start the task", async () => {
      const t = (await api(server.url, "GET", `/v1/tasks/${id}`)).body;
      return t.state === "running" && readFileSync(log, "utf8").includes("crash-me") ? t : null;
    });
    a.child.kill("SIGKILL");
    await a.exited;
    const b = startWorker({ url: server.url, dir, node: "alpha", extra: ["--home-root", join(dir, "b")], env: { FAKE_CLAUDE_LOG: log } });
    const done = await waitUntil("the task to complete", async () => {
      const t = (await api(server.url, "GET", `/v1/tasks/${id}`)).body;
      return t.state === "completed" ? t : null;
    });
    expect(done.attempts).toBe(2);
    expect(done.worker).not.toBe(first.worker);
    expect(done.worker).toMatch(new RegExp(`^alpha/.+:${b.child.pid}/0$`));
    expect(done.result).toBe("stand-in ran with model haiku");
    // Started once by A (killed) and once by B.
    expect(readFileSync(log, "utf8").trim().split("\n")).toEqual([`${join(dir, "a", "alpha-0")} crash-me FAKE:sleep=1.5`, `${join(dir, "b", "alpha-0")} crash-me FAKE:sleep=1.5`]);
  });

  it("kill -9 of the server under load: every acknowledged task survives, none runs or completes twice", async () => {
    const dir = tempDir();
    const db = join(dir, "q.db");
    const log = join(dir, "runs.log");
    writeFileSync(log, "");
    const tokens = writeTokens(dir, { alpha: {}, beta: {} });
    let server = await startServer({ db, tokens, leaseSeconds: 2, claimWaitSeconds: 2 });
    const url = server.url;
    const workers = ["alpha", "alpha", "beta", "beta"].map((node, i) => startWorker({ url, dir, node, extra: ["--home-root", join(dir, `h-${i}`)], env: { FAKE_CLAUDE_LOG: log } }));
    await waitUntil("the workers to start", () => workers.every((w) => w.out().includes("slot(s)")));

    const acked = new Map<number, string>();
    let failedSubmits = 0;
    let next = 0;
    const TOTAL = 600;
    // 8 submitters; each submit either returns 201 (acknowledged) or fails (server down: outcome unknown).
    const submitters = Array.from({ length: 8 }, async () => {
      while (next < TOTAL) {
        const prompt = `crash-load-${next++} FAKE:sleep=0.05`;
        try {
          const r = await api(url, "POST", "/v1/tasks", { token: tokenOf("alpha"), body: { target: "any", prompt } });
          if (r.status === 201) acked.set(r.body.id, prompt);
          else failedSubmits++;
          await sleep(10);
        } catch {
          failedSubmits++;
          await sleep(50);
        }
      }
    });
    // Kill it under load: at least 200 acknowledged, tasks both queued and running.
    await waitUntil("200 acknowledged submits with tasks pending and running", async () => {
      const s = (await api(url, "GET", "/v1/stats", { token: tokenOf("alpha") })).body.byState;
      return acked.size >= 200 && s.pending > 0 && s.running > 0;
    });
    server.child.kill("SIGKILL");
    await server.exited;
    await sleep(500);
    server = await startServer({ db, tokens, port: server.port, leaseSeconds: 2, claimWaitSeconds: 2 });
    await Promise.all(submitters);
    expect(failedSubmits).toBeGreaterThan(0);

    const stateOf = async () => (await api(url, "GET", "/v1/tasks?limit=10000", { token: tokenOf("alpha") })).body.tasks as Array<{ id: number; prompt: string; state: string }>;
    await waitUntil("every task to finish", async () => (await stateOf()).every((t) => t.state === "completed"), 90);
    const tasks = new Map((await stateOf()).map((t) => [t.id, t]));
    for (const [id, prompt] of acked) expect(tasks.get(id)).toMatchObject({ prompt, state: "completed" });
    const runs = readFileSync(log, "utf8").trim().split("\n").map((l) => l.slice(l.indexOf(" ") + 1));
    const counts = new Map<string, number>();
    for (const p of runs) counts.set(p, (counts.get(p) ?? 0) + 1);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    // Every stored task ran exactly once; acknowledged ones are among them.
    expect(runs.length).toBe(tasks.size);
    expect(acked.size).toBeGreaterThanOrEqual(TOTAL - failedSubmits);
  }, 180_000);
});
