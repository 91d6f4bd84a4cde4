// @needs git
/**
 * The GitHub stand-in itself (fixtures/github.ts), driven by the real @octokit/rest client and the real git:
 * every endpoint fleetkit uses answers in a shape GitHub's OpenAPI description accepts; a request the real API
 * would reject is a violation (HTTP 599, recorded) instead of a quiet success; a wrong token is a 401; git
 * clones and pushes over smart HTTP with the token from a credential helper, and the protected default branch
 * refuses every push.
 */
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitHub, type GitHubStandIn } from "./fixtures/github.js";
import { tempDir } from "./harness.js";

const TOKEN = "ghs_standInToken0123456789";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
/** A credential helper that reads the token from the environment (never argv, never the URL). */
const HELPER = `!f() { test "$1" = get && printf 'username=x-access-token\\npassword=%s\\n' "$GH_TEST_TOKEN"; }; f`;

describe("GitHub stand-in", () => {
  let gh: GitHubStandIn;
  let octokit: Octokit;
  let issue: number;
  beforeAll(async () => {
    gh = await startGitHub(TOKEN);
    gh.addRepo("acme", "widgets", { "README.md": "widgets\n" });
    issue = gh.addIssue("acme", "widgets", { title: "Fix the frobnicator", body: "It frobs twice.", comments: ["Seen on main too."] });
    octokit = new Octokit({ auth: TOKEN, baseUrl: gh.url, log: quiet });
  });
  afterAll(async () => {
    await gh?.close();
  });

  /** git, asynchronously: the stand-in serves it from this very process. */
  const git = (cwd: string, args: string[], token: string | null = TOKEN) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn("git", ["-c", "credential.helper=", "-c", `credential.helper=${HELPER}`, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
        cwd,
        env: { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0", GH_TEST_TOKEN: token ?? "" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("close", (status) => resolve({ status, stderr }));
    });

  it("answers every endpoint fleetkit uses, each answer valid against GitHub's description, and records the calls", async () => {
    const o = { owner: "acme", repo: "widgets" };
    expect((await octokit.rest.repos.get(o)).data).toMatchObject({ full_name: "acme/widgets", default_branch: "main", clone_url: `${gh.url}/git/acme/widgets.git` });
    expect((await octokit.rest.issues.get({ ...o, issue_number: issue })).data).toMatchObject({ number: issue, title: "Fix the frobnicator", state: "open" });
    expect((await octokit.rest.issues.listComments({ ...o, issue_number: issue })).data.map((c) => c.body)).toEqual(["Seen on main too."]);
    expect((await octokit.rest.issues.addLabels({ ...o, issue_number: issue, labels: ["fleet:alpha"] })).data.map((l) => l.name)).toEqual(["fleet:alpha"]);
    expect((await octokit.rest.issues.removeLabel({ ...o, issue_number: issue, name: "fleet:alpha" })).data).toEqual([]);
    expect((await octokit.rest.issues.createComment({ ...o, issue_number: issue, body: "on it" })).status).toBe(201);
    expect((await octokit.rest.pulls.list({ ...o, head: "acme:fleet/alpha/issue-1", state: "open" })).data).toEqual([]);
    expect(gh.violations).toEqual([]);
    expect(gh.calls.map((c) => `${c.operationId} ${c.status}`)).toEqual([
      "repos/get 200",
      "issues/get 200",
      "issues/list-comments 200",
      "issues/add-labels 200",
      "issues/remove-label 200",
      "issues/create-comment 201",
      "pulls/list 200",
    ]);
  });

  it.each([
    ["add-labels with no label (minItems 1)", "POST /repos/{owner}/{repo}/issues/{issue_number}/labels", { issue_number: 1, labels: [] }],
    ["a comment without body", "POST /repos/{owner}/{repo}/issues/{issue_number}/comments", { issue_number: 1 }],
    ["a pull request without head", "POST /repos/{owner}/{repo}/pulls", { base: "main", title: "x" }],
    ["pulls state=merged (enum open|closed|all)", "GET /repos/{owner}/{repo}/pulls", { state: "merged" }],
    ["an issue number that is not a number", "GET /repos/{owner}/{repo}/issues/{issue_number}", { issue_number: "one" }],
  ])("refuses what GitHub would refuse: %s → 599 and a recorded violation", async (_what, route, params) => {
    const before = gh.violations.length;
    const err = await octokit.request(route, { owner: "acme", repo: "widgets", ...params }).then(() => null, (e: { status: number }) => e);
    expect(err?.status).toBe(599);
    expect(gh.violations.length).toBe(before + 1);
    gh.violations.length = before; // expected ones; the others must stay empty
  });

  it("a wrong token is 401 Bad credentials", async () => {
    const bad = new Octokit({ auth: "ghs_wrong", baseUrl: gh.url, log: quiet });
    const err = await bad.rest.repos.get({ owner: "acme", repo: "widgets" }).then(() => null, (e: { status: number; message: string }) => e);
    expect([err?.status, err?.message]).toEqual([401, "Bad credentials - https://docs.github.com/rest"]);
  });

  it("serves git over smart HTTP behind the token: clone, push a branch, open a PR; the default branch refuses every push", async () => {
    const dir = tempDir();
    const url = `${gh.url}/git/acme/widgets.git`;
    const denied = await git(dir, ["clone", "-q", url, join(dir, "nope")], "not-the-token");
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toContain("Authentication failed");
    const work = join(dir, "w");
    expect((await git(dir, ["clone", "-q", url, work])).status).toBe(0);
    writeFileSync(join(work, "fix.txt"), "fixed\n");
    await git(work, ["add", "fix.txt"]);
    expect((await git(work, ["commit", "-q", "-m", "fix"])).status).toBe(0);
    const toMain = await git(work, ["push", "origin", "HEAD:refs/heads/main"]);
    expect(toMain.status).toBe(1);
    expect(toMain.stderr).toContain("GH006: Protected branch update failed for refs/heads/main.");
    const toBranch = await git(work, ["push", "-q", "origin", "HEAD:refs/heads/fleet/alpha/issue-1"]);
    expect(toBranch.stderr).toBe("");
    expect(toBranch.status).toBe(0);
    expect(gh.git("acme", "widgets", ["log", "--format=%s", "main"])).toBe("initial commit");
    expect(gh.git("acme", "widgets", ["log", "--format=%s", "fleet/alpha/issue-1"])).toBe("fix\ninitial commit");
    expect(execFileSync("git", ["-C", work, "config", "--get-regexp", "."], { encoding: "utf8" })).not.toContain(TOKEN);

    const o = { owner: "acme", repo: "widgets" };
    const pr = await octokit.rest.pulls.create({ ...o, head: "fleet/alpha/issue-1", base: "main", title: "Fix", body: "Closes #1", draft: true });
    expect(pr.data).toMatchObject({ number: 2, head: { ref: "fleet/alpha/issue-1" }, base: { ref: "main" }, draft: true });
    const dup = await octokit.rest.pulls.create({ ...o, head: "fleet/alpha/issue-1", base: "main", title: "Fix" }).then(() => null, (e: { status: number }) => e.status);
    expect(dup).toBe(422);
    expect((await octokit.rest.pulls.update({ ...o, pull_number: 2, body: "Closes #1 (updated)" })).data.body).toBe("Closes #1 (updated)");
    expect((await octokit.rest.pulls.list({ ...o, head: "acme:fleet/alpha/issue-1", state: "open" })).data.map((p) => p.number)).toEqual([2]);
    expect(gh.violations).toEqual([]);
  });

  it("lists issues (pull requests among them) by label with an ETag; If-None-Match on an unchanged list is a 304 that costs no rate limit", async () => {
    const o = { owner: "acme", repo: "widgets" };
    const labelled = gh.addIssue("acme", "widgets", { title: "Dispatch me", body: "", labels: ["fleet:dispatch"] });
    gh.addIssue("acme", "widgets", { title: "Not me", body: "" });
    const first = await octokit.request("GET /repos/{owner}/{repo}/issues", { ...o, labels: "fleet:dispatch", state: "open", direction: "asc", per_page: 100 });
    expect(first.data.map((i) => [i.number, i.labels.map((l) => (typeof l === "string" ? l : l.name))])).toEqual([[labelled, ["fleet:dispatch"]]]);
    expect(first.headers.etag).toMatch(/^W\/"[0-9a-f]{64}"$/);
    const remaining = Number(first.headers["x-ratelimit-remaining"]);
    const again = await octokit.request("GET /repos/{owner}/{repo}/issues", { ...o, labels: "fleet:dispatch", state: "open", direction: "asc", per_page: 100, headers: { "if-none-match": first.headers.etag } }).then(() => null, (e: { status: number; response: { headers: Record<string, string> } }) => e);
    expect([again?.status, again?.response.headers.etag, Number(again?.response.headers["x-ratelimit-remaining"])]).toEqual([304, first.headers.etag, remaining]);
    // A changed list answers 200 with a new ETag, whatever If-None-Match said; the PR shows with pull_request.
    gh.repo("acme", "widgets").pulls.push({ number: 99, title: "A fleet PR", body: "Closes #1", head: "fleet/alpha/issue-1", base: "main", draft: false, state: "open", labels: ["fleet:dispatch"] });
    const changed = await octokit.request("GET /repos/{owner}/{repo}/issues", { ...o, labels: "fleet:dispatch", per_page: 100, headers: { "if-none-match": first.headers.etag } });
    expect([changed.status, changed.data.map((i) => [i.number, Boolean(i.pull_request)]), changed.headers.etag === first.headers.etag, Number(changed.headers["x-ratelimit-remaining"])]).toEqual([200, [[99, true], [labelled, false]], false, remaining - 1]);
    gh.repo("acme", "widgets").pulls.pop();
    expect(gh.calls.slice(-3).map((c) => `${c.operationId} ${c.status} ${c.ifNoneMatch === first.headers.etag}`)).toEqual(["issues/list-for-repo 200 false", "issues/list-for-repo 304 true", "issues/list-for-repo 200 true"]);
    expect(gh.violations).toEqual([]);
  });

  it.each([
    [403, undefined],
    [429, 7],
  ] as const)("rate limited (%i, retry-after %s): every request answers with x-ratelimit-remaining 0 and the reset until it passes", async (status, retryAfterSeconds) => {
    const resetAt = Math.floor(Date.now() / 1000) + 3600;
    gh.rateLimit(resetAt, { status, retryAfterSeconds });
    const err = await octokit.rest.repos.get({ owner: "acme", repo: "widgets" }).then(() => null, (e: { status: number; message: string; response: { headers: Record<string, string> } }) => e);
    const h = err!.response.headers;
    expect([err?.status, h["x-ratelimit-remaining"], h["x-ratelimit-reset"], h["retry-after"], err?.message.split(".")[0]]).toEqual([status, "0", String(resetAt), retryAfterSeconds === undefined ? undefined : String(retryAfterSeconds), "API rate limit exceeded for user ID 1"]);
    gh.rateLimit(Math.floor(Date.now() / 1000) - 1);
    const ok = await octokit.rest.repos.get({ owner: "acme", repo: "widgets" });
    expect([ok.status, ok.headers["x-ratelimit-remaining"]]).toEqual([200, "4999"]);
    expect(gh.violations).toEqual([]);
  });
});
