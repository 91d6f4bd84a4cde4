/**
 * The queue's HTTP API shapes, shared by the server (validation) and its clients (worker daemon, CLI): limits,
 * states, answers and the text checks. Times are ISO-8601 strings (UTC, millisecond precision); durations are
 * seconds; money is USD. The request bodies' zod schemas are in runtime/schemas.ts, which only the server
 * loads: a client (`fleet task`, started on every delegation) needs none of zod.
 */
import type { MODELS } from "./model-choice.js";
import type { GitHubIssue, NodeHealth } from "./schemas.js";

export type { CompleteBody, CompleteInput, FinishBody, GitHubIssue, NodeHealth, SubmitBody, SubmitInput } from "./schemas.js";

/** Task priorities, highest first; FIFO (by id) within a level. */
export const PRIORITIES = ["high", "medium", "low"] as const;
/** A task priority. */
export type Priority = (typeof PRIORITIES)[number];
/** Task states: pending → running → completed | failed | cancelled. */
export const TASK_STATES = ["pending", "running", "completed", "failed", "cancelled"] as const;
/** A task state. */
export type TaskState = (typeof TASK_STATES)[number];
/** States a task never leaves. */
export const FINAL_STATES: readonly TaskState[] = ["completed", "failed", "cancelled"];
/** Largest prompt accepted, in bytes of UTF-8 (64 KiB). */
export const MAX_PROMPT_BYTES = 64 * 1024;
/** Largest result text a worker may report, in bytes of UTF-8 (128 KiB); {@link clipUtf8} cuts longer ones. */
export const MAX_RESULT_BYTES = 128 * 1024;
/** Largest error text a worker may report, in bytes of UTF-8 (16 KiB). */
export const MAX_ERROR_BYTES = 16 * 1024;
/** Largest cost one run may report, in USD: fleet.yaml's own cap on `budgetUsdPerSession` (model/schema.ts `usd`). */
export const MAX_COST_USD = 10_000;
/** Shortest task timeout, in seconds. */
export const MIN_TIMEOUT_SECONDS = 1;
/** Longest task timeout, in seconds (7 days). */
export const MAX_TIMEOUT_SECONDS = 7 * 86400;
/** Longest run duration a worker may report, in seconds (30 days: beyond any timeout plus clone and queue time). */
export const MAX_DURATION_SECONDS = 30 * 86400;
/** Longest `repo` URL, in characters. */
export const MAX_REPO_CHARS = 2048;
/** Longest `cwd`, in bytes of UTF-8 (Linux PATH_MAX). */
export const MAX_CWD_BYTES = 4096;
/** Most tags a task may require. */
export const MAX_TAGS = 32;
/** Deepest nesting of objects and arrays in a request body (the deepest real one is 2: `tags.<name>`). */
export const MAX_BODY_DEPTH = 8;
/** Largest note (and `complete -n` notes) on a task, in bytes of UTF-8 (16 KiB). */
export const MAX_NOTE_BYTES = 16 * 1024;
/** Most notes one task holds (a note past it is a 409). */
export const MAX_NOTES = 100;
/** Object keys no request may use: assigning them on a plain object changes its prototype or shadows it. */
export const RESERVED_KEYS: readonly string[] = ["__proto__", "constructor", "prototype"];

/** A value quoted for an error message: JSON (control characters escaped), cut to 80 characters. */
export function quoted(value: unknown): string {
  const s = typeof value === "string" ? value : String(value);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 79)}…` : s);
}

/**
 * Checks every string (and every object key) in a request body or query for text no field may hold: a NUL
 * byte (it ends a C string: argv, paths, SQLite's C API) or a lone UTF-16 surrogate (not Unicode: it cannot
 * be encoded as UTF-8). Also refuses {@link RESERVED_KEYS} as keys and nesting deeper than
 * {@link MAX_BODY_DEPTH}. Iterative, so any depth JSON.parse accepts is safe to walk.
 * @param what `field` for a body, `query` for query parameters (the word that starts the message)
 * @returns a one-line message naming the field, or null when the value is clean.
 */
export function textProblem(value: unknown, what: "field" | "query" = "field"): string | null {
  const stack: Array<{ v: unknown; path: string[] }> = [{ v: value, path: [] }];
  while (stack.length) {
    const { v, path } = stack.pop()!;
    const where = path.length ? `${what} "${path.join(".")}"` : what === "query" ? "query string" : "request body";
    if (typeof v === "string") {
      const bad = badChar(v);
      if (bad) return `${where}: ${bad}`;
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (path.length >= MAX_BODY_DEPTH) return `${where}: nests deeper than ${MAX_BODY_DEPTH} levels; no request needs that`;
    for (const [k, child] of Object.entries(v)) {
      const bad = badChar(k);
      if (bad) return `${where}: a key ${bad}`;
      if (RESERVED_KEYS.includes(k)) return `${where}: "${k}" is a reserved name (it would reach the object's prototype); use another name`;
      stack.push({ v: child, path: [...path, Array.isArray(v) ? `${k}` : k] });
    }
  }
  return null;
}

/** A UTF-16 surrogate without its other half (String.prototype.isWellFormed, ES2024, as a regex). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with a string as text (a NUL byte, a lone surrogate), or null. */
function badChar(s: string): string | null {
  if (s.includes("\0")) return "contains a NUL byte (U+0000), which no text may hold";
  const lone = LONE_SURROGATE.exec(s);
  if (lone) return `contains a lone UTF-16 surrogate (U+${lone[0].charCodeAt(0).toString(16).toUpperCase()}); send well-formed Unicode`;
  return null;
}

/**
 * Cuts `text` to at most `maxBytes` bytes of UTF-8 on a character boundary, ending it with a note of how
 * much was cut; NUL bytes and lone surrogates become U+FFFD. A worker reports any run's text through this,
 * so a run's odd output is recorded instead of refused.
 */
export function clipUtf8(text: string, maxBytes: number): string {
  const clean = text.replace(new RegExp(`\0|${LONE_SURROGATE.source}`, "g"), "\uFFFD");
  const buf = Buffer.from(clean, "utf8");
  if (buf.length <= maxBytes) return clean;
  const note = (cut: number) => `\n… (${cut} more bytes cut: the limit is ${maxBytes} bytes)`;
  // The note for the whole length is the longest it can be, so head + note always fits.
  let end = Math.max(0, maxBytes - Buffer.byteLength(note(buf.length), "utf8"));
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--; // back to the first byte of the character cut in two
  return buf.subarray(0, end).toString("utf8") + note(buf.length - end);
}

/** A git repository URL grammar: the forms `git clone` takes that a worker may be asked to clone. */
const HOST = String.raw`(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])`;
const SEG = String.raw`[A-Za-z0-9_~+=@%,][A-Za-z0-9._~+=@%,-]*|\.[A-Za-z0-9_~+=@%,-][A-Za-z0-9._~+=@%,-]*`;
const PATH = `(?:${SEG})(?:/(?:${SEG}))*`;
const USER = "[A-Za-z0-9_][A-Za-z0-9._-]*";
const REPO_FORMS = [
  new RegExp(`^https://(?:${USER}@)?${HOST}(?::\\d{1,5})?/${PATH}$`),
  new RegExp(`^ssh://(?:${USER}@)?${HOST}(?::\\d{1,5})?/${PATH}$`),
  new RegExp(`^${USER}@${HOST}:/?${PATH}$`),
  new RegExp(`^file:///${PATH}$`),
];
/**
 * True for a repository URL a worker may clone: `https://host[:port]/path`, `ssh://[user@]host[:port]/path`,
 * `user@host:path` (scp form) or `file:///abs/path` (tests, local mirrors). Path segments are letters, digits
 * and `._~+=@%,-`, never `.` or `..`, never starting with `-` (git would read an option); hosts are DNS names,
 * IPv4 or `[IPv6]`.
 */
export function isRepoUrl(s: string): boolean {
  return s.length <= MAX_REPO_CHARS && REPO_FORMS.some((r) => r.test(s));
}

/** True for an absolute, normalized POSIX path: `/`, or `/a/b` without `.` or `..` segments, `//` or a trailing `/`. */
export function isNormalAbsolutePath(s: string): boolean {
  return s === "/" || (s.startsWith("/") && !s.endsWith("/") && s.split("/").slice(1).every((seg) => seg !== "" && seg !== "." && seg !== ".."));
}

/**
 * GitHub's grammar for an account (user or organization) login: 1-39 letters, digits and single hyphens, not
 * starting or ending with one (GitHub's sign-up rule; docs.github.com "Creating an account").
 */
export const GITHUB_OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
/** A repository name as GitHub keeps it: 1-100 of `[A-Za-z0-9._-]`, never `.` or `..` (GitHub renames others). */
export const GITHUB_REPO = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}$/;
/** A git branch name fleetkit accepts for `--base`: git-check-ref-format's rules, kept to a plain subset. */
export const BRANCH = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!.*\.lock(?:\/|$))(?!.*\/\.)(?!\.)[A-Za-z0-9._\/-]{1,200}(?<![./])$/;
/** Largest issue number accepted: GitHub's REST description types `issue_number` as an integer; ids fit 32 bits. */
export const MAX_ISSUE_NUMBER = 2 ** 31 - 1;

/**
 * Parses `owner/repo#n` (the form GitHub itself links issues by) into owner, repo and issue number, or returns
 * a one-line message saying what is wrong. The number is plain decimal without sign or leading zero.
 */
export function parseIssueRef(ref: string): { owner: string; repo: string; issue: number } | string {
  const m = /^([^/#\s]+)\/([^/#\s]+)#([1-9][0-9]{0,9})$/.exec(ref);
  if (!m) return `expected <owner>/<repo>#<issue number>, e.g. acme/widgets#12, got ${quoted(ref)}`;
  const [, owner, repo, n] = m as unknown as [string, string, string, string];
  if (!GITHUB_OWNER.test(owner)) return `${quoted(owner)} is not a GitHub owner: 1-39 letters, digits or single hyphens, not at either end`;
  if (!GITHUB_REPO.test(repo)) return `${quoted(repo)} is not a GitHub repository name: 1-100 letters, digits, . _ -`;
  if (Number(n) > MAX_ISSUE_NUMBER) return `issue number ${n} is too large (at most ${MAX_ISSUE_NUMBER})`;
  return { owner, repo, issue: Number(n) };
}

/**
 * Parses `owner/repo` into owner and repository name, or returns a one-line message saying what is wrong (the
 * grammars of {@link GitHubIssueSchema}).
 */
export function parseRepoRef(ref: string): { owner: string; repo: string } | string {
  const m = /^([^/#\s]+)\/([^/#\s]+)$/.exec(ref);
  if (!m) return `expected <owner>/<repo>, e.g. acme/widgets, got ${quoted(ref)}`;
  if (!GITHUB_OWNER.test(m[1]!)) return `${quoted(m[1]!)} is not a GitHub owner: 1-39 letters, digits or single hyphens, not at either end`;
  if (!GITHUB_REPO.test(m[2]!)) return `${quoted(m[2]!)} is not a GitHub repository name: 1-100 letters, digits, . _ -`;
  return { owner: m[1]!, repo: m[2]! };
}

/** The prompt `fleet task github` submits when none is given: the worker then adds nothing to the issue's own text. */
export function defaultIssuePrompt(g: Pick<GitHubIssue, "owner" | "repo" | "issue">): string {
  return `Resolve GitHub issue ${g.owner}/${g.repo}#${g.issue}.`;
}

/**
 * How the error of a `github-issue` task starts when it failed before the worker labelled the issue (an
 * unknown repository or issue, a closed issue, no token): nothing was written on GitHub, so the issue is not
 * orphaned (`fleet task status`).
 */
export const UNCLAIMED_PREFIX = "nothing written on GitHub: ";

/** True for a branch name `--base` accepts (the rule runtime/schemas.ts `GitHubIssueSchema` checks `base` by). */
export const isBranchName = (s: string): boolean => BRANCH.test(s);

/**
 * `POST /v1/tasks/:id/github-token` answer: what a worker holding a `github-issue` task's lease uses for it —
 * the queue's GitHub token (the fine-grained token of `--github-token-file`, or a GitHub App installation token
 * minted for this call, restricted to the task's repository: runtime/github-app.ts) and API base URL. Kept in
 * the worker's memory for that run only.
 */
export interface GitHubCredentials {
  token: string;
  /** REST base URL, e.g. `https://api.github.com`. */
  apiUrl: string;
  /** When an installation token stops working (ISO 8601, GitHub's `expires_at`); null for a token file's token. */
  expiresAt: string | null;
}

/** A task as the API returns it. */
export interface Task {
  id: number;
  target: string;
  tags: Record<string, string>;
  prompt: string;
  priority: Priority;
  model: "auto" | (typeof MODELS)[number];
  chosenModel: (typeof MODELS)[number] | null;
  modelReason: string | null;
  cwd: string | null;
  repo: string | null;
  /** Kind `github-issue`: the issue worked on; null for a plain task. */
  github: GitHubIssue | null;
  timeoutSeconds: number;
  maxAttempts: number;
  state: TaskState;
  /** Claims so far (a lease that expired counts). */
  attempts: number;
  submittedBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Node and worker holding (or last holding) the task. */
  node: string | null;
  worker: string | null;
  leaseExpiresAt: string | null;
  cancelRequested: boolean;
  result: string | null;
  error: string | null;
  exitCode: number | null;
  durationSeconds: number | null;
  costUsd: number | null;
  /** The token name (person or node) whose interactive session holds (or last held) the task; null when a worker runs it. */
  claimedBy: string | null;
  /** Notes, oldest first (at most {@link MAX_NOTES}). */
  notes: TaskNote[];
  /** The task whose run submitted this one with its task token (delegation from inside a task), or null. */
  parent: number | null;
  /**
   * The task's budget cap in USD: given at submit (`budgetUsd`, or a child's share of its parent's), narrowed at
   * each lease to its node's budget left today; null = no cap.
   */
  budgetUsd: number | null;
}

/** `GET /v1/tasks/:id` and `/wait` answer: a task with the ids of its children (tasks it submitted), oldest first. */
export type TaskWithChildren = Task & { children: number[] };

/** One note on a task: who wrote it (a token's name), when (ISO time) and what. */
export interface TaskNote {
  author: string;
  at: string;
  text: string;
}

/**
 * `GET /v1/next?node=` answer: the pending task `node`'s next claim would lease (highest priority, then oldest),
 * or null when none is ready for it. `overBudget`: the node is at its daily cap, so its worker takes nothing
 * until the UTC day turns (the task is still the one it would take then).
 */
export interface NextAnswer {
  node: string;
  task: Task | null;
  overBudget: boolean;
}

/** `POST /v1/tasks/:id/claim` answer: the task (running, leased to the session) and its lease; renew within `leaseSeconds`. */
export interface TakeAnswer {
  task: Task;
  leaseId: string;
  leaseSeconds: number;
}

/** `POST /v1/claim` answer when a task was leased. */
export interface ClaimAnswer {
  task: Task | null;
  leaseId: string | null;
  /** Lease length in seconds; heartbeat well within it. */
  leaseSeconds: number;
  /**
   * The run's `--max-budget-usd`: the node's budget left today (its `budgetUsdPerSession` minus today's spend),
   * or the task's own `budgetUsd` when smaller; null = no cap.
   */
  maxBudgetUsd: number | null;
  /** Why no task was given when `task` is null: nothing matched in time, or the node is over its daily cap. */
  reason: "empty" | "over-budget" | null;
  /**
   * The task's own token for this lease (null without a task): it may submit child tasks and read and wait for
   * the task and its children, and stops working when the lease ends. The worker hands it to the run in a
   * 0600 file (FLEET_TOKEN_FILE); the queue keeps only its SHA-256.
   */
  taskToken: string | null;
}

/** `GET /v1/nodes/me` answer: what a worker needs to know about its node. */
export interface NodeInfo {
  node: string;
  os: string;
  arch: string;
  tags: Record<string, string>;
  budgetUsdPerSession: number | null;
  spentTodayUsd: number;
  ntfy: { url: string; topic: string; token: string | null } | null;
  /** Base URL for links to tasks (ntfy click). */
  publicUrl: string;
}

/** One node in `GET /v1/nodes`. */
export interface NodePresence {
  node: string;
  os: string;
  arch: string;
  online: boolean;
  lastSeen: string | null;
  status: string | null;
  message: string | null;
  budgetUsdPerSession: number | null;
  spentTodayUsd: number;
  /** fleet.yaml profile, or null. */
  profile: string | null;
  /** fleet.yaml tags (free labels tasks can require). */
  tags: Record<string, string>;
  /** The node's roles as fleet.yaml gives them (profile ∪ node roles). */
  roles: string[];
}

/**
 * `GET /v1/stats` answer. Counts are of every task the queue has had, the purged ones included (kept as
 * tasks change, not counted at each call); `purged` is how many tasks retention and purges removed.
 */
export interface Stats {
  byState: Record<TaskState, number>;
  purged: number;
  byNode: Record<string, Partial<Record<TaskState, number>>>;
  spentTodayUsd: number;
  spentTodayByNode: Record<string, number>;
}

/** One node's latest health row (`GET /v1/health`), with when (ISO time) and by whom it was reported. */
export interface ReportedHealth extends NodeHealth {
  at: string;
  by: string;
}

/**
 * Orphaned GitHub work: an issue a worker labelled `fleet:<node>` that no worker is on now, or a pull request
 * labelled `fleet:pull-request` whose task the queue no longer has.
 */
export interface GitHubOrphan {
  /** `issue` (claim label left on an issue) or `pull-request` (a fleet pull request without its task). */
  kind: "issue" | "pull-request";
  /** `owner/repo#n`: the issue, or the pull request (GitHub numbers both alike). */
  issue: string;
  /** The label on it: the claim label `fleet:<node>`, or `fleet:pull-request`. */
  label: string;
  /** The newest task of the issue, or the task the pull request's body names; null when the body names none. */
  task: number | null;
  /**
   * `failed` (the label stays by design until someone looks), `lease-lost` (waiting for another attempt), or
   * `task-gone` (a pull request whose task was purged, or whose body names no task the queue knows).
   */
  why: "failed" | "lease-lost" | "task-gone";
  /** The failed task's error, first line; null otherwise. */
  error: string | null;
}

/** An open pull request labelled `fleet:pull-request`, as the queue's GitHub poller last listed it. */
export interface FleetPull {
  owner: string;
  repo: string;
  number: number;
  /** The task its body names (`Opened by fleetkit: task <id> on node …`, runtime/github.ts), or null. */
  task: number | null;
}

/**
 * The task id a fleet pull request's body names: the number after `Opened by fleetkit: task ` (the line
 * runtime/github.ts writes), or null when the body has no such line (edited away, or not fleetkit's).
 */
export function pullTaskId(body: string | null | undefined): number | null {
  const m = /^Opened by fleetkit: task ([1-9][0-9]{0,15}) on node /m.exec(body ?? "");
  return m ? Number(m[1]) : null;
}

/** `GET /v1/github/orphans` answer. */
export interface GitHubOrphansAnswer {
  orphans: GitHubOrphan[];
  /**
   * When the poller last listed the fleet pull requests (ISO time), or null: never (no GitHub token, or no
   * scan finished yet), so the list holds issues only.
   */
  pullsListedAt: string | null;
}

/**
 * Orphaned GitHub work, from the queue's own records and the poller's last list of fleet pull requests (no
 * GitHub call here). Issues first: for each issue, its newest `github-issue` task among `tasks`; the issue is
 * orphaned when that task failed after a worker claimed it (the worker leaves the `fleet:<node>` label and a
 * comment; a failure before the label starts with {@link UNCLAIMED_PREFIX}), or went back to pending after
 * its lease expired (the worker died holding it; the label stays until the next attempt). Newest task first.
 * Then each pull request in `pulls` whose task `taskExists` does not know (purged, or never this queue's),
 * or whose body names none, in the order given.
 * @param tasks `github-issue` tasks newest first (store.ts `githubOrphanCandidates`: the newest task of each issue, when it may be an orphan; other tasks are skipped)
 * @param pulls open pull requests labelled `fleet:pull-request` (runtime/github-poller.ts)
 * @param taskExists whether the queue still has a task
 */
export function githubOrphans(tasks: Task[], pulls: FleetPull[] = [], taskExists: (id: number) => boolean = () => true): GitHubOrphan[] {
  const seen = new Set<string>();
  const out: GitHubOrphan[] = [];
  for (const t of tasks) {
    if (!t.github) continue;
    const issue = `${t.github.owner}/${t.github.repo}#${t.github.issue}`;
    if (seen.has(issue.toLowerCase())) continue;
    seen.add(issue.toLowerCase());
    const base = { kind: "issue" as const, issue, label: `fleet:${t.node}`, task: t.id };
    if (t.state === "failed" && t.node && !(t.error ?? "").startsWith(UNCLAIMED_PREFIX)) out.push({ ...base, why: "failed", error: (t.error ?? "").split("\n")[0]! });
    else if (t.state === "pending" && t.node && t.attempts > 0) out.push({ ...base, why: "lease-lost", error: null });
  }
  for (const p of pulls) {
    if (p.task !== null && taskExists(p.task)) continue;
    out.push({ kind: "pull-request", issue: `${p.owner}/${p.repo}#${p.number}`, label: "fleet:pull-request", task: p.task, why: "task-gone", error: null });
  }
  return out;
}
