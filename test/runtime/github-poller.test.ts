// @needs git
/**
 * The queue's GitHub poller (runtime/github-poller.ts) end to end: a real queue process started with
 * `--github-poll-repo` and a one-second interval, against the GitHub stand-in (fixtures/github.ts: REST checked
 * against GitHub's OpenAPI description, with ETags, 304s and rate-limit headers). No worker runs, so the
 * dispatched tasks stay pending and the dedupe is seen as it is. A labelled issue becomes exactly one task over
 * many cycles and its label is consumed; unchanged lists are 304s; an issue labelled again while its task is
 * pending gets no second task (the webhook's dedupe, too); a rate-limited answer holds every request until the
 * reset, or for retry-after seconds; fleet pull requests whose task the queue does not have are listed by `fleet task status` and the
 * dashboard; SIGTERM stops a poller that is waiting out a rate limit.
 */
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitHub, type GitHubCall, type GitHubStandIn } from "./fixtures/github.js";
import { api, fleetRun, startServer, stopAll, tempDir, tokenOf, waitUntil, writeTokens, type ServerProc } from "./harness.js";

const TOKEN = "ghp_pollerMarkerSecret51c0ffee";
const HOOK_SECRET = "poller-webhook-secret-42";

describe("the GitHub poller (fleet queue serve --github-poll-repo)", () => {
  let dir: string;
  let gh: GitHubStandIn;
  let server: ServerProc;
  const ops = () => ({ token: tokenOf("ops") });
  const env = () => ({ FLEET_QUEUE_URL: server.url, FLEET_TOKEN: tokenOf("ops") });
  /** The stand-in's list calls for `label` (the dispatch poll or the pull request scan), in order. */
  const lists = (label: string) => gh.calls.filter((c) => c.operationId === "issues/list-for-repo" && c.query.labels === label);
  const githubTasks = async () => ((await api(server.url, "GET", "/v1/tasks?limit=100", ops())).body.tasks as Array<{ id: number; github: unknown; state: string; submittedBy: string; target: string }>).filter((t) => t.github);

  beforeAll(async () => {
    dir = tempDir();
    gh = await startGitHub(TOKEN);
    gh.addRepo("acme", "widgets", { "README.md": "widgets\n" });
    const tokenFile = join(dir, "github.token");
    writeFileSync(tokenFile, TOKEN + "\n", { mode: 0o600 });
    const hookFile = join(dir, "webhook.secret");
    writeFileSync(hookFile, HOOK_SECRET + "\n", { mode: 0o600 });
    const tokens = writeTokens(dir, { alpha: {}, beta: {} }, null, { ops: "operator" });
    server = await startServer({
      db: join(dir, "q.db"),
      tokens,
      extra: ["--github-token-file", tokenFile, "--github-api-url", gh.url, "--github-webhook-secret-file", hookFile, "--github-poll-repo", "acme/widgets", "--github-poll-seconds", "1"],
    });
  });
  afterAll(async () => {
    await stopAll();
    await gh?.close();
  });

  it("a labelled issue becomes exactly one task over several cycles; the label is consumed; unchanged lists are 304s; a claimed issue is left alone", async () => {
    const n = gh.addIssue("acme", "widgets", { title: "Dispatch me", body: "Please.", labels: ["bug", "fleet:dispatch"] });
    const claimed = gh.addIssue("acme", "widgets", { title: "A worker failed on me", body: "", labels: ["fleet:dispatch", "fleet:beta"] });
    gh.addIssue("acme", "widgets", { title: "Not for the fleet", body: "", labels: ["bug"] });
    const start = lists("fleet:dispatch").length;
    // Four 304s in a row after the label went: several whole cycles with nothing new.
    await waitUntil("four unchanged polls", () => lists("fleet:dispatch").slice(start).filter((c) => c.status === 304).length >= 4, 30);
    const tasks = await githubTasks();
    expect(tasks.map((t) => [t.github, t.state, t.submittedBy, t.target])).toEqual([[{ owner: "acme", repo: "widgets", issue: n, base: null, draft: false }, "pending", "github", "any"]]);
    const repo = gh.repo("acme", "widgets");
    expect(repo.issues.get(n)!.labels).toEqual(["bug"]);
    expect(repo.issues.get(claimed)!.labels).toEqual(["fleet:dispatch", "fleet:beta"]);
    // The sequence: the list with the issue, the label removed, the list without it (its ETag sent, the list
    // changed: 200), then 304s, each sending the ETag of that last 200.
    const seq = gh.calls.filter((c) => c.at >= lists("fleet:dispatch")[start]!.at && (c.query.labels === "fleet:dispatch" || c.operationId === "issues/remove-label"));
    expect(seq.slice(0, 6).map((c) => `${c.operationId} ${c.status}`)).toEqual([
      "issues/list-for-repo 200",
      "issues/remove-label 200",
      "issues/list-for-repo 200",
      "issues/list-for-repo 304",
      "issues/list-for-repo 304",
      "issues/list-for-repo 304",
    ]);
    expect(decodeURIComponent(seq[1]!.path)).toBe(`/repos/acme/widgets/issues/${n}/labels/fleet:dispatch`);
    const sent = seq.map((c) => c.ifNoneMatch);
    expect([typeof sent[0], typeof sent[2], sent[2] !== sent[0], sent[3] !== sent[2], sent[4] === sent[3], sent[5] === sent[3]]).toEqual(["string", "string", true, true, true, true]);
    expect(seq[0]!.query).toEqual({ labels: "fleet:dispatch", state: "open", sort: "created", direction: "asc", per_page: "100" });
    expect(server.out()).toContain(`fleet queue: github poll: acme/widgets#${n} is labelled fleet:dispatch: task ${tasks[0]!.id}\n`);
    expect(gh.violations).toEqual([]);
  });

  it("an issue labelled again while its task is pending gets no second task (label consumed again); the webhook dedupes the same way", async () => {
    const [task] = await githubTasks();
    const n = (task!.github as { issue: number }).issue;
    const repo = gh.repo("acme", "widgets");
    const removals = () => gh.calls.filter((c) => c.operationId === "issues/remove-label" && decodeURIComponent(c.path).endsWith(`/issues/${n}/labels/fleet:dispatch`)).length;
    const before = removals();
    repo.issues.get(n)!.labels.push("fleet:dispatch");
    await waitUntil("the label consumed again", () => removals() === before + 1 && repo.issues.get(n)!.labels.join() === "bug");
    const body = JSON.stringify({ action: "labeled", label: { name: "fleet:dispatch" }, issue: { number: n, title: "x" }, repository: { name: "widgets", owner: { login: "acme" } } });
    const signature = "sha256=" + createHmac("sha256", HOOK_SECRET).update(body).digest("hex");
    const res = await fetch(server.url + "/v1/github/webhook", { method: "POST", body, headers: { "content-type": "application/json", "x-github-event": "issues", "x-github-delivery": "3f1e2d4c-cc78-11e3-81ab-4c9367dc0958", "x-hub-signature-256": signature } });
    expect([res.status, await res.json()]).toEqual([200, { ignored: `acme/widgets#${n} already has task ${task!.id} (pending)`, task: task!.id }]);
    expect((await githubTasks()).map((t) => t.id)).toEqual([task!.id]);
    expect(gh.violations).toEqual([]);
  });

  it("fleet pull requests whose task the queue does not have are listed by fleet task status and the tasks page; one whose task exists is not", async () => {
    const [task] = await githubTasks();
    const repo = gh.repo("acme", "widgets");
    const pr = (body: string, labels = ["fleet:pull-request"]) => {
      const number = repo.nextNumber++;
      repo.pulls.push({ number, title: `PR ${number}`, body, head: `fleet/alpha/issue-${number}`, base: "main", draft: false, state: "open", labels });
      return number;
    };
    const live = pr(`Closes #1\n\nOpened by fleetkit: task ${task!.id} on node alpha, model sonnet, cost $0.0100.\n\ndone`);
    const gone = pr("Closes #2\n\nOpened by fleetkit: task 999 on node beta, model opus, cost $1.0000.\n\ndone");
    const edited = pr("Someone rewrote this description.");
    pr("Opened by fleetkit: task 998 on node beta, model opus, cost $1.0000.", ["enhancement"]);
    const expected = [
      { kind: "pull-request", issue: `acme/widgets#${gone}`, label: "fleet:pull-request", task: 999, why: "task-gone", error: null },
      { kind: "pull-request", issue: `acme/widgets#${edited}`, label: "fleet:pull-request", task: null, why: "task-gone", error: null },
    ];
    const answer = await waitUntil("the pull requests listed", async () => {
      const a = (await api(server.url, "GET", "/v1/github/orphans", ops())).body as { orphans: unknown[]; pullsListedAt: string | null };
      return a.orphans.length === 2 ? a : null;
    });
    expect(answer.orphans).toEqual(expected);
    expect(Date.parse(answer.pullsListedAt!)).toBeGreaterThan(0);
    expect(live).toBeLessThan(gone);
    // A node's token sees only the issues of its own tasks: no pull requests.
    expect((await api(server.url, "GET", "/v1/github/orphans", { token: tokenOf("alpha") })).body.orphans).toEqual([]);

    const json = await fleetRun(["task", "status", "--json"], env());
    expect([json.code, JSON.parse(json.out).githubOrphans]).toEqual([0, expected]);
    const text = await fleetRun(["task", "status"], env());
    expect(text.out).toContain(`=== Fleet pull requests without their task (2) ===\n  acme/widgets#${gone} fleet:pull-request: task #999 is gone (purged)\n  acme/widgets#${edited} fleet:pull-request: its body names no task\n`);
    expect(text.out).not.toContain("GitHub issues left labelled");

    const login = await fetch(`${server.url}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${tokenOf("ops")}`, redirect: "manual" });
    const cookie = login.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const page = (await (await fetch(`${server.url}/tasks`, { headers: { cookie } })).text()).replaceAll("&#x2F;", "/");
    const items = [...page.matchAll(/<li><strong>([^<]+)<\/strong> \(([^)]+)\): ([^<]+)<\/li>/g)].map((m) => [m[1], m[2], m[3]]);
    expect(items).toEqual([
      [`acme/widgets#${gone}`, "fleet:pull-request", "task #999 is gone (purged)"],
      [`acme/widgets#${edited}`, "fleet:pull-request", "its body names no task"],
    ]);
    expect(gh.violations).toEqual([]);
  });

  it("a rate-limited answer (403, x-ratelimit-remaining 0) holds every request until the reset, logged once", async () => {
    const resetAt = Math.floor(Date.now() / 1000) + 2;
    const from = gh.calls.length;
    gh.rateLimit(resetAt);
    const after = await waitUntil("a request after the reset", () => gh.calls.slice(from).find((c) => c.status !== 403), 30);
    const limited = gh.calls.slice(from).filter((c) => c.status === 403);
    expect(limited.length).toBe(1);
    expect(after.at).toBeGreaterThanOrEqual(resetAt * 1000);
    expect(gh.calls.slice(from).filter((c) => c.at < resetAt * 1000).map((c: GitHubCall) => c.status)).toEqual([403]);
    const line = `fleet queue: github poll: rate limited (HTTP 403); next request at ${new Date(resetAt * 1000 + 1000).toISOString()}\n`;
    expect(server.out().split(line).length - 1).toBe(1);
    // Polling goes on afterwards.
    await waitUntil("a 304 after the reset", () => gh.calls.slice(from).some((c) => c.status === 304));
    expect(gh.violations).toEqual([]);
  });

  it("a secondary rate limit (429 with retry-after) holds every request for that many seconds, logged once", async () => {
    const from = gh.calls.length;
    gh.rateLimit(Math.floor(Date.now() / 1000) + 2, { status: 429, retryAfterSeconds: 3 });
    const after = await waitUntil("a request after the wait", () => gh.calls.slice(from).find((c) => c.status !== 429), 30);
    const limited = gh.calls.slice(from).filter((c) => c.status === 429);
    expect(limited.length).toBe(1);
    expect(after.at).toBeGreaterThanOrEqual(limited[0]!.at + 3000);
    expect(server.out().match(/fleet queue: github poll: rate limited \(HTTP 429, retry-after 3 s\); next request at \d{4}-\d\d-\d\dT[\d:.]+Z\n/g)?.length).toBe(1);
    expect(gh.violations).toEqual([]);
  });

  it("SIGTERM stops the queue while the poller waits out a rate limit: exit 0, no further request", async () => {
    const from = gh.calls.length;
    gh.rateLimit(Math.floor(Date.now() / 1000) + 3600);
    await waitUntil("the rate-limited answer", () => gh.calls.slice(from).some((c) => c.status === 403));
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    expect(server.out()).toMatch(/fleet queue: stopped\n$/);
    expect(gh.calls.slice(from).map((c) => c.status)).toEqual([403]);
  });
});
