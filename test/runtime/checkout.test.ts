/**
 * Repository checkouts keyed by the full URL (runtime/checkout.ts): the directory name table, then a real
 * worker running real git against repositories on disk: two repositories with one basename get two
 * checkouts, a checkout whose origin changed is cloned afresh, a `…/..` URL stays under `<home>/repos/`, and
 * no hook or config written into a checkout runs when it is updated.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkoutName } from "../../runtime/checkout.js";
import { api, startServer, startWorker, stopAll, tempDir, waitUntil, writeTokens, type Proc, type ServerProc } from "./harness.js";

describe("checkoutName: <basename>-<12 hex digits of the URL's SHA-256>, never a path", () => {
  it.each([
    ["https://github.com/acme/tools.git", "tools-bb2e24f8fd58"],
    ["https://gitlab.com/other/tools.git", "tools-ecfc8a5d3e15"],
    ["git@github.com:acme/tools.git", "tools-c03528e118e8"],
    ["https://example.com/a/..", "repo-2924bc1654ef"],
    ["https://example.com/a/.", "repo-b5e3271c3448"],
    ["..", "repo-5ec1f7e700f3"],
    ["file:///srv/repos/", "repos-7af164bdb8ff"],
    ["https://h/.hidden", "hidden-2256f087abb3"],
    ["https://h/x/my repo;rm -rf ~", "my_repo_rm_-rf__-101539fc4b27"],
    [`https://h/${"n".repeat(60)}.git`, `${"n".repeat(40)}-9fc4f28d6c3b`],
    ["C:\\\\repos\\\\proj", "proj-403c0fc95bbe"],
  ])("%s → %s", (url, name) => {
    expect(checkoutName(url)).toBe(name);
  });
});

describe("a worker's checkouts", () => {
  let dir: string;
  let server: ServerProc;
  let worker: Proc;
  const home = () => join(dir, "homes", "alpha-0");
  const checkoutOf = (url: string) => join(home(), "repos", checkoutName(url));
  const git = (cwd: string, ...args: string[]) => execFileSync("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", "-C", cwd, ...args], { encoding: "utf8" });
  /** A repository at `path` whose README says `text`, with a subdirectory `sub`. */
  const makeRepo = (path: string, text: string) => {
    mkdirSync(join(path, "sub"), { recursive: true });
    git(path, "init", "-q");
    writeFileSync(join(path, "README"), `${text}\n`);
    writeFileSync(join(path, "sub", "keep"), "");
    git(path, "add", ".");
    git(path, "commit", "-q", "-m", text);
    return `file://${path}`;
  };
  /** Runs a task in `repo` whose stand-in answers the README it finds; returns the finished task. */
  const readme = async (repo: string) => {
    const r = await api(server.url, "POST", "/v1/tasks", { body: { target: "alpha", prompt: "FAKE:exec=pwd; cat README", repo } });
    expect(r.status).toBe(201);
    return waitUntil(`task ${r.body.id}`, async () => {
      const t = (await api(server.url, "GET", `/v1/tasks/${r.body.id}`)).body;
      return t.finishedAt ? t : null;
    });
  };

  beforeAll(async () => {
    dir = tempDir();
    server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: {} }), leaseSeconds: 3, claimWaitSeconds: 2 });
    worker = startWorker({ url: server.url, dir, node: "alpha" });
  }, 60_000);
  afterAll(stopAll);

  it("two repositories with the same basename get one checkout each", async () => {
    const a = makeRepo(join(dir, "a", "proj"), "repository A");
    const b = makeRepo(join(dir, "b", "proj"), "repository B");
    expect(await readme(a)).toMatchObject({ state: "completed", result: `${checkoutOf(a)}\nrepository A\nexit 0` });
    expect(await readme(b)).toMatchObject({ state: "completed", result: `${checkoutOf(b)}\nrepository B\nexit 0` });
    expect(checkoutOf(a)).not.toBe(checkoutOf(b));
  });

  it("a checkout whose origin is another URL is cloned afresh", async () => {
    const a = `file://${join(dir, "a", "proj")}`;
    git(checkoutOf(a), "remote", "set-url", "origin", `file://${join(dir, "b", "proj")}`);
    expect(await readme(a)).toMatchObject({ state: "completed", result: `${checkoutOf(a)}\nrepository A\nexit 0` });
    expect(git(checkoutOf(a), "remote", "get-url", "origin")).toBe(`${a}\n`);
    expect(worker.out()).toContain(`checkout ${checkoutOf(a)} is a clone of file://${join(dir, "b", "proj")}, not ${a}; cloning afresh`);
  });

  it("a …/.. URL is refused by the queue, and would be checked out under <home>/repos/, never into the slot's home", async () => {
    makeRepo(join(dir, "dots", "r"), "repository R");
    const dots = `file://${join(dir, "dots", "r", "sub")}/..`;
    // Two layers: the queue's URL grammar refuses `..` segments; the worker's checkout name never follows them.
    const r = await api(server.url, "POST", "/v1/tasks", { body: { target: "alpha", prompt: "x", repo: dots } });
    expect(r.status).toBe(400);
    expect(checkoutOf(dots)).toBe(join(home(), "repos", checkoutName(dots)));
    expect(checkoutName(dots)).toMatch(/^repo-[0-9a-f]{12}$/);
    expect(existsSync(join(home(), ".git"))).toBe(false);
  });

  it("updating a checkout runs none of its hooks", async () => {
    const src = join(dir, "a", "proj");
    const a = `file://${src}`;
    const marker = join(dir, "hook-ran");
    const hook = join(checkoutOf(a), ".git", "hooks", "post-merge");
    writeFileSync(hook, `#!/bin/sh\ntouch ${marker}\n`);
    chmodSync(hook, 0o755);
    writeFileSync(join(src, "README"), "repository A, v2\n");
    git(src, "commit", "-q", "-am", "v2");
    expect(await readme(a)).toMatchObject({ state: "completed", result: `${checkoutOf(a)}\nrepository A, v2\nexit 0` });
    expect(existsSync(marker)).toBe(false);
    expect(readFileSync(join(checkoutOf(a), "README"), "utf8")).toBe("repository A, v2\n");
  });

  it("a checkout with config a clone does not write (here a command git would run to fetch) is cloned afresh", async () => {
    const a = `file://${join(dir, "a", "proj")}`;
    const marker = join(dir, "uploadpack-ran");
    git(checkoutOf(a), "config", "remote.origin.uploadpack", `touch ${marker}; git-upload-pack`);
    expect(await readme(a)).toMatchObject({ state: "completed", result: `${checkoutOf(a)}\nrepository A, v2\nexit 0` });
    expect(existsSync(marker)).toBe(false);
    expect(worker.out()).toContain(`checkout ${checkoutOf(a)} has config a clone does not write (remote.origin.uploadpack); cloning afresh`);
  });
});
