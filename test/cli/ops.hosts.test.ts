// @needs debootstrap systemd-nspawn ip iptables ssh ssh-keygen sshd sudo
/**
 * The `fleet` day-2 verbs end to end on real nodes: four Debian nodes booted by the hosts harness
 * (systemd as PID 1, sshd, each in its own network namespace). Three form the fleet (an icecc scheduler
 * and two compile daemons, installed with the very bundles `pulumi up` ships); the fourth is a machine
 * not yet in the fleet, for `add-machine --probe`. The verbs run as the real CLI in a child process.
 * Skipped loudly when the machine cannot run the hosts level.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { announceSkip, bootNodes, type TestNetwork } from "../hosts/harness.js";
import { remoteCommand } from "../../roles/bundle.js";
import { renderNodeBundles } from "../../roles/index.js";
import { loadFleet } from "../../model/load.js";
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { sshRun, sshTargetOf } from "../../cli/ssh.js";
import type { StatusReport } from "../../cli/status.js";
import type { DriftReport } from "../../cli/drift.js";

const skipReason = announceSkip();
const ARCH = process.arch === "arm64" ? "aarch64" : "x86_64";
const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

describe.skipIf(skipReason !== undefined)("fleet verbs on real nodes", () => {
  let net: TestNetwork;
  let work: string;
  let file: string;
  let fleet: Fleet;
  const node = (name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;

  /** Runs `fleet <argv>` as a child process (the real CLI), never throwing on a non-zero exit. */
  async function fleetCli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await $({ nothrow: true, quiet: true, env: { ...process.env, FLEET_KNOWN_HOSTS: join(work, "known_hosts"), FORCE_COLOR: "0" } })`node_modules/.bin/tsx cli/fleet.ts ${argv}`;
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Runs a shell line as root on a fleet node (test setup and sabotage). */
  async function asRoot(name: string, script: string): Promise<string> {
    const n = node(name);
    const r = await sshRun(sshTargetOf(n), remoteCommand(n, "node", script), { timeoutSeconds: 120 });
    if (r.reach !== "ok" || r.exitCode !== 0) throw new Error(`${name}: ${script}: ${r.reach} ${r.exitCode}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** Installs every role of `name` with its rendered bundle, as the Pulumi role components do. */
  async function install(name: string): Promise<void> {
    const n = node(name);
    for (const b of renderNodeBundles(fleet, n)) {
      const r = await sshRun(sshTargetOf(n), remoteCommand(n, b.target, b.install), { timeoutSeconds: 300 });
      if (r.reach !== "ok" || r.exitCode !== 0) throw new Error(`install ${b.role} on ${name} failed (${r.reach} ${r.exitCode}):\n${r.stdout}${r.stderr}`);
    }
  }

  /** `fleet status --json` until `done` holds (the daemons need a moment to reach the scheduler); at most ~30 s. */
  async function statusUntil(done: (r: StatusReport) => boolean): Promise<{ code: number; report: StatusReport }> {
    let last: { code: number; report: StatusReport } | undefined;
    for (let i = 0; i < 15; i++) {
      const r = await fleetCli("status", "--fleet", file, "--json");
      last = { code: r.code, report: JSON.parse(r.stdout) as StatusReport };
      if (done(last.report)) return last;
      await new Promise((res) => setTimeout(res, 2000));
    }
    return last!;
  }

  beforeAll(async () => {
    net = await bootNodes(4, { names: ["sched", "cc1", "cc2", "newbox"], log: (l) => console.log(l) });
    work = mkdtempSync(join(tmpdir(), "fleet-ops-"));
    writeFileSync(join(work, "known_hosts"), "");
    const [a, b, c] = net.nodes;
    file = join(work, "fleet.yaml");
    writeFileSync(
      file,
      `# The day-2 test fleet (hosts harness nodes).
fleet: ops-e2e
defaults:
  user: ${a.user}               # passwordless sudo, like a real fleet user
  sshKeyPath: ${net.keyPath}
  perDialTimeoutSeconds: 5
  claude: { version: 1.0.0 }
profiles:
  compiler: [iceccd]
nodes:
  sched: { host: ${a.address}, os: debian, arch: ${ARCH}, roles: [icecc-scheduler, iceccd] }
  cc1: { host: ${b.address}, os: debian, arch: ${ARCH}, profile: compiler }
  cc2: { host: ${c.address}, os: debian, arch: ${ARCH}, profile: compiler }
`,
    );
    fleet = loadFleet(file);
    process.env.FLEET_KNOWN_HOSTS = join(work, "known_hosts");
    await install("sched");
    await Promise.all([install("cc1"), install("cc2")]);
  });
  afterAll(async () => {
    await net?.teardown();
    if (work) rmSync(work, { recursive: true, force: true });
    delete process.env.FLEET_KNOWN_HOSTS;
  });

  it("status: every node healthy after the install (exit 0), daemons connected to the scheduler", async () => {
    const { code, report } = await statusUntil((r) => r.healthy);
    expect(report.nodes.map((n) => [n.node, n.reach, n.healthy, n.problems])).toEqual([
      ["sched", "ok", true, []],
      ["cc1", "ok", true, []],
      ["cc2", "ok", true, []],
    ]);
    expect(code).toBe(0);
    // The scheduler's monitor protocol lists every daemon, by node name (iceccd -N).
    expect(report.icecc).toMatchObject({ scheduler: "sched", protocol: expect.any(Number), notConnected: [] });
    expect(report.icecc!.daemons.map((d) => [d.name, d.inFleet, d.noRemote])).toEqual([["cc1", true, false], ["cc2", true, false], ["sched", true, false]]);
    expect(report.nodes[0].roles.map((r) => [r.role, r.ok, r.services.map((s) => `${s.name}=${s.state}`)])).toEqual([
      ["icecc-scheduler", true, ["icecc-scheduler.service=active"]],
      ["iceccd", true, ["iceccd.service=active"]],
    ]);
  });

  it("status: a stopped service makes its node unhealthy (exit 1, ✗ in the table); restart brings it back", async () => {
    await asRoot("cc2", "systemctl stop iceccd.service");
    const json = await fleetCli("status", "--fleet", file, "--json");
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report.nodes.map((n) => [n.node, n.healthy])).toEqual([["sched", true], ["cc1", true], ["cc2", false]]);
    expect(report.nodes[2].problems).toEqual(["iceccd: iceccd.service is inactive", "iceccd: not connected to the icecc scheduler on sched"]);
    expect(report.icecc!.notConnected).toEqual(["cc2"]);

    const table = await fleetCli("status", "--fleet", file);
    expect(table.code).toBe(1);
    const rows = strip(table.stdout).split("\n");
    expect(rows[0].split(/\s+/)).toEqual(["node", "ssh", "icecc-scheduler", "iceccd", "disk", "free"]);
    expect(rows.find((l) => l.startsWith("cc2 "))!.split(/\s+/).slice(2, 4)).toEqual(["·", "✗"]);
    expect(rows.find((l) => l.startsWith("sched "))!.split(/\s+/).slice(2, 4)).toEqual(["✓", "✓"]);
    expect(rows).toContain("✗ cc2: iceccd: iceccd.service is inactive");
    expect(rows).toContain("✗ cc2: iceccd: not connected to the icecc scheduler on sched");
    // The cluster section, from the scheduler's monitor protocol through ssh -W on sched.
    expect(rows.find((l) => l.startsWith("icecc cluster:"))).toMatch(/^icecc cluster: scheduler sched at 127\.0\.0\.1:8765 \(protocol \d+\)$/);
    expect(rows.filter((l) => /^  (cc1|cc2|sched) /.test(l)).map((l) => l.split(/\s+/).slice(1, 3))).toEqual([["cc1", expect.any(String)], ["sched", expect.any(String)]]);
    expect(rows).toContain("  ✗ iceccd on cc2 is not connected to the scheduler");
    expect(rows).toContain("2/3 nodes healthy");

    const restart = await fleetCli("restart", "cc2", "iceccd", "--fleet", file);
    expect(strip(restart.stdout)).toBe("✓ cc2 iceccd.service: active\n");
    expect(restart.code).toBe(0);
    const { code } = await statusUntil((r) => r.healthy);
    expect(code).toBe(0);
  }, 120_000); // four status calls and a restart: 50 s and over 60 s in two runs on a busy 2-core machine

  it("exec: runs on all nodes at once, output prefixed by node, exit code the highest", async () => {
    // Each node prints when it started and ended a 2 s sleep: run in parallel, every start precedes
    // every end (run one after another, the last start would follow the first end).
    const r = await fleetCli("exec", "all", "--fleet", file, "--", 'echo "$(hostname) $(date +%s%N)"; sleep 2; echo "end $(date +%s%N)"; [ "$(hostname)" = cc1 ] && exit 4; exit 0');
    expect(r.code).toBe(4);
    const lines = strip(r.stdout).trim().split("\n");
    expect(lines).toHaveLength(6);
    const starts = lines.filter((l) => !l.includes("| end ")).map((l) => l.split(/\s+/));
    expect(starts.map((w) => [w[0], w[1], w[2]]).sort()).toEqual([["cc1", "|", "cc1"], ["cc2", "|", "cc2"], ["sched", "|", "sched"]]);
    const ends = lines.filter((l) => l.includes("| end ")).map((l) => BigInt(l.split(/\s+/).at(-1)!));
    const lastStart = starts.map((w) => BigInt(w[3])).reduce((a, b) => (a > b ? a : b));
    const firstEnd = ends.reduce((a, b) => (a < b ? a : b));
    expect(lastStart < firstEnd).toBe(true);
    expect(strip(r.stderr)).toMatch(/^✗ cc1: exit 4, \d+ ms$/m);
    expect(strip(r.stderr)).toMatch(/^✓ cc2: exit 0, \d+ ms$/m);
  });

  it("logs: the role's journal, through the node's service manager", async () => {
    const r = await fleetCli("logs", "sched", "icecc-scheduler", "-n", "50", "--fleet", file);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/icecc-scheduler/);
    const bad = await fleetCli("logs", "cc1", "icecc-scheduler", "--fleet", file);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('fleet logs: "icecc-scheduler" is not a role of node cc1');
  });

  it("logs -f: keeps streaming; a restart shows up while it runs", async () => {
    const child = spawn("node_modules/.bin/tsx", ["cli/fleet.ts", "logs", "cc1", "iceccd", "-f", "-n", "0", "--fleet", file], {
      env: { ...process.env, FLEET_KNOWN_HOSTS: join(work, "known_hosts"), FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    try {
      // Restart until the follower shows it (the first restart may come before journalctl -f is attached); bounded.
      for (let i = 0; i < 10 && !/Started iceccd\.service/.test(out); i++) {
        await asRoot("cc1", "systemctl restart iceccd.service");
        await new Promise((r) => setTimeout(r, 1500));
      }
      expect(out).toMatch(/Started iceccd\.service/);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill("SIGINT");
    }
  });

  it("drift: clean after install; a hand-edited file and a removed marker are reported (exit 1); re-install makes it clean", async () => {
    const clean = await fleetCli("drift", "--fleet", file, "--json");
    const cleanReport = JSON.parse(clean.stdout) as DriftReport;
    expect(cleanReport.live.map((n) => [n.node, n.checked, n.findings])).toEqual([["sched", true, []], ["cc1", true, []], ["cc2", true, []]]);
    expect(cleanReport.state.summary).toBe("state check skipped: Pulumi CLI not installed");
    expect(clean.code).toBe(0);

    await asRoot("cc1", "echo '# tuned by hand' >> /etc/systemd/system/iceccd.service");
    await asRoot("cc2", "rm /var/lib/fleetkit/roles/iceccd.hash");
    const drifted = await fleetCli("drift", "--fleet", file, "--json");
    expect(drifted.code).toBe(1);
    const findings = (JSON.parse(drifted.stdout) as DriftReport).live.flatMap((n) => n.findings.map((f) => [f.node, f.role, f.kind, f.file ?? null]));
    expect(findings).toEqual([
      ["cc1", "iceccd", "file-changed", "/etc/systemd/system/iceccd.service"],
      ["cc2", "iceccd", "marker-missing", null],
    ]);
    const human = strip((await fleetCli("drift", "--fleet", file)).stdout);
    expect(human).toContain("✗ cc1 iceccd: /etc/systemd/system/iceccd.service was changed on the node");
    expect(human).toContain("✗ cc2 iceccd: no install marker (never installed, or removed)");
    expect(human.trim().split("\n").at(-1)).toBe("drift found");

    await Promise.all([install("cc1"), install("cc2")]);
    const again = await fleetCli("drift", "--fleet", file, "--json");
    expect((JSON.parse(again.stdout) as DriftReport).live.flatMap((n) => n.findings)).toEqual([]);
    expect(again.code).toBe(0);
  });

  it("drift and status: an unreachable node is reported, within the timeout, without hanging", async () => {
    // An address on the nodes' own bridge that no node holds: ARP gets no answer, nothing leaves the machine.
    const silent = net.hostAddress.replace(/\.\d+$/, ".99");
    const text = readFileSync(file, "utf8").replace(/^  cc2: \{ host: [^,]+,/m, `  cc2: { host: ${silent},`);
    const offlineFile = join(work, "offline.yaml");
    writeFileSync(offlineFile, text);
    const drift = await fleetCli("drift", "--fleet", offlineFile, "--json", "--timeout", "3");
    const report = JSON.parse(drift.stdout) as DriftReport;
    expect(report.live.map((n) => [n.node, n.checked])).toEqual([["sched", true], ["cc1", true], ["cc2", false]]);
    // cc2's new address is also a change for the others: their icecc firewall must admit it (roles/firewall.ts),
    // so drift (exit 1) outranks the unchecked node (exit 2).
    const fw = (role: string) => `file-changed /usr/local/lib/fleetkit/firewall/${role}.sh`;
    expect(report.live.flatMap((n) => n.findings.map((f) => `${f.node} ${f.role} ${f.kind}${f.file ? ` ${f.file}` : ""}`))).toEqual([
      "sched icecc-scheduler marker-differs", `sched icecc-scheduler ${fw("icecc-scheduler")}`,
      "sched iceccd marker-differs", `sched iceccd ${fw("iceccd")}`,
      "cc1 iceccd marker-differs", `cc1 iceccd ${fw("iceccd")}`,
    ]);
    expect(drift.code).toBe(1);
    const status = await fleetCli("status", "cc2", "--fleet", offlineFile, "--json", "--timeout", "3");
    expect(status.code).toBe(1);
    expect((JSON.parse(status.stdout) as StatusReport).nodes.map((n) => [n.node, n.reach === "ok", n.healthy])).toEqual([["cc2", false, false]]);
  });

  it("add-machine --probe: detects the new node's OS and arch over SSH and appends it, keeping comments", async () => {
    const newbox = net.nodes[3];
    const before = readFileSync(file, "utf8");
    const r = await fleetCli("add-machine", "--fleet", file, "--name", "newbox", "--host", newbox.address, "--probe", "--profile", "compiler");
    expect(r.stderr).toContain(`probe: ${newbox.address} runs Debian GNU/Linux 12 (bookworm), ${ARCH}`);
    expect(r.code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(`${before}  newbox:\n    host: ${newbox.address}\n    os: debian\n    arch: ${ARCH}\n    profile: compiler\n`);
    expect(loadFleet(file).nodes.map((n) => n.name)).toEqual(["sched", "cc1", "cc2", "newbox"]);
    fleet = loadFleet(file);
  });
});
