// @needs sshd ssh ssh-keygen
/**
 * The SSH transport and `fleet exec` against a real OpenSSH server on 127.0.0.1 (a throwaway sshd with
 * its own keys, see sshd.ts): exit codes, stdin, streaming, refused and silent peers, timeouts.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSshFailure, sshRun, type SshTarget } from "../../cli/ssh.js";
import { execOnNodes, lineSplitter, overallExitCode, run as execRun } from "../../cli/exec.js";
import { parseFleet } from "../../model/load.js";
import { LOOPBACK_HOSTS, startSshd, type TestSshd } from "./sshd.js";

let sshd: TestSshd;
let target: SshTarget;
let work: string;

beforeAll(async () => {
  sshd = await startSshd();
  process.env.FLEET_KNOWN_HOSTS = sshd.knownHosts;
  target = { name: "lo", host: "127.0.0.1", user: sshd.user, sshPort: sshd.port, sshKeyPath: sshd.keyPath, perDialTimeoutSeconds: 5 };
  work = mkdtempSync(join(tmpdir(), "fleet-exec-"));
});
afterAll(async () => {
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
  delete process.env.FLEET_KNOWN_HOSTS;
});

/** A fleet of `names`, every node being this machine's test sshd. */
function loopbackFleet(names: string[]) {
  const nodes = names.map((n, i) => `  ${n}: { host: ${LOOPBACK_HOSTS[i + 1]}, os: debian, arch: x86_64, roles: [iceccd] }`).join("\n");
  const text = `fleet: loop
defaults:
  user: ${sshd.user}
  sshPort: ${sshd.port}
  sshKeyPath: ${sshd.keyPath}
  perDialTimeoutSeconds: 5
  claude: { version: 1.0.0 }
profiles:
  sched: [icecc-scheduler]
nodes:
  s0: { host: 127.0.0.1, os: debian, arch: x86_64, profile: sched }
${nodes}
`;
  const file = join(work, `fleet-${names.length}.yaml`);
  writeFileSync(file, text);
  return { file, fleet: parseFleet(text, file) };
}

describe("sshRun", () => {
  it("returns the remote exit code, stdout and stderr", async () => {
    const r = await sshRun(target, "echo out; echo err >&2; exit 7", { timeoutSeconds: 20 });
    expect(r).toMatchObject({ reach: "ok", exitCode: 7, stdout: "out\n", stderr: "err\n" });
  });

  it("feeds stdin when input is given", async () => {
    const r = await sshRun(target, "tr a-z A-Z", { timeoutSeconds: 20, input: "fleet\n" });
    expect(r).toMatchObject({ reach: "ok", exitCode: 0, stdout: "FLEET\n" });
  });

  it("a remote command exiting 255 is not mistaken for an unreachable node", async () => {
    const r = await sshRun(target, "exit 255", { timeoutSeconds: 20 });
    expect(r).toMatchObject({ reach: "ok", exitCode: 255 });
  });

  it("a closed port is offline, with ssh's reason", async () => {
    const r = await sshRun({ ...target, sshPort: 1 }, "true", { timeoutSeconds: 20 });
    expect(r).toMatchObject({ reach: "offline", exitCode: 255, reason: "ssh: connect to host 127.0.0.1 port 1: Connection refused" });
  });

  it("a wrong key is offline (BatchMode: no password prompt)", async () => {
    const r = await sshRun({ ...target, sshKeyPath: join(sshd.dir, "host_key") }, "true", { timeoutSeconds: 20 });
    expect(r.reach).toBe("offline");
    expect(r.reason).toContain("Permission denied");
  });

  it("a command that outlives the timeout is killed and reported as timeout", async () => {
    const r = await sshRun(target, "sleep 30", { timeoutSeconds: 1 });
    expect(r).toMatchObject({ reach: "timeout", exitCode: 255, reason: "no answer within 1 s" });
  });

  it.each([
    ["ssh: connect to host 10.0.0.1 port 22: Connection timed out", true],
    ["admin@x: Permission denied (publickey).", true],
    ["Connection timed out during banner exchange", true],
    ["Host key verification failed.", true],
    ["my script failed", false],
    ["", false],
  ])("isSshFailure(%j) = %s", (stderr, expected) => expect(isSshFailure(stderr)).toBe(expected));
});

describe("fleet exec", () => {
  it("runs on every node at once: each waits until all three have started (bounded)", async () => {
    const { fleet } = loopbackFleet(["a", "b"]);
    const dir = join(work, "rendezvous");
    rmSync(dir, { recursive: true, force: true });
    const out: string[] = [];
    // Each node drops a file, then waits (at most 10 s) until all three files exist: this can only
    // finish with exit 0 when the three commands run at the same time.
    const cmd = `mkdir -p ${dir}; mktemp -p ${dir} >/dev/null; i=0; while [ "$(ls ${dir} | wc -l)" -lt 3 ]; do i=$((i+1)); [ $i -gt 100 ] && exit 9; sleep 0.1; done; echo met; echo warn >&2`;
    const results = await execOnNodes(fleet.nodes, cmd, { out: (l) => out.push(l), err: (l) => out.push("ERR " + l) });
    expect(results.map((r) => [r.node, r.reach, r.exitCode])).toEqual([["s0", "ok", 0], ["a", "ok", 0], ["b", "ok", 0]]);
    expect(readdirSync(dir)).toHaveLength(3);
    const plain = out.map((l) => l.replace(/\x1b\[[0-9;]*m/g, "")).sort();
    expect(plain).toEqual(["ERR a  | warn", "ERR b  | warn", "ERR s0 | warn", "a  | met", "b  | met", "s0 | met"]);
  });

  it("the CLI returns the highest node exit code and runs only the named targets", async () => {
    const { file } = loopbackFleet(["a", "b"]);
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
    process.stderr.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stderr.write;
    let code: number;
    try {
      code = await execRun(["--fleet", file, "a", "sched", "--", "hostname", ">/dev/null;", "exit", "3"]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    expect(code).toBe(3);
    const text = chunks.join("").replace(/\x1b\[[0-9;]*m/g, "");
    expect(text).toMatch(/^✗ s0: exit 3, \d+ ms$/m);
    expect(text).toMatch(/^✗ a: exit 3, \d+ ms$/m);
    expect(text).not.toContain(" b:");
  });

  it("--json reports each node's reach and exit code, offline nodes as 255", async () => {
    const { file } = loopbackFleet(["a"]);
    const offline = join(work, "offline.yaml");
    writeFileSync(offline, readFileSync(file, "utf8").replace(/^  sshPort: \d+$/m, "  sshPort: 1"));
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    let code: number;
    try {
      code = await execRun(["--fleet", offline, "all", "--json", "--", "true"]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    expect(code).toBe(255);
    const results = JSON.parse(chunks.join("")) as { node: string; reach: string; exitCode: number; reason: string }[];
    expect(results.map((r) => [r.node, r.reach, r.exitCode])).toEqual([["s0", "offline", 255], ["a", "offline", 255]]);
    expect(results[1].reason).toBe(`ssh: connect to host ${LOOPBACK_HOSTS[1]} port 1: Connection refused`);
  });

  it.each([
    [[{ exitCode: 0 }, { exitCode: 0 }], 0],
    [[{ exitCode: 0 }, { exitCode: 2 }, { exitCode: 1 }], 2],
    [[{ exitCode: 1 }, { exitCode: 255 }], 255],
    [[], 0],
  ])("overallExitCode(%j) = %i", (results, code) => {
    expect(overallExitCode(results.map((r, i) => ({ node: `n${i}`, reach: "ok" as const, ms: 1, ...r })))).toBe(code);
  });

  it("lineSplitter joins chunks into lines and flushes the last partial one", () => {
    const lines: string[] = [];
    const s = lineSplitter((l) => lines.push(l));
    s.push("ab");
    s.push("c\r\nd\n\ne");
    s.flush();
    expect(lines).toEqual(["abc", "d", "", "e"]);
  });
});
