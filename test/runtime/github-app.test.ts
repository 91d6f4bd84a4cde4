// @needs git
/**
 * `github-issue` tasks with a GitHub App instead of a token file: a real queue started with `--github-app-id`
 * and `--github-app-key-file` (a key pair generated here; the stand-in holds the public half and verifies every
 * App JWT with it), real worker processes, the GitHub stand-in (fixtures/github.ts), which enforces each minted
 * installation token per repository on REST and git. Each task's worker gets a fresh installation token
 * restricted to the task's repository; two tasks on two repositories get two tokens, each refused on the other;
 * the private key and the minted tokens appear in no argv, log, database, checkout config, comment or pull
 * request; a bad key file is one line at queue start, a wrong App id one line at the first task.
 */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { generateKeyPairSync, sign } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POLLER_PERMISSIONS, TASK_PERMISSIONS } from "../../runtime/github-app.js";
import { startGitHub, type GitHubStandIn, type MintedToken } from "./fixtures/github.js";
import { api, fleetRun, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokens, type Proc, type ServerProc } from "./harness.js";

/** The stand-in's own (personal) token: never given to the queue here, so every call fleetkit makes must use an App token. */
const PAT = "ghp_standInOwnTokenNotForFleet";
const APP_ID = 424242;
const INSTALLATION = 77;
const run = promisify(execFile);
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe("github-issue tasks with a GitHub App", () => {
  let dir: string;
  let gh: GitHubStandIn;
  let server: ServerProc;
  const workers: Proc[] = [];
  let env: NodeJS.ProcessEnv;
  let privateKey: string;
  /** A line from the middle of the private key's PEM: must appear nowhere but the key file. */
  let keyMarker: string;
  let keyFile: string;

  beforeAll(async () => {
    dir = tempDir();
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs1", format: "pem" } });
    privateKey = pair.privateKey;
    keyMarker = privateKey.split("\n")[5]!;
    gh = await startGitHub(PAT, { app: { id: APP_ID, publicKey: pair.publicKey } });
    gh.addRepo("acme", "widgets", { "README.md": "widgets\n" });
    gh.addRepo("acme", "gadgets", { "README.md": "gadgets\n" });
    gh.addRepo("acme", "private", { "README.md": "not installed\n" });
    // One installation holds both repositories: a task token's reach comes from its `repositories`, not the installation.
    gh.install(INSTALLATION, "acme", "widgets");
    gh.install(INSTALLATION, "acme", "gadgets");
    keyFile = join(dir, "app.pem");
    writeFileSync(keyFile, privateKey, { mode: 0o600 });
    const tokens = writeTokens(dir, { alpha: {}, beta: {} }, null, { ops: "operator" });
    server = await startServer({
      db: join(dir, "q.db"),
      tokens,
      leaseSeconds: 2,
      claimWaitSeconds: 2,
      extra: ["--github-app-id", String(APP_ID), "--github-app-key-file", keyFile, "--github-api-url", gh.url, "--github-poll-repo", "acme/widgets", "--github-poll-seconds", "1"],
    });
    for (const node of ["alpha", "beta"]) workers.push(startWorker({ url: server.url, dir, node }));
    env = { FLEET_QUEUE_URL: server.url, FLEET_TOKEN: tokenOf("ops") };
  });
  afterAll(async () => {
    await stopAll();
    await gh?.close();
  });

  const submit = async (args: string[]) => {
    const r = await fleetRun(["task", "github", ...args, "--wait", "--json"], env, 120);
    return { code: r.code, t: JSON.parse(r.out.slice(r.out.indexOf("{"))) };
  };
  const taskTokens = (repo: string) => gh.minted.filter((m) => m.repos.join() === repo && m.permissions.contents === "write");
  const octokit = (token: string) => new Octokit({ auth: token, baseUrl: gh.url, log: quiet });
  /** `git ls-remote` of a stand-in repository with `token` (asynchronous: the stand-in answers in this process). */
  const gitLsRemote = async (token: string, repo: string) =>
    (
      await run("sh", ["-c", `git -c credential.helper= -c 'credential.helper=!f() { echo username=x-access-token; echo "password=$T"; }; f' ls-remote ${gh.url}/git/${repo}.git 2>&1; echo "exit $?"`], {
        encoding: "utf8",
        env: { ...process.env, T: token, GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_GLOBAL: "/dev/null" },
      })
    ).stdout;

  it("an issue becomes a pull request through a fresh installation token restricted to the task's repository", async () => {
    const n = gh.addIssue("acme", "widgets", { title: "Fix the frobnicator", body: "It frobs twice." });
    const before = gh.calls.length;
    const { code, t } = await submit([`acme/widgets#${n}`, "alpha", "--prompt", "FAKE:exec=echo fixed > fix.txt"]);
    expect([code, t.state, t.error]).toEqual([0, "completed", null]);
    expect(t.result.split("\n")[0]).toBe(`pull request ${gh.url}/html/acme/widgets/pull/2 (created)`);
    expect(gh.git("acme", "widgets", ["show", `fleet/alpha/issue-${n}:fix.txt`])).toBe("fixed");
    expect(gh.repo("acme", "widgets").pulls.map((p) => [p.head, p.labels])).toEqual([[`fleet/alpha/issue-${n}`, ["fleet:pull-request"]]]);
    // One task token, for acme/widgets alone, with exactly the task's permissions, lasting an hour.
    const minted = taskTokens("acme/widgets");
    expect(minted.map((m) => [m.installationId, m.repos, m.permissions])).toEqual([[INSTALLATION, ["acme/widgets"], { ...TASK_PERMISSIONS }]]);
    expect(Math.round((minted[0]!.expiresAt - Date.now()) / 60_000)).toBeGreaterThan(55);
    // Every call of the task was made with that token (the stand-in's own token was never used); the App's JWT
    // only found the installation and minted tokens.
    const i = gh.minted.indexOf(minted[0]!);
    const task = gh.calls.slice(before).filter((c) => c.path.includes(`/issues/${n}`) || c.path.includes("/pulls"));
    expect(task.map((c) => `${c.operationId} ${c.status} ${c.auth}`)).toEqual([
      `issues/get 200 installation ${i}`,
      `issues/add-labels 200 installation ${i}`,
      `issues/list-comments 200 installation ${i}`,
      `pulls/list 200 installation ${i}`,
      `pulls/create 201 installation ${i}`,
      `issues/remove-label 200 installation ${i}`,
    ]);
    expect(new Set(gh.calls.map((c) => c.auth))).not.toContain("token");
    expect(gh.calls.filter((c) => c.operationId.startsWith("apps/")).map((c) => `${c.operationId} ${c.status} ${c.auth}`)).toContain("apps/get-repo-installation 200 app");
    expect(gh.violations).toEqual([]);
  });

  it("the poller lists with its own installation tokens, restricted to the repository and to reading issues and pull requests (and removing labels)", async () => {
    await waitUntil("a poll", () => gh.calls.some((c) => c.operationId === "issues/list-for-repo" && c.status === 200));
    const polls = gh.calls.filter((c) => c.operationId === "issues/list-for-repo");
    const used = new Set(polls.map((c) => gh.minted[Number(c.auth.split(" ")[1])]!));
    expect([...used].map((m) => [m.repos, m.permissions])).toEqual([[["acme/widgets"], { ...POLLER_PERMISSIONS }]]);
    expect(polls.every((c) => c.auth.startsWith("installation "))).toBe(true);
  });

  it("two tasks on two repositories get two different tokens, each refused on the other repository (REST and git) and working on its own", async () => {
    const w = gh.addIssue("acme", "widgets", { title: "Widgets", body: "w" });
    const g = gh.addIssue("acme", "gadgets", { title: "Gadgets", body: "g" });
    const [a, b] = await Promise.all([submit([`acme/widgets#${w}`, "alpha", "--prompt", "FAKE:exec=echo w > w.txt"]), submit([`acme/gadgets#${g}`, "beta", "--prompt", "FAKE:exec=echo g > g.txt"])]);
    expect([a.t.state, b.t.state, a.t.error, b.t.error]).toEqual(["completed", "completed", null, null]);
    expect(gh.git("acme", "gadgets", ["show", `fleet/beta/issue-${g}:g.txt`])).toBe("g");
    const widgets = taskTokens("acme/widgets").at(-1)!;
    const gadgets = taskTokens("acme/gadgets").at(-1)!;
    expect(taskTokens("acme/gadgets")).toHaveLength(1);
    expect(widgets.token).not.toBe(gadgets.token);
    const refusedBefore = gh.refused;
    const cases: Array<[MintedToken, string, string]> = [
      [widgets, "acme", "gadgets"],
      [gadgets, "acme", "widgets"],
      [widgets, "acme", "private"],
    ];
    for (const [tok, owner, repo] of cases) {
      const o = octokit(tok.token);
      const get = await o.rest.repos.get({ owner, repo }).then(() => 200, (e: { status: number }) => e.status);
      const label = await o.rest.issues.addLabels({ owner, repo, issue_number: 1, labels: ["x"] }).then(() => 200, (e: { status: number }) => e.status);
      expect([`${owner}/${repo}`, get, label]).toEqual([`${owner}/${repo}`, 404, 404]);
      expect(await gitLsRemote(tok.token, `${owner}/${repo}`)).toMatch(/not found[\s\S]*exit 128\n$/);
    }
    expect(gh.refused - refusedBefore).toBe(9);
    // On its own repository each works (REST and git).
    expect((await octokit(widgets.token).rest.repos.get({ owner: "acme", repo: "widgets" })).status).toBe(200);
    expect((await octokit(gadgets.token).rest.repos.get({ owner: "acme", repo: "gadgets" })).status).toBe(200);
    expect(await gitLsRemote(gadgets.token, "acme/gadgets")).toMatch(/refs\/heads\/main\n[\s\S]*exit 0\n$/);
    // A poller token (issues write, pull requests read, no contents) cannot open a pull request or push.
    const poll = gh.minted.find((m) => m.permissions.contents === undefined)!;
    const pr = await octokit(poll.token).rest.pulls.create({ owner: "acme", repo: "widgets", head: `fleet/alpha/issue-${w}`, base: "main", title: "x" }).then(() => null, (e: { status: number; message: string }) => [e.status, e.message]);
    expect(pr).toEqual([403, "Resource not accessible by integration - https://docs.github.com/rest"]);
    expect(await gitLsRemote(poll.token, "acme/widgets")).toMatch(/exit 128\n$/);
    expect(gh.violations).toEqual([]);
  });

  it("a token expiring within 5 minutes is asked for again before the push: the branch and pull request go through with the second", async () => {
    gh.tokenLifetimeSeconds = 240;
    try {
      const n = gh.addIssue("acme", "gadgets", { title: "Short-lived", body: "s" });
      const before = taskTokens("acme/gadgets").length;
      const from = gh.calls.length;
      const { code, t } = await submit([`acme/gadgets#${n}`, "beta", "--prompt", "FAKE:exec=echo s > s.txt"]);
      expect([code, t.state, t.error]).toEqual([0, "completed", null]);
      const [first, second] = taskTokens("acme/gadgets").slice(before);
      expect(taskTokens("acme/gadgets").length - before).toBe(2);
      expect(first!.token).not.toBe(second!.token);
      const [i, j] = [gh.minted.indexOf(first!), gh.minted.indexOf(second!)];
      const task = gh.calls.slice(from).filter((c) => c.path.includes(`/issues/${n}`) || c.path.includes("/pulls"));
      expect(task.map((c) => `${c.operationId} ${c.auth}`)).toEqual([
        `issues/get installation ${i}`,
        `issues/add-labels installation ${i}`,
        `issues/list-comments installation ${i}`,
        `pulls/list installation ${j}`,
        `pulls/create installation ${j}`,
        `issues/remove-label installation ${j}`,
      ]);
      expect(gh.git("acme", "gadgets", ["show", `fleet/beta/issue-${n}:s.txt`])).toBe("s");
    } finally {
      gh.tokenLifetimeSeconds = 3600;
    }
  });

  it("an installation token asked for a repository outside the installation is refused by GitHub: the task fails in one line, nothing written", async () => {
    gh.addIssue("acme", "private", { title: "Hidden", body: "h" });
    const { code, t } = await submit(["acme/private#1", "beta"]);
    expect([code, t.state]).toEqual([1, "failed"]);
    expect(t.error).toBe(
      `nothing written on GitHub: cannot get the GitHub token from the queue: GitHub App ${APP_ID}: cannot find its installation on acme/private: HTTP 404 Not Found - https://docs.github.com/rest (install the App on that repository)`,
    );
    expect(server.out()).toContain(`fleet queue: task ${t.id}: GitHub App ${APP_ID}: cannot find its installation on acme/private: HTTP 404`);
  });

  it("the private key and the minted tokens appear in no process argv, queue or worker output, database, checkout config, comment or pull request", async () => {
    const secrets = [keyMarker, ...gh.minted.map((m) => m.token)];
    expect(secrets.length).toBeGreaterThan(3);
    const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    const outputs = [server, ...workers].map((p) => p.out()).join("\n");
    const db = readdirSync(dir).filter((f) => f.startsWith("q.db")).map((f) => readFileSync(join(dir, f)).toString("latin1")).join("\n");
    const configs = execFileSync("sh", ["-c", `cat ${join(dir, "homes")}/*/repos/*/.git/config`], { encoding: "utf8" });
    const texts = JSON.stringify(["widgets", "gadgets", "private"].map((r) => [[...gh.repo("acme", r).issues.values()], gh.repo("acme", r).pulls]));
    expect(ps).toContain("--github-app-key-file");
    expect(configs).toContain("url = " + gh.url);
    for (const [what, text] of Object.entries({ ps, outputs, db, configs, texts })) {
      expect([what, secrets.filter((s) => text.includes(s)).length]).toEqual([what, 0]);
    }
  });

  describe("the stand-in's App JWT check (what GitHub refuses, so a test cannot pass with a token GitHub would not mint)", () => {
    /** An RS256 JWT over `claims`, signed with `key` (default: the App's key). */
    const jwt = (claims: Record<string, unknown>, key: string = privateKey, alg = "RS256") => {
      const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
      const head = `${part({ alg, typ: "JWT" })}.${part(claims)}`;
      return `${head}.${sign("sha256", Buffer.from(head), key).toString("base64url")}`;
    };
    const now = () => Math.floor(Date.now() / 1000);
    const other = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
    const undecodable = "A JSON web token could not be decoded";
    it.each<[string, () => string, number, string | null]>([
      ["a good JWT (iat 30 s back, exp 9.5 min ahead, as auth-app signs)", () => jwt({ iss: APP_ID, iat: now() - 30, exp: now() + 570 }), 200, null],
      ["iss as a string", () => jwt({ iss: String(APP_ID), iat: now() - 30, exp: now() + 570 }), 200, null],
      ["another App's id", () => jwt({ iss: APP_ID + 1, iat: now() - 30, exp: now() + 570 }), 401, undecodable],
      ["signed with another key", () => jwt({ iss: APP_ID, iat: now() - 30, exp: now() + 570 }, other), 401, undecodable],
      ["alg none", () => jwt({ iss: APP_ID, iat: now() - 30, exp: now() + 570 }, privateKey, "none"), 401, undecodable],
      ["expired", () => jwt({ iss: APP_ID, iat: now() - 700, exp: now() - 100 }), 401, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires."],
      ["exp more than 10 minutes ahead", () => jwt({ iss: APP_ID, iat: now() - 30, exp: now() + 700 }), 401, "'Expiration time' claim ('exp') is too far in the future."],
      ["iat in the future", () => jwt({ iss: APP_ID, iat: now() + 120, exp: now() + 500 }), 401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued."],
      ["not a JWT (the stand-in's own token)", () => PAT, 401, undecodable],
    ])("%s → %i", async (_what, token, status, message) => {
      const res = await fetch(`${gh.url}/repos/acme/widgets/installation`, { headers: { authorization: `Bearer ${token()}`, accept: "application/vnd.github+json" } });
      const body = (await res.json()) as { id?: number; message?: string };
      expect([res.status, status === 200 ? body.id : body.message]).toEqual([status, status === 200 ? INSTALLATION : message]);
      expect(gh.violations).toEqual([]);
    });

    it("an installation token cannot mint tokens, and a JWT is no installation token", async () => {
      const minted = gh.minted[0]!.token;
      const mint = await fetch(`${gh.url}/app/installations/${INSTALLATION}/access_tokens`, { method: "POST", headers: { authorization: `token ${minted}`, "content-type": "application/json" }, body: "{}" });
      expect([mint.status, ((await mint.json()) as { message: string }).message]).toEqual([401, undecodable]);
      const get = await fetch(`${gh.url}/repos/acme/widgets`, { headers: { authorization: `Bearer ${jwt({ iss: APP_ID, iat: now() - 30, exp: now() + 570 })}` } });
      expect([get.status, ((await get.json()) as { message: string }).message]).toEqual([401, "Bad credentials"]);
    });

    it.each<[string, Record<string, unknown>, number, string]>([
      ["a repository outside the installation", { repositories: ["private"] }, 422, "There is at least one repository that does not exist or is not accessible to the parent installation."],
      ["a permission the App was not granted", { repositories: ["widgets"], permissions: { administration: "write" } }, 422, "The permissions requested are not granted to this installation."],
      ["an unknown installation", {}, 404, "Not Found"],
    ])("minting for %s is refused", async (what, body, status, message) => {
      const id = what === "an unknown installation" ? 999 : INSTALLATION;
      const res = await fetch(`${gh.url}/app/installations/${id}/access_tokens`, { method: "POST", headers: { authorization: `Bearer ${jwt({ iss: APP_ID, iat: now() - 30, exp: now() + 570 })}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      expect([res.status, ((await res.json()) as { message: string }).message]).toEqual([status, message]);
      expect(gh.violations).toEqual([]);
    });
  });

  describe("a wrong App", () => {
    it.each([
      ["garbage", "not a key\n", "does not hold a PEM private key: download one from the App's settings (\"Private keys\", Generate a private key) and write it there whole, BEGIN and END lines included."],
      ["an EC key", generateKeyPairSync("ec", { namedCurve: "P-256", privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey, "holds an ec key; GitHub Apps sign with RSA (RS256): use the .pem GitHub generated for the App."],
    ])("a key file holding %s: one line at queue start, exit 2", async (_what, text, tail) => {
      const d = tempDir();
      const file = join(d, "bad.pem");
      writeFileSync(file, text, { mode: 0o600 });
      const r = await fleetRun(["queue", "serve", "--db", join(d, "q.db"), "--listen", "127.0.0.1:0", "--tokens", writeTokens(d, { alpha: {} }), "--github-app-id", "1", "--github-app-key-file", file]);
      expect([r.code, r.out]).toEqual([2, `GitHub App key file ${file} ${tail}\n`]);
    });

    it.each([
      [["--github-app-id", "12x", "--github-app-key-file", "KEY"], '--github-app-id must be the App\'s numeric ID (its settings page, "App ID"), got "12x".'],
      [["--github-app-id", "1"], "a GitHub App needs both --github-app-id (its App ID) and --github-app-key-file (its private key, mode 0600)."],
      [["--github-app-id", "1", "--github-app-key-file", "KEY", "--github-token-file", "KEY"], "--github-token-file and --github-app-id/--github-app-key-file are two ways to the same thing: give one (a fine-grained token, or a GitHub App)."],
      [["--github-app-id", "1", "--github-app-key-file", "KEY", "--github-app-installation-id", "0"], "--github-app-installation-id must be a numeric installation ID (the number at the end of the installation's settings URL), got \"0\"."],
    ])("flags %j: one line at queue start, exit 2", async (flags, line) => {
      const d = tempDir();
      const r = await fleetRun(["queue", "serve", "--db", join(d, "q.db"), "--listen", "127.0.0.1:0", "--tokens", writeTokens(d, { alpha: {} }), ...flags.map((f) => (f === "KEY" ? keyFile : f))]);
      expect([r.code, r.out]).toEqual([2, `${line}\n`]);
    });

    it("a wrong App id (the key is another App's): the queue starts; the first task fails in one line naming the App, and the queue's log says it once", async () => {
      const d = tempDir();
      const s = await startServer({
        db: join(d, "q.db"),
        tokens: writeTokens(d, { delta: {} }, null, { ops: "operator" }),
        leaseSeconds: 2,
        claimWaitSeconds: 2,
        extra: ["--github-app-id", "999", "--github-app-key-file", keyFile, "--github-app-installation-id", String(INSTALLATION), "--github-api-url", gh.url],
      });
      const worker = startWorker({ url: s.url, dir: d, node: "delta" });
      const n = gh.addIssue("acme", "widgets", { title: "Never claimed", body: "x" });
      const r = await fleetRun(["task", "github", `acme/widgets#${n}`, "delta", "--wait", "--json"], { FLEET_QUEUE_URL: s.url, FLEET_TOKEN: tokenOf("ops") }, 120);
      const t = JSON.parse(r.out.slice(r.out.indexOf("{")));
      const line = `GitHub App 999: cannot mint an installation token for acme/widgets (installation ${INSTALLATION}): HTTP 401 A JSON web token could not be decoded - https://docs.github.com/rest`;
      expect([r.code, t.state, t.error]).toEqual([1, "failed", `nothing written on GitHub: cannot get the GitHub token from the queue: ${line}`]);
      expect(s.out().split("\n").filter((l) => l.includes("GitHub App 999"))).toEqual([`fleet queue: task ${t.id}: ${line}`]);
      expect(gh.repo("acme", "widgets").issues.get(n)!.labels).toEqual([]);
      expect(s.out() + worker.out()).not.toContain(keyMarker);
      const task = (await api(s.url, "GET", `/v1/tasks/${t.id}`, { token: tokenOf("ops") })).body;
      expect(task.attempts).toBe(1);
    });
  });
});
