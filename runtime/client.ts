/**
 * HTTP client of the queue API, used by the worker daemon and `fleet task`. Uses undici's `request` on a
 * keep-alive pool (several times less CPU per call than `fetch`, which matters at 1,000+ tasks/s). Every call
 * sends the node's bearer token; errors carry the server's status and message.
 */
import { Pool } from "undici";
import { clipUtf8, MAX_COST_USD, MAX_DURATION_SECONDS, MAX_ERROR_BYTES, MAX_RESULT_BYTES, type ClaimAnswer, type CompleteInput, type GitHubCredentials, type GitHubOrphansAnswer, type NextAnswer, type NodeInfo, type NodePresence, type Priority, type Stats, type SubmitInput, type TakeAnswer, type Task, type TaskState, type TaskWithChildren } from "./api.js";

/** A non-2xx answer from the queue: `status` is the HTTP status, the message the server's `error`. */
export class QueueError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "QueueError";
  }
}

/**
 * A run's report as the queue accepts it: result and error cut to their limits ({@link clipUtf8}: 128 KiB
 * and 16 KiB, NUL bytes and lone surrogates replaced), the model reason one line of at most 200 characters,
 * cost and duration within their bounds (USD 0–{@link MAX_COST_USD}, 0–{@link MAX_DURATION_SECONDS} s; a
 * number that is not finite counts as the bound), an exit code outside 32 bits as unknown (null). Whatever a
 * run printed or reported is then recorded; refused, the report would leave the task running until its
 * lease expired, and then run it again.
 */
export function reportable(body: CompleteInput): CompleteInput {
  const text = (s: string | null | undefined, max: number) => (typeof s === "string" ? clipUtf8(s, max) : s);
  const bound = (n: number | null | undefined, max: number) => (typeof n === "number" ? (Number.isNaN(n) ? null : Math.min(Math.max(n, 0), max)) : n);
  const reason = typeof body.modelReason === "string" ? body.modelReason.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ").slice(0, 200) : body.modelReason;
  const exit = body.exitCode;
  return {
    ...body,
    result: text(body.result, MAX_RESULT_BYTES),
    error: text(body.error, MAX_ERROR_BYTES),
    modelReason: reason,
    costUsd: bound(body.costUsd, MAX_COST_USD),
    durationSeconds: bound(body.durationSeconds, MAX_DURATION_SECONDS),
    exitCode: typeof exit === "number" && !(Number.isInteger(exit) && exit >= -(2 ** 31) && exit <= 2 ** 32 - 1) ? null : exit,
  };
}

/** Client for one queue server with one token (a node's, or a person's for `fleet task`). */
export class QueueClient {
  private readonly base: string;
  private readonly pool: Pool;

  /**
   * @param url queue base URL, e.g. `http://arch-orchestrator:8787`
   * @param token the node's bearer token (read from a file or FLEET_TOKEN, never argv)
   */
  constructor(
    url: string,
    private readonly token: string,
  ) {
    this.base = url.replace(/\/+$/, "");
    const u = new URL(this.base);
    this.prefix = u.pathname.replace(/\/+$/, "");
    // Long polls are bounded by the server (≤ 600 s); the timeouts only catch a hung connection.
    this.pool = new Pool(u.origin, { headersTimeout: 660_000, bodyTimeout: 660_000, keepAliveTimeout: 30_000 });
  }

  private readonly prefix: string;

  /** Closes the connection pool (in-flight requests finish first). */
  close(): Promise<void> {
    return this.pool.close();
  }

  /**
   * Sends one request. Throws {@link QueueError} for a non-2xx answer, or undici's error (with a `code` such
   * as ECONNREFUSED or UND_ERR_SOCKET) when the server cannot be reached. `signal` aborts a long poll.
   */
  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.pool.request({
      method: method as "GET" | "POST",
      path: this.prefix + path,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode > 299) {
      let msg = text;
      try {
        msg = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        /* not JSON: keep the text */
      }
      throw new QueueError(res.statusCode, msg || `HTTP ${res.statusCode}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** `POST /v1/tasks`: submits a task; returns it (state pending). */
  submit(input: SubmitInput): Promise<Task> {
    return this.request("POST", "/v1/tasks", input);
  }
  /** `GET /v1/tasks`: newest first. */
  async list(filter: { state?: TaskState; node?: string; limit?: number } = {}): Promise<Task[]> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    return (await this.request<{ tasks: Task[] }>("GET", `/v1/tasks${qs ? "?" + qs : ""}`)).tasks;
  }
  /** `GET /v1/tasks/:id`: the task with its children's ids. */
  get(id: number): Promise<TaskWithChildren> {
    return this.request("GET", `/v1/tasks/${id}`);
  }
  /** `GET /v1/tasks/:id/wait`: the task (with its children's ids) once final, or as it is after `timeoutSeconds`. */
  wait(id: number, timeoutSeconds: number, signal?: AbortSignal): Promise<TaskWithChildren> {
    return this.request("GET", `/v1/tasks/${id}/wait?timeoutSeconds=${timeoutSeconds}`, undefined, signal);
  }
  /** `POST /v1/tasks/:id/cancel`. */
  cancel(id: number): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/cancel`);
  }
  /** `POST /v1/tasks/:id/priority`. */
  setPriority(id: number, priority: Priority): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/priority`, { priority });
  }
  /** `POST /v1/claim`: long-polls up to `waitSeconds` for a task of `node`. */
  claim(node: string, worker: string, waitSeconds: number, signal?: AbortSignal): Promise<ClaimAnswer> {
    return this.request("POST", "/v1/claim", { node, worker, waitSeconds }, signal);
  }
  /**
   * `POST /v1/tasks/:id/heartbeat`: renews the lease; the task's `cancelRequested` says stop. `spentUsd`: the
   * run's spend so far (USD, the worker's estimate), for its children's budget.
   */
  heartbeat(id: number, leaseId: string, spentUsd?: number): Promise<{ task: Task; leaseSeconds: number }> {
    return this.request("POST", `/v1/tasks/${id}/heartbeat`, spentUsd === undefined ? { leaseId } : { leaseId, spentUsd });
  }
  /** `POST /v1/tasks/:id/github-token`: the GitHub token and API URL of a `github-issue` task, for its lease holder only (renews the lease). */
  githubToken(id: number, leaseId: string): Promise<GitHubCredentials> {
    return this.request("POST", `/v1/tasks/${id}/github-token`, { leaseId });
  }
  /** `POST /v1/tasks/:id/complete`: reports a run (texts cut to the API's limits by {@link reportable}). */
  complete(id: number, body: CompleteInput): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/complete`, reportable(body));
  }
  /** `POST /v1/tasks/:id/complete` with `claimNext`: reports a run and leases the node's next task, if any. */
  completeAndClaim(id: number, body: CompleteInput): Promise<{ task: Task; next: ClaimAnswer | null }> {
    return this.request("POST", `/v1/tasks/${id}/complete`, { ...reportable(body), claimNext: true });
  }
  /** `POST /v1/tasks/:id/release`: gives a running task back (no attempt counted). */
  release(id: number, leaseId: string): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/release`, { leaseId });
  }
  /** `GET /v1/next`: the task `node` would be given next (default: this node token's own node), without taking it. */
  next(node?: string): Promise<NextAnswer> {
    return this.request("GET", `/v1/next${node === undefined ? "" : `?node=${encodeURIComponent(node)}`}`);
  }
  /** `POST /v1/tasks/:id/claim`: an interactive session takes a pending task; renew the lease within `leaseSeconds`. */
  take(id: number, session?: string): Promise<TakeAnswer> {
    return this.request("POST", `/v1/tasks/${id}/claim`, session === undefined ? {} : { session });
  }
  /** `POST /v1/tasks/:id/claim/renew`: renews an interactive claim's lease (409 once it is lost or the task is finished). */
  renew(id: number, leaseId: string): Promise<{ task: Task; leaseSeconds: number }> {
    return this.request("POST", `/v1/tasks/${id}/claim/renew`, { leaseId });
  }
  /** `POST /v1/tasks/:id/claim/release`: gives an interactively claimed task back (pending, no attempt counted). */
  giveBack(id: number, leaseId: string): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/claim/release`, { leaseId });
  }
  /** `POST /v1/tasks/:id/finish`: ends an interactive claim; `notes` become the result (or error) and a note. */
  finish(id: number, outcome: "completed" | "failed", notes: string | null = null): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/finish`, { outcome, notes });
  }
  /** `POST /v1/tasks/:id/notes`: appends a note under this token's name. */
  note(id: number, text: string): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/notes`, { text });
  }
  /** `POST /v1/purge` (operator): deletes the final tasks that finished more than `olderThanSeconds` ago; returns how many. */
  purge(olderThanSeconds: number): Promise<{ purged: number; finishedBefore: string; purgedTotal: number }> {
    return this.request("POST", "/v1/purge", { olderThanSeconds });
  }
  /** `GET /v1/nodes`: presence of every node. */
  async nodes(): Promise<NodePresence[]> {
    return (await this.request<{ nodes: NodePresence[] }>("GET", "/v1/nodes")).nodes;
  }
  /** `GET /v1/nodes/me`: this token's node, its budget and the fleet's ntfy settings. */
  me(): Promise<NodeInfo> {
    return this.request("GET", "/v1/nodes/me");
  }
  /** `POST /v1/nodes/me/presence`. */
  presence(status: "idle" | "busy" | "over-budget" | "stopping", message: string | null = null): Promise<void> {
    return this.request("POST", "/v1/nodes/me/presence", { status, message });
  }
  /** `GET /v1/github/orphans`: GitHub work left behind (runtime/api.ts `githubOrphans`). */
  githubOrphans(): Promise<GitHubOrphansAnswer> {
    return this.request("GET", "/v1/github/orphans");
  }

  /** `GET /v1/stats`. */
  stats(): Promise<Stats> {
    return this.request("GET", "/v1/stats");
  }
}
