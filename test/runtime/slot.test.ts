/**
 * A worker slot's runs (runtime/slot.ts, runtime/supervise.sh): the slot's Claude settings follow the node's
 * on every claim, a SIGKILLed worker takes its runs with it without any service manager, and the run
 * supervisor's own contract (exit status, stops, start errors) through the Runner. Real processes only.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Runner, SUPERVISE_SH, type RunSpec } from "../../runtime/slot.js";
import { api, fleetRun, startServer, startWorker, stopAll, tempDir, tokenOf, waitUntil, writeTokenFile, writeTokens } from "./harness.js";

afterAll(stopAll);

/** Whether any process of process group `pgid` is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function runTask(url: string, node: string, prompt: string) {
  const r = await api(url, "POST", "/v1/tasks", { token: tokenOf(node), body: { target: node, prompt } });
  expect(r.status).toBe(201);
  return waitUntil(`task ${r.body.id}`, async () => {
    const t = (await api(url, "GET", `/v1/tasks/${r.body.id}`, { token: tokenOf(node) })).body;
    return t.finishedAt ? t : null;
  });
}

describe("the slot's Claude settings", () => {
  it("are copied from the node user's ~/.claude on every claim: a changed settings.json, a new and a removed CLAUDE.md", async () => {
    const dir = tempDir();
    const nodeHome = join(dir, "node-user");
    mkdirSync(join(nodeHome, ".claude"), { recursive: true });
    const settings = join(nodeHome, ".claude", "settings.json");
    const claudeMd = join(nodeHome, ".claude", "CLAUDE.md");
    writeFileSync(settings, '{"sandbox":{"enabled":false}}\n');
    const server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: {} }), leaseSeconds: 3, claimWaitSeconds: 2 });
    startWorker({ url: server.url, dir, node: "alpha", env: { HOME: nodeHome } });
    const show = 'FAKE:exec=cd "$HOME/.claude" && for f in settings.json CLAUDE.md; do [ -f "$f" ] && cat "$f" || echo "no $f"; done';

    expect((await runTask(server.url, "alpha", show)).result).toBe('{"sandbox":{"enabled":false}}\nno CLAUDE.md\nexit 0');
    writeFileSync(settings, '{"sandbox":{"enabled":true}}\n');
    writeFileSync(claudeMd, "# Fleet node alpha\n");
    expect((await runTask(server.url, "alpha", show)).result).toBe('{"sandbox":{"enabled":true}}\n# Fleet node alpha\nexit 0');
    rmSync(claudeMd);
    expect((await runTask(server.url, "alpha", show)).result).toBe('{"sandbox":{"enabled":true}}\nno CLAUDE.md\nexit 0');
  });
});

describe("a worker killed with SIGKILL mid-run", () => {
  it.each([
    ["a run that sleeps", "FAKE:sleep=60 long job"],
    ["a run whose processes ignore SIGTERM", "FAKE:exec=trap '' TERM; sleep 60"],
  ])("takes %s with it, without systemd", async (_what, prompt) => {
    const dir = tempDir();
    const argv = join(dir, "argv");
    mkdirSync(argv);
    const server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: {} }), leaseSeconds: 3, claimWaitSeconds: 2 });
    const w = startWorker({ url: server.url, dir, node: "alpha", env: { FAKE_CLAUDE_ARGV_DIR: argv } });
    await api(server.url, "POST", "/v1/tasks", { token: tokenOf("alpha"), body: { target: "alpha", prompt } });
    const pid = await waitUntil("the stand-in to start", () => readdirSync(argv).map(Number)[0]);
    // The stand-in's process group (the supervisor's: it leads the run's session) holds claude and its sleep.
    const pgid = Number(execFileSync("ps", ["-o", "pgid=", "-p", String(pid)], { encoding: "utf8" }).trim());
    expect(groupAlive(pgid)).toBe(true);
    w.child.kill("SIGKILL");
    await w.exited;
    await waitUntil("the run's process group to be gone", () => !groupAlive(pgid), 10);
  });
});

describe("the run supervisor, through Runner", () => {
  const dir = tempDir();
  const runner = new Runner({ user: null });
  const spec = (command: string, args: string[], extra: Partial<RunSpec> = {}): RunSpec => ({ command, args, cwd: dir, env: { PATH: process.env.PATH!, HOME: dir }, ...extra });

  it("passes the command's output, exit status and environment through", async () => {
    const r = await runner.run(spec("sh", ["-c", 'echo "home=$HOME answer=$ANSWER"; echo oops >&2; exit 3'], { env: { PATH: process.env.PATH!, HOME: dir, ANSWER: "42" } }), 30);
    expect(r).toEqual({ exitCode: 3, signal: null, startError: null, stderrTail: "oops\n", stdout: `home=${dir} answer=42\n`, timedOut: false });
  });

  it.each([
    ["an argument with a NUL byte", spec("echo", ["a\u0000b"]), "cannot run echo: an argument contains a NUL byte (U+0000), which no program can receive"],
    ["a missing command", spec("/nonexistent/claude", []), `cannot run /nonexistent/claude: not found, or not executable by ${userInfo().username}`],
    ["a missing working directory", spec("true", [], { cwd: "/nonexistent/dir" }), `working directory /nonexistent/dir does not exist or ${userInfo().username} cannot enter it`],
    ["no HOME", spec("true", [], { env: { PATH: process.env.PATH! } }), "the run's environment has no HOME"],
  ])("refuses %s with a start error, never a throw", async (_what, s, startError) => {
    expect(await runner.run(s, 30)).toEqual({ exitCode: null, signal: null, startError, stderrTail: "", stdout: "", timedOut: false });
  });

  it("stops a run at its timeout: SIGTERM to its group, SIGKILL 5 s later for what ignores it", async () => {
    const term = await runner.run(spec("sleep", ["60"]), 0.3);
    expect([term.exitCode, term.timedOut]).toEqual([143, true]);
    const stubborn = await runner.run(spec("sh", ["-c", "trap '' TERM; sleep 60"]), 0.3);
    expect([stubborn.exitCode, stubborn.signal, stubborn.timedOut]).toEqual([null, "SIGKILL", true]);
  });

  it("ends what a finished run left behind in its group", async () => {
    const r = await runner.run(spec("sh", ["-c", "sleep 60 & echo $!"]), 30);
    const left = Number(r.stdout.trim());
    expect(r.exitCode).toBe(0);
    await waitUntil("the leftover sleep to be gone", () => {
      try {
        process.kill(left, 0);
        return false;
      } catch {
        return true;
      }
    }, 10);
  });
});

describe("--run-as misconfigured", () => {
  it.each([
    [["--run-as", "bad user"], '--run-as must be user names separated by commas (letters, digits, _ and -, e.g. fleetkit-w1,fleetkit-w2), got "bad user".'],
    [["--run-as", "fleetkit-w1", "--concurrency", "2"], "--run-as names 1 user(s) but --concurrency is 2: give one user per slot (e.g. --run-as fleetkit-w1,fleetkit-w2)."],
  ])("%j: exit 2 with %s", async (extra, message) => {
    const dir = tempDir();
    const r = await fleetRun(["worker", "--queue", "http://127.0.0.1:9", "--token-file", writeTokenFile(dir, "alpha"), "--node", "alpha", ...extra]);
    expect([r.code, r.out]).toEqual([2, `${message}\n`]);
  });

  it("a slot user sudo cannot switch to: the worker says so at start and exits 2, before claiming anything", async () => {
    const dir = tempDir();
    const server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: {} }), claimWaitSeconds: 1 });
    const w = startWorker({ url: server.url, dir, node: "alpha", extra: ["--run-as", "fleetkit-no-such-user"] });
    expect(await w.exited).toBe(2);
    // sudo's own words vary by version (this one adds an audit plugin line): the worker passes them all on.
    const line = w.out().split("\n").find((l) => l.includes("cannot run tasks as fleetkit"))!;
    expect(line.startsWith(`worker alpha: slot 0 cannot run tasks as fleetkit-no-such-user: sudo -n -u fleetkit-no-such-user -- ${SUPERVISE_SH} failed: sudo: unknown user fleetkit-no-such-user`)).toBe(true);
    expect(line.endsWith(`; the worker role installs that user, its home ${join(dir, "homes", "alpha-0")} and /etc/sudoers.d/fleetkit-worker`)).toBe(true);
    // (stderr and the worker's buffered stdout lines interleave in either order)
    expect(w.out().split("\n")).toContain("fleet worker: cannot run tasks as configured (see the line above): check --run-as, --home-root and the worker role's install.");
    expect((await api(server.url, "GET", "/v1/stats", { token: tokenOf("alpha") })).body.byState.running).toBe(0);
  });
});
