/**
 * The worker daemon (role `worker`): long-polls the queue for its node, runs each task with an executor in
 * an isolated HOME, heartbeats the lease, reports the result and notifies ntfy. `--concurrency N` runs N
 * slots in one process; SIGTERM drains gracefully (finish within the grace period, else release).
 */
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { ClaimAnswer, NodeInfo, Task } from "./api.js";
import { QueueClient, QueueError } from "./client.js";
import { agentApiExecutor, claudePrintExecutor, noopExecutor, type ExecResult, type Executor, type StopReason } from "./executors.js";
import { resolveModel } from "./model-choice.js";
import { publish } from "./ntfy.js";

/** Executor kinds a worker can run. */
export const EXECUTORS = ["claude-print", "agentapi", "noop"] as const;

/** Options of {@link Worker}. Durations in seconds. */
export interface WorkerOptions {
  /** Queue base URL. */
  queueUrl: string;
  /** The node's bearer token (from `--token-file`). */
  token: string;
  /** This node's name (must be the token's node). */
  node: string;
  executor: (typeof EXECUTORS)[number];
  /** `claude` executable for `claude-print` (default `claude` on PATH). */
  claudePath?: string;
  /** AgentAPI base URL for `agentapi` (default http://127.0.0.1:3284). */
  agentApiUrl?: string;
  /** Extra environment for Claude (parsed env file: ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN). */
  env?: Record<string, string>;
  /** Parent of the per-slot isolated homes (default ~/.fleetkit/workers). */
  homeRoot?: string;
  /** Parallel slots (default 1). */
  concurrency?: number;
  /** Run one task, then exit. */
  once?: boolean;
  /** Long-poll length of each claim (default 25). */
  claimWaitSeconds?: number;
  /** Baseline mode: never long-poll, check every this many seconds, one task per check (the shared-fs-queue worker). */
  pollSeconds?: number;
  /** How long SIGTERM waits for running tasks before releasing them (default 30). */
  graceSeconds?: number;
  /** Log sink (default: {@link stdoutLines}). */
  log?: (line: string) => void;
}

const run = promisify(execFile);

/**
 * Prepares a slot's isolated HOME (claude-workers.md: `HOME=~/workers/01 claude`): creates it 0700 and copies
 * the user's `~/.claude/settings.json` and `CLAUDE.md` into it when missing, so every slot has its own history.
 */
export function ensureHome(dir: string): string {
  mkdirSync(join(dir, ".claude"), { recursive: true, mode: 0o700 });
  for (const f of ["settings.json", "CLAUDE.md"]) {
    const src = join(homedir(), ".claude", f);
    const dst = join(dir, ".claude", f);
    if (existsSync(src) && !existsSync(dst)) copyFileSync(src, dst);
  }
  return dir;
}

let stdoutSink: ((line: string) => void) | null = null;

/**
 * The default log sink: lines to stdout, written once per event-loop turn (`setImmediate`) with the lines of
 * every slot from that turn, instead of one write each; a pipe write is synchronous and wakes the reader, and
 * at 1,000 tasks a second (two lines each) the per-line writes took about a sixth of the worker's CPU (CPU profile). Lines
 * still waiting when the process exits are written then; a SIGKILL loses at most the current turn's lines.
 */
export function stdoutLines(): (line: string) => void {
  if (stdoutSink) return stdoutSink;
  let pending = "";
  const flush = () => {
    if (!pending) return;
    const text = pending;
    pending = "";
    process.stdout.write(text);
  };
  process.on("exit", flush);
  return (stdoutSink = (line) => {
    if (!pending) setImmediate(flush);
    pending += line + "\n";
  });
}

/** A running worker process: N slots sharing one client. */
export class Worker {
  private readonly client: QueueClient;
  private readonly exec: Executor;
  private readonly log: (line: string) => void;
  private stopping = false;
  private readonly claimAborts = new Set<AbortController>();
  private readonly running = new Map<number, { abort: AbortController; done: Promise<void> }>();
  private readonly notifications = new Set<Promise<unknown>>();
  private info: NodeInfo | null = null;
  private lastOutcome: Task["state"] | null = null;

  constructor(private readonly o: WorkerOptions) {
    this.client = new QueueClient(o.queueUrl, o.token);
    this.exec = o.executor === "noop" ? noopExecutor : o.executor === "agentapi" ? agentApiExecutor(o.agentApiUrl ?? "http://127.0.0.1:3284") : claudePrintExecutor(o.claudePath ?? "claude");
    this.log = o.log ?? stdoutLines();
  }

  /**
   * Runs until {@link stop} (or one task with `once`). Returns the exit code: 0, or 1 when `once` ran a task
   * that did not complete, or 2 when the queue rejects the token or node (bad configuration).
   */
  async run(): Promise<number> {
    this.info = await this.retry("fetch node info", () => this.client.me());
    if (!this.info) return this.stopping ? 0 : 2;
    if (this.info.node !== this.o.node) {
      this.log(`worker: the token belongs to node ${this.info.node}, not ${this.o.node}; fix --node or --token-file`);
      return 2;
    }
    const n = this.o.once ? 1 : Math.max(1, this.o.concurrency ?? 1);
    this.log(`worker ${this.o.node}: ${n} slot(s), executor ${this.o.executor}, queue ${this.o.queueUrl}`);
    const codes = await Promise.all(Array.from({ length: n }, (_, i) => this.slot(i)));
    await Promise.allSettled([...this.notifications]);
    if (codes.includes(2)) return 2;
    return this.o.once && this.lastOutcome !== null && this.lastOutcome !== "completed" ? 1 : 0;
  }

  /**
   * Stops claiming; running tasks get `graceSeconds` to finish, then are stopped and released to the queue.
   * Resolves when every slot is idle.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const a of this.claimAborts) a.abort();
    void this.client.presence("stopping", null).catch(() => undefined);
    const grace = sleep((this.o.graceSeconds ?? 30) * 1000, "grace", { ref: false });
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    if ((await Promise.race([all.then(() => "done"), grace])) === "grace") {
      this.log(`worker ${this.o.node}: grace period over; releasing ${this.running.size} running task(s)`);
      for (const r of this.running.values()) r.abort.abort("shutdown" satisfies StopReason);
      await all;
    }
  }

  /**
   * Retries a queue call on network errors and 5xx with exponential backoff (up to `maxDelayMs`) until it
   * succeeds, the token is refused (null), stop, or `untilMs` passes (then the last error is thrown).
   */
  private async retry<T>(what: string, fn: () => Promise<T>, untilMs = Infinity, maxDelayMs = 5000): Promise<T | null> {
    let delay = Math.min(250, maxDelayMs);
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof QueueError && (err.status === 401 || err.status === 403)) {
          this.log(`worker ${this.o.node}: ${what}: HTTP ${err.status} ${err.message}`);
          return null;
        }
        if (err instanceof QueueError && err.status < 500) throw err;
        if (this.stopping && untilMs === Infinity) return null;
        if (Date.now() + delay > untilMs) throw err;
        this.log(`worker ${this.o.node}: ${what}: ${(err as Error).message}; retrying in ${(delay / 1000).toFixed(2)} s`);
        await sleep(delay);
        delay = Math.min(delay * 2, maxDelayMs);
      }
    }
  }

  private async slot(i: number): Promise<number> {
    const workerId = `${this.o.node}/${hostname()}:${process.pid}/${i}`;
    const home = ensureHome(join(this.o.homeRoot ?? join(homedir(), ".fleetkit", "workers"), `${this.o.node}-${i}`));
    // The slot's run environment, made once (copying process.env costs tens of µs, once per task at 1,000 a second).
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.o.env, HOME: home };
    delete env.FLEET_TOKEN;
    let overBudgetLogged = false;
    let next: ClaimAnswer | null = null;
    while (!this.stopping) {
      let ans: ClaimAnswer | null = next;
      next = null;
      if (!ans?.task) {
        const abort = new AbortController();
        this.claimAborts.add(abort);
        try {
          const wait = this.o.pollSeconds !== undefined ? 0 : (this.o.claimWaitSeconds ?? 25);
          ans = await this.retry("claim", () => this.client.claim(this.o.node, workerId, wait, abort.signal));
        } catch (err) {
          if (this.stopping) break;
          this.log(`worker ${this.o.node}: claim refused: ${(err as Error).message}`);
          return 2;
        } finally {
          this.claimAborts.delete(abort);
        }
      }
      if (ans === null) return this.stopping ? 0 : 2;
      if (!ans.task || !ans.leaseId) {
        if (ans.reason === "over-budget") {
          if (!overBudgetLogged) this.log(`worker ${this.o.node}: node is over its daily budget; claiming nothing until 00:00 UTC`);
          overBudgetLogged = true;
          await this.pause(Math.min(60, this.o.pollSeconds ?? 60));
        } else if (this.o.pollSeconds !== undefined) {
          await this.pause(this.o.pollSeconds);
        }
        continue;
      }
      overBudgetLogged = false;
      // Long-polling slots take their next lease with the result report (baseline polling and --once do not).
      const claimNext = !this.o.once && this.o.pollSeconds === undefined;
      next = await this.runTask(ans.task, ans.leaseId, ans.leaseSeconds, ans.maxBudgetUsd, workerId, home, env, claimNext);
      if (this.o.once) break;
      if (this.o.pollSeconds !== undefined) await this.pause(this.o.pollSeconds);
    }
    if (next?.task && next.leaseId) await this.client.release(next.task.id, next.leaseId).catch(() => undefined);
    return 0;
  }

  /** Sleeps, waking early on stop. */
  private async pause(seconds: number): Promise<void> {
    const abort = new AbortController();
    this.claimAborts.add(abort);
    await sleep(seconds * 1000, undefined, { signal: abort.signal }).catch(() => undefined);
    this.claimAborts.delete(abort);
  }

  /**
   * Runs one leased task to its report. With `claimNext`, the report also leases the node's next task, which
   * is returned (a lease this slot must run, or release if it is stopping).
   */
  private async runTask(
    task: Task,
    leaseId: string,
    leaseSeconds: number,
    maxBudgetUsd: number | null,
    workerId: string,
    home: string,
    env: Readonly<NodeJS.ProcessEnv>,
    claimNext: boolean,
  ): Promise<ClaimAnswer | null> {
    const abort = new AbortController();
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    this.running.set(task.id, { abort, done });
    const { model, reason } = resolveModel(task.model, task.prompt);
    this.log(`worker ${workerId}: task ${task.id} started (model ${model}: ${reason})`);
    let beating = false; // one heartbeat in flight at a time, however slow the queue answers
    const hb = setInterval(() => {
      if (beating) return;
      beating = true;
      this.client.heartbeat(task.id, leaseId).finally(() => (beating = false)).then(
        (r) => {
          if (r.task.cancelRequested && !abort.signal.aborted) abort.abort("cancelled" satisfies StopReason);
        },
        (err) => {
          if (err instanceof QueueError && (err.status === 409 || err.status === 403 || err.status === 404) && !abort.signal.aborted) {
            this.log(`worker ${workerId}: task ${task.id}: ${err.message}; stopping it`);
            abort.abort("lease-lost" satisfies StopReason);
          }
        },
      );
    }, (leaseSeconds * 1000) / 3);
    const timeout = setTimeout(() => abort.abort("timeout" satisfies StopReason), task.timeoutSeconds * 1000);
    try {
      let result: ExecResult;
      const cwd = await this.workdir(task, home).catch((err: Error) => err);
      if (cwd instanceof Error) result = { outcome: "failed", result: null, error: cwd.message, exitCode: null, durationSeconds: 0, costUsd: null };
      else result = await this.exec({ task, model, maxBudgetUsd, cwd, env: { ...env }, signal: abort.signal });
      clearInterval(hb);
      clearTimeout(timeout);
      const why = abort.signal.aborted ? (abort.signal.reason as StopReason) : null;
      if (why === "lease-lost") return null;
      if (why === "shutdown") {
        await this.retry("release", () => this.client.release(task.id, leaseId), Date.now() + leaseSeconds * 1000).catch(() => undefined);
        this.log(`worker ${workerId}: task ${task.id} released to the queue`);
        return null;
      }
      const outcome = why === "cancelled" ? "cancelled" : result.outcome;
      const error = why === "timeout" ? `timed out after ${task.timeoutSeconds} s` : why === "cancelled" ? "cancelled while running" : result.error;
      const body = { leaseId, outcome, result: result.result, error, exitCode: result.exitCode, durationSeconds: result.durationSeconds, costUsd: result.costUsd, chosenModel: model, modelReason: reason } as const;
      // Keep reporting through a queue restart; a 409/403 means the lease is gone and the result is dropped.
      // Retry often enough to report within the lease the queue grants a surviving worker after its restart.
      const report = () => (claimNext && !this.stopping ? this.client.completeAndClaim(task.id, body) : this.client.complete(task.id, body).then((t) => ({ task: t, next: null })));
      const answer = await this.retry("complete", report, Date.now() + 10 * 60_000, (leaseSeconds * 1000) / 4).catch((err: Error) => {
        this.log(`worker ${workerId}: task ${task.id}: result not recorded: ${err.message}`);
        return null;
      });
      if (!answer) return null;
      const final = answer.task;
      this.lastOutcome = final.state;
      this.log(`worker ${workerId}: task ${task.id} ${final.state} in ${result.durationSeconds.toFixed(2)} s${result.costUsd ? `, $${result.costUsd.toFixed(4)}` : ""}`);
      this.notify(final);
      if (answer.next?.task && answer.next.leaseId && this.stopping) {
        // Stopping: hand the piggybacked lease straight back.
        const n = answer.next;
        await this.client.release(n.task!.id, n.leaseId!).catch(() => undefined);
        return null;
      }
      return answer.next;
    } finally {
      clearInterval(hb);
      clearTimeout(timeout);
      this.running.delete(task.id);
      resolveDone();
    }
  }

  /** The task's working directory: its `cwd`, a clone of its `repo` under the slot's home, or the home. */
  private async workdir(task: Task, home: string): Promise<string> {
    if (task.cwd) {
      if (!existsSync(task.cwd) || !statSync(task.cwd).isDirectory()) throw new Error(`working directory ${task.cwd} does not exist on node ${this.o.node}`);
      return task.cwd;
    }
    if (task.repo) {
      const dir = join(home, "repos", basename(task.repo).replace(/\.git$/, "").replace(/[^A-Za-z0-9._-]/g, "_") || "repo");
      try {
        if (existsSync(join(dir, ".git"))) await run("git", ["-C", dir, "pull", "--ff-only", "-q"], { timeout: 300_000 });
        else await run("git", ["clone", "-q", "--", task.repo, dir], { timeout: 300_000 });
      } catch (err) {
        throw new Error(`cannot clone or update ${task.repo}: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`);
      }
      return dir;
    }
    return home;
  }

  /** Publishes the task's outcome to ntfy in the background; a failure is logged, never raised. */
  private notify(t: Task): void {
    const ntfy = this.info?.ntfy;
    if (!ntfy) return;
    const ok = t.state === "completed";
    const text = (ok ? t.result : t.error) ?? "";
    const p = publish(ntfy, {
      title: `Task #${t.id} ${t.state} on ${t.node}`,
      message: text.length > 1000 ? text.slice(0, 1000) + "…" : text || `(no ${ok ? "result" : "error"} text)`,
      priority: ok ? 3 : 4,
      tags: [ok ? "white_check_mark" : t.state === "cancelled" ? "no_entry_sign" : "x", `node-${t.node}`],
      click: `${(this.info?.publicUrl || this.o.queueUrl).replace(/\/+$/, "")}/v1/tasks/${t.id}`,
    }).then((r) => {
      if (!r.ok) this.log(`worker ${this.o.node}: ntfy notification for task ${t.id} not sent (${r.error}); the task is recorded`);
    });
    this.notifications.add(p);
    void p.finally(() => this.notifications.delete(p));
  }
}
