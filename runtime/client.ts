/**
 * HTTP client of the queue API, used by the worker daemon and `fleet task`. Uses Node's fetch (undici,
 * keep-alive). Every call sends the node's bearer token; errors carry the server's status and message.
 */
import type { ClaimAnswer, CompleteInput, NodeInfo, NodePresence, Priority, Stats, SubmitInput, Task, TaskState } from "./api.js";

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

/** Client for one queue server with one node token. */
export class QueueClient {
  private readonly base: string;

  /**
   * @param url queue base URL, e.g. `http://arch-orchestrator:8787`
   * @param token the node's bearer token (read from a file or FLEET_TOKEN, never argv)
   */
  constructor(
    url: string,
    private readonly token: string,
  ) {
    this.base = url.replace(/\/+$/, "");
  }

  /**
   * Sends one request. Throws {@link QueueError} for a non-2xx answer, or fetch's TypeError when the server
   * cannot be reached. `signal` aborts a long poll.
   */
  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await fetch(this.base + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await res.text();
    if (!res.ok) {
      let msg = text;
      try {
        msg = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        /* not JSON: keep the text */
      }
      throw new QueueError(res.status, msg || res.statusText);
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
  /** `GET /v1/tasks/:id`. */
  get(id: number): Promise<Task> {
    return this.request("GET", `/v1/tasks/${id}`);
  }
  /** `GET /v1/tasks/:id/wait`: the task once final, or as it is after `timeoutSeconds`. */
  wait(id: number, timeoutSeconds: number, signal?: AbortSignal): Promise<Task> {
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
  /** `POST /v1/tasks/:id/heartbeat`: renews the lease; the task's `cancelRequested` says stop. */
  heartbeat(id: number, leaseId: string): Promise<{ task: Task; leaseSeconds: number }> {
    return this.request("POST", `/v1/tasks/${id}/heartbeat`, { leaseId });
  }
  /** `POST /v1/tasks/:id/complete`: reports a run. */
  complete(id: number, body: CompleteInput): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/complete`, body);
  }
  /** `POST /v1/tasks/:id/release`: gives a running task back (no attempt counted). */
  release(id: number, leaseId: string): Promise<Task> {
    return this.request("POST", `/v1/tasks/${id}/release`, { leaseId });
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
  /** `GET /v1/stats`. */
  stats(): Promise<Stats> {
    return this.request("GET", "/v1/stats");
  }
}
