// @needs debootstrap systemd-nspawn ip iptables ssh ssh-keygen sshd sudo
/**
 * The worker runtime roles (queue, worker) with claude, on two real Debian 13 (trixie) nodes: bookworm's
 * Node.js 18 is older than the queue's minimum (20, for better-sqlite3 12), which the queue role refuses with
 * a clear message, so these roles are proven on the release their docs name. Bundles run over SSH exactly
 * as the Pulumi role component runs them (see bundles.ts); the runtime's npm dependencies come from the npm
 * registry through the harness's registry proxy.
 */
import { createHash, randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet } from "../../stacks/model/load.js";
import type { Fleet, RoleName } from "../../stacks/model/fleet.js";
import { formatQueueTokens } from "../../stacks/secrets.js";
import { renderFleetBundles } from "../../roles/index.js";
import { remoteInvocation, WINDOWS_COMMAND_LINE_LIMIT } from "../../roles/bundle.js";
import { wslLauncher } from "../roles/windows-commands.js";
import type { Bundle, SecretName } from "../../roles/types.js";
import { announceSkip, bootNodes, type TestNetwork } from "./harness.js";
import { expectedFacts, fileFacts, installWaves, lastLine, mainPids, runBundleScript, serviceState, testNode, withoutMtime } from "./bundles.js";

const skipReason = announceSkip();

// box runs its worker without the claude role, so the worker takes `claude` from PATH: there the test puts
// the stand-in (test/runtime/fixtures/claude, Claude's documented JSON result) for a delegated task to finish
// (the real Claude Code on hub has no Anthropic API to reach here).
const LAYOUT: Record<string, RoleName[]> = {
  hub: ["claude", "queue", "worker"],
  box: ["worker"],
};
const STANDIN = readFileSync(new URL("../runtime/fixtures/claude", import.meta.url), "utf8");
const QUEUE_PORT = 8787;
/** What each role leaves outside its bundle files, which uninstall must remove. */
const ROLE_LEFTOVERS: Partial<Record<RoleName, string[]>> = {
  claude: ["/usr/local/bin/claude", "/usr/local/lib/fleetkit/claude-code", "/etc/fleetkit/claude.env"],
  queue: ["/usr/local/lib/fleetkit/queue", "/etc/fleetkit/queue/tokens.json"],
  worker: ["/usr/local/lib/fleetkit/worker", "/etc/fleetkit/worker/token"],
};

describe.skipIf(skipReason !== undefined)("hosts: queue and worker roles on two real Debian 13 nodes", () => {
  let net: TestNetwork;
  let fleet: Fleet;
  let bundles: Map<string, Bundle[]>;
  const tokens: Record<string, string> = { hub: randomBytes(18).toString("hex"), box: randomBytes(18).toString("hex") };
  const apiKey = `sk-ant-test-${randomBytes(12).toString("hex")}`;
  const secretsFor = (node: string): Partial<Record<SecretName, string>> => ({
    anthropicApiKey: apiKey,
    queueTokens: formatQueueTokens(tokens),
    queueToken: tokens[node],
  });
  const bundleOf = (n: string, role: RoleName): Bundle => bundles.get(n)!.find((b) => b.role === role)!;
  const installed: { b: Bundle; code: number; stdout: string; stderr: string }[] = [];
  const allPairs = Object.entries(LAYOUT).flatMap(([node, roles]) => roles.map((role) => ({ node, role })));

  beforeAll(async () => {
    net = await bootNodes(2, { names: Object.keys(LAYOUT), suite: "trixie", log: (l) => console.log(l) });
    const yaml = [
      "fleet: runtime-test",
      "defaults:",
      `  user: ${net.nodes[0]!.user}`,
      "  budgetUsdPerSession: 5",
      "  claude:",
      "    version: 2.1.331",
      "services:",
      "  queue:",
      `    port: ${QUEUE_PORT}`,
      "nodes:",
      ...net.nodes.flatMap((n) => [`  ${n.name}:`, `    host: ${n.name}`, "    os: debian", "    arch: x86_64", `    roles: [${LAYOUT[n.name]!.join(", ")}]`]),
      "",
    ].join("\n");
    fleet = parseFleet(yaml, "runtime-test.fleet.yaml");
    bundles = renderFleetBundles(fleet);
  });
  afterAll(async () => {
    await net?.teardown();
  });

  it("installs claude, queue and worker in dependency order (waves in parallel, like Pulumi)", async () => {
    for (const wave of installWaves(fleet)) {
      const results = await Promise.all(wave.map(async ([n, role]) => ({ b: bundleOf(n.name, role), ...(await runBundleScript(net, fleet, bundleOf(n.name, role), "install", secretsFor)) })));
      installed.push(...results);
      expect(results.filter((r) => r.code !== 0).map((r) => `${r.b.node}/${r.b.role} exited ${r.code}: ${r.stderr.split("\n").slice(-8).join("\n")}`)).toEqual([]);
    }
    expect(installed.length).toBe(allPairs.length);
  }, 600_000);

  it.each(allPairs)("$node $role: install reported a change, its services are active, its files are as rendered", async ({ node, role }) => {
    const r = installed.find((x) => x.b.node === node && x.b.role === role)!;
    expect(lastLine(r.stdout)).toBe(`fleetkit: ${role} changed`);
    const b = bundleOf(node, role);
    for (const s of b.services) {
      const { state, journal } = await serviceState(testNode(net, node), s.name);
      expect(state, journal).toBe("active");
    }
    expect(withoutMtime(await fileFacts(testNode(net, node), b.files.map((f) => f.path)))).toEqual(expectedFacts(b));
  });

  it.each(allPairs)("$node $role: install again reports no change, touches no file and restarts nothing", async ({ node, role }) => {
    const b = bundleOf(node, role);
    const n = testNode(net, node);
    const paths = [...b.files.map((f) => f.path), ...(ROLE_LEFTOVERS[role] ?? []).filter((p) => p.includes("."))];
    const [before, pids] = [await fileFacts(n, paths), await mainPids(n, b)];
    const r = await runBundleScript(net, fleet, b, "install", secretsFor);
    expect([r.code, lastLine(r.stdout)], r.stderr).toEqual([0, `fleetkit: ${role} unchanged`]);
    expect(await fileFacts(n, paths)).toEqual(before);
    expect(await mainPids(n, b)).toBe(pids);
  }, 300_000);

  it("box worker, delivered as to a Windows (WSL) node: the install on stdin ahead of the token, taken by the WSL launcher; same script, so unchanged", async () => {
    const b = bundleOf("box", "worker");
    const asWsl = { ...fleet.nodes.find((n) => n.name === "box")!, os: "windows-wsl" as const, wslDistro: "Debian" };
    const inv = remoteInvocation(asWsl, "wsl", b.install);
    expect(inv.stdinPrefix.length).toBeGreaterThan(WINDOWS_COMMAND_LINE_LIMIT);
    // What wsl.exe runs inside the distro as root: the `sh -c` argument of the command line.
    const { inner, file } = wslLauncher(inv.command);
    const box = testNode(net, "box");
    const pids = await mainPids(box, b);
    const r = await box.ssh(`sudo -n sh -c '${inner}'`, { input: `${inv.stdinPrefix}queueToken=${tokens.box}\n`, timeoutSeconds: 300 });
    expect([r.code, lastLine(r.stdout)], r.stderr).toEqual([0, "fleetkit: worker unchanged"]);
    expect(await box.run(`sudo -n test -e ${file} && echo left; true`)).toBe("");
    expect(await mainPids(box, b)).toBe(pids);
  }, 300_000);

  it("the queue answers on hub by name, keeps its tokens in a 0600 file, and sees both workers online", async () => {
    const box = testNode(net, "box");
    expect(JSON.parse(await box.run(`curl -fsS http://hub:${QUEUE_PORT}/healthz`))).toEqual({ ok: true });
    expect(await testNode(net, "hub").run("sudo -n stat -c '%a %U' /etc/fleetkit/queue/tokens.json /etc/fleetkit/worker/token")).toBe("600 admin\n600 admin\n");
    // It holds each token's SHA-256, never a token: hub keeps no usable token of box.
    const held = await testNode(net, "hub").run("sudo -n cat /etc/fleetkit/queue/tokens.json");
    expect(held).not.toContain(tokens.box);
    expect(held).not.toContain(tokens.hub);
    expect((JSON.parse(held) as { nodes: Record<string, { tokenSha256: string }> }).nodes.box!.tokenSha256).toBe(createHash("sha256").update(tokens.box!).digest("hex"));
    // The token travels on stdin (a command line would show it in ps and sudo's log).
    let nodes: { node: string; online: boolean }[] = [];
    for (let i = 0; i < 30; i++) {
      const out = await box.run("sh -s", { input: `curl -fsS -H "Authorization: Bearer ${tokens.box}" http://hub:${QUEUE_PORT}/v1/nodes\n` });
      nodes = (JSON.parse(out) as { nodes: { node: string; online: boolean }[] }).nodes;
      if (nodes.every((x) => x.online)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(nodes.map((x) => [x.node, x.online]).sort()).toEqual([["box", true], ["hub", true]]);
    const denied = await box.run("sh -s", { input: `curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer not-a-token-0000000" http://hub:${QUEUE_PORT}/v1/nodes\n` });
    expect(denied).toBe("401");
  }, 60_000);

  it("a task delegated with `fleet task delegate box … --wait` from this machine runs on box and completes", async () => {
    const box = testNode(net, "box");
    await box.run("sudo -n sh -c 'cat > /usr/local/bin/claude && chmod 755 /usr/local/bin/claude'", { input: STANDIN });
    const env = { ...process.env, FLEET_QUEUE_URL: `http://${testNode(net, "hub").address}:${QUEUE_PORT}`, FLEET_TOKEN: tokens.hub };
    const r = spawnSync(process.execPath, ["bin/fleet.mjs", "task", "delegate", "box", "Summarize the README", "--wait", "--timeout", "60", "--json"], { env, encoding: "utf8", timeout: 90_000 });
    expect([r.status, r.stderr]).toEqual([0, ""]);
    const task = JSON.parse(r.stdout) as Record<string, unknown>;
    expect({ state: task.state, submittedBy: task.submittedBy, node: task.node, chosenModel: task.chosenModel, result: task.result, exitCode: task.exitCode, costUsd: task.costUsd }).toEqual({
      state: "completed",
      submittedBy: "hub",
      node: "box",
      chosenModel: "haiku",
      result: "stand-in ran with model haiku",
      exitCode: 0,
      costUsd: 0.0123,
    });
    await box.run("sudo -n rm -f /usr/local/bin/claude");
  }, 120_000);

  it("uninstalls in reverse dependency order: services, units, runtime, tokens and markers gone; the task database kept", async () => {
    for (const wave of installWaves(fleet).reverse()) {
      const results = await Promise.all(wave.map(async ([n, role]) => ({ b: bundleOf(n.name, role), ...(await runBundleScript(net, fleet, bundleOf(n.name, role), "uninstall", secretsFor)) })));
      expect(results.map((r) => [r.b.node, r.b.role, r.code, lastLine(r.stdout) || r.stderr.trim().split("\n").slice(-3).join(" | ")])).toEqual(
        results.map((r) => [r.b.node, r.b.role, 0, `fleetkit: ${r.b.role} removed`]),
      );
    }
    for (const { node, role } of allPairs) {
      const n = testNode(net, node);
      const b = bundleOf(node, role);
      const paths = [...b.files.map((f) => f.path), ...(ROLE_LEFTOVERS[role] ?? []), `/var/lib/fleetkit/roles/${role}.hash`];
      expect(await n.run(`for p in ${paths.join(" ")}; do sudo -n test -e "$p" && echo "left: $p"; done; true`)).toBe("");
      for (const s of b.services) {
        expect((await n.ssh(`systemctl is-active ${s.name}`)).stdout).toBe("inactive\n");
        expect((await n.ssh(`systemctl cat ${s.name}`)).code).not.toBe(0);
      }
    }
    expect(await testNode(net, "hub").run("sudo -n test -f /var/lib/fleetkit/queue/queue.db && echo kept")).toBe("kept\n");
    expect((await testNode(net, "hub").ssh("pgrep -f fleet.mjs")).stdout).toBe("");
  }, 300_000);

  it("uninstalling again succeeds and changes nothing", async () => {
    const results = await Promise.all(allPairs.map(({ node, role }) => runBundleScript(net, fleet, bundleOf(node, role), "uninstall", secretsFor)));
    expect(results.map((r) => [r.code, lastLine(r.stdout)])).toEqual(allPairs.map(({ role }) => [0, `fleetkit: ${role} removed`]));
  });
});

if (skipReason !== undefined) {
  describe("hosts: queue and worker roles", () => {
    it.skip(`SKIPPED: ${skipReason}`, () => {});
  });
}
