/**
 * The queue's HTTP API shapes, shared by the server (validation) and its clients (worker daemon, CLI).
 * Request bodies are strict zod objects: an unknown field is a 400 naming it. Times are ISO-8601 strings
 * (UTC, millisecond precision); durations are seconds; money is USD.
 */
import { z } from "zod";
import { MODELS } from "./model-choice.js";

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

const name = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "expected a node name (lowercase letters, digits, -) or \"any\"");

/** `POST /v1/tasks` body. */
export const SubmitBodySchema = z
  .object({
    /** Node name, or `any` for any node whose facts match `tags`. */
    target: name,
    /** What Claude should do; at most {@link MAX_PROMPT_BYTES} bytes. */
    prompt: z.string().min(1, "the prompt is empty"),
    priority: z.enum(PRIORITIES).default("medium"),
    model: z.enum(["auto", ...MODELS]).default("auto"),
    /** Required node facts: `os`, `arch` and any custom tag (all must match). */
    tags: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, "tag names are letters, digits, _ . -"), z.string()).default({}),
    /** Absolute working directory on the node. */
    cwd: z.string().startsWith("/", "cwd must be an absolute path").optional(),
    /** Git repository URL cloned (once, then pulled) into the worker's home; the task runs in it. */
    repo: z.string().min(1).optional(),
    /** Kill the run after this many seconds (default 3600). */
    timeoutSeconds: z.number().positive().max(7 * 86400).default(3600),
    /** Give up after this many claims whose lease expired (default 3). */
    maxAttempts: z.number().int().min(1).max(100).default(3),
  })
  .strict()
  .refine((b) => !(b.cwd && b.repo), { message: "give either cwd or repo, not both", path: ["repo"] });
/** A validated submit body (defaults applied). */
export type SubmitBody = z.infer<typeof SubmitBodySchema>;
/** What a client sends to submit (defaults optional). */
export type SubmitInput = z.input<typeof SubmitBodySchema>;

/** `POST /v1/claim` body. */
export const ClaimBodySchema = z
  .object({
    /** The claiming node; must be the token's node (else 403). */
    node: name,
    /** Worker identity for the lease (`<node>/<pid>/<slot>`). */
    worker: z.string().min(1).max(200),
    /** Hold the request open up to this many seconds for a matching task (capped by the server). */
    waitSeconds: z.number().min(0).max(600).default(0),
  })
  .strict();

/** `POST /v1/tasks/:id/heartbeat` body. */
export const HeartbeatBodySchema = z.object({ leaseId: z.string().min(1) }).strict();

/** `POST /v1/tasks/:id/complete` body: the worker's report of one run. */
export const CompleteBodySchema = z
  .object({
    leaseId: z.string().min(1),
    outcome: z.enum(["completed", "failed", "cancelled"]),
    result: z.string().nullable().default(null),
    error: z.string().nullable().default(null),
    exitCode: z.number().int().nullable().default(null),
    durationSeconds: z.number().min(0).nullable().default(null),
    costUsd: z.number().min(0).nullable().default(null),
    /** The model the worker ran and why (see model-choice.ts). */
    chosenModel: z.enum(MODELS).nullable().default(null),
    modelReason: z.string().nullable().default(null),
    /** Also claim the node's next task (no waiting) for the same worker: the answer is `{ task, next: ClaimAnswer | null }`. */
    claimNext: z.boolean().default(false),
  })
  .strict();
/** A validated complete body. */
export type CompleteBody = z.infer<typeof CompleteBodySchema>;
/** What a worker sends to complete (defaults optional). */
export type CompleteInput = z.input<typeof CompleteBodySchema>;

/** `POST /v1/tasks/:id/release` body (graceful shutdown: back to pending, no attempt counted). */
export const ReleaseBodySchema = z.object({ leaseId: z.string().min(1) }).strict();

/** `POST /v1/tasks/:id/priority` body. */
export const PriorityBodySchema = z.object({ priority: z.enum(PRIORITIES) }).strict();

/** `POST /v1/nodes/me/presence` body: what a worker is doing, shown by `fleet task status`. */
export const PresenceBodySchema = z
  .object({ status: z.enum(["idle", "busy", "over-budget", "stopping"]), message: z.string().max(500).nullable().default(null) })
  .strict();

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
}

/** `POST /v1/claim` answer when a task was leased. */
export interface ClaimAnswer {
  task: Task | null;
  leaseId: string | null;
  /** Lease length in seconds; heartbeat well within it. */
  leaseSeconds: number;
  /** The node's budget left today in USD (its `budgetUsdPerSession` minus today's spend; null = no cap): the run's `--max-budget-usd`. */
  maxBudgetUsd: number | null;
  /** Why no task was given when `task` is null: nothing matched in time, or the node is over its daily cap. */
  reason: "empty" | "over-budget" | null;
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
}

/** `GET /v1/stats` answer. */
export interface Stats {
  byState: Record<TaskState, number>;
  byNode: Record<string, Partial<Record<TaskState, number>>>;
  spentTodayUsd: number;
  spentTodayByNode: Record<string, number>;
}
