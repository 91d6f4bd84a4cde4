/**
 * The worker daemon (role `worker`): long-polls the queue for its node, runs each task with an executor in
 * an isolated HOME, heartbeats the lease, reports the result and notifies ntfy. `--concurrency N` runs N
 * slots in one process; SIGTERM drains gracefully (finish within the grace period, else release).
 *
 * With `--run-as` each slot runs its tasks as an identity of its own (slot.ts), which cannot read the
 * node's queue token, the queue's tokens file, Claude's env file or the node user's home. Whatever a task
 * holds (a NUL byte in its prompt, a repository that cannot be cloned, an AgentAPI that answers garbage), its
 * run ends as a failed run of that task with the reason; the daemon and its other slots keep going.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { MAX_COST_USD, UNCLAIMED_PREFIX, type ClaimAnswer, type CompleteInput, type GitHubCredentials, type NodeInfo, type Task } from "./api.js";
import { checkout } from "./checkout.js";
import { QueueClient, QueueError } from "./client.js";
import { runGitHubIssue } from "./github.js";
import { agentApiExecutor, claudePrintExecutor, noopExecutor, type ExecResult, type Executor, type StopReason } from "./executors.js";
import { resolveModel, type Model } from "./model-choice.js";
import { publish } from "./ntfy.js";
import { Runner } from "./slot.js";

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
  /** Parent of the per-slot isolated homes `<node>-<slot>` (default ~/.fleetkit/workers). */
  homeRoot?: string;
  /**
   * One identity per slot (`--run-as`): slot i runs its tasks as `runAs[i]` through sudo (see slot.ts); its
   * home must exist and belong to that user (the worker role creates both). Unset: tasks run as this process's
   * user, as in the local demo.
   */
  runAs?: string[];
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

/**
 * Where a Claude run finds its task token (the slot's HOME): written 0600 by the run supervisor as the run's
 * user, removed when the run ends, named by FLEET_TOKEN_FILE in the run's environment.
 */
export const TASK_TOKEN_FILE = ".fleet-task-token";

/** The Claude files a slot mirrors from the node user's `~/.claude` on every claim. */
export const SLOT_CLAUDE_FILES = ["settings.json", "CLAUDE.md"] as const;

/** Directory under `homeRoot` where a `--run-as` worker stages the node's Claude files for its slots to read. */
export const STAGED_CLAUDE_DIR = "node-claude";

/**
 * Copies the node user's current `~/.claude/settings.json` and `CLAUDE.md` into `dir` when they differ (and
 * removes a copy whose original is gone), on every claim, so turning the sandbox on reaches running workers:
 * `dir` is the slot's own `~/.claude`, or with `--run-as` the staging directory the slot's supervisor copies
 * them from (the slot user cannot read the node user's home). Files are replaced atomically (temp file +
 * rename), 0644: they hold the fleet's Claude settings and the node's identity, no secret.
 * @throws Error when `dir` cannot be written (the task fails with it)
 */
export function mirrorNodeClaudeFiles(dir: string, from = join(homedir(), ".claude")): void {
  for (const f of SLOT_CLAUDE_FILES) {
    const src = readOrNull(join(from, f));
    const dst = join(dir, f);
    if (src === null) {
      if (existsSync(dst)) rmSync(dst, { force: true });
      continue;
    }
    if (readOrNull(dst) === src) continue;
    const tmp = `${dst}.${process.pid}.new`;
    writeFileSync(tmp, src, { mode: 0o644 });
    renameSync(tmp, dst);
  }
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/**
 * Text the queue refuses or that breaks a report: NUL, and UTF-16 halves without their partner (a JSON
 * encoder writes them, a UTF-8 store cannot keep them). Both become U+FFFD.
 */
export function reportText(s: string | null): string | null {
  return s === null ? null : s.replace(/\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

/** Variables a `--run-as` run keeps from the worker's environment (besides the env file and HOME). */
const RUN_AS_ENV = ["PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "NODE_ENV"];

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

/** One slot's fixed setup (see Worker.slotSetup). */
interface SlotContext {
  /** `<node>/<host>:<pid>/<slot>`, the worker id the queue records. */
  workerId: string;
  /** The slot's HOME. */
  home: string;
  runner: Runner;
  /** The run environment (HOME is the slot's; never the queue token). */
  env: Record<string, string>;
  /** Where this worker mirrors the node's Claude files before each Claude run: the slot's own `~/.claude`, or with `--run-as` the staging directory. */
  claudeFiles: string;
  /** With `--run-as`: the staging directory the run supervisor copies them from, as the slot user. */
  renderFrom?: string;
}

/** A claim answer that leased a task. */
type Lease = ClaimAnswer & { task: Task; leaseId: string };

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
  /** Set when {@link run} returns 2 because this worker cannot run tasks as configured (not the queue's refusal). */
  setupError: string | null = null;
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
    if (this.o.runAs) {
      if (this.o.runAs.length < n) {
        this.setupError = `--run-as names ${this.o.runAs.length} user(s) for ${n} slot(s); give one user per slot`;
        this.log(`worker ${this.o.node}: ${this.setupError}`);
        return 2;
      }
      try {
        mkdirSync(join(this.homeRoot, STAGED_CLAUDE_DIR), { recursive: true, mode: 0o755 });
      } catch (err) {
        this.setupError = `cannot create ${join(this.homeRoot, STAGED_CLAUDE_DIR)} for the slots' Claude settings: ${(err as Error).message}`;
        this.log(`worker ${this.o.node}: ${this.setupError}`);
        return 2;
      }
    }
    this.log(`worker ${this.o.node}: ${n} slot(s), executor ${this.o.executor}, queue ${this.o.queueUrl}${this.o.runAs ? `, tasks run as ${this.o.runAs.slice(0, n).join(", ")}` : ""}`);
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

  private get homeRoot(): string {
    return this.o.homeRoot ?? join(homedir(), ".fleetkit", "workers");
  }

  /**
   * Sets slot `i` up: its home (created here without `--run-as`; with it, made by the worker role and owned by
   * the slot user), its runner, and its run environment (made once: copying process.env costs tens of µs, once
   * per task at 1,000 a second). Without `--run-as` the run inherits this process's environment as before;
   * with it, only {@link RUN_AS_ENV}, the env file's credentials and the slot's HOME/USER. The queue token is
   * never part of it. Returns null (after logging why) when the slot cannot run tasks.
   */
  private async slotSetup(i: number): Promise<SlotContext | null> {
    const home = join(this.homeRoot, `${this.o.node}-${i}`);
    const user = this.o.runAs?.[i] ?? null;
    const runner = new Runner({ user });
    let env: Record<string, string>;
    if (user) {
      const why = await runner.reap();
      if (why) {
        this.setupError = `slot ${i} cannot run tasks as ${user}: ${why}; the worker role installs that user, its home ${home} and /etc/sudoers.d/fleetkit-worker`;
        this.log(`worker ${this.o.node}: ${this.setupError}`);
        return null;
      }
      env = Object.fromEntries(RUN_AS_ENV.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]])));
      Object.assign(env, this.o.env, { HOME: home, USER: user, LOGNAME: user });
    } else {
      mkdirSync(join(home, ".claude"), { recursive: true, mode: 0o700 });
      env = Object.fromEntries(Object.entries({ ...process.env, ...this.o.env }).filter((e): e is [string, string] => e[1] !== undefined));
      env.HOME = home;
    }
    // Neither the node's token nor a file of it: a task delegates with its own token (TASK_TOKEN_FILE).
    delete env.FLEET_TOKEN;
    delete env.FLEET_TOKEN_FILE;
    const staged = join(this.homeRoot, STAGED_CLAUDE_DIR);
    const workerId = `${this.o.node}/${hostname()}:${process.pid}/${i}`;
    return user ? { workerId, home, runner, env, claudeFiles: staged, renderFrom: staged } : { workerId, home, runner, env, claudeFiles: join(home, ".claude") };
  }

  private async slot(i: number): Promise<number> {
    const slot = await this.slotSetup(i);
    if (!slot) return 2;
    const { workerId } = slot;
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
      const lease: Lease = { ...ans, task: ans.task, leaseId: ans.leaseId };
      next = await this.runTask(lease, slot, claimNext).catch((err: Error) => {
        // A bug of ours, not the task's: the lease expires and the queue retries the task; the slot goes on.
        this.log(`worker ${workerId}: task ${lease.task.id}: internal error: ${err.stack ?? err.message}`);
        return null;
      });
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
  private async runTask(lease: Lease, slot: SlotContext, claimNext: boolean): Promise<ClaimAnswer | null> {
    const { task, leaseId, leaseSeconds } = lease;
    const { workerId } = slot;
    /** The run's spend so far (USD), sent with each heartbeat for its children's budget. */
    let spentUsd: number | undefined;
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
      this.client.heartbeat(task.id, leaseId, spentUsd).finally(() => (beating = false)).then(
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
      const result = await this.execute(lease, model, slot, abort.signal, (usd) => (spentUsd = Math.min(usd, MAX_COST_USD)));
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
      const body: CompleteInput = {
        leaseId,
        outcome,
        result: reportText(result.result),
        error: reportText(error),
        exitCode: result.exitCode,
        durationSeconds: result.durationSeconds,
        // Claude's own figure is untrusted text too: a cost that is not a finite amount ≥ 0 is no cost.
        costUsd: result.costUsd !== null && Number.isFinite(result.costUsd) && result.costUsd >= 0 ? result.costUsd : null,
        chosenModel: model,
        modelReason: reason,
      };
      const answer = await this.report(task.id, body, claimNext, leaseSeconds, workerId);
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

  /**
   * Prepares the task's working directory and runs the executor. Never throws: whatever goes wrong (a checkout
   * that fails, an executor that throws) is this task's failed run, with the reason as its error.
   */
  private async execute(lease: Lease, model: Model, slot: SlotContext, signal: AbortSignal, onSpend: (usd: number) => void): Promise<ExecResult> {
    const { task, leaseId, maxBudgetUsd } = lease;
    const started = performance.now();
    // The task's own token reaches Claude as a file only its user reads; the environment names the file.
    const taskToken = lease.taskToken ? { file: join(slot.home, TASK_TOKEN_FILE), token: lease.taskToken } : undefined;
    const env = taskToken ? { ...slot.env, FLEET_QUEUE_URL: this.o.queueUrl, FLEET_TOKEN_FILE: taskToken.file } : { ...slot.env };
    const failed = (error: string): ExecResult => ({ outcome: "failed", result: null, error, exitCode: null, durationSeconds: (performance.now() - started) / 1000, costUsd: null });
    const runExecutor = async (t: Task, cwd: string): Promise<ExecResult> => {
      try {
        return await this.exec({ task: t, model, maxBudgetUsd, cwd, env: { ...env }, runner: slot.runner, renderFrom: slot.renderFrom, signal, taskToken, onSpend });
      } catch (err) {
        return failed(`the ${this.o.executor} executor failed: ${(err as Error).message}`);
      }
    };
    if (task.github) {
      // The token is asked for under this lease and kept in this run's memory only (github.ts).
      let creds: GitHubCredentials;
      try {
        if (this.o.executor === "claude-print") mirrorNodeClaudeFiles(slot.claudeFiles);
        creds = await this.client.githubToken(task.id, leaseId);
      } catch (err) {
        return failed(`${UNCLAIMED_PREFIX}cannot get the GitHub token from the queue: ${(err as Error).message}`);
      }
      const github = task.github;
      return runGitHubIssue({
        task: { ...task, github },
        node: this.o.node,
        model,
        creds,
        refreshCreds: () => this.client.githubToken(task.id, leaseId),
        runner: slot.runner,
        home: slot.home,
        env: slot.env,
        signal,
        log: (l) => this.log(`worker ${slot.workerId}: task ${task.id}: ${l}`),
        runClaude: (prompt, cwd) => runExecutor({ ...task, prompt }, cwd),
      });
    }
    let cwd: string;
    try {
      cwd = await this.workdir(task, slot, signal);
      // Without --run-as the slot's .claude is this user's to write; with it, the run supervisor copies the
      // staged files in as the slot user.
      if (this.o.executor === "claude-print") mirrorNodeClaudeFiles(slot.claudeFiles);
    } catch (err) {
      return failed((err as Error).message);
    }
    return runExecutor(task, cwd);
  }

  /**
   * Reports a run (with `claimNext`, also leasing the node's next task). Keeps reporting through a queue
   * restart; a 409/403 means the lease is gone and the result is dropped. Null when nothing was recorded.
   */
  private async report(id: number, body: CompleteInput, claimNext: boolean, leaseSeconds: number, workerId: string): Promise<{ task: Task; next: ClaimAnswer | null } | null> {
    const send = () => (claimNext && !this.stopping ? this.client.completeAndClaim(id, body) : this.client.complete(id, body).then((t) => ({ task: t, next: null })));
    // Retry often enough to report within the lease the queue grants a surviving worker after its restart.
    return this.retry("complete", send, Date.now() + 10 * 60_000, (leaseSeconds * 1000) / 4).catch((err: Error) => {
      this.log(`worker ${workerId}: task ${id}: result not recorded: ${err.message}`);
      return null;
    });
  }

  /** The task's working directory: its `cwd`, a checkout of its `repo` in the slot's home (checkout.ts), or the home. */
  private async workdir(task: Task, slot: SlotContext, signal: AbortSignal): Promise<string> {
    if (task.cwd) {
      if (!existsSync(task.cwd) || !statSync(task.cwd).isDirectory()) throw new Error(`working directory ${task.cwd} does not exist on node ${this.o.node}`);
      return task.cwd;
    }
    if (task.repo) return checkout(slot.runner, task.repo, slot.home, slot.env, signal, (l) => this.log(`worker ${slot.workerId}: task ${task.id}: ${l}`));
    return slot.home;
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
      click: `${(this.info?.publicUrl || this.o.queueUrl).replace(/\/+$/, "")}/tasks/${t.id}`, // the dashboard's page (sign-in first, then back here)
    }).then((r) => {
      if (!r.ok) this.log(`worker ${this.o.node}: ntfy notification for task ${t.id} not sent (${r.error}); the task is recorded`);
    });
    this.notifications.add(p);
    void p.finally(() => this.notifications.delete(p));
  }
}
