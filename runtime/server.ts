/**
 * The queue server (role `queue`): a fastify HTTP JSON API over the {@link Store}, put together from one
 * module per concern — http.ts (limits, errors, body and query parsing), auth.ts (tokens and scopes),
 * presence.ts (who is online, spend today), waiters.ts (long polls), metrics.ts (Prometheus) — and the
 * routes below. Claims are long-polled leases; a sweeper re-queues tasks whose lease expired. See
 * runtime/README.md for the route table and who may call what.
 */
import { Webhooks } from "@octokit/webhooks";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import {
  FINAL_STATES,
  TASK_STATES,
  quoted,
  defaultIssuePrompt,
  githubOrphans,
  type ClaimAnswer,
  type GitHubOrphansAnswer,
  type GitHubIssue,
  type GitHubCredentials,
  type ReportedHealth,
  type NextAnswer,
  type NodeInfo,
  type Stats,
  type TakeAnswer,
  type Task,
  type TaskState,
  type TaskWithChildren,
} from "./api.js";
import {
  ClaimBodySchema,
  CompleteBodySchema,
  HealthReportSchema,
  FinishBodySchema,
  HeartbeatBodySchema,
  LeaseBodySchema,
  NoteBodySchema,
  PresenceBodySchema,
  PriorityBodySchema,
  PurgeBodySchema,
  ReleaseBodySchema,
  SubmitBodySchema,
  TakeBodySchema,
} from "./schemas.js";
import { installDashboard } from "./dashboard.js";
import { startGitHubPoller, type RepoRef } from "./github-poller.js";
import type { GitHubAuth } from "./github-app.js";
import { CHANGE, expiredTaskToken, installAuth, maySee, READ_TASK, scopes, seeRefusal, SUBMIT, WORKER, who, type Principal } from "./auth.js";
import { childBudget } from "./delegation.js";
import { tokenSha256, type TokensFile } from "./config.js";
import { HttpError, onlyQuery, parse, queryValue, queueFastify, seconds, tagFilter, taskId } from "./http.js";
import { queueMetrics } from "./metrics.js";
import { claimNotification, finishNotification, publish, type Notification } from "./ntfy.js";
import { Presence, utcDayStart } from "./presence.js";
import { Store } from "./store.js";
import { Waiters } from "./waiters.js";

export { HttpError } from "./http.js";
export { utcDayStart } from "./presence.js";
export type { Principal } from "./auth.js";

/** Options of {@link createQueueServer}. Durations are seconds (fractions allowed, for tests). */
export interface QueueServerOptions {
  /** SQLite database file. */
  db: string;
  /** The fleet view (tokens file). */
  tokens: TokensFile;
  /** Lease length; a worker heartbeats every third of it (default 30). */
  leaseSeconds?: number;
  /** Longest a claim may be held open (default 30). */
  maxClaimWaitSeconds?: number;
  /** Longest a result wait may be held open (default 300). */
  maxResultWaitSeconds?: number;
  /** How often expired leases are swept (default: a quarter of the lease, at most 5). */
  sweepSeconds?: number;
  /** A node not seen for this long (and not long-polling) is offline (default: max(60, 2 × claim wait)). */
  presenceSeconds?: number;
  /** SQLite durability, see {@link StoreOptions} (default normal). */
  synchronous?: "full" | "normal";
  /** Base URL for links to tasks (default tokens.publicUrl, else the Host the client used). */
  publicUrl?: string;
  /** Longest a client may take to send a request's headers, from its first byte (default 10). */
  headersTimeoutSeconds?: number;
  /**
   * Longest a client may take to send a whole request, headers and body (default 30). A long poll's wait is
   * not counted: it starts once the request is in (Node's `requestTimeout`).
   */
  requestTimeoutSeconds?: number;
  /**
   * Most open connections; more are closed as soon as they are accepted (default: {@link defaultMaxConnections}),
   * so trickling clients can never take the file descriptors the database and real clients need.
   */
  maxConnections?: number;
  /** Sign-in attempts the dashboard allows per client address per minute (default 10). */
  loginsPerMinute?: number;
  /**
   * Retention: completed, failed and cancelled tasks that finished longer ago than this many days are deleted
   * (default: the tokens file's `retentionDays`, else 30; 0 keeps every task). Stats keep counting them.
   */
  retentionDays?: number;
  /** How often retention runs, from the start (default 3600). */
  purgeEverySeconds?: number;
  /**
   * GitHub credentials for `github-issue` tasks (runtime/github-app.ts: `tokenAuth` for `--github-token-file`,
   * `appAuth` for `--github-app-id`/`--github-app-key-file`): a task's token is handed only to the worker holding
   * its lease (`POST /v1/tasks/:id/github-token`; an App's is minted for that call, for the task's repository).
   * Unset: such tasks are refused at submit.
   */
  github?: GitHubAuth;
  /**
   * The GitHub webhook receiver (`POST /v1/github/webhook`): `secret` is the webhook's secret (HMAC-SHA256 of
   * the body in `X-Hub-Signature-256`); an issue labelled `dispatchLabel` (default `fleet:dispatch`) becomes a
   * `github-issue` task for `any` node. Unset: the route answers 404.
   */
  githubWebhook?: { secret: string; dispatchLabel?: string };
  /**
   * The GitHub poller (runtime/github-poller.ts; needs `github`): each cycle turns the open issues of `repos`
   * labelled `dispatchLabel` (default `fleet:dispatch`) into tasks, as the webhook does, and lists the fleet's
   * pull requests for the orphan list. `intervalSeconds` defaults to 60 with repositories, 300 without (the
   * pull request scan alone). Unset with `github` set: the pull request scan runs every 300 s.
   */
  githubPoll?: { repos: RepoRef[]; intervalSeconds?: number; dispatchLabel?: string };
}

/** File descriptors kept for the database, its WAL and temp files, stdio and Node itself. */
const RESERVED_FDS = 64;

/**
 * The process's soft limit on open files (`ulimit -n`), from /proc/self/limits ("Max open files"; Linux,
 * where the queue role runs), or null where that file does not exist or says "unlimited".
 */
export function openFilesLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Default connection cap: the open-files limit less {@link RESERVED_FDS} (at least 16), at most 10,000. */
export function defaultMaxConnections(limit = openFilesLimit()): number {
  return limit === null ? 10_000 : Math.min(10_000, Math.max(16, limit - RESERVED_FDS));
}

/** True when a node's facts satisfy a task's required tags (`os`, `arch` and custom tags, all equal). */
export function nodeMatches(node: TokensFile["nodes"][string], tags: Record<string, string>): boolean {
  // A Map: a tag named like an Object.prototype member ("toString") must find nothing but the node's own tags.
  const facts = new Map([...Object.entries(node.tags), ["os", node.os], ["arch", node.arch]]);
  return Object.entries(tags).every(([k, v]) => facts.get(k) === v);
}

/**
 * Builds the queue server (not yet listening). The returned `close()` answers open long-polls, stops the
 * sweeper, closes HTTP and the database.
 */
export function createQueueServer(opts: QueueServerOptions): { app: FastifyInstance; store: Store; close: () => Promise<void> } {
  const tokens = opts.tokens;
  const leaseSeconds = opts.leaseSeconds ?? 30;
  const leaseMs = leaseSeconds * 1000;
  const maxClaimWait = opts.maxClaimWaitSeconds ?? 30;
  const maxResultWait = opts.maxResultWaitSeconds ?? 300;
  const sweepMs = (opts.sweepSeconds ?? Math.min(leaseSeconds / 4, 5)) * 1000;
  const presenceMs = (opts.presenceSeconds ?? Math.max(60, 2 * maxClaimWait)) * 1000;
  // Node names are user-named keys: look them up in a Map, never on the plain object.
  const nodes = new Map(Object.entries(tokens.nodes));
  const nodeNames = [...nodes.keys()];

  const eligible = (target: string, tags: Record<string, string>): string[] =>
    (target === "any" ? nodeNames : nodes.has(target) ? [target] : []).filter((n) => nodeMatches(nodes.get(n)!, tags));

  const store = new Store(opts.db, eligible, { synchronous: opts.synchronous });
  store.rebuildReady();
  // Workers that outlived a restart keep their tasks if they heartbeat within one lease from now.
  store.extendRunningLeases(Date.now() + leaseMs);

  const presence = new Presence(store, nodes, presenceMs);
  const waiters = new Waiters();
  const metrics = queueMetrics(store, presence, nodeNames);
  /** Every change of a task, for the dashboard's event streams ("task", with the task). */
  const changes = new EventEmitter().setMaxListeners(0);
  const changed = (t: Task) => changes.emit("task", t);
  const taskReady = (t: Task) => {
    for (const n of eligible(t.target, t.tags)) waiters.wakeClaim(n);
    changed(t);
  };
  const taskFinal = (t: Task) => {
    waiters.wakeResult(t.id);
    changed(t);
  };

  const sweep = () => {
    const { requeued, finished } = store.expireLeases(Date.now());
    if (requeued.length + finished.length) metrics.expiries.inc(requeued.length + finished.length);
    requeued.forEach(taskReady);
    finished.forEach(taskFinal);
  };
  const sweeper = setInterval(sweep, sweepMs);

  const retentionDays = opts.retentionDays ?? tokens.retentionDays ?? 30;
  const retain = () => {
    if (retentionDays <= 0) return;
    const n = store.purge(Date.now() - retentionDays * 86_400_000);
    if (n > 0) process.stderr.write(`fleet queue: retention: purged ${n} task(s) finished more than ${retentionDays} days ago\n`);
  };
  retain();
  const retention = setInterval(retain, (opts.purgeEverySeconds ?? 3600) * 1000);

  const app = queueFastify({
    headersTimeoutSeconds: opts.headersTimeoutSeconds,
    requestTimeoutSeconds: opts.requestTimeoutSeconds,
    maxConnections: opts.maxConnections ?? defaultMaxConnections(),
  });
  installAuth(app, tokens, (sha) => store.taskToken(sha));

  /** The node a worker call comes from (routes whose scopes are {@link WORKER}). */
  const nodeOf = (req: FastifyRequest) => who(req).name;
  const mustGet = (id: number): Task => {
    const t = store.get(id);
    if (!t) throw new HttpError(404, `no task ${id}`);
    return t;
  };
  const mustHold = (req: FastifyRequest, t: Task) => {
    if (t.node !== nodeOf(req)) throw new HttpError(403, `task ${t.id} is leased to node ${t.node ?? "(none)"}, not ${nodeOf(req)}`);
  };
  /** Task `id` if the caller may see it (auth.ts `maySee`): 404 unknown, 403 not theirs. */
  const mustSee = (req: FastifyRequest, id: number): Task => {
    const t = mustGet(id);
    const p = who(req);
    if (!maySee(p, t)) throw new HttpError(403, seeRefusal(p, id));
    return t;
  };
  /** A task as `GET /v1/tasks/:id` answers it: with its children's ids. */
  const withChildren = (t: Task): TaskWithChildren => ({ ...t, children: store.children(t.id).map((c) => c.id) });

  app.get("/healthz", async () => ({ ok: true }));

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  /**
   * Validates and stores a submit body from `by` (a node or person name); HttpError 400 names the field. With
   * `dedupe`, a `github-issue` task whose issue already has a pending or running task is not stored: that task
   * is answered, `fresh: false` (checked in the same group commit as the insert, so two dispatches of one
   * issue cannot both pass). With `parent` (a task's token submits), the task is that task's child and its
   * budget comes out of the parent's (delegation.ts; HttpError 403 when nothing, or less than asked, is left),
   * decided in the same transaction as the insert so that two children submitted together cannot both take
   * what is left.
   */
  const submitTask = async (raw: unknown, by: string, how: { dedupe?: boolean; parent?: number } = {}): Promise<{ task: Task; fresh: boolean }> => {
    const body = parse(SubmitBodySchema, raw);
    if (body.github && !opts.github) throw new HttpError(400, `field "github": this queue has no GitHub token; start it with --github-token-file to take GitHub issue tasks`);
    if (body.target !== "any" && !nodes.has(body.target)) throw new HttpError(400, `field "target": unknown node "${body.target}"; known nodes: ${nodeNames.join(", ")}, or "any"`);
    const runners = eligible(body.target, body.tags);
    if (runners.length === 0) throw new HttpError(400, `field "tags": no node ${body.target === "any" ? "" : `"${body.target}" `}has ${JSON.stringify(body.tags)}`);
    const out = await store.grouped(() => {
      const live = how.dedupe && body.github ? store.liveGithubTask(body.github) : null;
      if (live) return { task: live, fresh: false };
      const parent = how.parent;
      if (parent === undefined) return { task: store.submit(body, by, runners, Date.now()), fresh: true };
      const p = mustGet(parent);
      // Its lease may have ended since the token was checked (a report in the same event-loop turn).
      if (p.state !== "running") throw expiredTaskToken(parent, `the task is ${p.state}`);
      const share = childBudget(parent, { budgetUsd: p.budgetUsd, spentUsd: store.spentSoFar(parent) }, store.children(parent), body.budgetUsd);
      if ("refused" in share) throw new HttpError(403, share.refused);
      return { task: store.submit(body, by, runners, Date.now(), { parent, budgetUsd: share.budgetUsd }), fresh: true };
    });
    if (out.fresh) {
      metrics.submitted.inc();
      taskReady(out.task);
    }
    return out;
  };
  const submit = async (raw: unknown, by: string, parent?: number): Promise<Task> => (await submitTask(raw, by, { parent })).task;
  /**
   * An issue labelled for dispatch (webhook or poller) becomes a task for `any` node, submitted by `github`,
   * unless the issue has a pending or running task already.
   */
  const dispatchIssue = (ref: { owner: unknown; repo: unknown; issue: unknown }) =>
    submitTask({ target: "any", prompt: defaultIssuePrompt(ref as GitHubIssue), github: ref }, "github", { dedupe: true });

  // The poller (or, without poll repositories, the scan of the fleet's pull requests alone) runs whenever the
  // queue has a GitHub token.
  const poller = opts.github
    ? startGitHubPoller({
        apiUrl: opts.github.apiUrl,
        token: (r) => opts.github!.queueToken(r),
        repos: opts.githubPoll?.repos ?? [],
        dispatchLabel: opts.githubPoll?.dispatchLabel ?? "fleet:dispatch",
        intervalSeconds: opts.githubPoll?.intervalSeconds ?? (opts.githubPoll?.repos.length ? 60 : 300),
        taskRepos: () => store.githubRepos(),
        nodes: nodeNames,
        dispatch: async (ref) => {
          const { task, fresh } = await dispatchIssue(ref);
          return { task: task.id, fresh };
        },
        log: (line) => process.stderr.write(`fleet queue: ${line}\n`),
      })
    : null;
  /** Orphaned GitHub work (runtime/api.ts `githubOrphans`): the candidate `github-issue` rows only, and the poller's last pull request list. */
  const orphans = (): GitHubOrphansAnswer => {
    const listed = poller?.pullsListedAt() ?? null;
    return { orphans: githubOrphans(store.githubOrphanCandidates(), poller?.pulls() ?? [], (id) => store.get(id) !== undefined), pullsListedAt: listed === null ? null : new Date(listed).toISOString() };
  };
  // A node's token sees what GET /v1/tasks shows it: the issues of its own tasks, no pull requests.
  app.get("/v1/github/orphans", async (req): Promise<GitHubOrphansAnswer> => {
    const p = who(req);
    const all = orphans();
    if (p.kind === "person") return all;
    return { ...all, orphans: all.orphans.filter((o) => o.kind === "issue" && o.task !== null && maySee(p, store.get(o.task)!)) };
  });

  /** Cancels task `id` (the caller checked who may): pending → cancelled, running → cancel requested. */
  const cancel = (id: number): Task => {
    const before = mustGet(id);
    if (FINAL_STATES.includes(before.state)) throw new HttpError(409, `task ${id} is already ${before.state}`);
    const t = store.cancel(id, Date.now())!;
    if (t.state === "cancelled") taskFinal(t);
    else changed(t);
    return t;
  };

  app.post("/v1/tasks", scopes(SUBMIT), async (req, reply) => {
    const p = who(req);
    return reply.code(201).send(await submit(req.body, p.name, p.kind === "task" ? p.taskId : undefined));
  });

  app.get("/v1/tasks", async (req) => {
    const q = req.query as Record<string, unknown>;
    onlyQuery(q, ["state", "node", "limit", "tag"]);
    const [state, node, rawLimit, rawTag] = [queryValue(q, "state"), queryValue(q, "node"), queryValue(q, "limit"), queryValue(q, "tag")];
    if (state !== undefined && !TASK_STATES.includes(state as TaskState)) throw new HttpError(400, `query "state" must be one of ${TASK_STATES.join(", ")}, got ${quoted(state)}`);
    if (node !== undefined && node !== "any" && !nodes.has(node)) throw new HttpError(400, `query "node": unknown node ${quoted(node)}`);
    if (rawLimit !== undefined && !/^[1-9][0-9]{0,4}$/.test(rawLimit)) throw new HttpError(400, `query "limit" must be an integer from 1 to 10000, got ${quoted(rawLimit)}`);
    const limit = rawLimit === undefined ? 100 : Number(rawLimit);
    if (limit > 10_000) throw new HttpError(400, `query "limit" must be an integer from 1 to 10000, got ${quoted(rawLimit)}`);
    const p = who(req);
    const tag = rawTag === undefined ? undefined : tagFilter(rawTag);
    return { tasks: store.list({ state: state as TaskState | undefined, node, limit, tag, visibleTo: p.kind === "node" ? p.name : undefined }) };
  });

  app.get("/v1/tasks/:id", scopes(READ_TASK), async (req) => withChildren(mustSee(req, taskId((req.params as { id: string }).id))));

  app.get("/v1/tasks/:id/wait", scopes(READ_TASK), async (req, reply) => {
    const id = taskId((req.params as { id: string }).id);
    const q = req.query as Record<string, unknown>;
    onlyQuery(q, ["timeoutSeconds"]);
    const wait = seconds(queryValue(q, "timeoutSeconds"), "timeoutSeconds", maxResultWait, 60);
    mustSee(req, id);
    const deadline = Date.now() + wait * 1000;
    for (;;) {
      const t = mustGet(id);
      if (FINAL_STATES.includes(t.state) || Date.now() >= deadline || waiters.closing || reply.raw.destroyed) return withChildren(t);
      await waiters.waitResult(id, deadline - Date.now(), reply);
    }
  });

  app.post("/v1/tasks/:id/cancel", scopes(CHANGE), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    mustSee(req, id);
    return cancel(id);
  });

  /** Sets a pending task's priority from a `POST /v1/tasks/:id/priority` body (the caller checked who may). */
  const prioritise = (id: number, raw: unknown): Task => {
    const { priority } = parse(PriorityBodySchema, raw);
    const before = mustGet(id);
    if (before.state !== "pending") throw new HttpError(409, `task ${id} is ${before.state}; only a pending task's priority can change`);
    const t = store.setPriority(id, priority)!;
    taskReady(t);
    return t;
  };

  app.post("/v1/tasks/:id/priority", scopes(CHANGE), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    parse(PriorityBodySchema, req.body);
    mustSee(req, id);
    return prioritise(id, req.body);
  });

  /** One claim attempt for `node` without waiting: a lease, or why not (budget cap reached, nothing ready). */
  const claimNow = (node: string, worker: string): ClaimAnswer => {
    const over = presence.overBudget(node);
    if (over) {
      presence.seen(node, "over-budget", `spent $${over.spent.toFixed(2)} of $${over.cap.toFixed(2)} today (UTC)`);
      return { task: null, leaseId: null, leaseSeconds, maxBudgetUsd: null, reason: "over-budget", taskToken: null };
    }
    presence.seen(node, "idle");
    const cap = nodes.get(node)!.budgetUsdPerSession ?? null;
    const nodeLeft = cap === null ? null : Math.max(0, Math.floor((cap - presence.spentToday(node)) * 100) / 100);
    // The run's own token (delegation): handed over once, in this answer; the store keeps its SHA-256.
    const taskToken = `fkt_${randomBytes(32).toString("base64url")}`;
    const c = store.claim(node, worker, leaseMs, Date.now(), nodeLeft, tokenSha256(taskToken));
    if (!c) return { task: null, leaseId: null, leaseSeconds, maxBudgetUsd: null, reason: "empty", taskToken: null };
    metrics.claims.inc({ node });
    changed(c.task);
    return { task: c.task, leaseId: c.leaseId, leaseSeconds, maxBudgetUsd: c.task.budgetUsd, reason: null, taskToken };
  };

  app.post("/v1/claim", scopes(WORKER), async (req, reply): Promise<ClaimAnswer> => {
    const body = parse(ClaimBodySchema, req.body);
    const node = nodeOf(req);
    if (body.node !== node) throw new HttpError(403, `this token belongs to node ${node}; it cannot claim tasks for node ${body.node}`);
    const deadline = Date.now() + Math.min(body.waitSeconds, maxClaimWait) * 1000;
    presence.openClaims.set(node, (presence.openClaims.get(node) ?? 0) + 1);
    try {
      for (;;) {
        if (reply.raw.destroyed || waiters.closing) {
          waiters.wakeClaim(node); // a wake-up this claim cannot use goes to the next waiter
          return { task: null, leaseId: null, leaseSeconds, maxBudgetUsd: null, reason: "empty", taskToken: null };
        }
        const a = claimNow(node, body.worker);
        if (a.task || a.reason === "over-budget" || Date.now() >= deadline) return a;
        await waiters.waitClaim(node, deadline - Date.now(), reply);
      }
    } finally {
      presence.openClaims.set(node, (presence.openClaims.get(node) ?? 1) - 1);
    }
  });

  app.post("/v1/tasks/:id/heartbeat", scopes(WORKER), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId, spentUsd } = parse(HeartbeatBodySchema, req.body);
    const before = mustGet(id);
    mustHold(req, before);
    const t = store.heartbeat(id, leaseId, leaseMs, Date.now(), spentUsd ?? null);
    if (!t) throw new HttpError(409, `lease lost: task ${id} is ${before.state}${before.state === "running" ? " under another lease" : ""}`);
    presence.seen(nodeOf(req), "busy", `task ${id}`);
    return { task: t, leaseSeconds };
  });

  // The GitHub token of a github-issue task, for the worker holding its lease (renewed by the call: asking is
  // as good as a heartbeat). Never logged, never stored with the task. With an App, a fresh installation token
  // restricted to the task's repository, minted after the lease is renewed; a failed mint is 502 with one line
  // (also on the queue's stderr, where an operator sees a wrong App id or key).
  // With a token file, that token as it is.
  app.post("/v1/tasks/:id/github-token", scopes(WORKER), async (req): Promise<GitHubCredentials> => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId } = parse(HeartbeatBodySchema, req.body);
    const before = mustGet(id);
    mustHold(req, before);
    if (!before.github) throw new HttpError(400, `task ${id} is not a GitHub issue task`);
    if (!opts.github) throw new HttpError(409, `this queue has no GitHub token (--github-token-file) or App (--github-app-id) for task ${id}`);
    if (!store.heartbeat(id, leaseId, leaseMs, Date.now())) throw new HttpError(409, `lease lost: task ${id} is ${before.state}${before.state === "running" ? " under another lease" : ""}`);
    try {
      return await opts.github.taskCredentials({ owner: before.github.owner, repo: before.github.repo });
    } catch (err) {
      const line = (err as Error).message.split("\n")[0]!;
      process.stderr.write(`fleet queue: task ${id}: ${line}\n`);
      throw new HttpError(502, line);
    }
  });

  if (opts.githubWebhook) {
    const hook = opts.githubWebhook;
    const webhooks = new Webhooks({ secret: hook.secret });
    const dispatchLabel = hook.dispatchLabel ?? "fleet:dispatch";
    // Its own scope: the signature is over the body's exact bytes, so the body stays a string here.
    void app.register(async (scope) => {
      scope.removeContentTypeParser("application/json");
      scope.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => done(null, body));
      scope.post("/v1/github/webhook", { config: { signed: true } }, async (req, reply) => {
        const h = (name: string) => (typeof req.headers[name] === "string" ? (req.headers[name] as string) : "");
        const body = typeof req.body === "string" ? req.body : "";
        const [signature, delivery, event] = [h("x-hub-signature-256"), h("x-github-delivery"), h("x-github-event")];
        if (!signature || !(await webhooks.verify(body, signature).catch(() => false))) throw new HttpError(401, "X-Hub-Signature-256 is missing or does not match the body (HMAC-SHA256 with the webhook's secret)", true);
        if (!/^[A-Za-z0-9-]{1,64}$/.test(delivery)) throw new HttpError(400, "header X-GitHub-Delivery: expected the delivery's GUID");
        if (!store.firstDelivery(delivery, Date.now())) return reply.code(200).send({ ignored: `delivery ${delivery} was already received` });
        let payload: { action?: unknown; label?: { name?: unknown }; issue?: { number?: unknown; pull_request?: unknown }; repository?: { name?: unknown; owner?: { login?: unknown } } };
        try {
          payload = JSON.parse(body) as typeof payload;
        } catch {
          throw new HttpError(400, "request body is not valid JSON");
        }
        if (event !== "issues" || payload.action !== "labeled" || payload.label?.name !== dispatchLabel || payload.issue?.pull_request) {
          return reply.code(200).send({ ignored: `not an issue labelled ${dispatchLabel}` });
        }
        const ref = { owner: payload.repository?.owner?.login, repo: payload.repository?.name, issue: payload.issue?.number };
        const { task, fresh } = await dispatchIssue(ref);
        if (!fresh) return reply.code(200).send({ ignored: `${String(ref.owner)}/${String(ref.repo)}#${String(ref.issue)} already has task ${task.id} (${task.state})`, task: task.id });
        return reply.code(202).send({ task: task.id });
      });
    });
  }

  app.post("/v1/tasks/:id/complete", scopes(WORKER), async (req, reply) => {
    const id = taskId((req.params as { id: string }).id);
    const body = parse(CompleteBodySchema, req.body);
    const node = nodeOf(req);
    // The report and the next claim riding on it (no waiting: one round trip per task instead of two) commit
    // together, with the other writes of this event-loop turn.
    const { r, next } = await store.grouped(() => {
      const r = store.complete(id, node, body, Date.now());
      if (!r) throw new HttpError(404, `no task ${id}`);
      if (r.kind === "forbidden") mustHold(req, r.task);
      if (r.kind === "lost") throw new HttpError(409, `lease lost: task ${id} is ${r.task.state}${r.task.state === "running" ? " under another lease" : ""}; the result was not recorded`);
      if (r.kind === "ok") {
        if (r.task.node && r.task.costUsd) presence.addSpend(r.task.node, r.task.costUsd);
      }
      const next = body.claimNext && r.kind === "ok" && !waiters.closing ? claimNow(node, r.task.worker ?? node) : null;
      return { r, next };
    });
    if (r.kind === "ok") taskFinal(r.task);
    if (!body.claimNext) {
      presence.seen(node, "idle");
      return reply.code(200).send(r.task);
    }
    return reply.code(200).send({ task: r.task, next });
  });

  app.post("/v1/tasks/:id/release", scopes(WORKER), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId } = parse(ReleaseBodySchema, req.body);
    mustHold(req, mustGet(id));
    const t = store.release(id, leaseId);
    if (!t) throw new HttpError(409, `lease lost: task ${id} is not running under that lease`);
    taskReady(t);
    return t;
  });

  // ---- The interactive flow: a person, or Claude in a node's shell, takes a task by hand (runtime/README.md). ----

  /** Notifications the server itself sends (interactive claims and finishes), awaited on close. */
  const notifications = new Set<Promise<void>>();
  const notify = (req: FastifyRequest, make: (base: string) => Notification, taskNo: number) => {
    const ntfy = tokens.ntfy;
    if (!ntfy) return;
    const base = (opts.publicUrl ?? tokens.publicUrl ?? `http://${req.headers.host}`).replace(/\/+$/, "");
    const p = publish(ntfy, make(base)).then((r) => {
      if (!r.ok) process.stderr.write(`fleet queue: ntfy notification for task ${taskNo} not sent (${r.error}); the task is recorded\n`);
    });
    notifications.add(p);
    void p.finally(() => notifications.delete(p));
  };
  /** The node a principal speaks for in the interactive flow: its own node, or null for a person. */
  const nodeFor = (p: Principal) => (p.kind === "node" ? p.name : null);
  /** An interactive claim belongs to the token that made it: only it renews or gives it back. */
  const mustBeClaimant = (req: FastifyRequest, t: Task) => {
    const p = who(req);
    if (t.state !== "running" || t.claimedBy === null) throw new HttpError(409, `task ${t.id} is ${t.state}${t.state === "running" ? ` on worker ${t.worker}, not under an interactive claim` : ""}; there is no claim to change`);
    if (t.claimedBy !== p.name) throw new HttpError(403, `task ${t.id} is claimed by ${t.claimedBy}; only that token renews or releases the claim`);
  };

  app.get("/v1/next", async (req): Promise<NextAnswer> => {
    const q = req.query as Record<string, unknown>;
    onlyQuery(q, ["node"]);
    const p = who(req);
    const node = queryValue(q, "node") ?? nodeFor(p) ?? undefined;
    if (node === undefined) throw new HttpError(400, `query "node" is required for ${p.kind === "person" ? `${p.scope} ${p.name}` : p.name}'s token (a person has no node of their own)`);
    if (!nodes.has(node)) throw new HttpError(400, `query "node": unknown node ${quoted(node)}`);
    if (p.kind === "node" && node !== p.name) throw new HttpError(403, `this token belongs to node ${p.name}; it peeks only its own node's next task, not node ${node}'s`);
    return { node, task: store.peek(node), overBudget: presence.overBudget(node) !== null };
  });

  app.post("/v1/tasks/:id/claim", scopes(CHANGE), async (req, reply): Promise<TakeAnswer> => {
    const id = taskId((req.params as { id: string }).id);
    const body = parse(TakeBodySchema, req.body);
    mustSee(req, id);
    const p = who(req);
    const session = body.session ?? p.name;
    const r = await store.grouped(() => store.claimTask(id, { node: nodeFor(p), worker: session, claimedBy: p.name }, leaseMs, Date.now()));
    if (!r) throw new HttpError(404, `no task ${id}`);
    if (r.kind === "not-pending") {
      const t = r.task;
      throw new HttpError(409, `task ${id} is ${t.state}${t.state === "running" ? ` (${t.claimedBy ? `claimed by ${t.claimedBy}` : `on worker ${t.worker}`})` : ""}; only a pending task can be claimed`);
    }
    changed(r.task);
    notify(req, (base) => claimNotification(r.task, base), id);
    return reply.code(200).send({ task: r.task, leaseId: r.leaseId, leaseSeconds });
  });

  app.post("/v1/tasks/:id/claim/renew", scopes(CHANGE), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId } = parse(LeaseBodySchema, req.body);
    const before = mustGet(id);
    mustBeClaimant(req, before);
    const t = store.heartbeat(id, leaseId, leaseMs, Date.now());
    if (!t) throw new HttpError(409, `lease lost: task ${id} is claimed under another lease`);
    return { task: t, leaseSeconds };
  });

  app.post("/v1/tasks/:id/claim/release", scopes(CHANGE), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const { leaseId } = parse(LeaseBodySchema, req.body);
    mustBeClaimant(req, mustGet(id));
    const t = store.release(id, leaseId);
    if (!t) throw new HttpError(409, `lease lost: task ${id} is claimed under another lease`);
    taskReady(t);
    return t;
  });

  app.post("/v1/tasks/:id/finish", scopes(CHANGE), async (req) => {
    const id = taskId((req.params as { id: string }).id);
    const body = parse(FinishBodySchema, req.body);
    const before = mustSee(req, id);
    const p = who(req);
    if (before.state === "running" && before.claimedBy !== null && before.claimedBy !== p.name && !(p.kind === "person" && p.scope === "operator")) {
      throw new HttpError(403, `task ${id} is claimed by ${before.claimedBy}; only that token or an operator finishes it`);
    }
    const r = await store.grouped(() => store.finishClaimed(id, body.outcome, body.notes, p.name, Date.now()));
    if (!r) throw new HttpError(404, `no task ${id}`);
    if (r.kind === "not-claimed") {
      const t = r.task;
      throw new HttpError(409, `task ${id} is ${t.state}${t.state === "running" ? ` on worker ${t.worker}, which reports it itself` : ""}; only a task under an interactive claim (fleet task claim) is finished by hand`);
    }
    taskFinal(r.task);
    notify(req, (base) => finishNotification(r.task, base), id);
    return r.task;
  });

  app.post("/v1/tasks/:id/notes", scopes(CHANGE), async (req, reply) => {
    const id = taskId((req.params as { id: string }).id);
    const { text } = parse(NoteBodySchema, req.body);
    mustSee(req, id);
    const r = await store.grouped(() => store.addNote(id, who(req).name, text, Date.now()));
    if (!r) throw new HttpError(404, `no task ${id}`);
    if (r.kind === "full") throw new HttpError(409, `task ${id} already has ${r.task.notes.length} notes, the most a task holds`);
    changed(r.task);
    return reply.code(201).send(r.task);
  });

  app.post("/v1/purge", scopes(["operator"]), async (req) => {
    const { olderThanSeconds } = parse(PurgeBodySchema, req.body);
    const before = Date.now() - olderThanSeconds * 1000;
    const purged = await store.grouped(() => store.purge(before));
    return { purged, finishedBefore: new Date(before).toISOString(), purgedTotal: store.purgedCount() };
  });

  app.get("/v1/nodes", async () => ({ nodes: presence.all() }));

  app.get("/v1/nodes/me", scopes(WORKER), async (req): Promise<NodeInfo> => {
    const n = nodeOf(req);
    const node = nodes.get(n)!;
    presence.seen(n);
    return {
      node: n,
      os: node.os,
      arch: node.arch,
      tags: node.tags,
      budgetUsdPerSession: node.budgetUsdPerSession ?? null,
      spentTodayUsd: presence.spentToday(n),
      ntfy: tokens.ntfy ? { url: tokens.ntfy.url, topic: tokens.ntfy.topic, token: tokens.ntfy.token ?? null } : null,
      // Without a configured URL, links use the address the worker reached us at.
      publicUrl: opts.publicUrl ?? tokens.publicUrl ?? `http://${req.headers.host}`,
    };
  });

  app.post("/v1/nodes/me/presence", scopes(WORKER), async (req, reply) => {
    const body = parse(PresenceBodySchema, req.body);
    presence.seen(nodeOf(req), body.status, body.message);
    return reply.code(204).send();
  });

  app.get("/v1/stats", async (): Promise<Stats> => {
    const s = store.stats(utcDayStart(Date.now()));
    return { byState: s.byState, purged: s.purged, byNode: s.byNode, spentTodayUsd: Object.values(s.spentByNode).reduce((a, b) => a + b, 0), spentTodayByNode: s.spentByNode };
  });

  // Each node's latest `fleet status --report` row (in memory: the next scheduled or manual run after a
  // restart fills it again).
  const health = new Map<string, ReportedHealth>();
  app.post("/v1/health", scopes(["operator"]), async (req, reply) => {
    const report = parse(HealthReportSchema, req.body);
    const unknown = report.nodes.find((n) => !nodes.has(n.node));
    if (unknown) throw new HttpError(400, `field "nodes": unknown node ${quoted(unknown.node)}; this queue serves ${nodeNames.join(", ")}`);
    const at = new Date().toISOString();
    for (const n of report.nodes) health.set(n.node, { ...n, at, by: who(req).name });
    changes.emit("health");
    return reply.code(204).send();
  });
  app.get("/v1/health", async () => ({ nodes: nodeNames.filter((n) => health.has(n)).map((n) => health.get(n)!) }));

  const dashboard = installDashboard(
    app,
    { tokens, store, nodes: () => presence.all(), health: () => health, submit, cancel, prioritise, changes, githubOrphans: () => orphans().orphans },
    { loginsPerMinute: opts.loginsPerMinute },
  );

  const close = async () => {
    await poller?.stop();
    clearInterval(sweeper);
    clearInterval(retention);
    waiters.close();
    dashboard.close();
    await app.close();
    await Promise.all(notifications);
    store.close();
  };
  return { app, store, close };
}
