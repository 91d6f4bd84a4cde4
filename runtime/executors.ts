/**
 * Executors: how a worker runs one task. `claude-print` runs Claude Code headless (`claude -p …
 * --output-format stream-json`) through the slot's run supervisor, `agentapi` drives the node's AgentAPI
 * server over HTTP, `noop` completes at once (benchmarks).
 * An executor never throws for a failing run: it returns an {@link ExecResult} with outcome `failed` (the worker
 * still turns a throw into a failed run, so one bad task can never stop the daemon).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { AgentApiClient } from "./agentapi.js";
import type { Task } from "./api.js";
import type { Model } from "./model-choice.js";
import type { RunHandle, Runner } from "./slot.js";
import { SpendMeter } from "./spend.js";

/** Why a run was stopped early (the AbortSignal's reason). */
export type StopReason = "cancelled" | "timeout" | "shutdown" | "lease-lost";

/** Everything an executor needs for one run. */
export interface ExecContext {
  task: Task;
  /** Resolved model alias. */
  model: Model;
  /** The run's budget cap in USD (`--max-budget-usd`, and the worker stops the run past it), or null for none. */
  maxBudgetUsd: number | null;
  /** Working directory (exists). */
  cwd: string;
  /** Environment for the child (HOME is the slot's isolated home). */
  env: Record<string, string>;
  /** Starts processes as the slot's identity, through the run supervisor. */
  runner: Runner;
  /** Directory whose settings.json and CLAUDE.md the slot's `$HOME/.claude` mirrors before the run, if any. */
  renderFrom?: string;
  /** Aborted with a {@link StopReason} to stop the run. */
  signal: AbortSignal;
  /**
   * The task's token for this lease and the file the run supervisor writes it to (0600, as the run's user) before
   * Claude starts; `env` names that file in FLEET_TOKEN_FILE. Absent: no token is handed over. Only
   * `claude-print` uses it: the node's AgentAPI session is long-lived and not the task's to hold a token for.
   */
  taskToken?: { file: string; token: string };
  /** Called with the run's spend so far (USD, the estimate of runtime/spend.ts) whenever it grows. */
  onSpend?: (usd: number) => void;
}

/** What one run produced. Durations in seconds, cost in USD. */
export interface ExecResult {
  outcome: "completed" | "failed";
  result: string | null;
  error: string | null;
  exitCode: number | null;
  durationSeconds: number;
  costUsd: number | null;
}

/** Runs one task. */
export type Executor = (ctx: ExecContext) => Promise<ExecResult>;

/**
 * The subset of Claude Code's result message we read (`--output-format json` prints it alone, `stream-json`
 * as its last line): type "result"; subtype "success" or "error_…"; `is_error`; `result` text;
 * `total_cost_usd`; `duration_ms`; `session_id`.
 */
export interface ClaudeJsonResult {
  type: "result";
  subtype: string;
  is_error: boolean;
  result?: string;
  total_cost_usd?: number;
  duration_ms?: number;
  session_id?: string;
}

/** Parses one line of Claude's output as a JSON object with a string `type`, else null. */
function parseMessage(line: string): { type: string } | null {
  const t = line.trim();
  if (!t.startsWith("{")) return null;
  try {
    const v = JSON.parse(t) as { type?: unknown };
    return v && typeof v === "object" && typeof v.type === "string" ? (v as { type: string }) : null;
  } catch {
    return null;
  }
}

/**
 * The argv (after the executable) of a `claude-print` run; options first, `--` before the prompt. Print
 * mode's stream-json needs `--verbose` (Claude refuses it otherwise) and is what reports usage while the run
 * goes (see spend.ts).
 */
export function claudeArgs(prompt: string, model: Model, maxBudgetUsd: number | null): string[] {
  return [
    "-p",
    "--model",
    model,
    "--output-format",
    "stream-json",
    "--verbose",
    ...(maxBudgetUsd === null ? [] : ["--max-budget-usd", maxBudgetUsd.toFixed(2)]),
    "--",
    prompt,
  ];
}

const tail = (s: string, n = 2000) => (s.length > n ? "…" + s.slice(-n) : s);

/** The error of a run stopped at its budget cap (USD, two decimals). */
export function budgetStopError(capUsd: number, spentUsd: number): string {
  return `stopped at budget cap $${capUsd.toFixed(2)} (spent ~$${spentUsd.toFixed(2)})`;
}

/**
 * `claude-print`: runs `claudePath` through the slot's run supervisor (its own process group, tied to the
 * worker's life; a stop sends SIGTERM, then SIGKILL after 5 s) and reads its stream-json output line by line:
 * the usage of each response feeds a {@link SpendMeter}, and when the estimate passes the run's budget cap the
 * worker stops the run itself and reports it failed with what it spent; the last `result` line is the answer.
 * The reported cost is Claude's `total_cost_usd` when the run printed it, else the estimate.
 */
export function claudePrintExecutor(claudePath: string): Executor {
  return (ctx) =>
    new Promise<ExecResult>((resolve) => {
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      if (ctx.task.prompt.includes("\0")) {
        return resolve({ outcome: "failed", result: null, error: "the prompt contains a NUL byte (U+0000), which cannot be passed to claude on its command line; resubmit the task without it", exitCode: null, durationSeconds: 0, costUsd: null });
      }
      const meter = new SpendMeter();
      const cap = ctx.maxBudgetUsd;
      let result: ClaudeJsonResult | null = null;
      let capCrossed = false;
      let other = "";
      let killTimer: NodeJS.Timeout | undefined;
      let run: RunHandle | undefined;
      const stop = () => {
        run?.signal("SIGTERM");
        killTimer ??= setTimeout(() => run?.signal("SIGKILL"), 5000);
      };
      const secret = ctx.taskToken ? { file: ctx.taskToken.file, value: ctx.taskToken.token } : undefined;
      run = ctx.runner.start({ command: claudePath, args: claudeArgs(ctx.task.prompt, ctx.model, cap), cwd: ctx.cwd, env: ctx.env, renderFrom: ctx.renderFrom, secret }, (line) => {
        const msg = parseMessage(line);
        if (!msg) {
          if (line.trim()) other = tail(other + line + "\n", 4000);
        } else if (msg.type === "result") {
          result = msg as ClaudeJsonResult;
        } else if (meter.add(msg)) {
          ctx.onSpend?.(meter.usd);
          if (cap !== null && !capCrossed && meter.usd > cap) {
            capCrossed = true;
            stop();
          }
        }
      });
      if (ctx.signal.aborted) stop();
      else ctx.signal.addEventListener("abort", stop, { once: true });
      void run.done.then((end) => {
        clearTimeout(killTimer);
        ctx.signal.removeEventListener("abort", stop);
        const durationSeconds = seconds();
        const json = result as ClaudeJsonResult | null;
        const reported = typeof json?.total_cost_usd === "number" ? json.total_cost_usd : null;
        const costUsd = reported ?? (meter.usd > 0 ? meter.usd : null);
        const exitCode = end.exitCode ?? (end.signal ? 128 : null);
        const stderr = end.stderrTail.trim();
        if (end.startError) {
          return resolve({ outcome: "failed", result: null, error: end.startError, exitCode: null, durationSeconds, costUsd: null });
        }
        if (capCrossed) {
          const spent = Math.max(meter.usd, reported ?? 0);
          return resolve({ outcome: "failed", result: json?.result ?? null, error: budgetStopError(cap!, spent), exitCode, durationSeconds, costUsd: spent });
        }
        if (ctx.signal.aborted) {
          return resolve({ outcome: "failed", result: json?.result ?? null, error: `stopped (${String(ctx.signal.reason)})`, exitCode, durationSeconds, costUsd });
        }
        if (!json) {
          const said = [stderr, other.trim()].filter(Boolean).join("; ");
          return resolve({ outcome: "failed", result: null, error: `claude printed no JSON result (exit ${exitCode}); stderr: ${tail(said, 1000) || "(empty)"}`, exitCode, durationSeconds, costUsd });
        }
        const ok = exitCode === 0 && !json.is_error && json.subtype === "success";
        resolve({
          outcome: ok ? "completed" : "failed",
          result: json.result ?? null,
          error: ok ? null : `claude ${json.subtype}${json.is_error ? " (is_error)" : ""}, exit ${exitCode}${stderr ? `; stderr: ${tail(stderr, 1000)}` : ""}`,
          exitCode,
          durationSeconds,
          costUsd,
        });
      });
    });
}

/**
 * `agentapi`: drives the node's AgentAPI (coder/agentapi, runtime/agentapi.ts): waits for `GET /status` =
 * `stable`, sends `POST /message {content, type: "user"}`, polls `GET /status` until `stable` again, then
 * returns the last agent message of `GET /messages`. A stop sends an Escape keystroke (`type: "raw"`) to
 * interrupt Claude. Every answer is checked against its documented shape: anything else (HTML, other JSON,
 * an unknown status) fails the run at once, naming the endpoint, instead of polling until the task's timeout.
 * AgentAPI reports no cost, and its long-lived session keeps its own model (the chosen one is recorded only).
 * @param baseUrl e.g. `http://127.0.0.1:3284`
 * @param pollSeconds status poll interval (default 0.5)
 */
export function agentApiExecutor(baseUrl: string, pollSeconds = 0.5): Executor {
  const agent = new AgentApiClient(baseUrl);
  const untilStable = async (signal: AbortSignal) => {
    while ((await agent.status()) !== "stable") {
      if (signal.aborted) throw new Error(`stopped (${String(signal.reason)})`);
      await sleep(pollSeconds * 1000);
    }
  };
  return async (ctx) => {
    const started = performance.now();
    const fail = (error: string): ExecResult => ({ outcome: "failed", result: null, error, exitCode: null, durationSeconds: (performance.now() - started) / 1000, costUsd: null });
    const interrupt = () => void agent.send("\u001b", "raw").catch(() => undefined);
    ctx.signal.addEventListener("abort", interrupt, { once: true });
    try {
      await untilStable(ctx.signal);
      const before = (await agent.messages()).length;
      await agent.send(ctx.task.prompt, "user");
      await untilStable(ctx.signal);
      const messages = await agent.messages();
      const reply = messages.slice(before).filter((m) => m.role === "agent").at(-1);
      if (!reply) return fail("AgentAPI returned no agent message after the prompt");
      return { outcome: "completed", result: reply.content, error: null, exitCode: null, durationSeconds: (performance.now() - started) / 1000, costUsd: null };
    } catch (err) {
      return fail((err as Error).message);
    } finally {
      ctx.signal.removeEventListener("abort", interrupt);
    }
  };
}

/** `noop`: completes at once with an empty result and zero cost (benchmarks and load tests). */
export const noopExecutor: Executor = async () => ({ outcome: "completed", result: "", error: null, exitCode: 0, durationSeconds: 0, costUsd: 0 });
