/**
 * `fleet task …`: delegate work to a node and follow it (the reference's `delegate.sh` / `status.sh`, usable
 * from Claude Code). Reads the queue URL and token from `--queue`/FLEET_QUEUE_URL and
 * `--token-file`/FLEET_TOKEN. Human-readable output by default, `--json` for scripts. Exit codes: 0 ok,
 * 1 the task failed or was cancelled (or the queue is unreachable), 2 bad input.
 */
import { existsSync, readFileSync } from "node:fs";
import { fleetQueueUrl, type Fleet } from "../model/fleet.js";
import { loadFleet } from "../model/load.js";
import { UserError } from "../model/errors.js";
import { FINAL_STATES, PRIORITIES, TASK_STATES, type Priority, type SubmitInput, type Task, type TaskState } from "../runtime/api.js";
import { QueueClient, QueueError } from "../runtime/client.js";
import { MODELS } from "../runtime/model-choice.js";
import { queueAccess, secondsFlag, intFlag } from "./args.js";
import { parseVerb } from "./verb.js";
import { printable } from "./printable.js";

const USAGE = `usage: fleet task <command> [options]   (queue: --queue URL, FLEET_QUEUE_URL, or the queue node of --fleet FILE / ./fleet.yaml; token: --token-file FILE or FLEET_TOKEN)

  delegate <node|any> "<prompt>"  submit a task (prompt "-" reads stdin)
        [--priority high|medium|low] [--model auto|haiku|sonnet|opus] [--tag k=v]... [--cwd DIR | --repo URL]
        [--task-timeout S] [--max-attempts N] [--wait [--timeout S]]
  list [--status STATE] [--node NODE] [--limit N]   tasks, newest first
  show <id>                       one task with its result
  wait <id> [--timeout S]         wait until the task ends (exit 1 if it failed, was cancelled or is still running)
  cancel <id>                     cancel a pending task, or stop a running one
  priority <id> <high|medium|low> change a pending task's priority
  status                          machines online/offline, pending and running tasks, spend today

  --json    print JSON instead of text`;

/** The subcommands of `fleet task` besides `delegate`. */
const TASK_COMMANDS = ["list", "show", "wait", "cancel", "priority", "status"] as const;
type TaskCommand = (typeof TASK_COMMANDS)[number];

/**
 * Reads a fleet file for its queue URL. The fleet CLI passes roles/sources.ts `loadFleetWithRoles` (a fleet
 * with user roles needs them to validate); the runtime alone, which has no roles, reads with the model's.
 */
export type FleetLoader = (file: string) => Promise<Fleet> | Fleet;

const common = { queue: { type: "string" }, fleet: { type: "string" }, "token-file": { type: "string" }, json: { type: "boolean" } } as const;

/**
 * Fills in `f.queue` when neither `--queue` nor FLEET_QUEUE_URL gives one: the queue node of the fleet file
 * (`--fleet FILE`, else ./fleet.yaml when it exists), as `fleet status` finds it. Left unset otherwise
 * (queueAccess then says what to pass).
 * @throws UserError for a bad fleet file (its located problems), or one where no node runs role queue.
 */
async function queueFromFleet(f: { queue?: string; fleet?: string }, load: FleetLoader): Promise<void> {
  if (f.queue ?? process.env.FLEET_QUEUE_URL) return;
  const file = f.fleet ?? "fleet.yaml";
  if (f.fleet === undefined && !existsSync(file)) return;
  const url = fleetQueueUrl(await load(file));
  if (!url) throw new UserError(`${file}: no node runs role queue, so there is no queue to ask; pass --queue http://HOST:PORT or set FLEET_QUEUE_URL.`);
  f.queue = url;
}

/** The queue client for `f`, its URL filled in from the fleet file when no other source gives one ({@link queueFromFleet}). */
async function client(f: { queue?: string; fleet?: string; "token-file"?: string }, load: FleetLoader): Promise<QueueClient> {
  await queueFromFleet(f, load);
  const { url, token } = queueAccess(f);
  return new QueueClient(url, token);
}

/** Turns queue answers into CLI errors: refusals are bad input (2), an unreachable queue is a failure (1). */
async function call<T>(url: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof QueueError) throw new UserError(`queue refused (HTTP ${err.status}): ${printable(err.message)}`, err.status >= 500 ? 1 : 2);
    const e = err as Error & { code?: string; cause?: { code?: string } };
    throw new UserError(`cannot reach the queue at ${url ?? process.env.FLEET_QUEUE_URL}: ${e.code ?? e.cause?.code ?? e.message}. Is \`fleet queue serve\` running there?`, 1);
  }
}

function id(raw: string | undefined): number {
  if (!raw || !/^#?[1-9]\d*$/.test(raw)) throw new UserError(`expected a task id (a positive integer like 12), got ${raw === undefined ? "nothing" : `"${raw}"`}.\n\n${USAGE}`);
  return Number(raw.replace(/^#/, ""));
}

function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "never";
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** One line of at most `n` characters, whitespace runs as one space, control characters escaped. */
const oneLine = (s: string, n: number) => {
  const t = printable(s.replace(/[ \t\n\f\v\u00a0\u2028\u2029]+/g, " ").trim());
  return t.length > n ? t.slice(0, n - 1) + "…" : t;
};
/** A one-line field as printed (control characters escaped). */
const shown = (s: string | null) => printable(s ?? "");

/**
 * Renders one task for humans (used by show, wait and delegate --wait). Every text from the queue is printed
 * through {@link printable}: the result and error keep their newlines and tabs, nothing else reaches the
 * terminal raw.
 */
export function formatTask(t: Task): string {
  const tags = Object.entries(t.tags).map(([k, v]) => `${shown(k)}=${shown(v)}`).join(" ");
  const lines = [
    `Task #${t.id}  ${shown(t.state)}${t.cancelRequested && t.state === "running" ? " (cancel requested)" : ""}`,
    `  target     ${shown(t.target)}${tags ? ` (tags ${tags})` : ""}`,
    `  priority   ${shown(t.priority)}`,
    `  model      ${shown(t.model)}${t.chosenModel ? ` → ${shown(t.chosenModel)} (${shown(t.modelReason)})` : ""}`,
  ];
  if (t.node) lines.push(`  node       ${shown(t.node)} (worker ${shown(t.worker)}), attempt ${t.attempts} of ${t.maxAttempts}`);
  if (t.cwd || t.repo) lines.push(`  workdir    ${shown(t.cwd ?? t.repo)}`);
  lines.push(`  submitted  ${shown(t.createdAt)} by ${shown(t.submittedBy)}`);
  if (t.startedAt) lines.push(`  started    ${shown(t.startedAt)}`);
  if (t.finishedAt) {
    const extra = [t.durationSeconds !== null ? `${t.durationSeconds.toFixed(1)} s` : null, t.costUsd !== null ? `$${t.costUsd.toFixed(4)}` : null, t.exitCode !== null ? `exit ${t.exitCode}` : null].filter(Boolean);
    lines.push(`  finished   ${shown(t.finishedAt)}${extra.length ? ` (${extra.join(", ")})` : ""}`);
  }
  lines.push(`  prompt     ${oneLine(t.prompt, 200)}`);
  if (t.error) lines.push(`  error      ${printable(t.error, true)}`);
  if (t.result) lines.push("", printable(t.result, true));
  return lines.join("\n");
}

/** Renders a task list as a table. */
export function formatList(tasks: Task[], now = Date.now()): string {
  if (tasks.length === 0) return "No tasks.";
  const rows = tasks.map((t) => [`#${t.id}`, shown(t.state), shown(t.priority), shown(t.target), shown(t.node ?? "-"), shown(t.chosenModel ?? t.model), ago(t.createdAt, now), oneLine(t.prompt, 50)]);
  const head = ["ID", "STATE", "PRIORITY", "TARGET", "NODE", "MODEL", "SUBMITTED", "PROMPT"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

const exitFor = (t: Task) => (t.state === "completed" ? 0 : 1);
const print = (s: string) => process.stdout.write(s.endsWith("\n") ? s : s + "\n");

/** Waits until the task is final or `timeoutSeconds` pass (long-polls in ≤ 60 s pieces). */
async function waitTask(c: QueueClient, url: string | undefined, taskId: number, timeoutSeconds: number): Promise<Task> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const left = Math.max(0, (deadline - Date.now()) / 1000);
    const t = await call(url, () => c.wait(taskId, Math.min(60, left)));
    if (FINAL_STATES.includes(t.state) || Date.now() >= deadline) return t;
  }
}

async function delegate(argv: string[], load: FleetLoader): Promise<number> {
  const parsed = parseVerb(argv, {
    verb: "task delegate",
    usage: USAGE,
    options: {
      ...common,
      priority: { type: "string" },
      model: { type: "string" },
      tag: { type: "string", multiple: true },
      cwd: { type: "string" },
      repo: { type: "string" },
      "task-timeout": { type: "string" },
      "max-attempts": { type: "string" },
      wait: { type: "boolean" },
      timeout: { type: "string" },
    },
  });
  if (!parsed) return 0;
  const f = parsed.values;
  // Words after `--` are arguments too (a prompt that starts with "-").
  const positionals = [...parsed.positionals, ...parsed.rest];
  if (positionals.length !== 2) throw new UserError(`fleet task delegate: expected <node|any> "<prompt>", got ${positionals.length} argument(s).\n\n${USAGE}`);
  const [target, rawPrompt] = positionals as [string, string];
  const prompt = rawPrompt === "-" ? readFileSync(0, "utf8") : rawPrompt;
  if (f.priority && !PRIORITIES.includes(f.priority as Priority)) throw new UserError(`--priority must be one of ${PRIORITIES.join(", ")}, got "${f.priority}".`);
  if (f.model && !["auto", ...MODELS].includes(f.model)) throw new UserError(`--model must be one of auto, ${MODELS.join(", ")}, got "${f.model}".`);
  const tags: Record<string, string> = {};
  for (const kv of f.tag ?? []) {
    const m = /^([^=]+)=(.*)$/.exec(kv);
    if (!m) throw new UserError(`--tag must be key=value (e.g. --tag os=macos or --tag gpu=true), got "${kv}".`);
    tags[m[1]!] = m[2]!;
  }
  if (f.timeout && !f.wait) throw new UserError("--timeout only applies with --wait (the task's own limit is --task-timeout).");
  const input: SubmitInput = {
    target,
    prompt,
    ...(f.priority ? { priority: f.priority as Priority } : {}),
    ...(f.model ? { model: f.model as SubmitInput["model"] } : {}),
    tags,
    ...(f.cwd ? { cwd: f.cwd } : {}),
    ...(f.repo ? { repo: f.repo } : {}),
    ...(f["task-timeout"] ? { timeoutSeconds: secondsFlag(f["task-timeout"], "task-timeout") } : {}),
    ...(f["max-attempts"] ? { maxAttempts: intFlag(f["max-attempts"], "max-attempts", 1, 100) } : {}),
  };
  const c = await client(f, load);
  let t = await call(f.queue, () => c.submit(input));
  if (!f.wait) {
    print(f.json ? JSON.stringify(t, null, 2) : `Task #${t.id} queued for ${shown(t.target)} (priority ${shown(t.priority)}, model ${shown(t.model)}).`);
    return 0;
  }
  if (!f.json) process.stderr.write(`Task #${t.id} queued for ${t.target}; waiting…\n`);
  t = await waitTask(c, f.queue, t.id, secondsFlag(f.timeout, "timeout") ?? 3600);
  print(f.json ? JSON.stringify(t, null, 2) : formatTask(t));
  return exitFor(t);
}

async function status(c: QueueClient, url: string | undefined, json: boolean): Promise<number> {
  const [nodes, pending, running, stats] = await Promise.all([
    call(url, () => c.nodes()),
    call(url, () => c.list({ state: "pending", limit: 50 })),
    call(url, () => c.list({ state: "running", limit: 50 })),
    call(url, () => c.stats()),
  ]);
  if (json) {
    print(JSON.stringify({ nodes, pending, running, stats }, null, 2));
    return 0;
  }
  const out = ["=== Machine Status ===", ""];
  for (const n of nodes) {
    const budget = n.budgetUsdPerSession !== null ? `, $${n.spentTodayUsd.toFixed(2)} of $${n.budgetUsdPerSession.toFixed(2)} today` : n.spentTodayUsd ? `, $${n.spentTodayUsd.toFixed(2)} today` : "";
    const doing = n.status ? ` (${shown(n.status)}${n.message ? `: ${shown(n.message)}` : ""})` : "";
    out.push(`${shown(n.node)} (${shown(n.os)}/${shown(n.arch)}):`, n.online ? `  ✓ Online${doing}, last seen ${ago(n.lastSeen)}${budget}` : `  ✗ Offline, last seen ${ago(n.lastSeen)}${budget}`, "");
  }
  const line = (t: Task) => `  #${t.id} [${shown(t.node ?? t.target)}] ${shown(t.priority)}  ${oneLine(t.prompt, 60)}`;
  out.push(`=== Pending Tasks (${stats.byState.pending}) ===`, ...(pending.length ? pending.map(line) : ["  No pending tasks"]), "");
  out.push(`=== In Progress Tasks (${stats.byState.running}) ===`, ...(running.length ? running.map(line) : ["  No tasks in progress"]), "");
  out.push(`Completed ${stats.byState.completed}, failed ${stats.byState.failed}, cancelled ${stats.byState.cancelled}; spent today $${stats.spentTodayUsd.toFixed(2)}`);
  print(out.join("\n"));
  return 0;
}

/** Entry point of `fleet task`. */
/**
 * `fleet task …`; exit code 0 ok, 1 failure, 2 bad input.
 * @param options.loadFleet how a `--fleet` file is read for the queue URL (default: model/load.ts `loadFleet`).
 */
export async function run(argv: string[], options: { loadFleet?: FleetLoader } = {}): Promise<number> {
  const load = options.loadFleet ?? loadFleet;
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    print(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === "delegate") return delegate(rest, load);
  if (!(TASK_COMMANDS as readonly string[]).includes(cmd)) throw new UserError(`fleet task: unknown command "${printable(cmd)}".\n\n${USAGE}`);
  const command = cmd as TaskCommand;
  const extra = cmd === "list" ? { status: { type: "string" }, node: { type: "string" }, limit: { type: "string" } } : cmd === "wait" ? { timeout: { type: "string" } } : {};
  // `--help` wins over every other check (no queue URL, missing arguments): it answers before anything runs.
  const parsed = parseVerb(rest, { verb: `task ${cmd}`, usage: USAGE, options: { ...common, ...extra } as typeof common & Record<string, { type: "string" }> });
  if (!parsed) return 0;
  const f = parsed.values;
  const positionals = [...parsed.positionals, ...parsed.rest];
  const fx = f as typeof f & Record<string, string | undefined>;
  const want = (n: number) => {
    if (positionals.length !== n) throw new UserError(`fleet task ${cmd}: expected ${n} argument(s), got ${positionals.length}.\n\n${USAGE}`);
  };
  switch (command) {
    case "list": {
      want(0);
      if (fx.status && !TASK_STATES.includes(fx.status as TaskState)) throw new UserError(`--status must be one of ${TASK_STATES.join(", ")}, got "${fx.status}".`);
      const c = await client(f, load);
      const tasks = await call(f.queue, () => c.list({ state: fx.status as TaskState | undefined, node: fx.node, limit: intFlag(fx.limit, "limit", 1, 10_000) }));
      print(f.json ? JSON.stringify(tasks, null, 2) : formatList(tasks));
      return 0;
    }
    case "show": {
      want(1);
      const taskId = id(positionals[0]);
      const c = await client(f, load);
      const t = await call(f.queue, () => c.get(taskId));
      print(f.json ? JSON.stringify(t, null, 2) : formatTask(t));
      return 0;
    }
    case "wait": {
      want(1);
      const taskId = id(positionals[0]);
      const c = await client(f, load);
      const t = await waitTask(c, f.queue, taskId, secondsFlag(fx.timeout, "timeout") ?? 3600);
      print(f.json ? JSON.stringify(t, null, 2) : formatTask(t));
      return exitFor(t);
    }
    case "cancel": {
      want(1);
      const taskId = id(positionals[0]);
      const c = await client(f, load);
      const t = await call(f.queue, () => c.cancel(taskId));
      print(f.json ? JSON.stringify(t, null, 2) : t.state === "cancelled" ? `Task #${t.id} cancelled.` : `Task #${t.id} is running on ${shown(t.node)}; its worker stops it at the next heartbeat.`);
      return 0;
    }
    case "priority": {
      want(2);
      const taskId = id(positionals[0]);
      const p = positionals[1]!;
      if (!PRIORITIES.includes(p as Priority)) throw new UserError(`priority must be one of ${PRIORITIES.join(", ")}, got "${p}".`);
      const c = await client(f, load);
      const t = await call(f.queue, () => c.setPriority(taskId, p as Priority));
      print(f.json ? JSON.stringify(t, null, 2) : `Task #${t.id} priority is now ${shown(t.priority)}.`);
      return 0;
    }
    case "status": {
      want(0);
      return status(await client(f, load), f.queue, !!f.json);
    }
    default: {
      // Every command is a case above: the compiler proves it.
      const unhandled: never = command;
      throw new Error(`fleet task: no case for ${String(unhandled)}`);
    }
  }
}
