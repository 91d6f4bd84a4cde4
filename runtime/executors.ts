/**
 * Executors: how a worker runs one task. `claude-print` runs Claude Code headless (`claude -p … --output-format
 * json`), `agentapi` drives the node's AgentAPI server over HTTP, `noop` completes at once (benchmarks).
 * An executor never throws for a failing run: it returns an {@link ExecResult} with outcome `failed`.
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { Task } from "./api.js";
import type { Model } from "./model-choice.js";

/** Why a run was stopped early (the AbortSignal's reason). */
export type StopReason = "cancelled" | "timeout" | "shutdown" | "lease-lost";

/** Everything an executor needs for one run. */
export interface ExecContext {
  task: Task;
  /** Resolved model alias. */
  model: Model;
  /** `--max-budget-usd` for this run, or null for no cap. */
  maxBudgetUsd: number | null;
  /** Working directory (exists). */
  cwd: string;
  /** Environment for the child (HOME is the worker's isolated home). */
  env: NodeJS.ProcessEnv;
  /** Aborted with a {@link StopReason} to stop the run. */
  signal: AbortSignal;
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
 * The subset of Claude Code's `--output-format json` result we read (type "result"; subtype "success" or
 * "error_…"; `is_error`; `result` text; `total_cost_usd`; `duration_ms`; `session_id`).
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

/** Parses Claude's JSON output: the whole stdout, else its last line that parses as a result object. */
export function parseClaudeJson(stdout: string): ClaudeJsonResult | null {
  const tryParse = (s: string): ClaudeJsonResult | null => {
    try {
      const v = JSON.parse(s) as ClaudeJsonResult;
      return v && typeof v === "object" && v.type === "result" ? v : null;
    } catch {
      return null;
    }
  };
  const whole = tryParse(stdout.trim());
  if (whole) return whole;
  const lines = stdout.trim().split("\n").reverse();
  for (const l of lines) {
    const v = tryParse(l.trim());
    if (v) return v;
  }
  return null;
}

/** The argv (after the executable) of a `claude-print` run; options first, `--` before the prompt. */
export function claudeArgs(prompt: string, model: Model, maxBudgetUsd: number | null): string[] {
  return [
    "-p",
    "--model",
    model,
    "--output-format",
    "json",
    ...(maxBudgetUsd === null ? [] : ["--max-budget-usd", maxBudgetUsd.toFixed(2)]),
    "--",
    prompt,
  ];
}

const tail = (s: string, n = 2000) => (s.length > n ? "…" + s.slice(-n) : s);

/**
 * `claude-print`: spawns `claudePath` in its own process group (so a stop kills its children too: SIGTERM,
 * then SIGKILL after 5 s) and reads its JSON result.
 */
export function claudePrintExecutor(claudePath: string): Executor {
  return (ctx) =>
    new Promise<ExecResult>((resolve) => {
      const started = performance.now();
      const child = spawn(claudePath, claudeArgs(ctx.task.prompt, ctx.model, ctx.maxBudgetUsd), {
        cwd: ctx.cwd,
        env: ctx.env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = tail(stderr + d, 8000)));
      let killTimer: NodeJS.Timeout | undefined;
      const stop = () => {
        const kill = (sig: NodeJS.Signals) => {
          try {
            process.kill(-child.pid!, sig);
          } catch {
            /* already gone */
          }
        };
        kill("SIGTERM");
        killTimer = setTimeout(() => kill("SIGKILL"), 5000);
      };
      if (ctx.signal.aborted) stop();
      else ctx.signal.addEventListener("abort", stop, { once: true });
      const finish = (exitCode: number | null, spawnError?: Error) => {
        clearTimeout(killTimer);
        ctx.signal.removeEventListener("abort", stop);
        const durationSeconds = (performance.now() - started) / 1000;
        if (spawnError) {
          return resolve({ outcome: "failed", result: null, error: `cannot run ${claudePath}: ${spawnError.message}`, exitCode: null, durationSeconds, costUsd: null });
        }
        const json = parseClaudeJson(stdout);
        const costUsd = typeof json?.total_cost_usd === "number" ? json.total_cost_usd : null;
        if (ctx.signal.aborted) {
          return resolve({ outcome: "failed", result: json?.result ?? null, error: `stopped (${String(ctx.signal.reason)})`, exitCode, durationSeconds, costUsd });
        }
        if (!json) {
          return resolve({ outcome: "failed", result: null, error: `claude printed no JSON result (exit ${exitCode}); stderr: ${tail(stderr.trim(), 1000) || "(empty)"}`, exitCode, durationSeconds, costUsd: null });
        }
        const ok = exitCode === 0 && !json.is_error && json.subtype === "success";
        resolve({
          outcome: ok ? "completed" : "failed",
          result: json.result ?? null,
          error: ok ? null : `claude ${json.subtype}${json.is_error ? " (is_error)" : ""}, exit ${exitCode}${stderr.trim() ? `; stderr: ${tail(stderr.trim(), 1000)}` : ""}`,
          exitCode,
          durationSeconds,
          costUsd,
        });
      };
      child.on("error", (err) => finish(null, err));
      child.on("close", (code, sig) => finish(code ?? (sig ? 128 : null)));
    });
}

/** One message of AgentAPI's `GET /messages` (coder/agentapi openapi.json `Message`). */
interface AgentApiMessage {
  id: number;
  role: "agent" | "user";
  content: string;
  time: string;
}

/**
 * `agentapi`: drives the node's AgentAPI (coder/agentapi): waits for `GET /status` = `stable`, sends
 * `POST /message {content, type: "user"}`, polls `GET /status` until `stable` again, then returns the last
 * agent message of `GET /messages`. A stop sends an Escape keystroke (`type: "raw"`) to interrupt Claude.
 * AgentAPI reports no cost, and its long-lived session keeps its own model (the chosen one is recorded only).
 * @param baseUrl e.g. `http://127.0.0.1:3284`
 * @param pollSeconds status poll interval (default 0.5)
 */
export function agentApiExecutor(baseUrl: string, pollSeconds = 0.5): Executor {
  const base = baseUrl.replace(/\/+$/, "");
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`AgentAPI ${method} ${path}: HTTP ${res.status} ${tail(text, 300)}`);
    return JSON.parse(text) as T;
  };
  const status = async () => (await call<{ status: "stable" | "running" }>("GET", "/status")).status;
  const untilStable = async (signal: AbortSignal) => {
    while ((await status()) !== "stable") {
      if (signal.aborted) throw new Error(`stopped (${String(signal.reason)})`);
      await sleep(pollSeconds * 1000);
    }
  };
  return async (ctx) => {
    const started = performance.now();
    const fail = (error: string): ExecResult => ({ outcome: "failed", result: null, error, exitCode: null, durationSeconds: (performance.now() - started) / 1000, costUsd: null });
    const interrupt = () => void call("POST", "/message", { content: "\u001b", type: "raw" }).catch(() => undefined);
    ctx.signal.addEventListener("abort", interrupt, { once: true });
    try {
      await untilStable(ctx.signal);
      const before = (await call<{ messages: AgentApiMessage[] }>("GET", "/messages")).messages.length;
      const sent = await call<{ ok: boolean }>("POST", "/message", { content: ctx.task.prompt, type: "user" });
      if (!sent.ok) return fail("AgentAPI did not accept the message (ok: false)");
      await untilStable(ctx.signal);
      const messages = (await call<{ messages: AgentApiMessage[] }>("GET", "/messages")).messages;
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
