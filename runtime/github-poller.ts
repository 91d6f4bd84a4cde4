/**
 * The queue's GitHub poller, for fleets GitHub's webhooks cannot reach (a tailnet-only queue): every
 * `intervalSeconds` it lists, through the REST API (`GET /repos/{owner}/{repo}/issues`, `issues/list-for-repo`):
 *
 * 1. for each repository of `repos`, the open issues labelled `dispatchLabel`: each becomes a `github-issue`
 *    task for `any` node through the same dispatch as the webhook (runtime/server.ts: no second task while
 *    one is pending or running), unless it carries a claim label `fleet:<node>` (a worker has it, or failed it
 *    and left the label for a person to look at). Once the issue has its task, the poller removes the dispatch
 *    label: the label is a request, consumed when taken, so the issue is dispatched once — labelling it again
 *    dispatches it again, as a new `labeled` webhook delivery would;
 * 2. for each repository of `repos` and of the queue's own `github-issue` tasks, the open pull requests
 *    labelled `fleet:pull-request` (GitHub lists pull requests among issues, with a `pull_request` field): the
 *    orphan list (runtime/api.ts `githubOrphans`) names those whose task the queue no longer has.
 *
 * **Conditional requests.** Each list keeps the `ETag` of its last answer and sends it as `If-None-Match`; an
 * unchanged list answers `304 Not Modified`, which does not count against the rate limit (docs.github.com,
 * "Best practices for using the REST API": "Use conditional requests if appropriate"). An ETag is kept only
 * once its answer was fully handled, so an issue whose dispatch failed is tried again next cycle.
 *
 * **Rate limits** (docs.github.com, "Rate limits for the REST API"): an answer with `x-ratelimit-remaining: 0`
 * holds every further request until `x-ratelimit-reset` (epoch seconds) plus {@link RESET_GRACE_MS}; a 403 or
 * 429 holds them for `retry-after` seconds when given, else until `x-ratelimit-reset` when the remaining count
 * is 0, else one minute (GitHub: "wait for at least one minute before retrying"). Entering such a pause logs
 * one line. No request is retried in place (the throttling plugin is left out on purpose: the next cycle is
 * the retry, and a pause must stay visible and stoppable).
 *
 * Each list reads the first 100 items (oldest first): a larger backlog of labelled issues drains by 100 a cycle.
 * Logs neither the token nor issue texts. The token comes per repository from `token` (an App installation token
 * is restricted to the repository it is asked for).
 */
import { Octokit } from "@octokit/rest";
import { setTimeout as sleep } from "node:timers/promises";
import { pullTaskId, type FleetPull } from "./api.js";
import { PULL_REQUEST_LABEL, QUIET_LOG } from "./github.js";

/** Added to `x-ratelimit-reset` before the next request: clocks differ, and the reset second is whole. */
export const RESET_GRACE_MS = 1000;
/** A 403/429 rate-limit answer without `retry-after` or a reset time holds requests this long (GitHub's advice). */
const UNSPECIFIED_WAIT_MS = 60_000;

/** A repository: `owner` and `repo` as GitHub names them. */
export interface RepoRef {
  owner: string;
  repo: string;
}

/** What the poller asks of the queue to turn an issue into a task. */
export type Dispatch = (ref: RepoRef & { issue: number }) => Promise<{ task: number; fresh: boolean }>;

/** Options of {@link startGitHubPoller}. */
export interface GitHubPollerOptions {
  /** REST base URL, e.g. `https://api.github.com`. */
  apiUrl: string;
  /**
   * The token for requests on a repository (runtime/github-app.ts `GitHubAuth.queueToken`: the token file's, or
   * an App installation token for that repository). Rejects with a one-line Error.
   */
  token: (r: RepoRef) => Promise<string>;
  /** Repositories whose issues labelled `dispatchLabel` become tasks (empty: the pull request scan only). */
  repos: RepoRef[];
  /** The issue label that dispatches (fleet.yaml `services.queue.github.dispatchLabel`). */
  dispatchLabel: string;
  /** Seconds from the start of one cycle to the start of the next (a cycle that ran longer starts the next at once). */
  intervalSeconds: number;
  /** Repositories of the queue's `github-issue` tasks (store.ts `githubRepos`), asked at each cycle. */
  taskRepos: () => RepoRef[];
  /** The fleet's node names: `fleet:<node>` on an issue is a claim label. */
  nodes: readonly string[];
  /**
   * Submits a task for the issue unless one is pending or running; resolves with its id and whether it is new.
   * Rejects (e.g. HttpError 400) when the queue refuses the task.
   */
  dispatch: Dispatch;
  /** One line of news (no prefix, no newline). */
  log: (line: string) => void;
}

/** A running poller. */
export interface GitHubPoller {
  /** The open pull requests labelled `fleet:pull-request` as last listed, per repository, in `repos` order. */
  pulls(): FleetPull[];
  /** When every repository's pull requests were last listed (epoch ms; null before the first full scan). */
  pullsListedAt(): number | null;
  /** Stops: aborts the request or wait in progress and resolves once the loop has ended. */
  stop(): Promise<void>;
}

/** One item of `issues/list-for-repo`, the fields read here. */
interface ListedIssue {
  number: number;
  body?: string | null;
  labels: Array<string | { name?: string }>;
  pull_request?: unknown;
}

/** A repository's key in per-repository maps: `owner/repo`, lower-cased as GitHub compares names. */
export const repoKey = (r: RepoRef) => `${r.owner}/${r.repo}`.toLowerCase();

/** Starts polling at once (first cycle now), then every `intervalSeconds`. */
export function startGitHubPoller(opts: GitHubPollerOptions): GitHubPoller {
  const abort = new AbortController();
  const signal = abort.signal;
  const gh = new Octokit({ baseUrl: opts.apiUrl, userAgent: "fleetkit", log: QUIET_LOG, request: { signal } });
  const authorization = async (r: RepoRef) => `token ${await opts.token(r)}`;
  const etags = new Map<string, string>();
  const pulls = new Map<string, FleetPull[]>();
  /** The last failure logged per issue or list, so a failure repeating every cycle is logged once. */
  const failures = new Map<string, string>();
  let pullsListedAt: number | null = null;
  let holdUntil = 0;

  const once = (what: string, line: string | null) => {
    if (line === null) return void failures.delete(what);
    if (failures.get(what) !== line) opts.log(line);
    failures.set(what, line);
  };

  /** Reads the rate-limit headers of an answer (success or error); sets and logs a hold when they ask for one. */
  const heed = (status: number, headers: Record<string, string | number | undefined>) => {
    const h = (name: string) => (headers[name] === undefined ? undefined : String(headers[name]));
    const remaining = h("x-ratelimit-remaining");
    const reset = Number(h("x-ratelimit-reset"));
    const retryAfter = Number(h("retry-after"));
    const limited = status === 429 || (status === 403 && (remaining === "0" || h("retry-after") !== undefined));
    let until = 0;
    if (limited && h("retry-after") !== undefined && Number.isFinite(retryAfter)) until = Date.now() + retryAfter * 1000;
    else if (remaining === "0" && Number.isFinite(reset)) until = reset * 1000 + RESET_GRACE_MS;
    else if (limited) until = Date.now() + UNSPECIFIED_WAIT_MS;
    if (until > holdUntil) {
      holdUntil = until;
      const why = limited ? `HTTP ${status}` : `HTTP ${status} with x-ratelimit-remaining 0`;
      opts.log(`github poll: rate limited (${why}${h("retry-after") !== undefined ? `, retry-after ${h("retry-after")} s` : ""}); next request at ${new Date(until).toISOString()}`);
    }
  };

  /** Waits out a rate-limit hold (aborted by stop). */
  const held = async () => {
    const ms = holdUntil - Date.now();
    if (ms > 0) await sleep(ms, undefined, { signal });
  };

  /**
   * Lists the open issues (and pull requests) of `r` labelled `label`, conditionally. Returns the items and the
   * answer's ETag, `null` for 304 (unchanged since the ETag kept), or throws a one-line Error.
   */
  const list = async (r: RepoRef, label: string): Promise<{ items: ListedIssue[]; etag: string | undefined } | null> => {
    await held();
    const etag = etags.get(`${repoKey(r)} ${label}`);
    const auth = await authorization(r);
    try {
      const res = await gh.request("GET /repos/{owner}/{repo}/issues", {
        owner: r.owner,
        repo: r.repo,
        labels: label,
        state: "open",
        sort: "created",
        direction: "asc",
        per_page: 100,
        headers: etag ? { authorization: auth, "if-none-match": etag } : { authorization: auth },
      });
      heed(res.status, res.headers);
      return { items: res.data as ListedIssue[], etag: res.headers.etag };
    } catch (err) {
      const e = err as { status?: number; message?: string; response?: { headers?: Record<string, string> } };
      if (signal.aborted) throw err;
      if (e.status !== undefined) heed(e.status, e.response?.headers ?? {});
      if (e.status === 304) return null;
      throw new Error(`${e.status ? `HTTP ${e.status} ` : ""}${(e.message ?? String(err)).split("\n")[0]}`);
    }
  };

  const labelsOf = (i: ListedIssue) => i.labels.map((l) => (typeof l === "string" ? l : (l.name ?? "")));

  const dispatchFrom = async (r: RepoRef) => {
    const answer = await list(r, opts.dispatchLabel);
    if (answer === null) return;
    const claims = new Set(opts.nodes.map((n) => `fleet:${n}`));
    let handled = true;
    for (const i of answer.items) {
      if (i.pull_request) continue;
      const ref = `${r.owner}/${r.repo}#${i.number}`;
      if (labelsOf(i).some((l) => claims.has(l))) continue;
      try {
        const { task, fresh } = await opts.dispatch({ ...r, issue: i.number });
        if (fresh) opts.log(`github poll: ${ref} is labelled ${opts.dispatchLabel}: task ${task}`);
        await held();
        const auth = await authorization(r);
        await gh.rest.issues.removeLabel({ owner: r.owner, repo: r.repo, issue_number: i.number, name: opts.dispatchLabel, headers: { authorization: auth } }).then(
          (res) => heed(res.status, res.headers),
          (err: { status?: number; response?: { headers?: Record<string, string> } }) => {
            if (err.status !== undefined) heed(err.status, err.response?.headers ?? {});
            if (err.status !== 404) throw err;
          },
        );
        once(ref, null);
      } catch (err) {
        if (signal.aborted) throw err;
        handled = false;
        once(ref, `github poll: ${ref}: not dispatched: ${((err as Error).message ?? String(err)).split("\n")[0]}`);
      }
    }
    if (handled && answer.etag) etags.set(`${repoKey(r)} ${opts.dispatchLabel}`, answer.etag);
  };

  const scanPulls = async (r: RepoRef) => {
    const answer = await list(r, PULL_REQUEST_LABEL);
    if (answer === null) return;
    pulls.set(repoKey(r), answer.items.filter((i) => i.pull_request).map((i) => ({ owner: r.owner, repo: r.repo, number: i.number, task: pullTaskId(i.body) })));
    if (answer.etag) etags.set(`${repoKey(r)} ${PULL_REQUEST_LABEL}`, answer.etag);
  };

  const cycle = async () => {
    const scanned = new Map<string, RepoRef>();
    for (const r of [...opts.repos, ...opts.taskRepos()]) if (!scanned.has(repoKey(r))) scanned.set(repoKey(r), r);
    let complete = true;
    const step = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
        once(what, null);
      } catch (err) {
        if (signal.aborted) throw err;
        complete = false;
        once(what, `github poll: ${what}: ${(err as Error).message}`);
      }
    };
    for (const r of opts.repos) await step(`cannot list the issues of ${r.owner}/${r.repo} labelled ${opts.dispatchLabel}`, () => dispatchFrom(r));
    for (const r of scanned.values()) await step(`cannot list the pull requests of ${r.owner}/${r.repo} labelled ${PULL_REQUEST_LABEL}`, () => scanPulls(r));
    for (const k of [...pulls.keys()]) if (!scanned.has(k)) pulls.delete(k);
    if (complete) pullsListedAt = Date.now();
  };

  const loop = (async () => {
    while (!signal.aborted) {
      const started = Date.now();
      await cycle().catch((err: Error) => {
        if (!signal.aborted) opts.log(`github poll: ${String(err?.message ?? err).split("\n")[0]}`);
      });
      await sleep(Math.max(0, started + opts.intervalSeconds * 1000 - Date.now()), undefined, { signal }).catch(() => {});
    }
  })();

  return {
    pulls: () => [...pulls.values()].flat(),
    pullsListedAt: () => pullsListedAt,
    async stop() {
      abort.abort();
      await loop;
    },
  };
}
