/**
 * The zod schemas of the queue's request bodies (runtime/api.ts has the limits, states and answers they use):
 * strict objects, so an unknown field is a 400 naming it. Loaded by the server only.
 */
import { z } from "zod";
import {
  BRANCH,
  GITHUB_OWNER,
  GITHUB_REPO,
  isNormalAbsolutePath,
  isRepoUrl,
  MAX_COST_USD,
  MAX_CWD_BYTES,
  MAX_DURATION_SECONDS,
  MAX_ERROR_BYTES,
  MAX_ISSUE_NUMBER,
  MAX_NOTE_BYTES,
  MAX_PROMPT_BYTES,
  MAX_REPO_CHARS,
  MAX_RESULT_BYTES,
  MAX_TAGS,
  MAX_TIMEOUT_SECONDS,
  MIN_TIMEOUT_SECONDS,
  PRIORITIES,
  quoted,
  RESERVED_KEYS,
} from "./api.js";
import { MODELS } from "./model-choice.js";

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const utf8Bytes = (max: number, unit: string) => (s: string, ctx: z.core.$RefinementCtx<string>) => {
  const bytes = Buffer.byteLength(s, "utf8");
  if (bytes > max) ctx.addIssue({ code: "custom", message: `${bytes} bytes; the limit is ${max} bytes (${unit})` });
};
/** Text of several lines (prompt, result, error): at most `max` bytes of UTF-8. */
const manyLines = (max: number, unit: string) => z.string().superRefine(utf8Bytes(max, unit));
/** One line of printable text (no control characters), at most `max` characters. */
const oneLine = (max: number) =>
  z.string().max(max, `at most ${max} characters`).refine((s) => !CONTROL.test(s), "one line of printable text (no control characters)");

const name = z.string().max(63, "a node name has at most 63 characters").regex(/^[a-z0-9][a-z0-9-]*$/, "expected a node name (lowercase letters, digits, -) or \"any\"");
const tagName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, "tag names are 1-64 letters, digits, _ . -")
  .refine((k) => !RESERVED_KEYS.includes(k), { error: (i) => `tag name ${quoted(i.input)} is reserved; use another name` });
const seconds = (min: number, max: number) =>
  z.number().min(min, `expected a number of seconds from ${min} to ${max}`).max(max, `expected a number of seconds from ${min} to ${max}`);

/** A GitHub issue a `github-issue` task works on, and how its pull request is opened. */
export const GitHubIssueSchema = z
  .object({
    /** Repository owner (user or organization login). */
    owner: z.string().regex(GITHUB_OWNER, "expected a GitHub owner: 1-39 letters, digits or single hyphens, not at either end"),
    /** Repository name. */
    repo: z.string().regex(GITHUB_REPO, "expected a GitHub repository name: 1-100 letters, digits, . _ -"),
    /** Issue number (1 to 2^31-1). */
    issue: z.number().int("an issue number is a whole number").min(1, "issue numbers start at 1").max(MAX_ISSUE_NUMBER, `at most ${MAX_ISSUE_NUMBER}`),
    /** Branch the work starts from and the pull request targets; null: the repository's default branch. */
    base: z.string().regex(BRANCH, "expected a branch name (letters, digits, . _ / -; no \"..\", no leading - or .)").nullable().default(null),
    /** Open the pull request as a draft. */
    draft: z.boolean().default(false),
  })
  .strict();
/** A validated GitHub issue reference of a task. */
export type GitHubIssue = z.infer<typeof GitHubIssueSchema>;

/** `POST /v1/tasks` body. */
export const SubmitBodySchema = z
  .object({
    /** Node name, or `any` for any node whose facts match `tags`. */
    target: name,
    /** What Claude should do; at most {@link MAX_PROMPT_BYTES} bytes. */
    prompt: z.string().min(1, "the prompt is empty").superRefine(utf8Bytes(MAX_PROMPT_BYTES, "64 KiB")),
    priority: z.enum(PRIORITIES).default("medium"),
    model: z.enum(["auto", ...MODELS]).default("auto"),
    /** Required node facts: `os`, `arch` and any custom tag (all must match); at most {@link MAX_TAGS}. */
    tags: z
      .record(tagName, oneLine(256))
      .refine((t) => Object.keys(t).length <= MAX_TAGS, `at most ${MAX_TAGS} tags`)
      .default({}),
    /** Absolute, normalized working directory on the node (see {@link isNormalAbsolutePath}). */
    cwd: z
      .string()
      .startsWith("/", "cwd must be an absolute path")
      .superRefine(utf8Bytes(MAX_CWD_BYTES, "PATH_MAX"))
      .refine((s) => !CONTROL.test(s), "a path without control characters")
      .refine(isNormalAbsolutePath, { error: (i) => `expected a normalized absolute path (no "." or ".." segments, no "//", no trailing /), got ${quoted(i.input)}` })
      .optional(),
    /** Git repository URL cloned (once, then pulled) into the worker's home; the task runs in it (see {@link isRepoUrl}). */
    repo: z
      .string()
      .refine(isRepoUrl, {
        error: (i) =>
          `expected a git URL: https://host/path, ssh://[user@]host[:port]/path, user@host:path or file:///path (at most ${MAX_REPO_CHARS} characters; no spaces, no "." or ".." segments), got ${quoted(i.input)}`,
      })
      .optional(),
    /**
     * Kind `github-issue`: the issue the worker turns into a pull request (the prompt then adds to the issue's own
     * text). Excludes `cwd` and `repo`: the worker checks the repository out itself.
     */
    github: GitHubIssueSchema.optional(),
    /** Kill the run after this many seconds (default 3600; 1 s to 7 days). */
    timeoutSeconds: seconds(MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS).default(3600),
    /** Give up after this many claims whose lease expired (default 3). */
    maxAttempts: z.number().int().min(1).max(100).default(3),
    /**
     * The task's budget cap in USD (its run gets the smaller of this and its node's budget left today). From
     * a task's own token (a child task) at most what is left of the parent's budget; absent: all of it.
     */
    budgetUsd: z.number().gt(0, `expected USD above 0, at most ${MAX_COST_USD}`).max(MAX_COST_USD, `expected USD above 0, at most ${MAX_COST_USD}`).optional(),
  })
  .strict()
  .refine((b) => !(b.cwd && b.repo), { message: "give either cwd or repo, not both", path: ["repo"] })
  .refine((b) => !(b.github && (b.cwd || b.repo)), { message: "a GitHub issue task checks its repository out itself; leave out cwd and repo", path: ["github"] });
/** A validated submit body (defaults applied). */
export type SubmitBody = z.infer<typeof SubmitBodySchema>;
/** What a client sends to submit (defaults optional). */
export type SubmitInput = z.input<typeof SubmitBodySchema>;

/** A lease id as the claim returned it (a UUID; checked against the task's lease, so only its shape here). */
const leaseId = oneLine(64).min(1);

/** `POST /v1/claim` body. */
export const ClaimBodySchema = z
  .object({
    /** The claiming node; must be the token's node (else 403). */
    node: name,
    /** Worker identity for the lease (`<node>/<host>:<pid>/<slot>`): one printable line, 1-200 characters. */
    worker: oneLine(200).min(1),
    /** Hold the request open up to this many seconds for a matching task (capped by the server). */
    waitSeconds: seconds(0, 600).default(0),
  })
  .strict();

/**
 * `POST /v1/tasks/:id/heartbeat` body. `spentUsd`: what the run has spent so far by the worker's estimate
 * (runtime/spend.ts), kept by the queue so a child task's budget leaves it out of the parent's.
 */
export const HeartbeatBodySchema = z
  .object({ leaseId, spentUsd: z.number().min(0, `expected USD from 0 to ${MAX_COST_USD}`).max(MAX_COST_USD, `expected USD from 0 to ${MAX_COST_USD}`).optional() })
  .strict();

/** `POST /v1/tasks/:id/complete` body: the worker's report of one run. Texts longer than their limit are refused (clients cut them with {@link clipUtf8}). */
export const CompleteBodySchema = z
  .object({
    leaseId,
    outcome: z.enum(["completed", "failed", "cancelled"]),
    /** The run's answer, at most {@link MAX_RESULT_BYTES}. */
    result: manyLines(MAX_RESULT_BYTES, "128 KiB").nullable().default(null),
    /** Why the run failed, at most {@link MAX_ERROR_BYTES}. */
    error: manyLines(MAX_ERROR_BYTES, "16 KiB").nullable().default(null),
    /** Process exit code (negative for a signal on some platforms; Windows codes are unsigned 32-bit). */
    exitCode: z.number().int().min(-(2 ** 31)).max(2 ** 32 - 1).nullable().default(null),
    /** Wall time of the run in seconds (at most {@link MAX_DURATION_SECONDS}). */
    durationSeconds: seconds(0, MAX_DURATION_SECONDS).nullable().default(null),
    /** USD the run cost, at most {@link MAX_COST_USD} (counted against the node's daily budget). */
    costUsd: z.number().min(0, `expected USD from 0 to ${MAX_COST_USD}`).max(MAX_COST_USD, `expected USD from 0 to ${MAX_COST_USD}`).nullable().default(null),
    /** The model the worker ran and why (see model-choice.ts). */
    chosenModel: z.enum(MODELS).nullable().default(null),
    modelReason: oneLine(200).nullable().default(null),
    /** Also claim the node's next task (no waiting) for the same worker: the answer is `{ task, next: ClaimAnswer | null }`. */
    claimNext: z.boolean().default(false),
  })
  .strict();
/** A validated complete body. */
export type CompleteBody = z.infer<typeof CompleteBodySchema>;
/** What a worker sends to complete (defaults optional). */
export type CompleteInput = z.input<typeof CompleteBodySchema>;

/** `POST /v1/tasks/:id/release` body (graceful shutdown: back to pending, no attempt counted). */
export const ReleaseBodySchema = z.object({ leaseId }).strict();

/**
 * `POST /v1/tasks/:id/claim` body: an interactive session (a person, or Claude in a node's shell) takes one
 * pending task by id. `session` names the session in the task's worker field and the claim notification
 * (e.g. `MacBook-Claude`); one printable line, 1-100 characters; default the token's name.
 */
export const TakeBodySchema = z.object({ session: oneLine(100).min(1).optional() }).strict();

/** `POST /v1/tasks/:id/claim/renew` and `…/claim/release` body: the lease the claim returned. */
export const LeaseBodySchema = z.object({ leaseId }).strict();

/**
 * `POST /v1/tasks/:id/finish` body: the claimant (or an operator) ends an interactive claim. `notes`, at most
 * {@link MAX_NOTE_BYTES}, become the result (completed) or the error (failed), and a note of its author.
 */
export const FinishBodySchema = z
  .object({
    outcome: z.enum(["completed", "failed"]),
    notes: manyLines(MAX_NOTE_BYTES, "16 KiB").min(1, "the notes are empty; leave the field out instead").nullable().default(null),
  })
  .strict();
/** A validated finish body. */
export type FinishBody = z.infer<typeof FinishBodySchema>;

/** `POST /v1/tasks/:id/notes` body: one note, 1 byte to {@link MAX_NOTE_BYTES} of text (several lines allowed). */
export const NoteBodySchema = z.object({ text: manyLines(MAX_NOTE_BYTES, "16 KiB").min(1, "the note is empty") }).strict();

/** `POST /v1/purge` body: delete the completed, failed and cancelled tasks that finished more than `olderThanSeconds` ago (at least 60). */
export const PurgeBodySchema = z
  .object({
    olderThanSeconds: z
      .number()
      .min(60, "at least 60 seconds")
      .max(100 * 365 * 86400, "at most 100 years")
      .refine(Number.isInteger, "a whole number of seconds"),
  })
  .strict();

/** `POST /v1/tasks/:id/priority` body. */
export const PriorityBodySchema = z.object({ priority: z.enum(PRIORITIES) }).strict();

/** `POST /v1/nodes/me/presence` body: what a worker is doing, shown by `fleet task status`. */
export const PresenceBodySchema = z
  .object({ status: z.enum(["idle", "busy", "over-budget", "stopping"]), message: oneLine(500).nullable().default(null) })
  .strict();

/** A line of a health report: at most 1,000 characters (problems are short phrases). */
const problem = z.string().max(1000);

/**
 * One node's health in a `POST /v1/health` report: the fields of `fleet status --json`'s node rows
 * (cli/status.ts `NodeStatus`) the dashboard shows; the rows' other fields are accepted and dropped.
 */
export const NodeHealthSchema = z.object({
  node: z.string().min(1).max(63),
  reach: z.enum(["ok", "offline", "timeout"]),
  healthy: z.boolean(),
  problems: z.array(problem).max(500),
  roles: z.array(z.object({ role: z.string().min(1).max(63), ok: z.boolean().nullable(), problems: z.array(problem).max(100) })).max(100),
});
/** One node's health as the last report gave it. */
export type NodeHealth = z.infer<typeof NodeHealthSchema>;

/**
 * `POST /v1/health` body: a `fleet status --json` document (`fleet status --report` sends it), judged by the
 * same probe code as on the terminal. The queue keeps each node's latest row, so a report on some nodes
 * updates those and leaves the others as they were.
 */
export const HealthReportSchema = z.object({ fleet: z.string().min(1).max(200), nodes: z.array(NodeHealthSchema).max(5000) });
