// @needs debootstrap systemd-nspawn ip iptables ssh ssh-keygen sshd sudo icecc-create-env gcc
/**
 * Every Linux role bundle on real Debian nodes, run over SSH exactly as the Pulumi role component runs it:
 * the command string is `remoteCommand(node, target, script)` (`sudo -n sh -c '…'`), sent as the node user,
 * with the bundle's secrets as `NAME=value` lines on stdin, in the order of plan.ts `roleDependencies`
 * (Pulumi's `dependsOn`); uninstall runs in reverse order, and a changed bundle's install runs over the
 * old one, as the command's update re-runs `create` in place (roles/component.ts).
 *
 * The fleet is rendered from a test fleet.yaml of three Debian nodes by the real model and role renderers;
 * downloads come from the harness's artifact server, with their sha256 written into that fleet.yaml.
 */
import { basename } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import type { Fleet, FleetNode, RoleName } from "../../model/fleet.js";
import { renderFleetBundles } from "../../roles/index.js";
import { tailscaleTarball } from "../../roles/tailscale/render.js";
import { remoteCommand } from "../../roles/bundle.js";
import { shipHelper } from "../../roles/shipping.js";
import { platformFor } from "../../roles/platform.js";
import type { Bundle, SecretName } from "../../roles/types.js";
import { parseManifest, tarballStem, toolchainReceiveCommand, toolchainReceivePath, toolchainsPlan, TOOLCHAIN_DIR } from "../../roles/toolchains/render.js";
import { announceSkip, bootNodes, type TestNetwork, type TestNode } from "./harness.js";
import type { FleetArtifact } from "./artifact-server.js";
import { expectedFacts, fileFacts, installWaves, lastLine, mainPids, runBundleScript, serviceState, testNode, withoutMtime } from "./bundles.js";

const skipReason = announceSkip();

/** Roles this file proves, by node. Every Linux role with a renderer that needs no Node.js ≥ 20 (see below). */
const LAYOUT: Record<string, RoleName[]> = {
  "node-a": ["tailscale", "claude", "agentapi", "icecc-scheduler", "iceccd", "toolchains"],
  "node-b": ["tailscale", "claude", "iceccd"],
  "node-c": ["tailscale", "iceccd"],
};
const NAMES = Object.keys(LAYOUT);

/**
 * Debian's aarch64 cross compiler (what `icecc-create-env` packs into node-a's cross tarball, and what node-b's
 * icecc preprocesses with locally before the job goes out), installed from Debian through the harness's
 * registry proxy before the roles: it stands in for the Pis' native aarch64 gcc (issue 14).
 */
const CROSS_PACKAGES = ["gcc-aarch64-linux-gnu", "g++-aarch64-linux-gnu"];
const CROSS_NODES = ["node-a", "node-b"];

/** Binaries and trees a role installs outside its bundle files, which uninstall must remove. */
const ROLE_LEFTOVERS: Partial<Record<RoleName, string[]>> = {
  tailscale: ["/usr/local/bin/tailscale", "/usr/local/sbin/tailscaled"],
  claude: ["/usr/local/bin/claude", "/usr/local/lib/fleetkit/claude-code", "/etc/fleetkit/claude.env"],
  agentapi: ["/usr/local/lib/fleetkit/agentapi"],
};
/** Processes a role runs (pgrep -f patterns), which must be gone after uninstall. */
const ROLE_PROCESSES: Partial<Record<RoleName, string>> = {
  tailscale: "/usr/local/sbin/tailscaled",
  agentapi: "/usr/local/lib/fleetkit/agentapi",
  "icecc-scheduler": "/usr/sbin/icecc-scheduler",
  iceccd: "/usr/sbin/iceccd",
};

function fleetYaml(net: TestNetwork, artifacts: { tailscale: FleetArtifact; agentapi: FleetArtifact }, maxJobs: Record<string, number>): string {
  const art = (a: FleetArtifact) => ({ version: a.version, url: a.url, sha256: a.sha256 });
  return [
    "fleet: hosts-test",
    "tailnet: hosts-test.ts.net",
    "defaults:",
    `  user: ${net.nodes[0]!.user}`,
    `  sshKeyPath: ${net.keyPath}`,
    "  budgetUsdPerSession: 5",
    "  claude:",
    "    version: 2.1.331",
    "    sandbox: true",
    "artifacts:",
    `  tailscale: ${JSON.stringify(art(artifacts.tailscale))}`,
    `  agentapi: ${JSON.stringify(art(artifacts.agentapi))}`,
    "nodes:",
    ...net.nodes.flatMap((n) => [
      `  ${n.name}:`,
      `    host: ${n.address}`,
      "    os: debian",
      "    arch: x86_64",
      `    roles: [${LAYOUT[n.name]!.join(", ")}]`,
      ...(maxJobs[n.name] ? [`    iceccMaxJobs: ${maxJobs[n.name]}`] : []),
    ]),
    "",
  ].join("\n");
}

describe.skipIf(skipReason !== undefined)("hosts: Linux role bundles on three real Debian nodes", () => {
  let net: TestNetwork;
  let fleet: Fleet;
  let bundles: Map<string, Bundle[]>;
  let tailscale: FleetArtifact;
  let agentapi: FleetArtifact;
  const secrets: Record<SecretName, string> = {
    tailscaleAuthKey: `tskey-auth-test-${randomBytes(12).toString("hex")}`,
    anthropicApiKey: `sk-ant-test-${randomBytes(12).toString("hex")}`,
    claudeOauthToken: "",
    queueToken: "",
    queueTokens: "",
    peopleTokens: "",
    ntfyToken: "",
    githubToken: "",
    githubAppPrivateKey: "",
    githubWebhookSecret: "",
  };
  const tn = (name: string): TestNode => testNode(net, name);
  const fleetNode = (f: Fleet, name: string): FleetNode => f.nodes.find((n) => n.name === name)!;
  const bundleOf = (n: string, role: RoleName): Bundle => bundles.get(n)!.find((b) => b.role === role)!;
  const runScript = (f: Fleet, b: Bundle, which: "install" | "uninstall") => runBundleScript(net, f, b, which, secrets);

  const installed: { b: Bundle; code: number; stdout: string; stderr: string }[] = [];

  beforeAll(async () => {
    net = await bootNodes(3, { names: NAMES, log: (l) => console.log(l) });
    tailscale = await net.artifactServer.publish("tailscale", "1.80.3");
    agentapi = await net.artifactServer.publish("agentapi", "v0.10.0");
    fleet = parseFleet(fleetYaml(net, { tailscale, agentapi }, { "node-b": 2, "node-c": 2 }), "hosts-test.fleet.yaml");
    bundles = renderFleetBundles(fleet);
    const install = `sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${CROSS_PACKAGES.join(" ")}`;
    await Promise.all(
      CROSS_NODES.map(async (name) => {
        // The root filesystem's package lists may be older than the mirror: refresh them once when a package is gone.
        const r = await tn(name).ssh(install);
        if (r.code !== 0) await tn(name).run(`sudo -n apt-get update -q >/dev/null && ${install}`);
      }),
    );
  }, 600_000);
  afterAll(async () => {
    await net?.teardown();
  });

  const allPairs = Object.entries(LAYOUT).flatMap(([node, roles]) => roles.map((role) => ({ node, role })));

  it("renders exactly the bundles of the test fleet, all for the node shell, with no secret in any script", () => {
    expect([...bundles].map(([n, bs]) => [n, bs.map((b) => b.role).sort()])).toEqual(Object.entries(LAYOUT).map(([n, roles]) => [n, [...roles].sort()]));
    for (const b of [...bundles.values()].flat()) {
      expect(b.target).toBe("node");
      for (const value of Object.values(secrets).filter(Boolean)) {
        expect(b.install).not.toContain(value);
        expect(b.files.map((f) => f.content).join("")).not.toContain(value);
      }
    }
  });

  it("installs every role in dependency order (waves run in parallel, like Pulumi)", async () => {
    for (const wave of installWaves(fleet)) {
      const results = await Promise.all(wave.map(async ([n, role]) => ({ b: bundleOf(n.name, role), ...(await runScript(fleet, bundleOf(n.name, role), "install")) })));
      installed.push(...results);
      const failed = results.filter((r) => r.code !== 0);
      expect(failed.map((r) => `${r.b.node}/${r.b.role} exited ${r.code}: ${r.stderr.split("\n").slice(-6).join("\n")}`)).toEqual([]);
    }
    expect(installed.length).toBe(allPairs.length);
  });

  it.each(allPairs)("$node $role: install reported a change, its services are active, its files are as rendered", async ({ node, role }) => {
    const r = installed.find((x) => x.b.node === node && x.b.role === role)!;
    expect(lastLine(r.stdout)).toBe(`fleetkit: ${role} changed`);
    const b = bundleOf(node, role);
    for (const s of b.services) {
      const { state, journal } = await serviceState(tn(node), s.name);
      expect(state, journal).toBe("active");
    }
    expect(withoutMtime(await fileFacts(tn(node), b.files.map((f) => f.path)))).toEqual(expectedFacts(b));
    expect(await tn(node).run(`cat /var/lib/fleetkit/roles/${role}.hash`)).toBe(`${b.hash}\n`);
    // The bundle ran from root's own copy through root's copy of the shipping helper; the node user's copy of the role is gone.
    const helper = shipHelper(platformFor(fleetNode(fleet, node))).name;
    expect(await tn(node).run(`sudo -n stat -c '%a %U' /var/lib/fleetkit/bundles/${role}.${b.hash} /var/lib/fleetkit/${helper}; ls -A .fleetkit/bundles`)).toBe(`700 root\n600 root\n${helper}\n`);
  });

  it.each(allPairs)("$node $role: install again (nothing copied: the bundle is unchanged) reports no change and touches no file", async ({ node, role }) => {
    const b = bundleOf(node, role);
    const paths = [...b.files.map((f) => f.path), ...(ROLE_LEFTOVERS[role] ?? []).filter((p) => !p.endsWith("claude-code"))];
    const before = await fileFacts(tn(node), paths);
    const pidsBefore = await mainPids(tn(node), b);
    const r = await runBundleScript(net, fleet, b, "install", secrets, { copy: false });
    expect(r.code, r.stderr).toBe(0);
    expect(lastLine(r.stdout)).toBe(`fleetkit: ${role} unchanged`);
    expect(await fileFacts(tn(node), paths)).toEqual(before);
    // No restart either: the services keep their main process.
    expect(await mainPids(tn(node), b)).toBe(pidsBefore);
  });

  it("tailscale: each node is Running under its node name with the auth key from stdin, which is in no file, log or process list", async () => {
    const keySum = createHash("sha256").update(secrets.tailscaleAuthKey).digest("hex");
    for (const name of NAMES) {
      const st = JSON.parse(await tn(name).run("/usr/local/bin/tailscale status --json --peers=false"));
      expect([st.BackendState, st.Self.HostName, st.AuthKeySha256, st.Version]).toEqual(["Running", name, keySum, "1.80.3"]);
      // The check script travels on stdin: on a command line, sudo would log the key it looks for.
      const leak = await tn(name).ssh("sudo -n sh -s", {
        input: `k='${secrets.tailscaleAuthKey}'\ngrep -rlF -- "$k" /etc /var/lib /tmp /run /home 2>/dev/null\njournalctl --no-pager | grep -cF -- "$k"\nprocs=$(ps -eo args)\nprintf '%s\\n' "$procs" | grep -cF -- "$k"\n`,
      });
      expect(leak.stdout).toBe("0\n0\n");
    }
  });

  it("claude: Claude Code 2.1.331 runs as the node user; the API key is only in a 0600 env file the user owns", async () => {
    for (const name of ["node-a", "node-b"]) {
      expect(await tn(name).run("claude --version")).toBe("2.1.331 (Claude Code)\n");
      expect(await tn(name).run("sudo -n stat -c '%a %U' /etc/fleetkit/claude.env; sudo -n cat /etc/fleetkit/claude.env")).toBe(`600 admin\nANTHROPIC_API_KEY=${secrets.anthropicApiKey}\n`);
      expect(JSON.parse(await tn(name).run("cat ~/.claude/settings.json")).env).toEqual({ DISABLE_AUTOUPDATER: "1" });
    }
  });

  it("agentapi: answers GET /status addressed by the node's name, refuses other names, and no other node connects (this fleet has no queue node)", async () => {
    const port = fleet.services.agentapi.port;
    const status = await tn("node-a").run(`curl -fsS http://node-a:${port}/status`);
    expect(JSON.parse(status)).toMatchObject({ status: "stable", version: "v0.10.0", agent: ["/usr/local/lib/fleetkit/claude-code/bin/claude"] });
    expect(await tn("node-a").run(`curl -sS -o /dev/null -w '%{http_code}' -H 'Host: evil.example' http://node-a:${port}/status`)).toBe("403");
    // AgentAPI admits the queue node only (roles/reach.ts); with none, only loopback: node-b's connect is dropped.
    expect((await tn("node-b").ssh(`curl -sS -m 3 -o /dev/null http://node-a:${port}/status`)).code).toBe(28);
    expect(await tn("node-a").run("systemctl show -p User --value claude-agentapi.service")).toBe("admin\n");
    // Before AgentAPI started, the unit's ExecStartPre pre-answered Claude Code's first-run questions.
    expect(await tn("node-a").run("stat -c '%a %U' ~/.claude.json")).toBe("600 admin\n");
    expect(JSON.parse(await tn("node-a").run("cat ~/.claude.json"))).toMatchObject({
      theme: "dark",
      hasCompletedOnboarding: true,
      customApiKeyResponses: { approved: [secrets.anthropicApiKey.slice(-20)], rejected: [] },
      projects: { "/home/admin": { hasTrustDialogAccepted: true } },
    });
  });

  it("toolchains: node-a's tarballs (native gcc, gcc cross to aarch64) are copied to node-b and node-c by content hash, sha256-verified, once", async () => {
    const plan = toolchainsPlan(fleet);
    expect(plan.distribution).toEqual([{ arch: "x86_64", from: "node-a", to: ["node-b", "node-c"] }]);
    const manifest = parseManifest(await tn("node-a").run(`cat ${TOOLCHAIN_DIR}/manifest-x86_64`));
    expect(manifest.map((t) => [t.arch, t.compiler, t.target])).toEqual([["x86_64", "gcc", "x86_64"], ["x86_64", "gcc", "aarch64"]]);
    for (const t of manifest) await distributeTarball(t, plan.distribution[0]!.to);
    const [native, cross] = manifest.map((t) => `${TOOLCHAIN_DIR}/${t.file}`);
    for (const name of plan.distribution[0]!.to) {
      expect(await tn(name).run(". /etc/fleetkit/icecc-env.sh && printf '%s\\n' \"$ICECC_VERSION\" \"$FLEET_ICECC_VERSION_GCC\" \"$FLEET_ICECC_VERSION_AARCH64\"")).toBe(
        `${native},${cross}=aarch64-linux-gnu\n${native}\n${cross}=aarch64-linux-gnu\n`,
      );
    }
  });

  /** Sends tarball `t` from node-a to each of `to` through its receive program, as the distribution does. */
  async function distributeTarball(t: ReturnType<typeof parseManifest>[number], to: string[]): Promise<void> {
    const bytes = Buffer.from(await tn("node-a").run(`base64 -w0 ${TOOLCHAIN_DIR}/${t.file}`), "base64");
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(t.sha256);
    const bad = Buffer.from(bytes);
    bad[bad.length - 1] ^= 0xff;
    for (const name of to) {
      const n = tn(name);
      const node = fleetNode(fleet, name);
      // The receive program the node's iceccd bundle installed, run as the distribution runs it.
      const receive = remoteCommand(node, "node", toolchainReceiveCommand(t, toolchainReceivePath(node)));
      // Its check, as the distribution asks it (sudo, no shell script): present or missing, nothing changed.
      const check = `sudo -n ${toolchainReceiveCommand(t, toolchainReceivePath(node))} check`;
      expect(await n.run(check)).toBe("missing\n");
      // A copy corrupted on the way is refused before anything is placed.
      const refused = await n.ssh(receive, { input: bad });
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining(`toolchain ${t.file} arrived with sha256 ${createHash("sha256").update(bad).digest("hex")}, expected ${t.sha256}; nothing was replaced`)]);
      expect(await n.run(`${check}; ls -A ${TOOLCHAIN_DIR} | grep -c -F ${t.file} || true`)).toBe("missing\n0\n");
      const first = await n.ssh(receive, { input: bytes });
      expect([first.code, lastLine(first.stdout)], first.stderr).toEqual([0, "fleetkit: toolchains changed"]);
      expect(await n.run(check)).toBe("present\n");
      const again = await n.ssh(receive, { input: bytes });
      expect([again.code, lastLine(again.stdout)], again.stderr).toEqual([0, "fleetkit: toolchains unchanged"]);
      expect(await n.run(`readlink ${TOOLCHAIN_DIR}/current-${tarballStem(t)}.tar.gz`)).toBe(`${t.file}\n`);
    }
  }

  it("icecc: a C file compiled on node-b with CC='icecc gcc' and the distributed toolchain runs on node-c, per icecc's own log", async () => {
    const b = tn("node-b");
    const c = tn("node-c");
    const src = "#include <stdio.h>\nint main(void) { printf(\"compiled by icecc: %d\\n\", 6 * 7); return 0; }\n";
    await b.copy({ content: src }, "/home/admin/work/hello.c", 0o644);
    await b.run("sudo -n chown -R admin:admin /home/admin/work");
    const env = (await b.run(". /etc/fleetkit/icecc-env.sh && echo $FLEET_ICECC_VERSION_GCC")).trim();
    expect(env).toMatch(new RegExp(`^${TOOLCHAIN_DIR}/x86_64-gcc-([0-9a-f]{32})\\.tar\\.gz$`));
    const compile = [
      "cd /home/admin/work && rm -f icecc.log hello.o && . /etc/fleetkit/icecc-env.sh",
      "ICECC_PREFERRED_HOST=node-c ICECC_DEBUG=debug ICECC_LOGFILE=/home/admin/work/icecc.log icecc gcc -O2 -c hello.c -o hello.o",
      "gcc -o hello hello.o && ./hello",
    ].join(" && ");
    let out = "";
    for (let i = 0; i < 30; i++) {
      // The scheduler learns about daemons within seconds of their start; retry (bounded) until node-c is offered.
      out = await b.run(compile);
      if ((await b.run("cat /home/admin/work/icecc.log")).includes(c.address)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(out).toBe("compiled by icecc: 42\n");
    const log = await b.run("cat /home/admin/work/icecc.log");
    expect(log).toContain(c.address);
    expect(log).not.toMatch(/building myself/);
    // node-c's daemon installed the environment the job came with (iceccd names it by the tarball's hash).
    const md5 = /x86_64-gcc-([0-9a-f]{32})/.exec(env)![1]!;
    expect(await c.run(`sudo -n find /var/cache/icecc -maxdepth 2 -name '*${md5}*' | wc -l`)).not.toBe("0\n");
  }, 120_000);

  it("icecc cross: `icecc aarch64-linux-gnu-gcc -c` on node-b, with ICECC_VERSION from the env file, runs on node-c in node-a's cross tarball and makes an aarch64 object", async () => {
    const b = tn("node-b");
    const c = tn("node-c");
    await b.copy({ content: "int answer(int x) { return 6 * x; }\n" }, "/home/admin/work/cross.c", 0o644);
    await b.run("sudo -n chown -R admin:admin /home/admin/work");
    const version = (await b.run(". /etc/fleetkit/icecc-env.sh && echo $ICECC_VERSION")).trim();
    const md5 = new RegExp(`,${TOOLCHAIN_DIR}/x86_64-gcc-aarch64-([0-9a-f]{32})\\.tar\\.gz=aarch64-linux-gnu$`).exec(version)?.[1];
    expect(md5, version).toBeDefined();
    const compile = [
      "cd /home/admin/work && rm -f cross.log cross.o && . /etc/fleetkit/icecc-env.sh",
      "ICECC_PREFERRED_HOST=node-c ICECC_DEBUG=debug ICECC_LOGFILE=/home/admin/work/cross.log icecc aarch64-linux-gnu-gcc -O2 -c cross.c -o cross.o",
      "file -b cross.o",
    ].join(" && ");
    let out = "";
    for (let i = 0; i < 30; i++) {
      out = await b.run(compile);
      if ((await b.run("cat /home/admin/work/cross.log")).includes(c.address)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(out).toMatch(/^ELF 64-bit LSB relocatable, ARM aarch64, /);
    const log = await b.run("cat /home/admin/work/cross.log");
    // icecc chose the tarball for the prefix aarch64-linux-gnu (not node-b's native gcc one) and node-c compiled.
    expect(log).toContain(`${TOOLCHAIN_DIR}/x86_64-gcc-aarch64-${md5}.tar.gz`);
    expect(log).not.toMatch(/x86_64-gcc-[0-9a-f]{32}\.tar\.gz/);
    expect(log).toContain(c.address);
    expect(log).not.toMatch(/building myself/);
    // node-c installed that environment (iceccd names it by the tarball's hash) and holds no aarch64 compiler of its own.
    expect(await c.run(`sudo -n find /var/cache/icecc -maxdepth 2 -name '*${md5}*' | wc -l`)).not.toBe("0\n");
    expect(await c.run("command -v aarch64-linux-gnu-gcc || echo none")).toBe("none\n");
  }, 180_000);

  it("a role change (iceccd max jobs on node-c) changes only that bundle; its install over the old one restarts the daemon with the new setting", async () => {
    const changed = parseFleet(fleetYaml(net, { tailscale, agentapi }, { "node-b": 2, "node-c": 3 }), "hosts-test.fleet.yaml");
    const next = renderFleetBundles(changed);
    const now = renderFleetBundles(fleet);
    const diff = [...next].flatMap(([n, bs]) => bs.filter((b) => now.get(n)!.find((x) => x.role === b.role)!.hash !== b.hash).map((b) => `${n}/${b.role}`));
    expect(diff).toEqual(["node-c/iceccd"]);
    const c = tn("node-c");
    const pidBefore = await c.run("systemctl show -p MainPID --value iceccd.service");
    const nb = next.get("node-c")!.find((b) => b.role === "iceccd")!;
    // Pulumi's update of the install command: the new install script runs over the old install.
    const inst = await runScript(changed, nb, "install");
    expect([inst.code, lastLine(inst.stdout)]).toEqual([0, "fleetkit: iceccd changed"]);
    const pid = (await c.run("systemctl show -p MainPID --value iceccd.service")).trim();
    expect(pid).not.toBe(pidBefore.trim());
    expect(await c.run(`tr '\\0' ' ' < /proc/${pid}/cmdline`)).toContain("--max-processes 3 ");
    bundles.set("node-c", next.get("node-c")!);
  });

  it("tailscale upgrade with a wrong sha256 stops with a clear error and leaves the running version alone; the right one upgrades", async () => {
    const newer = await net.artifactServer.publish("tailscale", "1.82.0");
    const wrong = { ...newer, sha256: tailscale.sha256 };
    const bad = parseFleet(fleetYaml(net, { tailscale: wrong, agentapi }, { "node-b": 2, "node-c": 3 }), "hosts-test.fleet.yaml");
    const c = tn("node-c");
    const badBundle = renderFleetBundles(bad).get("node-c")!.find((b) => b.role === "tailscale")!;
    const r = await runScript(bad, badBundle, "install");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`fleetkit: error: checksum mismatch for ${newer.file.url}: expected sha256 ${tailscale.file.sha256}, got ${newer.file.sha256}`);
    expect(await c.run("/usr/local/bin/tailscale version; systemctl is-active tailscaled; /usr/local/bin/tailscale status --json | grep -c '\"BackendState\": \"Running\"'")).toBe("1.80.3\nactive\n1\n");
    expect(await c.run("ls /var/lib/fleetkit/downloads")).toBe(`${basename(tailscaleTarball(fleet, fleet.nodes.find((n) => n.name === "node-c")!))}\n`);

    const good = parseFleet(fleetYaml(net, { tailscale: newer, agentapi }, { "node-b": 2, "node-c": 3 }), "hosts-test.fleet.yaml");
    const goodBundle = renderFleetBundles(good).get("node-c")!.find((b) => b.role === "tailscale")!;
    const up = await runScript(good, goodBundle, "install");
    expect([up.code, lastLine(up.stdout)], up.stderr).toEqual([0, "fleetkit: tailscale changed"]);
    expect(await c.run("/usr/local/sbin/tailscaled --version; systemctl is-active tailscaled")).toBe("1.82.0\nactive\n");
    bundles.set("node-c", bundles.get("node-c")!.map((b) => (b.role === "tailscale" ? goodBundle : b)));
  });

  it("uninstalls every role in reverse dependency order: units, files, binaries, markers and processes gone", async () => {
    for (const wave of installWaves(fleet).reverse()) {
      const results = await Promise.all(wave.map(async ([n, role]) => ({ b: bundleOf(n.name, role), ...(await runScript(fleet, bundleOf(n.name, role), "uninstall")) })));
      expect(results.map((r) => [r.b.node, r.b.role, r.code, lastLine(r.stdout) || r.stderr.trim().split("\n").slice(-3).join(" | ")])).toEqual(
        results.map((r) => [r.b.node, r.b.role, 0, `fleetkit: ${r.b.role} removed`]),
      );
    }
    for (const [node, roles] of Object.entries(LAYOUT)) {
      const n = tn(node);
      for (const role of roles) {
        const b = bundleOf(node, role);
        const paths = [...b.files.map((f) => f.path), ...(ROLE_LEFTOVERS[role] ?? []), `/var/lib/fleetkit/roles/${role}.hash`, `/var/lib/fleetkit/roles/${role}.packages`, `/var/lib/fleetkit/bundles/${role}.${b.hash}`];
        expect(await n.run(`for p in ${paths.join(" ")}; do sudo -n test -e "$p" && echo "left: $p"; done; true`)).toBe("");
        for (const s of b.services) {
          expect((await n.ssh(`systemctl is-active ${s.name}`)).stdout).toBe("inactive\n");
          expect((await n.ssh(`systemctl cat ${s.name}`)).code).not.toBe(0);
        }
        if (ROLE_PROCESSES[role]) expect((await n.ssh(`pgrep -f ${ROLE_PROCESSES[role]}`)).stdout).toBe("");
      }
    }
  }, 300_000);

  it("uninstalling again succeeds and changes nothing", async () => {
    const results = await Promise.all(allPairs.map(({ node, role }) => runScript(fleet, bundleOf(node, role), "uninstall")));
    expect(results.map((r) => [r.code, lastLine(r.stdout)])).toEqual(allPairs.map(({ role }) => [0, `fleetkit: ${role} removed`]));
  });
});

if (skipReason !== undefined) {
  describe("hosts: role bundles", () => {
    it.skip(`SKIPPED: ${skipReason}`, () => {});
  });
}
