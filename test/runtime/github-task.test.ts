// @needs git
/**
 * Kind `github-issue` end to end: a real queue (with `--github-token-file`), real worker processes for two
 * nodes running the stand-in claude, the GitHub stand-in (fixtures/github.ts: REST checked against GitHub's
 * OpenAPI description, git over smart HTTP with a protected default branch). An issue becomes a pull request
 * from `fleet/<node>/issue-<n>` with Claude's change; running it again updates that pull request; a failing
 * run comments and keeps the claim label; a closed issue writes nothing; a worker killed mid-run is re-leased
 * and the second attempt opens the one pull request; the token appears in no argv, log, database, git config,
 * Claude environment, comment or pull request.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { GIT_CREDENTIAL_HELPER } from "../../runtime/github.js";
import { createHmac } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueCalls, NEW_PULL_REQUEST_CALLS, startGitHub, type GitHubStandIn } from "./fixtures/github.js";
import { fleetRun, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokens, api, type Proc, type ServerProc } from "./harness.js";

/** The GitHub token: a marker that must appear nowhere but the queue's token file and the stand-in. */
const MARKER = "ghp_fleetMarkerSecret9f2c41d7";
/** The webhook's secret (HMAC-SHA256 key of X-Hub-Signature-256). */
const HOOK_SECRET = "webhook-secret-0123456789";
/** A shell test for the marker in Claude's environment that does not itself spell the marker. */
const ENV_CHECK = `if env | grep -q "fleetMarker""Secret"; then echo token-leaked; else echo token-absent; fi`;

describe("github-issue tasks", () => {
  let dir: string;
  let gh: GitHubStandIn;
  let server: ServerProc;
  const workers: Proc[] = [];
  let env: NodeJS.ProcessEnv;
  const argvDir = () => join(dir, "argv");

  beforeAll(async () => {
    dir = tempDir();
    execFileSync("mkdir", ["-p", join(dir, "argv")]);
    gh = await startGitHub(MARKER);
    gh.addRepo("acme", "widgets", { "README.md": "widgets\n", "AGENTS.md": "Run the tests with `make test` before committing.\n" });
    const tokenFile = join(dir, "github.token");
    writeFileSync(tokenFile, MARKER + "\n", { mode: 0o600 });
    const hookFile = join(dir, "webhook.secret");
    writeFileSync(hookFile, HOOK_SECRET + "\n", { mode: 0o600 });
    const tokens = writeTokens(dir, { alpha: {}, beta: {}, gamma: {} }, null, { ops: "operator" });
    server = await startServer({ db: join(dir, "q.db"), tokens, leaseSeconds: 2, claimWaitSeconds: 2, extra: ["--github-token-file", tokenFile, "--github-api-url", gh.url, "--github-webhook-secret-file", hookFile] });
    for (const node of ["alpha", "beta"]) workers.push(startWorker({ url: server.url, dir, node, env: { FAKE_CLAUDE_ARGV_DIR: argvDir() } }));
    env = { FLEET_QUEUE_URL: server.url, FLEET_TOKEN: tokenOf("ops") };
  });
  afterAll(async () => {
    await stopAll();
    await gh?.close();
  });

  const submit = (args: string[]) => fleetRun(["task", "github", ...args, "--wait", "--json"], env, 120);

  it("turns an issue into a pull request from fleet/<node>/issue-<n>: label at claim, Claude's change pushed, PR labelled, claim label removed", async () => {
    const n = gh.addIssue("acme", "widgets", { title: "Fix the frobnicator", body: "It frobs twice.", comments: ["Seen on main too."] });
    const r = await submit([`acme/widgets#${n}`, "alpha", "--prompt", "FAKE:exec=echo fixed > fix.txt"]);
    const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect([r.code, t.state, t.error]).toEqual([0, "completed", null]);
    expect(t.github).toEqual({ owner: "acme", repo: "widgets", issue: n, base: null, draft: false });
    expect(t.result.split("\n")[0]).toBe(`pull request ${gh.url}/html/acme/widgets/pull/2 (created)`);
    expect(gh.git("acme", "widgets", ["show", `fleet/alpha/issue-${n}:fix.txt`])).toBe("fixed");
    expect(gh.git("acme", "widgets", ["log", "--format=%s|%an", `fleet/alpha/issue-${n}`])).toBe("Fix the frobnicator (#1)|fleetkit alpha\ninitial commit|Octo Cat");
    expect(gh.git("acme", "widgets", ["log", "--format=%s", "main"])).toBe("initial commit");
    const repo = gh.repo("acme", "widgets");
    expect(repo.pulls).toEqual([
      {
        number: 2,
        title: "Fix the frobnicator (#1)",
        body: `Closes #1\n\nOpened by fleetkit: task ${t.id} on node alpha, model ${t.chosenModel}, cost $0.0123.\n\nexit 0`,
        head: "fleet/alpha/issue-1",
        base: "main",
        draft: false,
        state: "open",
        labels: ["fleet:pull-request"],
      },
    ]);
    expect(repo.issues.get(n)!.labels).toEqual([]);
    expect(issueCalls(gh, n)).toEqual(NEW_PULL_REQUEST_CALLS);
    expect(gh.calls.find((c) => c.operationId === "issues/add-labels" && c.path.endsWith(`/issues/${n}/labels`))!.body).toEqual({ labels: ["fleet:alpha"] });
    expect(gh.violations).toEqual([]);
    // Claude saw the repository's AGENTS.md, the issue, its comment and the extra instructions, in the checkout.
    const runs = readdirSync(argvDir()).map((f) => readFileSync(join(argvDir(), f), "utf8"));
    const run = runs.find((x) => x.includes("Fix the frobnicator"))!;
    expect(run).toContain("cwd=" + join(dir, "homes", "alpha-0", "repos", "github-acme-widgets-"));
    for (const part of ["Run the tests with `make test` before committing.", "Issue #1: Fix the frobnicator\n\nIt frobs twice.", "Comment 1 by @octocat:\n\nSeen on main too.", "FAKE:exec=echo fixed > fix.txt"]) expect(run).toContain(part);
  });

  it("runs again on the same issue: the branch goes on from what was pushed and the open pull request is updated, not duplicated", async () => {
    const r = await submit(["acme/widgets#1", "alpha", "--prompt", `FAKE:exec=echo again >> fix.txt; ${ENV_CHECK}`]);
    const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect([r.code, t.state]).toEqual([0, "completed"]);
    expect(t.result.split("\n")[0]).toBe(`pull request ${gh.url}/html/acme/widgets/pull/2 (updated)`);
    expect(t.result).toContain("token-absent");
    expect(gh.git("acme", "widgets", ["show", "fleet/alpha/issue-1:fix.txt"])).toBe("fixed\nagain");
    expect(gh.git("acme", "widgets", ["rev-list", "--count", "fleet/alpha/issue-1"])).toBe("3");
    const repo = gh.repo("acme", "widgets");
    expect(repo.pulls.map((p) => [p.number, p.head, p.labels])).toEqual([[2, "fleet/alpha/issue-1", ["fleet:pull-request"]]]);
    expect(repo.pulls[0]!.body).toContain(`task ${t.id} on node alpha`);
    expect(gh.calls.filter((c) => c.operationId === "pulls/update").map((c) => c.status)).toEqual([200]);
    expect(gh.violations).toEqual([]);
  });

  it("a checkout whose git config Claude rewrote (insteadOf to another host, a proxy, no TLS checks, an include): the push still goes to GitHub, the other host hears nothing", async () => {
    const heard: string[] = [];
    const evil = createServer((req, res) => {
      heard.push(`${req.method} ${req.url} ${req.headers.authorization ?? "-"}`);
      res.writeHead(401, { "www-authenticate": 'Basic realm="x"' }).end();
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    try {
      const plant = [
        "echo third >> fix.txt",
        `git config url.${evilUrl}/.insteadOf ${gh.url}/`,
        `git config url.${evilUrl}/.pushInsteadOf ${gh.url}/`,
        `git config http.proxy ${evilUrl}`,
        "git config http.sslVerify false",
        "git config include.path /nonexistent/planted.config",
      ].join("; ");
      const r = await submit(["acme/widgets#1", "alpha", "--prompt", `FAKE:exec=${plant}`]);
      const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
      expect([r.code, t.state, t.error]).toEqual([0, "completed", null]);
      expect(gh.git("acme", "widgets", ["show", "fleet/alpha/issue-1:fix.txt"])).toBe("fixed\nagain\nthird");
      expect(heard).toEqual([]);
    } finally {
      await new Promise((r) => evil.close(r));
    }
  });

  it.each([
    ["the clone URL's protocol and host", "http", "127.0.0.1:8080", "password=tok-1234\n"],
    ["another host", "http", "evil.example", null],
    ["another port", "http", "127.0.0.1:8081", null],
    ["another protocol", "https", "127.0.0.1:8080", null],
  ])("the credential helper answers only for %s (git credential fill, for real)", (_what, protocol, host, answer) => {
    const r = spawnSync("git", ["-c", "credential.helper=", "-c", `credential.helper=${GIT_CREDENTIAL_HELPER}`, "credential", "fill"], {
      input: `protocol=${protocol}\nhost=${host}\n\n`,
      encoding: "utf8",
      env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", SSH_ASKPASS: "", FLEET_GIT_PROTOCOL: "http", FLEET_GIT_HOST: "127.0.0.1:8080", FLEET_GIT_TOKEN: "tok-1234" },
    });
    if (answer === null) expect(r.status).not.toBe(0);
    else expect([r.status, r.stdout.split("\n").filter((l) => l.startsWith("password="))[0] + "\n"]).toEqual([0, answer]);
  });

  it("a failing run comments on the issue (task id, what failed, last lines) and leaves the claim label; nothing is pushed", async () => {
    const n = gh.addIssue("acme", "widgets", { title: "Break things", body: "Please." });
    const r = await submit([`acme/widgets#${n}`, "beta", "--prompt", "FAKE:error"]);
    const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect([r.code, t.state]).toEqual([1, "failed"]);
    expect(t.error.split("\n")[0]).toBe("Claude's run failed: claude error_during_execution (is_error), exit 1");
    const issue = gh.repo("acme", "widgets").issues.get(n)!;
    expect(issue.labels).toEqual(["fleet:beta"]);
    expect(issue.comments.map((c) => c.body)).toEqual([
      `fleetkit task ${t.id} on node beta failed: Claude's run failed: claude error_during_execution (is_error), exit 1\n\nLast lines of output:\n\n\`\`\`\nclaude error_during_execution (is_error), exit 1\nstand-in failure\n\`\`\`\n\nThe label fleet:beta stays until someone looks; resubmit with \`fleet task github acme/widgets#${n}\`.`,
    ]);
    expect(() => gh.git("acme", "widgets", ["rev-parse", "--verify", "-q", `fleet/beta/issue-${n}`])).toThrow();
    expect(gh.violations).toEqual([]);
  });

  it("a run that changes nothing fails with a comment, and Claude's environment never held the token", async () => {
    const n = gh.addIssue("acme", "widgets", { title: "Nothing to do", body: "Really." });
    const r = await submit([`acme/widgets#${n}`, "beta", "--prompt", `FAKE:exec=${ENV_CHECK}`]);
    const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect([r.code, t.state]).toEqual([1, "failed"]);
    expect(t.error).toBe("Claude's run changed nothing in the repository; no pull request was opened\ntoken-absent\nexit 0");
    expect(gh.repo("acme", "widgets").issues.get(n)!.comments[0]!.body).toContain("failed: Claude's run changed nothing in the repository");
  });

  it.each([
    ["a closed issue", "closed", "nothing written on GitHub: issue acme/widgets#N is closed; only open issues are worked on"],
    ["an unknown issue", "missing", "nothing written on GitHub: cannot read issue acme/widgets#N: HTTP 404 Not Found - https://docs.github.com/rest"],
  ])("%s fails the task in one line and writes nothing on GitHub", async (_what, kind, error) => {
    const n = kind === "closed" ? gh.addIssue("acme", "widgets", { title: "Old", body: "Done.", state: "closed" }) : 999;
    const before = gh.calls.length;
    const r = await submit([`acme/widgets#${n}`, "beta"]);
    const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect([r.code, t.state, t.error]).toEqual([1, "failed", error.replace("#N", `#${n}`)]);
    expect(gh.calls.slice(before).map((c) => c.operationId)).toEqual(["repos/get", "issues/get"]);
  });

  it("an unknown repository fails the task in one line", async () => {
    const r = await submit(["acme/gadgets#1", "beta"]);
    const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect([r.code, t.error]).toEqual([1, "nothing written on GitHub: cannot read repository acme/gadgets: HTTP 404 Not Found - https://docs.github.com/rest"]);
  });

  it("a worker killed (SIGKILL) mid-run: the lease expires, the second attempt finishes the branch and opens the one pull request", async () => {
    const n = gh.addIssue("acme", "widgets", { title: "Slow fix", body: "Takes a while." });
    const first = startWorker({ url: server.url, dir, node: "gamma" });
    const sub = await fleetRun(["task", "github", `acme/widgets#${n}`, "gamma", "--prompt", "FAKE:exec=sleep 3; echo slow > slow.txt", "--json"], env);
    const id = JSON.parse(sub.out).id as number;
    await waitUntil("the claim label", () => gh.repo("acme", "widgets").issues.get(n)!.labels.includes("fleet:gamma"));
    await waitUntil("Claude running", () => execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).includes("FAKE:exec=sleep 3"));
    const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    expect(ps).not.toContain(MARKER);
    first.child.kill("SIGKILL");
    await first.exited;
    const second = startWorker({ url: server.url, dir, node: "gamma" });
    const t = await waitUntil("the task's end", async () => {
      const x = (await api(server.url, "GET", `/v1/tasks/${id}`, { token: tokenOf("ops") })).body;
      return x.state === "completed" || x.state === "failed" ? x : null;
    }, 60);
    expect([t.state, t.attempts]).toEqual(["completed", 2]);
    const pulls = gh.repo("acme", "widgets").pulls.filter((p) => p.head === `fleet/gamma/issue-${n}`);
    expect(pulls.map((p) => p.labels)).toEqual([["fleet:pull-request"]]);
    expect(gh.repo("acme", "widgets").issues.get(n)!.labels).toEqual([]);
    expect(gh.repo("acme", "widgets").issues.get(n)!.comments).toEqual([]);
    expect(gh.git("acme", "widgets", ["show", `fleet/gamma/issue-${n}:slow.txt`])).toBe("slow");
    workers.push(second);
  });

  it("fleet task status lists the issues left labelled: failed after the claim, newest task per issue; not those failed before it", async () => {
    const r = await fleetRun(["task", "status", "--json"], env);
    const orphans = JSON.parse(r.out).githubOrphans as Array<{ issue: string; label: string; why: string; error: string }>;
    expect(orphans.map((o) => [o.issue, o.label, o.why, o.error])).toEqual([
      ["acme/widgets#4", "fleet:beta", "failed", "Claude's run changed nothing in the repository; no pull request was opened"],
      ["acme/widgets#3", "fleet:beta", "failed", "Claude's run failed: claude error_during_execution (is_error), exit 1"],
    ]);
    const text = (await fleetRun(["task", "status"], env)).out;
    expect(text).toContain("=== GitHub issues left labelled (2) ===\n  acme/widgets#4 fleet:beta: task #");
    // The dashboard's tasks page lists the same issues (same function, runtime/api.ts githubOrphans).
    const login = await fetch(`${server.url}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${tokenOf("ops")}`, redirect: "manual" });
    const cookie = login.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const page = await (await fetch(`${server.url}/tasks`, { headers: { cookie } })).text();
    // Mustache escapes every value (/ as &#x2F;, ' as &#39;): decoded here as a browser would.
    const decoded = (html: string) => html.replaceAll("&#x2F;", "/").replaceAll("&#39;", "'");
    const items = [...page.matchAll(/<li><strong>([^<]+)<\/strong> \(([^)]+)\): <a href="\/tasks\/\d+">task #\d+<\/a> ([^<]+)<\/li>/g)].map((m) => [decoded(m[1]!), decoded(m[2]!), decoded(m[3]!)]);
    expect(items).toEqual([
      ["acme/widgets#4", "fleet:beta", "failed: Claude's run changed nothing in the repository; no pull request was opened"],
      ["acme/widgets#3", "fleet:beta", "failed: Claude's run failed: claude error_during_execution (is_error), exit 1"],
    ]);
  });

  describe("the webhook receiver (POST /v1/github/webhook)", () => {
    const labeled = (issue: number, label: string) => JSON.stringify({ action: "labeled", label: { name: label }, issue: { number: issue, title: "x" }, repository: { name: "widgets", owner: { login: "acme" } } });
    const sign = (body: string, secret = HOOK_SECRET) => "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
    const deliver = async (body: string, headers: Record<string, string>) => {
      const res = await fetch(server.url + "/v1/github/webhook", { method: "POST", body, headers: { "content-type": "application/json", "x-github-event": "issues", ...headers } });
      return { status: res.status, body: await res.json() };
    };
    const taskCount = async () => Object.values((await api(server.url, "GET", "/v1/stats", { token: tokenOf("ops") })).body.byState as Record<string, number>).reduce((a, b) => a + b, 0);

    it.each([
      ["no signature", {}],
      ["a signature with another secret", { "x-hub-signature-256": "SIGN:other-secret" }],
      ["a signature of another body", { "x-hub-signature-256": "SIGN-OTHER" }],
      ["a malformed signature", { "x-hub-signature-256": "sha1=abc" }],
    ])("%s: 401 and no task", async (_what, headers: Record<string, string>) => {
      const body = labeled(1, "fleet:dispatch");
      const sig = headers["x-hub-signature-256"];
      const h: Record<string, string> = { "x-github-delivery": `d-${Math.random().toString(16).slice(2)}`, ...headers };
      if (sig === "SIGN:other-secret") h["x-hub-signature-256"] = sign(body, "other-secret");
      if (sig === "SIGN-OTHER") h["x-hub-signature-256"] = sign(labeled(2, "fleet:dispatch"));
      const before = await taskCount();
      const r = await deliver(body, h);
      expect([r.status, r.body]).toEqual([401, { error: "X-Hub-Signature-256 is missing or does not match the body (HMAC-SHA256 with the webhook's secret)" }]);
      expect(await taskCount()).toBe(before);
    });

    it("an issue labelled fleet:dispatch becomes one task; the same delivery replayed creates none; other labels are ignored", async () => {
      const n = gh.addIssue("acme", "widgets", { title: "Dispatched", body: "From a label." });
      const body = labeled(n, "fleet:dispatch");
      const before = await taskCount();
      const first = await deliver(body, { "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "x-hub-signature-256": sign(body) });
      expect(first.status).toBe(202);
      const t = (await api(server.url, "GET", `/v1/tasks/${first.body.task}`, { token: tokenOf("ops") })).body;
      expect([t.target, t.submittedBy, t.github, t.prompt]).toEqual(["any", "github", { owner: "acme", repo: "widgets", issue: n, base: null, draft: false }, `Resolve GitHub issue acme/widgets#${n}.`]);
      const replay = await deliver(body, { "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "x-hub-signature-256": sign(body) });
      expect([replay.status, replay.body]).toEqual([200, { ignored: "delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958 was already received" }]);
      const other = labeled(n, "bug");
      const ignored = await deliver(other, { "x-github-delivery": "0f7c1f4e-cc78-11e3-81ab-4c9367dc0958", "x-hub-signature-256": sign(other) });
      expect([ignored.status, ignored.body]).toEqual([200, { ignored: "not an issue labelled fleet:dispatch" }]);
      expect(await taskCount()).toBe(before + 1);
      // It runs like any other: the stand-in claude changes nothing for the default prompt, so it fails with a comment.
      const end = await waitUntil("the dispatched task's end", async () => {
        const x = (await api(server.url, "GET", `/v1/tasks/${first.body.task}`, { token: tokenOf("ops") })).body;
        return x.state === "failed" || x.state === "completed" ? x : null;
      }, 60);
      expect(end.error.split("\n")[0]).toBe("Claude's run changed nothing in the repository; no pull request was opened");
    });
  });

  it("the token appears in no worker or queue output, database, checkout config, comment or pull request", async () => {
    const outputs = [server, ...workers].map((p) => p.out()).join("\n");
    expect(outputs).not.toContain(MARKER);
    for (const f of readdirSync(dir).filter((f) => f.startsWith("q.db"))) expect(readFileSync(join(dir, f)).includes(MARKER)).toBe(false);
    const configs = execFileSync("sh", ["-c", `cat ${join(dir, "homes")}/*/repos/*/.git/config`], { encoding: "utf8" });
    expect(configs).toContain("url = " + gh.url);
    expect(configs).not.toContain(MARKER);
    const repo = gh.repo("acme", "widgets");
    const texts = JSON.stringify([...repo.issues.values(), repo.pulls]);
    expect(texts).not.toContain(MARKER);
    expect(gh.refused).toBe(0);
  });

  it.each([
    [["acme/widgets"], 'fleet task github: expected <owner>/<repo>#<issue number>, e.g. acme/widgets#12, got "acme/widgets".'],
    [["acme/widgets#0"], 'fleet task github: expected <owner>/<repo>#<issue number>, e.g. acme/widgets#12, got "acme/widgets#0".'],
    [["acme/widgets#012"], 'fleet task github: expected <owner>/<repo>#<issue number>, e.g. acme/widgets#12, got "acme/widgets#012".'],
    [["ac--me/widgets#1"], 'fleet task github: "ac--me" is not a GitHub owner: 1-39 letters, digits or single hyphens, not at either end.'],
    [["acme-/widgets#1"], 'fleet task github: "acme-" is not a GitHub owner: 1-39 letters, digits or single hyphens, not at either end.'],
    [["acme/..#1"], 'fleet task github: ".." is not a GitHub repository name: 1-100 letters, digits, . _ -.'],
    [["acme/widgets#9999999999"], "fleet task github: issue number 9999999999 is too large (at most 2147483647)."],
    [["acme/widgets#99999999999"], 'fleet task github: expected <owner>/<repo>#<issue number>, e.g. acme/widgets#12, got "acme/widgets#99999999999".'],
    [["acme/widgets#1", "--prompt", "x", "--draft", "--tag", "gpu"], '--tag must be key=value (e.g. --tag os=macos or --tag gpu=true), got "gpu".'],
    [["acme/widgets#1", "Alpha"], 'fleet task github: expected a node name or "any" after the issue, got "Alpha".'],
    [["acme/widgets#1", "nowhere"], 'queue refused (HTTP 400): field "target": unknown node "nowhere"; known nodes: alpha, beta, gamma, or "any"'],
    [["acme/widgets#1", "--base", "../main"], '--base must be a branch name (letters, digits, . _ / -; no "..", no leading - or .), got "../main".'],
    [["acme/widgets#1", "--prompt", " "], "--prompt is empty; write the extra instructions (or leave the flag out)."],
    [["acme/widgets#1", "alpha", "beta", "x"], "fleet task github: expected <owner>/<repo>#<n> [node|any], got 4 argument(s)."],
  ])("bad input %j: one line, exit 2, nothing queued", async (args, line) => {
    const before = (await api(server.url, "GET", "/v1/stats", { token: tokenOf("ops") })).body.byState;
    const r = await fleetRun(["task", "github", ...args], env);
    expect([r.code, r.out.split("\n\n")[0]!.trim()]).toEqual([2, line]);
    expect((await api(server.url, "GET", "/v1/stats", { token: tokenOf("ops") })).body.byState).toEqual(before);
  });

  it("a queue without a GitHub token refuses the task at submit (400, exit 2)", async () => {
    const d = tempDir();
    const s = await startServer({ db: join(d, "q.db"), tokens: writeTokens(d, { alpha: {} }, null, { ops: "operator" }) });
    const r = await fleetRun(["task", "github", "acme/widgets#1"], { FLEET_QUEUE_URL: s.url, FLEET_TOKEN: tokenOf("ops") });
    expect([r.code, r.out]).toEqual([2, 'queue refused (HTTP 400): field "github": this queue has no GitHub token; start it with --github-token-file to take GitHub issue tasks\n']);
  });
});
