// @needs shellcheck
/**
 * The probe shared by `fleet status` and `fleet drift`: its script (shellcheck, and run for real by dash
 * on this machine), its parser, and the judgements built on it (status health, drift findings).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadFleet, parseFleet } from "../../model/load.js";
import { renderNodeBundles } from "../../roles/index.js";
import { sha256Hex } from "../../roles/bundle.js";
import { mergeReports, parseProbe, probeScript, windowsHostProbeScript, type NodeProbe } from "../../cli/probe.js";
import { nodeStatus, formatBytes } from "../../cli/status.js";
import { nodeDrift } from "../../cli/drift.js";
import { probe as queueProbe } from "../../roles/queue/probe.js";

const fleet = parseFleet(
  `fleet: t
defaults:
  claude: { version: 1.0.0 }
nodes:
  sched: { host: sched, os: debian, arch: x86_64, roles: [icecc-scheduler, iceccd, tailscale, agentapi, claude], budgetUsdPerSession: 5 }
  mac: { host: mac, os: macos, arch: aarch64, roles: [iceccd] }
`,
  "probe.yaml",
);
const sched = fleet.nodes[0];
const mac = fleet.nodes[1];

describe("probeScript", () => {
  it.each([["sched"], ["mac"]])("is clean POSIX sh for %s (shellcheck)", (name) => {
    const node = fleet.nodes.find((n) => n.name === name)!;
    const script = probeScript(fleet, node, renderNodeBundles(fleet, node), "node");
    const r = spawnSync("shellcheck", ["-s", "sh", "-"], { input: script, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  const realNodes = ["fleet.yaml", "examples/remote-tasks.fleet.yaml", "examples/shared-fs-queue.fleet.yaml"].flatMap((file) => {
    const f = loadFleet(file);
    return f.nodes.map((n) => [file, n.name, f, n] as const);
  });
  it.each(realNodes)("%s %s: the probe of every rendered role passes shellcheck and asks for each service", (_file, _name, f, node) => {
    const target = node.os === "windows-wsl" ? "wsl" : "node";
    const bundles = renderNodeBundles(f, node).filter((b) => b.target !== "windows-host");
    const script = probeScript(f, node, bundles, target);
    const r = spawnSync("shellcheck", ["-s", "sh", "-"], { input: script, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    for (const b of bundles) {
      expect(script).toContain(`echo "marker\t${b.role}\t`);
      for (const s of b.services) expect(script).toContain(`echo "svc\t${b.role}\t${s.manager}\t${s.name}\t$fk_s"`);
    }
  });

  it("runs under dash and reports exactly the rendered roles, files and services", () => {
    const bundles = renderNodeBundles(fleet, mac);
    // Run the macOS node's probe here: its marker and plist are absent and launchctl does not exist, so
    // every fact is reported as missing — through the real script and the real parser.
    const out = execFileSync("dash", ["-c", probeScript(fleet, mac, bundles, "node")], { encoding: "utf8" });
    const report = parseProbe(out);
    expect(report.complete).toBe(true);
    expect(report.unparsed).toEqual([]);
    expect([...report.markers]).toEqual([["iceccd", null]]);
    expect(report.files).toEqual([
      // The role's pf firewall (roles/firewall.ts) is placed first.
      { role: "iceccd", path: "/usr/local/libexec/fleetkit/firewall/iceccd.sh", sha256: null },
      { role: "iceccd", path: "/Library/LaunchDaemons/dev.fleetkit.firewall.iceccd.plist", sha256: null },
      { role: "iceccd", path: "/Library/LaunchDaemons/org.icecc.iceccd.plist", sha256: null },
      { role: "iceccd", path: "/usr/local/etc/fleetkit/icecc.env", sha256: null },
    ]);
    expect(report.services).toEqual([{ role: "iceccd", manager: "launchd", name: "org.icecc.iceccd", state: "missing" }]);
    expect(report.checks).toEqual({});
    expect(report.disk!.totalBytes).toBeGreaterThan(report.disk!.availBytes);
  });
});

describe("parseProbe", () => {
  const H = "a".repeat(64);
  it.each([
    ["empty output is incomplete", "", { complete: false, markers: [], files: [], services: [], checks: {}, reach: [], unparsed: [] }],
    [
      "every record kind",
      `fk-probe 1\nmarker\ticeccd\t${H}\nmarker\ttailscale\t-\nfile\ticeccd\t/etc/x y\t${H}\nfile\ticeccd\t/etc/z\t-\nsvc\ticeccd\tsystemd\ticeccd.service\tfailed\n` +
        `tailscale\tRunning\nagentapi\t200\tstable\ndisk\t/\t1024\t4096\nreach\tagentapi\trpi1\t3284\topen\nreach\tqueue\thub\t8787\tclosed\nfk-probe-end\n`,
      {
        complete: true,
        markers: [["iceccd", H], ["tailscale", null]],
        files: [{ role: "iceccd", path: "/etc/x y", sha256: H }, { role: "iceccd", path: "/etc/z", sha256: null }],
        services: [{ role: "iceccd", manager: "systemd", name: "iceccd.service", state: "failed" }],
        checks: { tailscale: "Running", agentapi: { httpCode: 200, status: "stable" } },
        disk: { path: "/", availBytes: 1024, totalBytes: 4096 },
        reach: [{ service: "agentapi", node: "rpi1", port: 3284, result: "open" }, { service: "queue", node: "hub", port: 8787, result: "closed" }],
        unparsed: [],
      },
    ],
    [
      "junk and unknown states are kept apart",
      "fk-probe 1\nsudo: a password is required\nsvc\tx\tsystemd\tx.service\tweird\nagentapi\t000\t-\nicecc\tmany\nreach\tq\th\t1\tmaybe\nfk-probe-end",
      {
        complete: true,
        markers: [],
        files: [],
        services: [{ role: "x", manager: "systemd", name: "x.service", state: "unknown" }],
        checks: { agentapi: { httpCode: 0, status: null } },
        reach: [],
        unparsed: ["sudo: a password is required", "icecc\tmany", "reach\tq\th\t1\tmaybe"],
      },
    ],
  ])("%s", (_what, out, expected) => {
    const r = parseProbe(out);
    expect({ ...r, markers: [...r.markers] }).toEqual(expected);
  });
});

/** A probe of `sched` as it would come back, built from its real bundles with some facts overridden. */
function schedProbe(over: { marker?: (role: string, hash: string) => string | null; file?: (path: string, sha: string) => string | null; svc?: (name: string) => string; extra?: string } = {}): NodeProbe {
  const bundles = renderNodeBundles(fleet, sched);
  const lines = ["fk-probe 1"];
  for (const b of bundles) {
    lines.push(`marker\t${b.role}\t${(over.marker ?? ((_r, h) => h))(b.role, b.hash) ?? "-"}`);
    for (const f of b.files) lines.push(`file\t${b.role}\t${f.path}\t${(over.file ?? ((_p, s) => s))(f.path, sha256Hex(f.content)) ?? "-"}`);
    for (const s of b.services) lines.push(`svc\t${b.role}\t${s.manager}\t${s.name}\t${(over.svc ?? (() => "active"))(s.name)}`);
  }
  lines.push(over.extra ?? "tailscale\tRunning\nagentapi\t200\tstable\ndisk\t/\t50000000000\t100000000000", "fk-probe-end");
  return { fleet, node: sched, reach: "ok", ms: 42, report: parseProbe(lines.join("\n")), bundles };
}

describe("nodeDrift", () => {
  const bundles = renderNodeBundles(fleet, sched);
  const scheduler = bundles.find((b) => b.role === "icecc-scheduler")!;
  const unit = "/etc/systemd/system/iceccd.service";

  it("a node that matches the render has no findings", () => {
    const d = nodeDrift(schedProbe());
    expect(d.findings).toEqual([]);
    expect(d).toEqual({ node: sched.name, checked: true, findings: [] });
  });

  it.each([
    [
      "a removed marker",
      { marker: (r: string, h: string) => (r === "iceccd" ? null : h) },
      [{ node: "sched", role: "iceccd", kind: "marker-missing", expected: bundles.find((b) => b.role === "iceccd")!.hash }],
    ],
    [
      "an old bundle",
      { marker: (r: string, h: string) => (r === "icecc-scheduler" ? "b".repeat(64) : h) },
      [{ node: "sched", role: "icecc-scheduler", kind: "marker-differs", expected: scheduler.hash, actual: "b".repeat(64) }],
    ],
    [
      "a hand-edited file",
      { file: (p: string, s: string) => (p === unit ? "c".repeat(64) : s) },
      [{ node: "sched", role: "iceccd", kind: "file-changed", file: unit, expected: sha256Hex(bundles.find((b) => b.role === "iceccd")!.files.find((f) => f.path === unit)!.content), actual: "c".repeat(64) }],
    ],
    [
      "a deleted file",
      { file: (p: string, s: string) => (p === unit ? null : s) },
      [{ node: "sched", role: "iceccd", kind: "file-missing", file: unit, expected: sha256Hex(bundles.find((b) => b.role === "iceccd")!.files.find((f) => f.path === unit)!.content) }],
    ],
    [
      "a stopped service",
      { svc: (n: string) => (n === "icecc-scheduler.service" ? "inactive" : "active") },
      [{ node: "sched", role: "icecc-scheduler", kind: "service-not-running", service: "icecc-scheduler.service", expected: "active", actual: "inactive" }],
    ],
  ])("reports %s", (_what, over, findings) => {
    expect(nodeDrift(schedProbe(over)).findings).toEqual(findings);
  });

  it("a private file's hashes stay out of the report", () => {
    const p = schedProbe({ file: (path: string, sha: string) => (path === unit ? "e".repeat(64) : sha) });
    const bundles = p.bundles.map((b) => (b.role === "iceccd" ? { ...b, files: b.files.map((f) => ({ ...f, mode: 0o600 })) } : b));
    expect(nodeDrift({ ...p, bundles }).findings).toEqual([{ node: "sched", role: "iceccd", kind: "file-changed", file: unit }]);
  });

  it("an offline node is not checked (and has no findings)", () => {
    const p = schedProbe();
    const d = nodeDrift({ ...p, reach: "offline", reason: "ssh: connect to host sched port 22: Connection refused", report: parseProbe("") });
    expect(d).toMatchObject({ node: "sched", checked: false, reason: "offline: ssh: connect to host sched port 22: Connection refused", findings: [] });
  });
});

describe("nodeStatus", () => {
  it("a healthy node", () => {
    const s = nodeStatus(schedProbe());
    expect(s.healthy).toBe(true);
    expect(s.problems).toEqual([]);
    expect(s.roles.filter((r) => r.ok === true).map((r) => r.role)).toEqual(renderNodeBundles(fleet, sched).map((b) => b.role));
    expect(s.roles.filter((r) => r.ok !== true)).toEqual([]);
  });

  it.each([
    ["a stopped service", { svc: (n: string) => (n === "iceccd.service" ? "inactive" : "active") }, ["iceccd: iceccd.service is inactive"]],
    ["a missing marker", { marker: (r: string, h: string) => (r === "iceccd" ? null : h) }, ["iceccd: not installed (no marker)"]],
    ["a full disk", { extra: "disk\t/\t1000000\t100000000000" }, ["disk: only 977 KiB free of 93.1 GiB on /"]],
    ["5 % free is not enough on a big disk", { extra: "disk\t/\t40000000000\t1000000000000" }, ["disk: only 37.3 GiB free of 931 GiB on /"]],
  ])("is unhealthy with %s", (_what, over, problems) => {
    const s = nodeStatus(schedProbe(over));
    expect(s.healthy).toBe(false);
    expect(s.problems).toEqual(problems);
  });

  it.each([
    ["its daemon is not listed by the scheduler", { notConnected: ["sched"] }, ["iceccd: not connected to the icecc scheduler on sched"]],
    ["the scheduler cannot be read", { error: "icecc scheduler 127.0.0.1:8765: connection refused (no scheduler listening there)" }, ["icecc-scheduler: icecc scheduler 127.0.0.1:8765: connection refused (no scheduler listening there)"]],
    ["another node is not listed", { notConnected: ["mac"] }, []],
  ])("judges the icecc cluster: %s", (_what, over, problems) => {
    const cluster = { scheduler: "sched", address: "127.0.0.1:8765", protocol: 43, daemons: [], jobs: [], listenedMs: 200, totals: { daemons: 0, maxJobs: 0, jobs: 0 }, notConnected: [], ...over };
    const s = nodeStatus(schedProbe(), undefined, [], cluster);
    expect([s.healthy, s.problems]).toEqual([problems.length === 0, problems]);
  });

  it("an offline node is unhealthy and says why", () => {
    const p = schedProbe();
    const s = nodeStatus({ ...p, reach: "timeout", reason: "no answer within 3 s", report: parseProbe("") });
    expect(s).toMatchObject({ reach: "timeout", healthy: false, problems: ["timeout: no answer within 3 s"], disk: null });
  });

  it.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1536, "1.5 KiB"],
    [200 * 1024 ** 3, "200 GiB"],
  ])("formatBytes(%i) = %s", (n, s) => expect(formatBytes(n)).toBe(s));
});

describe("Windows host side", () => {
  const mesh = loadFleet("fleet.yaml");
  const win = mesh.nodes.find((n) => n.os === "windows-wsl")!;
  const hostSide = renderNodeBundles(mesh, win).filter((b) => b.target === "windows-host");

  it("the PowerShell probe parses with a real PowerShell grammar and asks for each host-side marker", async () => {
    const { Language, Parser } = await import("web-tree-sitter");
    await Parser.init();
    const parser = new Parser();
    parser.setLanguage(await Language.load(new URL("../../node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm", import.meta.url).pathname));
    const script = windowsHostProbeScript(mesh, win, hostSide);
    const errors: string[] = [];
    const walk = (n: any) => {
      if (n.type === "ERROR" || n.isMissing) errors.push(`${n.startPosition.row + 1}: ${n.text.slice(0, 60)}`);
      for (const c of n.children) if (c) walk(c);
    };
    walk(parser.parse(script)!.rootNode);
    expect(errors).toEqual([]);
    expect(hostSide.length).toBeGreaterThan(0);
    for (const b of hostSide) expect(script).toContain(`Write-Output ('marker' + $T + '${b.role}' + $T + $h)`);
  });

  it("merges the WSL and host reports: both must be complete, the host's Tailscale state wins", () => {
    const H = "d".repeat(64);
    const linux = parseProbe(`fk-probe 1\nmarker\ticeccd\t${H}\nsvc\ticeccd\tsystemd\ticeccd.service\tactive\ndisk\t/\t5\t10\nfk-probe-end\n`);
    const host = parseProbe(`fk-probe 1\r\nmarker\ttailscale\t-\r\ntailscale\tNeedsLogin\r\nfk-probe-end\r\n`.replace(/\r/g, ""));
    const m = mergeReports(linux, host);
    expect({ ...m, markers: [...m.markers] }).toEqual({
      complete: true,
      markers: [["iceccd", H], ["tailscale", null]],
      files: [],
      services: [{ role: "iceccd", manager: "systemd", name: "iceccd.service", state: "active" }],
      disk: { path: "/", availBytes: 5, totalBytes: 10 },
      checks: { tailscale: "NeedsLogin" },
      reach: [],
      unparsed: [],
    });
    expect(mergeReports(linux, parseProbe("fk-probe 1\nmarker\ttailscale\t-\n")).complete).toBe(false);
  });
});

describe("the queue role's probe, against a real queue server on this machine", () => {
  it("asks GET /healthz on loopback: 200 while the server runs, no answer once it is gone, judged by the role", async () => {
    const { startServer, stopAll, tempDir, writeTokens } = await import("../runtime/harness.js");
    const dir = tempDir("fleet-probe-queue-");
    const server = await startServer({ db: `${dir}/queue.db`, tokens: writeTokens(dir, { hub: {} }) });
    try {
      const f = parseFleet(
        `fleet: q\ndefaults: { budgetUsdPerSession: 5, claude: { version: 1.0.0 } }\nservices: { queue: { port: ${server.port} } }\nnodes:\n  hub: { host: hub, os: debian, arch: x86_64, roles: [queue, worker] }\n`,
        "q.yaml",
      );
      const hub = f.nodes[0]!;
      const script = probeScript(f, hub, [], "node");
      expect(script).toContain(`/healthz`);
      const up = parseProbe(execFileSync("dash", ["-c", script], { encoding: "utf8" }));
      expect([up.checks.queue, up.unparsed]).toEqual([200, []]);
      await stopAll();
      const down = parseProbe(execFileSync("dash", ["-c", script], { encoding: "utf8" }));
      expect(down.checks.queue).toBe(0);
      const judge = queueProbe.judge;
      expect([judge(200), judge(0), judge(503), judge(undefined)]).toEqual([[], ["GET /healthz: no answer"], ["GET /healthz answered 503"], []]);
    } finally {
      await stopAll();
    }
  }, 60_000);
});
