/**
 * The node firewall and the binds (roles/firewall.ts, roles/reach.ts) on four real Debian 13 nodes booted by
 * the hosts harness with a stand-in tailnet (each node's `tailscale0` on 100.64.S.0/24, the address fleet.yaml
 * names it by; the LAN is eth0 on 10.213.S.0/24) and Debian's `127.0.1.1 <hostname>` line on each node:
 * - hub: tailscale, icecc-scheduler, iceccd, queue (so the queue node, the one node AgentAPI admits);
 * - agent: tailscale, claude, agentapi, iceccd;
 * - box: tailscale only: a fleet node, so the queue admits it, but it does not compile or drive agents;
 * - outsider: booted on both networks but not in the fleet, like a laptop on the same Wi-Fi;
 * - this test process: 10.213.S.1 on the LAN and 100.64.S.1 on the tailnet, also not in the fleet.
 * Bundles run over SSH exactly as the Pulumi role component runs them (bundles.ts). `fleet status` runs in
 * process against the nodes' fleet.yaml hosts over the stand-in tailnet.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import type { Fleet, RoleName } from "../../model/fleet.js";
import { formatQueueTokens } from "../../stacks/secrets.js";
import { renderFleetBundles } from "../../roles/index.js";
import type { Bundle, SecretName } from "../../roles/types.js";
import { fleetStatus, type StatusReport } from "../../cli/status.js";
import { announceSkip, bootNodes, type TestNetwork, type TestNode } from "./harness.js";
import { installWaves, lastLine, runBundleScript, testNode } from "./bundles.js";

const skipReason = announceSkip();

const LAYOUT: Record<string, RoleName[]> = {
  hub: ["tailscale", "icecc-scheduler", "iceccd", "queue"],
  agent: ["tailscale", "claude", "agentapi", "iceccd"],
  box: ["tailscale"],
};
const NAMES = [...Object.keys(LAYOUT), "outsider"];
const PORTS = { agentapi: 3284, queue: 8787, iceccd: 10245, scheduler: 8765, schedulerText: 8766 };

describe.skipIf(skipReason !== undefined)("hosts: the node firewall and binds on four real Debian 13 nodes", () => {
  let net: TestNetwork;
  let fleet: Fleet;
  let bundles: Map<string, Bundle[]>;
  let work: string;
  const tokens: Record<string, string> = Object.fromEntries(Object.keys(LAYOUT).map((n) => [n, randomBytes(18).toString("hex")]));
  const keys = { tailscaleAuthKey: `tskey-auth-test-${randomBytes(8).toString("hex")}`, anthropicApiKey: `sk-ant-test-${randomBytes(12).toString("hex")}` };
  const secrets = (node: string): Partial<Record<SecretName, string>> => ({ ...keys, queueTokens: formatQueueTokens(tokens), queueToken: tokens[node] });
  const tn = (name: string): TestNode => testNode(net, name);
  const ts = (name: string) => tn(name).tailnetAddress!;
  const bundleOf = (n: string, role: RoleName): Bundle => bundles.get(n)!.find((b) => b.role === role)!;
  const run = (b: Bundle, which: "install" | "uninstall") => runBundleScript(net, fleet, b, which, secrets);
  const installed: { b: Bundle; code: number; stdout: string; stderr: string }[] = [];

  /** `open` or `closed` for TCP connects from `from` to each `host:port`, at most 3 s each, all at once. */
  async function connectsFrom(from: string, targets: [string, number][]): Promise<string[]> {
    const script = targets.map(([h, p]) => `(timeout 3 bash -c 'exec 3<>/dev/tcp/${h}/${p}' 2>/dev/null && echo "${h}:${p} open" || echo "${h}:${p} closed") &`).join("\n");
    const out = await tn(from).run("bash -s", { input: `${script}\nwait\n` });
    return out.trim().split("\n").sort();
  }
  /** The same from this test process (the host side of both networks). */
  async function connectsFromHere(targets: [string, number][]): Promise<string[]> {
    const one = ([host, port]: [string, number]) =>
      new Promise<string>((resolve) => {
        const s = connect({ host, port });
        const done = (r: string) => { s.destroy(); resolve(`${host}:${port} ${r}`); };
        s.setTimeout(3000, () => done("closed"));
        s.once("connect", () => done("open"));
        s.once("error", () => done("closed"));
      });
    return (await Promise.all(targets.map(one))).sort();
  }
  const nftTable = (name: string) => tn(name).ssh("sudo -n nft -a -s list table inet fleetkit");

  beforeAll(async () => {
    net = await bootNodes(NAMES.length, { names: NAMES, suite: "trixie", tailnet: true, debianHostname: true, log: (l) => console.log(l) });
    const tailscale = await net.artifactServer.publish("tailscale", "1.80.3");
    const agentapi = await net.artifactServer.publish("agentapi", "v0.10.0");
    const art = (a: typeof tailscale) => JSON.stringify({ version: a.version, url: a.url, sha256: a.sha256 });
    const yaml = [
      "fleet: firewall-test",
      "tailnet: firewall-test.ts.net",
      "defaults:",
      `  user: ${net.nodes[0]!.user}`,
      `  sshKeyPath: ${net.keyPath}`,
      "  perDialTimeoutSeconds: 5",
      "  budgetUsdPerSession: 5",
      "  claude: { version: 2.1.331 }",
      "artifacts:",
      `  tailscale: ${art(tailscale)}`,
      `  agentapi: ${art(agentapi)}`,
      "nodes:",
      ...Object.entries(LAYOUT).map(([n, roles]) => `  ${n}: { host: ${ts(n)}, os: debian, arch: x86_64, roles: [${roles.join(", ")}] }`),
      "",
    ].join("\n");
    fleet = parseFleet(yaml, "firewall-test.fleet.yaml");
    bundles = renderFleetBundles(fleet);
    work = mkdtempSync(join(tmpdir(), "fleetkit-firewall-hosts-"));
    process.env.FLEET_KNOWN_HOSTS = join(work, "known_hosts");
  });
  afterAll(async () => {
    await net?.teardown();
    if (work) rmSync(work, { recursive: true, force: true });
    delete process.env.FLEET_KNOWN_HOSTS;
  });

  it("installs every role in dependency order; the queue's install proves it answers on the address other nodes use", async () => {
    for (const wave of installWaves(fleet)) {
      const results = await Promise.all(wave.map(async ([n, role]) => ({ b: bundleOf(n.name, role), ...(await run(bundleOf(n.name, role), "install")) })));
      installed.push(...results);
      expect(results.filter((r) => r.code !== 0 || lastLine(r.stdout) !== `fleetkit: ${r.b.role} changed`).map((r) => `${r.b.node}/${r.b.role} exited ${r.code}: ${r.stderr.split("\n").slice(-8).join("\n")}`)).toEqual([]);
    }
    const queue = installed.find((r) => r.b.role === "queue")!;
    expect(queue.stderr).toContain(`fleetkit: queue server answers on ${ts("hub")}:8787, where other nodes reach ${ts("hub")}\n`);
    expect(queue.stderr).toContain("fleetkit: firewall: loaded chain queue-input of table inet fleetkit\n");
  }, 900_000);

  it("each node's table inet fleetkit holds one chain per listening role, with exactly the allowed nodes' addresses", async () => {
    // Roles install in parallel: chains are listed in the order they were loaded.
    const chains = async (n: string) => (await tn(n).run("sudo -n nft -s list table inet fleetkit")).split("\n").filter((l) => /^\tchain /.test(l)).map((l) => l.trim()).sort();
    expect(await chains("hub")).toEqual(["chain icecc-scheduler-input {", "chain iceccd-input {", "chain queue-input {"]);
    expect(await chains("agent")).toEqual(["chain agentapi-input {", "chain iceccd-input {"]);
    expect((await tn("box").ssh("sudo -n nft list table inet fleetkit")).code).not.toBe(0);
    // Which of the four nodes' addresses each set holds (nft merges neighbouring addresses into ranges, so ask it).
    const members = async (n: string, set: string) => {
      const asks = NAMES.map((m) => `sudo -n nft get element inet fleetkit ${set} '{ ${ts(m)} }' >/dev/null 2>&1 && echo ${m}`);
      return (await tn(n).run(`${asks.join("; ")}; true`)).trim().split("\n").filter(Boolean);
    };
    expect(await members("agent", "agentapi-v4")).toEqual(["hub"]);
    expect(await members("agent", "iceccd-v4")).toEqual(["hub", "agent"]);
    expect(await members("hub", "iceccd-v4")).toEqual(["hub", "agent"]);
    expect(await members("hub", "icecc-scheduler-v4")).toEqual(["hub", "agent"]);
    expect(await members("hub", "queue-v4")).toEqual(["hub", "agent", "box"]);
    expect(await tn("hub").run("systemctl is-enabled fleetkit-firewall-queue.service fleetkit-firewall-queue-refresh.timer; systemctl is-active fleetkit-firewall-queue-refresh.timer")).toBe("enabled\nenabled\nactive\n");
  });

  it("icecc binds the Tailscale interface (and the daemon loopback); the queue listens on every address; AgentAPI cannot be told where", async () => {
    const listening = async (n: string) => (await tn(n).run("ss -Hltn")).split("\n").map((l) => l.trim().split(/\s+/)[3]).filter((a): a is string => !!a && Object.values(PORTS).some((p) => a.endsWith(`:${p}`))).sort();
    expect(await listening("hub")).toEqual([`${ts("hub")}:10245`, `${ts("hub")}:8765`, `${ts("hub")}:8766`, "0.0.0.0:8787", "127.0.0.1:10245"].sort());
    // The AgentAPI stand-in listens on 0.0.0.0 as AgentAPI v0.10.0 listens on ":port" (no bind flag).
    expect(await listening("agent")).toEqual(["0.0.0.0:3284", `${ts("agent")}:10245`, "127.0.0.1:10245"].sort());
    // The scheduler node's own daemon registered over the tailnet; so did agent's.
    expect(await tn("hub").run("tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value iceccd.service)/cmdline")).toContain(`--scheduler-host ${ts("hub")} `);
    let peers = "";
    for (let i = 0; i < 30 && peers !== `${ts("hub")}\n${ts("agent")}\n`; i++) {
      if (i) await new Promise((r) => setTimeout(r, 1000));
      peers = await tn("hub").run(`ss -Htn state established '( sport = :8765 )' | awk '{ sub(/:[0-9]+$/, "", $4); print $4 }' | sort`);
    }
    expect(peers).toBe(`${ts("hub")}\n${ts("agent")}\n`);
  });

  it("from a machine the fleet does not allow, AgentAPI, iceccd, the scheduler and the queue refuse the connection; on the LAN address too", async () => {
    const targets = (addr: (n: string) => string): [string, number][] => [
      [addr("agent"), PORTS.agentapi], [addr("agent"), PORTS.iceccd], [addr("hub"), PORTS.iceccd],
      [addr("hub"), PORTS.scheduler], [addr("hub"), PORTS.schedulerText], [addr("hub"), PORTS.queue],
    ];
    const lan = (n: string) => tn(n).address;
    const closed = (t: [string, number][]) => t.map(([h, p]) => `${h}:${p} closed`).sort();
    expect(await connectsFrom("outsider", targets(ts))).toEqual(closed(targets(ts)));
    expect(await connectsFrom("outsider", targets(lan))).toEqual(closed(targets(lan)));
    expect(await connectsFromHere(targets(ts))).toEqual(closed(targets(ts)));
    expect(await connectsFromHere(targets(lan))).toEqual(closed(targets(lan)));
  });

  it("from allowed nodes they work: the queue node drives AgentAPI, every fleet node reaches the queue; box, in the fleet, still cannot compile or drive agents", async () => {
    expect(JSON.parse(await tn("hub").run(`curl -fsS -m 5 http://${ts("agent")}:${PORTS.agentapi}/status`))).toMatchObject({ status: "stable" });
    expect(JSON.parse(await tn("agent").run(`curl -fsS -m 5 http://127.0.0.1:${PORTS.agentapi}/status`))).toMatchObject({ status: "stable" });
    for (const n of ["agent", "box"]) expect(JSON.parse(await tn(n).run(`curl -fsS -m 5 http://${ts("hub")}:${PORTS.queue}/healthz`))).toEqual({ ok: true });
    expect(await connectsFrom("box", [[ts("agent"), PORTS.agentapi], [ts("agent"), PORTS.iceccd], [ts("hub"), PORTS.scheduler]])).toEqual(
      [`${ts("agent")}:${PORTS.agentapi} closed`, `${ts("agent")}:${PORTS.iceccd} closed`, `${ts("hub")}:${PORTS.scheduler} closed`].sort(),
    );
  });

  it("icecc: agent compiles on hub over the bound, firewalled tailnet", async () => {
    const a = tn("agent");
    await a.copy({ content: "int main(void) { return 6 * 7 - 42; }\n" }, "/home/admin/work/t.c", 0o644);
    await a.run("sudo -n chown -R admin:admin /home/admin/work");
    let log = "";
    for (let i = 0; i < 30 && !log.includes(ts("hub")); i++) {
      await a.run("cd /home/admin/work && rm -f t.o icecc.log && ICECC_PREFERRED_HOST=hub ICECC_DEBUG=debug ICECC_LOGFILE=/home/admin/work/icecc.log icecc gcc -O2 -c t.c -o t.o && test -s t.o");
      log = await a.run("cat /home/admin/work/icecc.log");
      if (!log.includes(ts("hub"))) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(log).toContain(ts("hub"));
    expect(log).not.toMatch(/building myself/);
  }, 180_000);

  it("installing again changes nothing: every role unchanged, every table's rules (with their handles) as they were", async () => {
    const before = await Promise.all(["hub", "agent"].map(nftTable));
    for (const wave of installWaves(fleet)) {
      const results = await Promise.all(wave.map(async ([n, role]) => ({ b: bundleOf(n.name, role), ...(await run(bundleOf(n.name, role), "install")) })));
      expect(results.map((r) => [r.b.node, r.b.role, r.code, lastLine(r.stdout)])).toEqual(results.map((r) => [r.b.node, r.b.role, 0, `fleetkit: ${r.b.role} unchanged`]));
    }
    expect(await Promise.all(["hub", "agent"].map(nftTable))).toEqual(before);
  }, 600_000);

  it("fleet status reports a service reachable from where it should not be (exit 1), and nothing once the firewall is back", async () => {
    const status = async (): Promise<StatusReport> => fleetStatus(fleet, fleet.nodes, 30);
    const exposures = (r: StatusReport) => r.nodes.flatMap((n) => n.problems.filter((p) => p.startsWith("exposed:")));
    expect(exposures(await status())).toEqual([]);
    // The firewall gone from agent (a user flushed the ruleset; a node before this change).
    await tn("agent").run("sudo -n nft delete table inet fleetkit");
    const exposed = await status();
    expect(exposed.healthy).toBe(false);
    expect(exposures(exposed).sort()).toEqual(
      [
        `exposed: agentapi on agent is reachable from box (allowed: hub)`,
        `exposed: agentapi on agent is reachable from this machine (${net.hostTailnetAddress}) (allowed: hub)`,
        `exposed: iceccd on agent is reachable from box (allowed: hub, agent)`,
        `exposed: iceccd on agent is reachable from this machine (${net.hostTailnetAddress}) (allowed: hub, agent)`,
      ].sort(),
    );
    // The next install (or the refresh timer) loads the rules again.
    for (const role of ["iceccd", "agentapi"] as RoleName[]) {
      const r = await run(bundleOf("agent", role), "install");
      expect([r.code, lastLine(r.stdout)]).toEqual([0, `fleetkit: ${role} changed`]);
    }
    expect(exposures(await status())).toEqual([]);
  }, 180_000);

  it("uninstall removes the rules: one role's chain goes and the others stay; the table goes with the last role", async () => {
    const r = await run(bundleOf("agent", "agentapi"), "uninstall");
    expect([r.code, lastLine(r.stdout)]).toEqual([0, "fleetkit: agentapi removed"]);
    expect((await tn("agent").run("sudo -n nft -s list table inet fleetkit")).split("\n").filter((l) => /^\t(chain|set) /.test(l)).map((l) => l.trim())).toEqual([
      "set iceccd-v4 {",
      "set iceccd-v6 {",
      "chain iceccd-input {",
    ]);
    for (const wave of installWaves(fleet).reverse()) {
      const results = await Promise.all(wave.filter(([n, role]) => !(n.name === "agent" && role === "agentapi")).map(async ([n, role]) => ({ b: bundleOf(n.name, role), ...(await run(bundleOf(n.name, role), "uninstall")) })));
      expect(results.map((x) => [x.b.node, x.b.role, x.code, lastLine(x.stdout)])).toEqual(results.map((x) => [x.b.node, x.b.role, 0, `fleetkit: ${x.b.role} removed`]));
    }
    for (const n of ["hub", "agent"]) {
      expect((await tn(n).ssh("sudo -n nft list table inet fleetkit")).code).not.toBe(0);
      expect(await tn(n).run("sudo -n ls -A /var/lib/fleetkit/firewall /usr/local/lib/fleetkit/firewall 2>&1; ls /etc/systemd/system | grep -c fleetkit-firewall; true")).toMatch(/No such file or directory\n.*No such file or directory\n0\n$/);
    }
    // The ports are open again only because nothing listens there any more: nothing answers.
    expect(await connectsFromHere([[ts("agent"), PORTS.agentapi], [ts("hub"), PORTS.queue]])).toEqual([`${ts("agent")}:${PORTS.agentapi} closed`, `${ts("hub")}:${PORTS.queue} closed`].sort());
    // Uninstalling again succeeds and changes nothing.
    const again = await Promise.all(Object.entries(LAYOUT).flatMap(([n, roles]) => roles.map((role) => run(bundleOf(n, role), "uninstall"))));
    expect(again.map((x) => [x.code, lastLine(x.stdout).replace(/ removed$/, "")])).toEqual(Object.values(LAYOUT).flat().map((role) => [0, `fleetkit: ${role}`]));
  }, 600_000);
});

if (skipReason !== undefined) {
  describe("hosts: the node firewall", () => {
    it.skip(`SKIPPED: ${skipReason}`, () => {});
  });
}
