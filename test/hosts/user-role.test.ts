// @needs debootstrap systemd-nspawn ip iptables ssh ssh-keygen sshd sudo
/**
 * A user role on real Debian 13 nodes: the shipped example examples/roles/node-exporter, loaded from a fleet
 * file's `roleSources:` by the same loader the CLI and the Pulumi program use (roles/sources.ts), installed,
 * installed again unchanged, scraped over HTTP, judged by `fleet status` with the role's own probe, and
 * uninstalled — over SSH exactly as the Pulumi role component runs its bundle (bundles.ts).
 * - watched, scraper: both in the fleet, both run node-exporter (allowFrom: [fleet]);
 * - this test process: on the nodes' LAN but not in the fleet, so its scrape is dropped by the role's firewall.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Fleet } from "../../model/fleet.js";
import { renderFleetBundles } from "../../roles/index.js";
import { loadFleetWithRoles } from "../../roles/sources.js";
import type { Bundle } from "../../roles/types.js";
import { fleetStatus } from "../../cli/status.js";
import { announceSkip, bootNodes, type TestNetwork, type TestNode } from "./harness.js";
import { expectedFacts, fileFacts, lastLine, mainPids, runBundleScript, serviceState, testNode, withoutMtime } from "./bundles.js";

const skipReason = announceSkip();
const NAMES = ["watched", "scraper"];
const PORT = 9110;
const EXAMPLE_ROLES = new URL("../../examples/roles", import.meta.url).pathname;

describe.skipIf(skipReason !== undefined)("hosts: the user role node-exporter (examples/roles) on two real Debian 13 nodes", () => {
  let net: TestNetwork;
  let fleet: Fleet;
  let bundles: Map<string, Bundle[]>;
  let work: string;
  const tn = (name: string): TestNode => testNode(net, name);
  const bundleOf = (n: string): Bundle => bundles.get(n)!.find((b) => b.role === "node-exporter")!;
  const run = (n: string, which: "install" | "uninstall") => runBundleScript(net, fleet, bundleOf(n), which, {});
  const addr = (n: string) => tn(n).address;
  /** `open` / `closed` for a TCP connect from this process, at most 3 s. */
  const connectFromHere = (host: string, port: number) =>
    new Promise<string>((resolve) => {
      const s = connect({ host, port });
      const done = (r: string) => { s.destroy(); resolve(r); };
      s.setTimeout(3000, () => done("closed"));
      s.once("connect", () => done("open"));
      s.once("error", () => done("closed"));
    });

  beforeAll(async () => {
    net = await bootNodes(2, { names: NAMES, log: (l) => console.log(l) });
    work = mkdtempSync(join(tmpdir(), "fleetkit-user-role-hosts-"));
    const file = join(work, "fleet.yaml");
    writeFileSync(
      file,
      [
        "fleet: user-role-test",
        `roleSources: [${JSON.stringify(EXAMPLE_ROLES)}]`,
        "defaults:",
        `  user: ${net.nodes[0]!.user}`,
        `  sshKeyPath: ${net.keyPath}`,
        "services:",
        `  node-exporter: { port: ${PORT}, allowFrom: [fleet] }`,
        "nodes:",
        ...net.nodes.flatMap((n) => [`  ${n.name}:`, `    host: ${n.address}`, "    os: debian", "    arch: x86_64", "    roles: [node-exporter]"]),
        "",
      ].join("\n"),
    );
    fleet = await loadFleetWithRoles(file);
    bundles = renderFleetBundles(fleet);
  });
  afterAll(async () => {
    await net?.teardown();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("installs on both nodes: changed, the exporter active, its files as rendered, the marker its hash", async () => {
    const results = await Promise.all(NAMES.map((n) => run(n, "install")));
    expect(results.map((r) => [r.code, lastLine(r.stdout)]), results.map((r) => r.stderr.split("\n").slice(-8).join("\n")).join("\n---\n")).toEqual(
      NAMES.map(() => [0, "fleetkit: node-exporter changed"]),
    );
    for (const n of NAMES) {
      const { state, journal } = await serviceState(tn(n), "prometheus-node-exporter.service");
      expect(state, journal).toBe("active");
      expect(withoutMtime(await fileFacts(tn(n), bundleOf(n).files.map((f) => f.path)))).toEqual(expectedFacts(bundleOf(n)));
      expect(await tn(n).run("cat /var/lib/fleetkit/roles/node-exporter.hash")).toBe(`${bundleOf(n).hash}\n`);
    }
  }, 900_000);

  it("installed again, reports no change, touches no file and keeps the exporter's process", async () => {
    for (const n of NAMES) {
      const b = bundleOf(n);
      const before = await fileFacts(tn(n), b.files.map((f) => f.path));
      const pid = await mainPids(tn(n), b);
      const r = await run(n, "install");
      expect(r.code, r.stderr).toBe(0);
      expect(lastLine(r.stdout)).toBe("fleetkit: node-exporter unchanged");
      expect(await fileFacts(tn(n), b.files.map((f) => f.path))).toEqual(before);
      expect(await mainPids(tn(n), b)).toBe(pid);
    }
  }, 600_000);

  it("serves the node's metrics over HTTP to a fleet node on fleet.yaml's port, and to nobody outside the fleet", async () => {
    const metrics = await tn("scraper").run(`curl -fsS -m 5 http://${addr("watched")}:${PORT}/metrics`);
    expect(metrics).toMatch(/^node_uname_info\{.*nodename="watched".*\} 1$/m);
    expect(metrics).toMatch(/^node_cpu_seconds_total\{cpu="0",mode="idle"\} \d/m);
    // The package's own unit (port 9100) is shadowed by the role's: nothing listens there.
    expect((await tn("watched").ssh("curl -sS -m 3 -o /dev/null http://127.0.0.1:9100/metrics")).code).toBe(7);
    expect(await connectFromHere(addr("watched"), PORT)).toBe("closed");
    expect(await tn("watched").run("sudo -n nft list chain inet fleetkit node-exporter-input | grep -c 'dport 9110'")).not.toBe("0\n");
  });

  it("fleet status judges it with the role's own probe: healthy, and unhealthy with the role's words when the exporter stops", async () => {
    const report = await fleetStatus(fleet, fleet.nodes, 30, undefined, { localAddresses: [] });
    expect(report.nodes.map((n) => [n.node, n.healthy, n.problems, n.roles.map((r) => [r.role, r.ok])])).toEqual(
      NAMES.map((n) => [n, true, [], [["node-exporter", true]]]),
    );
    await tn("watched").run("sudo -n systemctl stop prometheus-node-exporter.service");
    const down = await fleetStatus(fleet, [fleet.nodes[0]!], 30, undefined, { localAddresses: [] });
    expect(down.nodes[0]!.problems).toEqual(["node-exporter: prometheus-node-exporter.service is inactive", "node-exporter: GET /metrics: no answer"]);
    await tn("watched").run("sudo -n systemctl start prometheus-node-exporter.service");
  }, 120_000);

  it("uninstalls: the exporter, its unit, package, firewall chain and marker are gone; a second uninstall changes nothing", async () => {
    const results = await Promise.all(NAMES.map((n) => run(n, "uninstall")));
    expect(results.map((r) => [r.code, lastLine(r.stdout)])).toEqual(NAMES.map(() => [0, "fleetkit: node-exporter removed"]));
    for (const n of NAMES) {
      expect((await tn(n).ssh(`curl -sS -m 3 -o /dev/null http://127.0.0.1:${PORT}/metrics`)).code).toBe(7);
      expect(await tn(n).run("dpkg-query -W -f '${db:Status-Status}' prometheus-node-exporter 2>/dev/null || echo gone")).toMatch(/^(gone|not-installed|config-files)/);
      expect(await tn(n).run("test -e /etc/systemd/system/prometheus-node-exporter.service || test -e /var/lib/fleetkit/roles/node-exporter.hash || echo clean")).toBe("clean\n");
      expect((await tn(n).ssh("sudo -n nft list chain inet fleetkit node-exporter-input")).code).not.toBe(0);
    }
    const again = await Promise.all(NAMES.map((n) => run(n, "uninstall")));
    expect(again.map((r) => [r.code, lastLine(r.stdout).replace(/ removed$/, "")])).toEqual(NAMES.map(() => [0, "fleetkit: node-exporter"]));
  }, 600_000);
});
