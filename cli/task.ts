/**
 * `fleet task …`: delegate work to a node and follow it (the reference's `delegate.sh` / `status.sh`, usable
 * from Claude Code). Reads the queue URL and token from `--queue`/FLEET_QUEUE_URL and
 * `--token-file`/FLEET_TOKEN. Human-readable output by default, `--json` for scripts. Exit codes: 0 ok,
 * 1 the task failed or was cancelled (or the queue is unreachable), 2 bad input.
 */
import { existsSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Fleet } from "../model/fleet.js";
import { UserError } from "../model/errors.js";
import { defaultIssuePrompt, FINAL_STATES, MAX_COST_USD, isBranchName, parseIssueRef, PRIORITIES, TASK_STATES, type GitHubIssue, type Priority, type SubmitInput, type Task, type TaskState, type TaskWithChildren } from "../runtime/api.js";
import { QueueClient, QueueError } from "../runtime/client.js";
import { MODELS } from "../runtime/model-choice.js";
import { queueAccess, secondsFlag, intFlag } from "./args.js";
import { parseVerb } from "./verb.js";
import { printable } from "./printable.js";

const USAGE = `usage: fleet task <command> [options]   (queue: --queue URL, FLEET_QUEUE_URL, or the queue node of --fleet FILE / ./fleet.yaml; token: --token-file FILE or FLEET_TOKEN)

  delegate <node|any> "<prompt>"  submit a task (prompt "-" reads stdin)
        [--priority high|medium|low] [--model auto|haiku|sonnet|opus] [--tag k=v]... [--cwd DIR | --repo URL]
        [--task-timeout S] [--max-attempts N] [--budget USD] [--wait [--timeout S]]
        (inside a task, with its task token: a child task, whose budget comes out of what is left of the task's)
  github <owner/repo>#<n> [node|any]  a worker turns the GitHub issue into a pull request from fleet/<node>/issue-<n>
        [--prompt TEXT|-] [--base BRANCH] [--draft] [--tag k=v]... [--priority P] [--model M]
        [--task-timeout S] [--max-attempts N] [--wait [--timeout S]]   (the queue needs --github-token-file or --github-app-id)
  list [--status STATE] [--node NODE] [--limit N]   tasks, newest first
  show <id>                       one task with its result, its parent and its children
  wait <id> [--timeout S]         wait until the task ends (exit 1 if it failed, was cancelled or is still running)
  cancel <id>                     cancel a pending task, or stop a running one
  priority <id> <high|medium|low> change a pending task's priority
  status                          machines online/offline, pending and running tasks, spend today, GitHub work left behind
  next [--node NODE]              the task NODE would be given next (default: this node token's node); takes nothing
  claim <id> [--session NAME]     take a pending task by hand and hold it: stays in the foreground renewing the
                                  lease until the task is finished (complete, from any shell) or Ctrl-C (gives it back)
  complete <id> [-n NOTES] [--failed]  finish a claimed task (NOTES "-" reads stdin; they become its result or error)
  note <id> "<text>"              add a note to a task (text "-" reads stdin)
  purge --older-than DURATION     delete completed, failed and cancelled tasks that finished longer ago than
                                  DURATION (90m, 12h, 30d; at least 1m; an operator's token); stats keep counting them

  --json    print JSON instead of text`;

/** The subcommands of `fleet task` besides `delegate`. */
const TASK_COMMANDS = ["list", "show", "wait", "cancel", "priority", "status", "next", "claim", "complete", "note", "purge"] as const;
type TaskCommand = (typeof TASK_COMMANDS)[number];

/**
 * Reads a fleet file for its queue URL. The fleet CLI passes roles/sources.ts `loadFleetWithRoles` (a fleet
 * with user roles needs them to validate); the runtime alone, which has no roles, reads with the model's.
 */
export type FleetLoader = (file: string) => Promise<Fleet> | Fleet;

/**
 * The fleet model, loaded only when a fleet file is read (`--fleet`, or ./fleet.yaml with no queue URL): most
 * calls, and every call of a node's `fleet` command (which sets FLEET_QUEUE_URL), never pay for loading it. A
 * node's runtime does not ship it (roles/runtime-dist.ts follows static imports only): there, reading a fleet
 * file is one clear line.
 * @throws UserError (exit 2) when the model is not installed here.
 */
async function fleetModel(): Promise<typeof import("../model/fleet.js") & typeof import("../model/load.js")> {
  try {
    return { ...(await import("../model/fleet.js")), ...(await import("../model/load.js")) };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw err;
    throw new UserError("fleet task: reading a fleet file needs a fleetkit checkout; here (a node), pass --queue http://HOST:PORT or set FLEET_QUEUE_URL (the node's fleet command sets it).");
  }
}

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
  const url = (await fleetModel()).fleetQueueUrl(await load(file));
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
export function formatTask(t: Task, tree: string[] = []): string {
  const tags = Object.entries(t.tags).map(([k, v]) => `${shown(k)}=${shown(v)}`).join(" ");
  const lines = [
    `Task #${t.id}  ${shown(t.state)}${t.cancelRequested && t.state === "running" ? " (cancel requested)" : ""}`,
    `  target     ${shown(t.target)}${tags ? ` (tags ${tags})` : ""}`,
    `  priority   ${shown(t.priority)}`,
    `  model      ${shown(t.model)}${t.chosenModel ? ` → ${shown(t.chosenModel)} (${shown(t.modelReason)})` : ""}`,
  ];
  if (t.node) lines.push(`  node       ${shown(t.node)} (worker ${shown(t.worker)}), attempt ${t.attempts} of ${t.maxAttempts}`);
  if (t.cwd || t.repo) lines.push(`  workdir    ${shown(t.cwd ?? t.repo)}`);
  if (t.github) lines.push(`  github     ${shown(`${t.github.owner}/${t.github.repo}#${t.github.issue}`)} (base ${shown(t.github.base ?? "the default branch")}${t.github.draft ? ", draft" : ""})`);
  lines.push(`  submitted  ${shown(t.createdAt)} by ${shown(t.submittedBy)}`);
  if (t.startedAt) lines.push(`  started    ${shown(t.startedAt)}`);
  if (t.finishedAt) {
    const extra = [t.durationSeconds !== null ? `${t.durationSeconds.toFixed(1)} s` : null, t.costUsd !== null ? `$${t.costUsd.toFixed(4)}` : null, t.exitCode !== null ? `exit ${t.exitCode}` : null].filter(Boolean);
    lines.push(`  finished   ${shown(t.finishedAt)}${extra.length ? ` (${extra.join(", ")})` : ""}`);
  }
  if (t.claimedBy) lines.push(`  claimed    by ${shown(t.claimedBy)}${t.worker && t.worker !== t.claimedBy ? ` (session ${shown(t.worker)})` : ""}`);
  if (t.budgetUsd !== null) lines.push(`  budget     $${t.budgetUsd.toFixed(2)}`);
  lines.push(...tree);
  lines.push(`  prompt     ${oneLine(t.prompt, 200)}`);
  for (const [i, n] of t.notes.entries()) lines.push(`  ${i === 0 ? "notes     " : "          "} ${shown(n.at)} ${shown(n.author)}: ${printable(n.text, true).replace(/\n/g, "\n             ")}`);
  if (t.error) lines.push(`  error      ${printable(t.error, true)}`);
  if (t.result) lines.push("", printable(t.result, true));
  return lines.join("\n");
}

/** A task in `show`'s tree: the task, or only its id when this token may not read it. */
export type TreeNode = Pick<Task, "id" | "state"> | { id: number; state: null };

/**
 * The `tree` lines of `show`: the parent (if any), the task, its children, each `#id state` (`?` for one this
 * token may not read), children beyond `maxChildren` counted. No lines for a task without parent or children.
 */
export function formatTree(t: Pick<Task, "id" | "state">, parent: TreeNode | null, children: TreeNode[], maxChildren = 50): string[] {
  if (!parent && children.length === 0) return [];
  const label = (n: TreeNode) => `#${n.id} ${n.state === null ? "?" : shown(n.state)}`;
  const lines = parent ? [`  tree       ${label(parent)} (parent)`, `             └ ${label(t)} (this task)`] : [`  tree       ${label(t)} (this task)`];
  const pad = parent ? "               " : "             ";
  const listed = children.slice(0, maxChildren);
  const more = children.length - listed.length;
  listed.forEach((c, i) => lines.push(`${pad}${i === listed.length - 1 && more === 0 ? "└" : "├"} ${label(c)}`));
  if (more > 0) lines.push(`${pad}└ … ${more} more`);
  return lines;
}

/** Fetches the parent and (up to 50) children of `t` for {@link formatTree}; one this token may not read shows as `?`. */
async function treeOf(c: QueueClient, t: TaskWithChildren): Promise<string[]> {
  const node = async (id: number): Promise<TreeNode> => {
    try {
      return await c.get(id);
    } catch (err) {
      if (err instanceof QueueError && (err.status === 403 || err.status === 404)) return { id, state: null };
      throw err;
    }
  };
  const [parent, children] = await Promise.all([t.parent === null ? null : node(t.parent), Promise.all(t.children.slice(0, 50).map(node))]);
  return formatTree(t, parent, [...children, ...t.children.slice(50).map((id) => ({ id, state: null }))]);
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

/** Options `delegate` and `github` share. */
const submitOptions = {
  ...common,
  priority: { type: "string" },
  model: { type: "string" },
  tag: { type: "string", multiple: true },
  "task-timeout": { type: "string" },
  "max-attempts": { type: "string" },
  budget: { type: "string" },
  wait: { type: "boolean" },
  timeout: { type: "string" },
} as const;

/** The submit fields of {@link submitOptions} (priority, model, tags, timeout, attempts); UserError for a bad one. */
function submitFields(f: { priority?: string; model?: string; tag?: string[]; "task-timeout"?: string; "max-attempts"?: string; budget?: string; wait?: boolean; timeout?: string }): Omit<SubmitInput, "target" | "prompt"> {
  if (f.priority && !PRIORITIES.includes(f.priority as Priority)) throw new UserError(`--priority must be one of ${PRIORITIES.join(", ")}, got "${f.priority}".`);
  if (f.model && !["auto", ...MODELS].includes(f.model)) throw new UserError(`--model must be one of auto, ${MODELS.join(", ")}, got "${f.model}".`);
  const tags: Record<string, string> = {};
  for (const kv of f.tag ?? []) {
    const m = /^([^=]+)=(.*)$/.exec(kv);
    if (!m) throw new UserError(`--tag must be key=value (e.g. --tag os=macos or --tag gpu=true), got "${kv}".`);
    tags[m[1]!] = m[2]!;
  }
  if (f.timeout && !f.wait) throw new UserError("--timeout only applies with --wait (the task's own limit is --task-timeout).");
  return {
    ...(f.priority ? { priority: f.priority as Priority } : {}),
    ...(f.model ? { model: f.model as SubmitInput["model"] } : {}),
    tags,
    ...(f["task-timeout"] ? { timeoutSeconds: secondsFlag(f["task-timeout"], "task-timeout") } : {}),
    ...(f["max-attempts"] ? { maxAttempts: intFlag(f["max-attempts"], "max-attempts", 1, 100) } : {}),
    ...(f.budget !== undefined ? { budgetUsd: usdFlag(f.budget, "budget") } : {}),
  };
}

/** Parses a USD amount from flag `name`: above 0, at most {@link MAX_COST_USD}, at most two decimals (e.g. 0.50). */
function usdFlag(value: string, name: string): number {
  const n = Number(value);
  if (!/^\d{1,5}(\.\d{1,2})?$/.test(value) || n <= 0 || n > MAX_COST_USD) throw new UserError(`--${name} must be US dollars above 0 and at most ${MAX_COST_USD}, with at most two decimals (e.g. 0.50), got "${printable(value)}".`);
  return n;
}

/** Submits `input`, prints the queued line (or with `--wait` the final task); the exit code. */
async function submitAndReport(f: { queue?: string; fleet?: string; "token-file"?: string; json?: boolean; wait?: boolean; timeout?: string }, input: SubmitInput, load: FleetLoader): Promise<number> {
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

/**
 * `fleet task github <owner/repo>#<n> [node|any]`: submits a `github-issue` task (runtime/github.ts says what
 * the worker does). The reference, target, `--base` and `--prompt` are checked here, one line each (exit 2),
 * before anything is sent; the queue checks the rest (a queue without a GitHub token refuses it).
 */
async function github(argv: string[], load: FleetLoader): Promise<number> {
  const parsed = parseVerb(argv, {
    verb: "task github",
    usage: USAGE,
    options: { ...submitOptions, prompt: { type: "string" }, base: { type: "string" }, draft: { type: "boolean" } },
  });
  if (!parsed) return 0;
  const f = parsed.values;
  const positionals = [...parsed.positionals, ...parsed.rest];
  if (positionals.length < 1 || positionals.length > 2) throw new UserError(`fleet task github: expected <owner>/<repo>#<n> [node|any], got ${positionals.length} argument(s).\n\n${USAGE}`);
  const ref = parseIssueRef(positionals[0]!);
  if (typeof ref === "string") throw new UserError(`fleet task github: ${printable(ref)}.`);
  const target = positionals[1] ?? "any";
  if (target !== "any" && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(target)) throw new UserError(`fleet task github: expected a node name or "any" after the issue, got "${printable(target)}".`);
  if (f.base !== undefined && !isBranchName(f.base)) throw new UserError(`--base must be a branch name (letters, digits, . _ / -; no "..", no leading - or .), got "${printable(f.base)}".`);
  const extra = f.prompt === undefined ? undefined : f.prompt === "-" ? readFileSync(0, "utf8") : f.prompt;
  if (extra !== undefined && !extra.trim()) throw new UserError("--prompt is empty; write the extra instructions (or leave the flag out).");
  const github: GitHubIssue = { ...ref, base: f.base ?? null, draft: f.draft === true };
  return submitAndReport(f, { target, prompt: extra ?? defaultIssuePrompt(ref), ...submitFields(f), github }, load);
}

async function delegate(argv: string[], load: FleetLoader): Promise<number> {
  const parsed = parseVerb(argv, {
    verb: "task delegate",
    usage: USAGE,
    options: { ...submitOptions, cwd: { type: "string" }, repo: { type: "string" } },
  });
  if (!parsed) return 0;
  const f = parsed.values;
  // Words after `--` are arguments too (a prompt that starts with "-").
  const positionals = [...parsed.positionals, ...parsed.rest];
  if (positionals.length !== 2) throw new UserError(`fleet task delegate: expected <node|any> "<prompt>", got ${positionals.length} argument(s).\n\n${USAGE}`);
  const [target, rawPrompt] = positionals as [string, string];
  const prompt = rawPrompt === "-" ? readFileSync(0, "utf8") : rawPrompt;
  const input: SubmitInput = { target, prompt, ...submitFields(f), ...(f.cwd ? { cwd: f.cwd } : {}), ...(f.repo ? { repo: f.repo } : {}) };
  return submitAndReport(f, input, load);
}

/** Units of {@link durationSeconds}, in seconds. */
const UNITS = new Map([["s", 1], ["m", 60], ["h", 3600], ["d", 86_400]]);

/**
 * Parses a duration flag: a whole number and a unit, `90s`, `90m`, `12h`, `30d`, from 1 minute to 100 years;
 * returns seconds. Throws UserError (exit 2) naming the flag otherwise.
 */
export function durationSeconds(raw: string | undefined, flag: string): number {
  const m = raw === undefined ? null : /^([0-9]{1,7})([smhd])$/.exec(raw);
  const s = m ? Number(m[1]) * UNITS.get(m[2]!)! : NaN;
  if (!(s >= 60 && s <= 100 * 365 * 86_400)) {
    throw new UserError(`--${flag} must be a duration from 1m to 36500d: a whole number and s, m, h or d (e.g. 30d, 12h, 90m), got ${raw === undefined ? "nothing" : `"${printable(raw)}"`}.`);
  }
  return s;
}

/** Text of a `-n`/note argument: "-" reads stdin; empty text is bad input. */
function textArg(raw: string, what: string): string {
  const text = raw === "-" ? readFileSync(0, "utf8") : raw;
  if (!text.trim()) throw new UserError(`${what} is empty; write something (or leave it out).`);
  return text;
}

/**
 * `fleet task claim`: takes the task, prints it, then renews its lease every third of the lease until the
 * task is final (finished from any shell: exit 0 completed, 1 otherwise), the lease is lost (exit 1), a
 * cancel is requested (given up as cancelled, exit 1), or SIGINT/SIGTERM (given back to pending, exit 0).
 * With `json`, one JSON line when claimed (`{ task, leaseId, leaseSeconds }`) and one with the task at the end.
 */
async function claimAndHold(c: QueueClient, url: string | undefined, taskId: number, session: string | undefined, json: boolean): Promise<number> {
  const a = await call(url, () => c.take(taskId, session));
  const label = a.task.worker && a.task.worker !== a.task.claimedBy ? `${shown(a.task.worker)} (${shown(a.task.claimedBy)})` : shown(a.task.claimedBy);
  if (json) print(JSON.stringify(a));
  else {
    print(`Task #${taskId} claimed by ${label}; lease ${a.leaseSeconds} s, renewed while this command runs.`);
    print(formatTask(a.task));
    print(`\nWork on it, then from any shell: fleet task complete ${taskId} [-n NOTES] [--failed]   (fleet task note ${taskId} "…" meanwhile; Ctrl-C here gives the task back)`);
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const end = (t: Task, text: string, code: number) => {
    print(json ? JSON.stringify(t) : text);
    return code;
  };
  try {
    let lastRenewed = Date.now();
    let leaseMs = a.leaseSeconds * 1000;
    for (;;) {
      try {
        await sleep(Math.max(100, leaseMs / 3), undefined, { signal: stop.signal });
      } catch {
        const t = await call(url, () => c.giveBack(taskId, a.leaseId));
        return end(t, `Task #${taskId} given back: ${shown(t.state)} again.`, 0);
      }
      try {
        const r = await c.renew(taskId, a.leaseId);
        lastRenewed = Date.now();
        leaseMs = r.leaseSeconds * 1000;
        if (r.task.cancelRequested) {
          const t = await call(url, () => c.finish(taskId, "failed", "cancel requested while claimed"));
          return end(t, `Task #${taskId} ${shown(t.state)}: a cancel was requested, so the claim ends.`, 1);
        }
      } catch (err) {
        if (err instanceof QueueError && err.status === 409) {
          const t = await call(url, () => c.get(taskId));
          if (FINAL_STATES.includes(t.state)) return end(t, `Task #${taskId} ${shown(t.state)}.`, exitFor(t));
          return end(t, `Task #${taskId}: lease lost (the queue did not hear from this command for ${a.leaseSeconds} s); it is ${shown(t.state)} again.`, 1);
        }
        if (err instanceof QueueError) await call(url, () => Promise.reject(err));
        // Unreachable for now: keep trying while the lease may still be ours.
        if (Date.now() - lastRenewed > leaseMs) throw new UserError(`Task #${taskId}: the queue at ${url ?? process.env.FLEET_QUEUE_URL} could not be reached for the whole lease (${a.leaseSeconds} s); the claim is lost.`, 1);
        process.stderr.write(`fleet task claim: cannot reach the queue (${(err as Error & { code?: string }).code ?? (err as Error).message}); retrying\n`);
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function status(c: QueueClient, url: string | undefined, json: boolean): Promise<number> {
  const [nodes, pending, running, stats, { orphans }] = await Promise.all([
    call(url, () => c.nodes()),
    call(url, () => c.list({ state: "pending", limit: 50 })),
    call(url, () => c.list({ state: "running", limit: 50 })),
    call(url, () => c.stats()),
    // A queue from before GET /v1/github/orphans answers 404: it lists nothing then, the rest still shows.
    call(url, () => c.githubOrphans().catch((err: unknown) => (err instanceof QueueError && err.status === 404 ? { orphans: [], pullsListedAt: null } : Promise.reject(err)))),
  ]);
  const issues = orphans.filter((o) => o.kind === "issue");
  const pulls = orphans.filter((o) => o.kind === "pull-request");
  if (json) {
    print(JSON.stringify({ nodes, pending, running, stats, githubOrphans: orphans }, null, 2));
    return 0;
  }
  const out = ["=== Machine Status ===", ""];
  for (const n of nodes) {
    const budget = n.budgetUsdPerSession !== null ? `, $${n.spentTodayUsd.toFixed(2)} of $${n.budgetUsdPerSession.toFixed(2)} today` : n.spentTodayUsd ? `, $${n.spentTodayUsd.toFixed(2)} today` : "";
    const doing = n.status ? ` (${shown(n.status)}${n.message ? `: ${shown(n.message)}` : ""})` : "";
    const tags = Object.entries(n.tags ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
    const facts = [n.profile ? `profile ${n.profile}` : "", n.roles?.length ? `roles ${n.roles.join(", ")}` : "", tags ? `tags ${tags}` : "", n.roles?.includes("worker") ? "takes delegated tasks" : ""].filter(Boolean);
    out.push(`${shown(n.node)} (${shown(n.os)}/${shown(n.arch)}):`, ...(facts.length ? [`  ${shown(facts.join("; "))}`] : []), n.online ? `  ✓ Online${doing}, last seen ${ago(n.lastSeen)}${budget}` : `  ✗ Offline, last seen ${ago(n.lastSeen)}${budget}`, "");
  }
  const line = (t: Task) => `  #${t.id} [${shown(t.node ?? t.target)}] ${shown(t.priority)}  ${oneLine(t.prompt, 60)}`;
  out.push(`=== Pending Tasks (${stats.byState.pending}) ===`, ...(pending.length ? pending.map(line) : ["  No pending tasks"]), "");
  out.push(`=== In Progress Tasks (${stats.byState.running}) ===`, ...(running.length ? running.map(line) : ["  No tasks in progress"]), "");
  if (issues.length) {
    out.push(
      `=== GitHub issues left labelled (${issues.length}) ===`,
      ...issues.map((o) => `  ${shown(o.issue)} ${shown(o.label)}: task #${o.task} ${o.why === "failed" ? `failed: ${oneLine(o.error ?? "", 80)}` : "lost its worker and waits for another attempt"}`),
      "",
    );
  }
  if (pulls.length) {
    out.push(
      `=== Fleet pull requests without their task (${pulls.length}) ===`,
      ...pulls.map((o) => `  ${shown(o.issue)} ${shown(o.label)}: ${o.task === null ? "its body names no task" : `task #${o.task} is gone (purged)`}`),
      "",
    );
  }
  const purged = stats.purged ? ` (${stats.purged} of them purged)` : "";
  out.push(`Completed ${stats.byState.completed}, failed ${stats.byState.failed}, cancelled ${stats.byState.cancelled}${purged}; spent today $${stats.spentTodayUsd.toFixed(2)}`);
  print(out.join("\n"));
  return 0;
}

/** Entry point of `fleet task`. */
/**
 * `fleet task …`; exit code 0 ok, 1 failure, 2 bad input.
 * @param options.loadFleet how a `--fleet` file is read for the queue URL (default: model/load.ts `loadFleet`,
 *   imported when first needed).
 */
export async function run(argv: string[], options: { loadFleet?: FleetLoader } = {}): Promise<number> {
  const load = options.loadFleet ?? (async (file: string) => (await fleetModel()).loadFleet(file));
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    print(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === "delegate") return delegate(rest, load);
  if (cmd === "github") return github(rest, load);
  if (!(TASK_COMMANDS as readonly string[]).includes(cmd)) throw new UserError(`fleet task: unknown command "${printable(cmd)}".\n\n${USAGE}`);
  const command = cmd as TaskCommand;
  const extras: Partial<Record<TaskCommand, Record<string, { type: "string" | "boolean"; short?: string }>>> = {
    list: { status: { type: "string" }, node: { type: "string" }, limit: { type: "string" } },
    wait: { timeout: { type: "string" } },
    next: { node: { type: "string" } },
    claim: { session: { type: "string" } },
    complete: { notes: { type: "string", short: "n" }, failed: { type: "boolean" } },
    purge: { "older-than": { type: "string" } },
  };
  const extra = extras[command] ?? {};
  // `--help` wins over every other check (no queue URL, missing arguments): it answers before anything runs.
  const parsed = parseVerb(rest, { verb: `task ${cmd}`, usage: USAGE, options: { ...common, ...extra } as typeof common & Record<string, { type: "string" }> });
  if (!parsed) return 0;
  const f = parsed.values;
  const positionals = [...parsed.positionals, ...parsed.rest];
  const fx = f as typeof f & Record<string, string | undefined>;
  const fb = f as typeof f & Record<string, boolean | undefined>;
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
      print(f.json ? JSON.stringify(t, null, 2) : formatTask(t, await call(f.queue, () => treeOf(c, t))));
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
    case "next": {
      want(0);
      const c = await client(f, load);
      const n = await call(f.queue, () => c.next(fx.node));
      if (f.json) print(JSON.stringify(n, null, 2));
      else {
        const budget = n.overBudget ? `\n(node ${shown(n.node)} is at its budget cap for today: its worker takes nothing until the UTC day turns)` : "";
        print(n.task ? `Next for node ${shown(n.node)}:\n${formatTask(n.task)}${budget}` : `No task is ready for node ${shown(n.node)}.${budget}`);
      }
      return 0;
    }
    case "claim": {
      want(1);
      const taskId = id(positionals[0]);
      return claimAndHold(await client(f, load), f.queue, taskId, fx.session, !!f.json);
    }
    case "complete": {
      want(1);
      const taskId = id(positionals[0]);
      const notes = fx.notes === undefined ? null : textArg(fx.notes, "--notes");
      const c = await client(f, load);
      const t = await call(f.queue, () => c.finish(taskId, fb.failed ? "failed" : "completed", notes));
      print(f.json ? JSON.stringify(t, null, 2) : `Task #${t.id} ${shown(t.state)}.`);
      return 0;
    }
    case "purge": {
      want(0);
      const olderThan = durationSeconds(fx["older-than"], "older-than");
      const c = await client(f, load);
      const r = await call(f.queue, () => c.purge(olderThan));
      print(f.json ? JSON.stringify(r, null, 2) : `Purged ${r.purged} task${r.purged === 1 ? "" : "s"} finished before ${r.finishedBefore} (${r.purgedTotal} purged in all; stats still count them).`);
      return 0;
    }
    case "note": {
      want(2);
      const taskId = id(positionals[0]);
      const text = textArg(positionals[1]!, "the note");
      const c = await client(f, load);
      const t = await call(f.queue, () => c.note(taskId, text));
      print(f.json ? JSON.stringify(t, null, 2) : `Note added to task #${t.id} (${t.notes.length} note${t.notes.length === 1 ? "" : "s"}).`);
      return 0;
    }
    default: {
      // Every command is a case above: the compiler proves it.
      const unhandled: never = command;
      throw new Error(`fleet task: no case for ${String(unhandled)}`);
    }
  }
}
