// @needs debootstrap systemd-nspawn ip iptables ssh ssh-keygen sshd sudo
/**
 * The worker runtime roles (queue, worker) with claude, on three real Debian 13 (trixie) nodes: bookworm's
 * Node.js 18 is older than the queue's minimum (20, for better-sqlite3 12), which the queue role refuses with
 * a clear message, so these roles are proven on the release their docs name. Bundles run over SSH exactly
 * as the Pulumi role component runs them (see bundles.ts); the runtime's npm dependencies come from the npm
 * registry through the harness's registry proxy.
 */
import { createHash, randomBytes } from "node:crypto";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet } from "../../model/load.js";
import type { Fleet, RoleName } from "../../model/fleet.js";
import { formatQueueTokens } from "../../stacks/secrets.js";
import { renderFleetBundles } from "../../roles/index.js";
import { remoteInvocation, WINDOWS_COMMAND_LINE_LIMIT } from "../../roles/bundle.js";
import { wslLauncher } from "../roles/windows-commands.js";
import type { Bundle, SecretName } from "../../roles/types.js";
import { announceSkip, bootNodes, type TestNetwork } from "./harness.js";
import { issueCalls, NEW_PULL_REQUEST_CALLS, startGitHub, type GitHubStandIn } from "../runtime/fixtures/github.js";
import { expectedFacts, fileFacts, installWaves, lastLine, mainPids, runBundleScript, serviceState, testNode, withoutMtime } from "./bundles.js";

const skipReason = announceSkip();

// box runs its worker without the claude role, so the worker takes `claude` from PATH: there the test puts
// the stand-in (test/runtime/fixtures/claude, Claude's documented JSON result) for a delegated task to finish
// (the real Claude Code on hub has no Anthropic API to reach here).
// desk has Claude and no worker: the claude role brings its `fleet` command (and its token), as on a person's Mac.
const LAYOUT: Record<string, RoleName[]> = {
  hub: ["claude", "queue", "worker"],
  box: ["worker"],
  desk: ["claude"],
};
const STANDIN = readFileSync(new URL("../runtime/fixtures/claude", import.meta.url), "utf8");
const QUEUE_PORT = 8787;
/** What each role leaves outside its bundle files, which uninstall must remove. */
const ROLE_LEFTOVERS: Partial<Record<RoleName, string[]>> = {
  // The node's `fleet` (command, runtime, token) goes with the last of claude and worker on the node.
  claude: ["/usr/local/bin/claude", "/usr/local/lib/fleetkit/claude-code", "/etc/fleetkit/claude.env", "/usr/local/bin/fleet", "/etc/fleetkit/worker/token", "/usr/local/lib/fleetkit/worker"],
  queue: ["/usr/local/lib/fleetkit/queue", "/etc/fleetkit/queue/tokens.json", "/etc/fleetkit/queue/github.token"],
  worker: ["/usr/local/lib/fleetkit/worker", "/etc/fleetkit/worker/token", "/var/lib/fleetkit/workers", "/usr/local/bin/fleet"],
};

describe.skipIf(skipReason !== undefined)("hosts: queue and worker roles on three real Debian 13 nodes", () => {
  let net: TestNetwork;
  let fleet: Fleet;
  let bundles: Map<string, Bundle[]>;
  const tokens: Record<string, string> = { hub: randomBytes(18).toString("hex"), box: randomBytes(18).toString("hex"), desk: randomBytes(18).toString("hex") };
  const apiKey = `sk-ant-test-${randomBytes(12).toString("hex")}`;
  /** The queue's GitHub token: a marker that must be nowhere on box and only in the queue's token file on hub. */
  const githubToken = `ghp_hostsMarker${randomBytes(12).toString("hex")}`;
  let gh: GitHubStandIn;
  const secretsFor = (node: string): Partial<Record<SecretName, string>> => ({
    anthropicApiKey: apiKey,
    githubToken,
    queueTokens: formatQueueTokens(tokens),
    queueToken: tokens[node],
  });
  const bundleOf = (n: string, role: RoleName): Bundle => bundles.get(n)!.find((b) => b.role === role)!;
  const installed: { b: Bundle; code: number; stdout: string; stderr: string }[] = [];
  const allPairs = Object.entries(LAYOUT).flatMap(([node, roles]) => roles.map((role) => ({ node, role })));

  beforeAll(async () => {
    // debianHostname: on hub, "hub" is 127.0.1.1 (Debian's installer line), where the queue once bound.
    net = await bootNodes(3, { names: Object.keys(LAYOUT), suite: "trixie", debianHostname: true, log: (l) => console.log(l) });
    // GitHub, as the nodes reach it: the stand-in on the host's side of the nodes' bridge.
    gh = await startGitHub(githubToken, { host: net.hostAddress });
    gh.addRepo("acme", "widgets", { "README.md": "widgets\n", "AGENTS.md": "Run the tests with `make test` before committing.\n" });
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
      "    github:",
      `      apiUrl: ${gh.url}`,
      "nodes:",
      ...net.nodes.flatMap((n) => [`  ${n.name}:`, `    host: ${n.name}`, "    os: debian", "    arch: x86_64", `    roles: [${LAYOUT[n.name]!.join(", ")}]`]),
      "",
    ].join("\n");
    fleet = parseFleet(yaml, "runtime-test.fleet.yaml");
    bundles = renderFleetBundles(fleet);
  });
  afterAll(async () => {
    await net?.teardown();
    await gh?.close();
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
      if (nodes.filter((x) => x.node !== "desk").every((x) => x.online)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    // desk runs no worker: known to the queue (it has a token), never online.
    expect(nodes.map((x) => [x.node, x.online]).sort()).toEqual([["box", true], ["desk", false], ["hub", true]]);
    const denied = await box.run("sh -s", { input: `curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer not-a-token-0000000" http://hub:${QUEUE_PORT}/v1/nodes\n` });
    expect(denied).toBe("401");
  }, 60_000);

  it("the installed queue serves its dashboard: the sign-in page, htmx and uPlot from the npm packages it installed", async () => {
    const box = testNode(net, "box");
    const code = (path: string) => box.run(`curl -sS -o /dev/null -w '%{http_code} %{content_type}' http://hub:${QUEUE_PORT}${path}`);
    expect(await code("/login")).toBe("200 text/html; charset=utf-8");
    expect(await code("/assets/htmx.min.js")).toMatch(/^200 (application|text)\/javascript/);
    expect(await code("/assets/sse.js")).toMatch(/^200 (application|text)\/javascript/);
    expect(await code("/assets/uPlot.iife.min.js")).toMatch(/^200 (application|text)\/javascript/);
    expect(await code("/assets/uPlot.min.css")).toMatch(/^200 text\/css/);
    // Served from the queue runtime's own node_modules on hub (no CDN, nothing from this checkout).
    expect(await box.run(`curl -fsS http://hub:${QUEUE_PORT}/assets/htmx.min.js | head -c 200`)).toContain("htmx");
  }, 60_000);

  it("the queue's firewall admits the fleet's nodes only: this machine (not in fleet.yaml) cannot connect", async () => {
    const r = spawnSync("curl", ["-sS", "-m", "3", "-o", "/dev/null", `http://${testNode(net, "hub").address}:${QUEUE_PORT}/healthz`], { encoding: "utf8" });
    expect(r.status).toBe(28);
  });

  /**
   * An SSH tunnel from this machine (not a fleet node: the queue's firewall drops it) through box, a fleet
   * node, to the queue, as an operator off the fleet would open one; returns its URL and a close function.
   */
  const openTunnel = async (port: number): Promise<{ url: string; close: () => void }> => {
    const box = testNode(net, "box");
    const tunnel = spawn("ssh", ["-i", net.keyPath, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-N", "-L", `127.0.0.1:${port}:hub:${QUEUE_PORT}`, `${box.user}@${box.address}`], { stdio: "ignore" });
    for (let i = 0; i < 50 && spawnSync("curl", ["-fsS", "-m", "2", `http://127.0.0.1:${port}/healthz`]).status !== 0; i++) await new Promise((res) => setTimeout(res, 200));
    return { url: `http://127.0.0.1:${port}`, close: () => tunnel.kill() };
  };
  let hubTunnel: { url: string; close: () => void } | undefined;

  it("a task delegated with `fleet task delegate box … --wait` from this machine (through an SSH tunnel from box, a fleet node) runs on box and completes", async () => {
    const box = testNode(net, "box");
    await box.run("sudo -n sh -c 'cat > /usr/local/bin/claude && chmod 755 /usr/local/bin/claude'", { input: STANDIN });
    const tunnel = await openTunnel(20000 + net.slot);
    const env = { ...process.env, FLEET_QUEUE_URL: tunnel.url, FLEET_TOKEN: tokens.hub };
    let r;
    try {
      r = spawnSync(process.execPath, ["bin/fleet.mjs", "task", "delegate", "box", "Summarize the README", "--wait", "--timeout", "60", "--json"], { env, encoding: "utf8", timeout: 90_000 });
    } finally {
      tunnel.close();
    }
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

  it("a GitHub issue task on box, from the worker the worker role installed: the issue becomes a pull request from fleet/box/issue-<n>; the token never reaches box's disk, logs or process list", async () => {
    const box = testNode(net, "box");
    // The worker role brought git (a minimal Debian has none; the root filesystem here has none either).
    expect(await box.run("command -v git")).toBe("/usr/bin/git\n");
    await box.run("sudo -n sh -c 'cat > /usr/local/bin/claude && chmod 755 /usr/local/bin/claude'", { input: STANDIN });
    const tunnel = await openTunnel(20200 + net.slot);
    const n = gh.addIssue("acme", "widgets", { title: "Fix the frobnicator", body: "It frobs twice." });
    try {
      const env = { ...process.env, FLEET_QUEUE_URL: tunnel.url, FLEET_TOKEN: tokens.hub };
      const sub = spawnSync(process.execPath, ["bin/fleet.mjs", "task", "github", `acme/widgets#${n}`, "box", "--prompt", "FAKE:exec=sleep 2; echo fixed > fix.txt", "--json"], { env, encoding: "utf8", timeout: 60_000 });
      expect([sub.status, sub.stderr]).toEqual([0, ""]);
      const id = (JSON.parse(sub.stdout) as { id: number }).id;
      // While it runs: box's process list, as any user of box sees it, never holds the token.
      const snapshots: string[] = [];
      let task: Record<string, unknown> = {};
      for (let i = 0; i < 120; i++) {
        snapshots.push(await box.run("ps -eo user,args"));
        task = (await (await fetch(`${tunnel.url}/v1/tasks/${id}`, { headers: { Authorization: `Bearer ${tokens.hub}` } })).json()) as Record<string, unknown>;
        if (["completed", "failed", "cancelled"].includes(task.state as string)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect({ state: task.state, node: task.node, error: task.error }).toEqual({ state: "completed", node: "box", error: null });
      expect((task.result as string).split("\n")[0]).toBe(`pull request ${gh.url}/html/acme/widgets/pull/${n + 1} (created)`);
      expect(snapshots.some((s) => s.includes("FAKE:exec=sleep 2"))).toBe(true);
      expect(snapshots.filter((s) => s.includes(githubToken))).toEqual([]);
      // The branch, pushed over HTTP by box's git; the default branch untouched (its pre-receive hook refuses updates).
      expect(gh.git("acme", "widgets", ["show", `fleet/box/issue-${n}:fix.txt`])).toBe("fixed");
      expect(gh.git("acme", "widgets", ["log", "--format=%s|%an", `fleet/box/issue-${n}`])).toBe(`Fix the frobnicator (#${n})|fleetkit box\ninitial commit|Octo Cat`);
      expect(gh.git("acme", "widgets", ["log", "--format=%s", "main"])).toBe("initial commit");
      const repo = gh.repo("acme", "widgets");
      expect(repo.pulls.map((p) => [p.head, p.base, p.state, p.labels])).toEqual([[`fleet/box/issue-${n}`, "main", "open", ["fleet:pull-request"]]]);
      expect(repo.issues.get(n)!.labels).toEqual([]);
      expect(issueCalls(gh, n)).toEqual(NEW_PULL_REQUEST_CALLS);
      expect(gh.violations).toEqual([]);
      // The token: on hub only in the queue's 0600 token file; on box in no file and no log line.
      // The search reads the token on stdin: as an argument of sudo it would be in sudo's own journal entry.
      const find = (n: string) =>
        testNode(net, n).run("sh -s", {
          input: `t='${githubToken}'\nprintf '%s\\n' "$t" | sudo -n grep -rlsF -f - /etc /var/lib/fleetkit /home /root /tmp /var/log\nsudo -n journalctl --no-pager -o cat | grep -cF -f /dev/fd/3 3<<EOF\n$t\nEOF\ntrue\n`,
        });
      expect(await find("hub")).toBe("/etc/fleetkit/queue/github.token\n0\n");
      expect(await testNode(net, "hub").run("sudo -n stat -c '%a %U' /etc/fleetkit/queue/github.token")).toBe("600 admin\n");
      expect(await find("box")).toBe("0\n");
    } finally {
      tunnel.close();
      await box.run("sudo -n rm -f /usr/local/bin/claude");
    }
  }, 240_000);

  it("from desk's own shell (Claude, no worker): the claude role brought `fleet` and desk's token; a delegation to box completes", async () => {
    const [desk, box] = [testNode(net, "desk"), testNode(net, "box")];
    expect(await desk.run("ls -l /usr/local/bin/fleet | cut -d' ' -f1,3; sudo -n stat -c '%a %U' /etc/fleetkit/worker/token")).toBe("-rwxr-xr-x root\n600 admin\n");
    await box.run("sudo -n sh -c 'cat > /usr/local/bin/claude && chmod 755 /usr/local/bin/claude'", { input: STANDIN });
    try {
      const t = JSON.parse(await desk.run("fleet task delegate box 'FAKE:exec=echo delegated from desk' --wait --timeout 60 --json")) as Record<string, unknown>;
      expect({ state: t.state, submittedBy: t.submittedBy, node: t.node, result: t.result }).toEqual({ state: "completed", submittedBy: "desk", node: "box", result: "delegated from desk\nexit 0" });
    } finally {
      await box.run("sudo -n rm -f /usr/local/bin/claude");
    }
  }, 120_000);

  it("desk's Claude skill points at its `fleet`, which lists the fleet's nodes; an interactive claim → note → complete from desk's shell shows in `show`", async () => {
    const desk = testNode(net, "desk");
    const skill = await desk.run("cat ~/.claude/skills/fleet/SKILL.md");
    expect(skill).toContain(`The \`fleet\` command on this node talks to the fleet's queue at \`http://hub:${QUEUE_PORT}\``);
    expect(skill).toContain("This node is **desk**.");
    const status = JSON.parse(await desk.run("fleet task status --json")) as { nodes: { node: string }[] };
    expect(status.nodes.map((n) => n.node).sort()).toEqual(["box", "desk", "hub"]);
    const id = (JSON.parse(await desk.run("fleet task delegate desk 'Look at the flaky test by hand' --json")) as { id: number }).id;
    // The claim runs in the foreground of a session, renewing its lease, until the task is finished elsewhere.
    await desk.run(`setsid sh -c 'fleet task claim ${id} --session desk-Claude > /tmp/claim.out 2>&1' </dev/null >/dev/null 2>&1 &`);
    let out = "";
    for (let i = 0; i < 60 && !out.includes("Ctrl-C here gives the task back"); i++) {
      await new Promise((r) => setTimeout(r, 500));
      out = await desk.run("cat /tmp/claim.out 2>/dev/null || true");
    }
    expect(out.split("\n")[0]).toMatch(new RegExp(`^Task #${id} claimed by desk-Claude \\(desk\\); lease `));
    expect(await desk.run(`fleet task note ${id} 'found it: a race in setup'`)).toBe(`Note added to task #${id} (1 note).\n`);
    expect(await desk.run(`fleet task complete ${id} -n 'Fixed: await the server first'`)).toBe(`Task #${id} completed.\n`);
    for (let i = 0; i < 40 && !out.trimEnd().endsWith(`Task #${id} completed.`); i++) {
      await new Promise((r) => setTimeout(r, 250));
      out = await desk.run("cat /tmp/claim.out");
    }
    expect(out.trimEnd().split("\n").at(-1)).toBe(`Task #${id} completed.`);
    const t = JSON.parse(await desk.run(`fleet task show ${id} --json`)) as { state: string; result: string; claimedBy: string; notes: { author: string; text: string }[] };
    expect({ state: t.state, result: t.result, claimedBy: t.claimedBy, notes: t.notes.map((n) => [n.author, n.text]) }).toEqual({
      state: "completed",
      result: "Fixed: await the server first",
      claimedBy: "desk",
      notes: [["desk", "found it: a race in setup"], ["desk", "Fixed: await the server first"]],
    });
  }, 120_000);

  /** Delegates `prompt` to `node` from this machine (through {@link hubTunnel}) with hub's token and waits; returns the finished task. */
  const delegate = (node: string, prompt: string): Record<string, unknown> => {
    const env = { ...process.env, FLEET_QUEUE_URL: hubTunnel!.url, FLEET_TOKEN: tokens.hub };
    const r = spawnSync(process.execPath, ["bin/fleet.mjs", "task", "delegate", node, prompt, "--wait", "--timeout", "60", "--json"], { env, encoding: "utf8", timeout: 90_000 });
    expect(r.stderr).toBe("");
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  describe("a task on hub (queue, claude and worker) runs as fleetkit-w1", () => {
    // hub's worker runs the pinned Claude Code; for these tasks the stand-in takes its place (and the real
    // one is put back after), so a task can run a command and answer its output (the stand-in's FAKE:exec).
    const pinned = "/usr/local/lib/fleetkit/claude-code/bin/claude";
    beforeAll(async () => {
      await testNode(net, "hub").run(`sudo -n sh -c 'mv ${pinned} ${pinned}.fleetkit-test && cat > ${pinned} && chmod 755 ${pinned}'`, { input: STANDIN });
      hubTunnel = await openTunnel(20100 + net.slot);
    });
    afterAll(async () => {
      hubTunnel?.close();
      await testNode(net, "hub").run(`sudo -n mv -f ${pinned}.fleetkit-test ${pinned}`);
    });

    it.each([
      ["its own identity", "id -un", "fleetkit-w1\nexit 0"],
      ["the node's queue token: denied", "cat /etc/fleetkit/worker/token", "cat: /etc/fleetkit/worker/token: Permission denied\nexit 1"],
      ["the queue's tokens file: denied", "cat /etc/fleetkit/queue/tokens.json", "cat: /etc/fleetkit/queue/tokens.json: Permission denied\nexit 1"],
      ["Claude's env file: denied", "cat /etc/fleetkit/claude.env", "cat: /etc/fleetkit/claude.env: Permission denied\nexit 1"],
      ["the node user's home: denied", "ls /home/admin", "ls: cannot open directory '/home/admin': Permission denied\nexit 2"],
      ["the node user's Claude settings: denied", "cat /home/admin/.claude/settings.json", "cat: /home/admin/.claude/settings.json: Permission denied\nexit 1"],
      ["sudo: refused", "sudo -n true", "sudo: a password is required\nexit 1"],
      ["the staged settings: read-only", "touch /var/lib/fleetkit/workers/node-claude/x", "touch: cannot touch '/var/lib/fleetkit/workers/node-claude/x': Permission denied\nexit 1"],
      ["the task database: denied", "cat /var/lib/fleetkit/queue/queue.db", "cat: /var/lib/fleetkit/queue/queue.db: Permission denied\nexit 1"],
      ["no queue token in its environment", "printenv FLEET_TOKEN || echo unset", "unset\nexit 0"],
      ["the node's fleet command without the task's token: the node's token file is unreadable (exit 2)", "env -u FLEET_TOKEN_FILE fleet task status >/dev/null 2>&1; echo $?", "2\nexit 0"],
      ["its task token: a 0600 file of its own, named by FLEET_TOKEN_FILE, not in its environment", 'stat -c "%a %U" "$FLEET_TOKEN_FILE"; env | grep -cF "$(cat "$FLEET_TOKEN_FILE")"', "600 fleetkit-w1\n0\nexit 1"],
      ["its task token lists no tasks: 403", "fleet task list 2>&1 | grep -c \"HTTP 403): GET /v1/tasks: a task's token may only submit child tasks\"", "1\nexit 0"],
      ["its own HOME, writable", 'echo "$HOME"; touch "$HOME/probe" && echo wrote', "/var/lib/fleetkit/workers/hub-0\nwrote\nexit 0"],
      ["the node's Claude settings, copied into its HOME", 'grep -c DISABLE_AUTOUPDATER "$HOME/.claude/settings.json"', "1\nexit 0"],
      ["Claude's credential in its environment, on no command line", 'ps -eo args > "$HOME/ps"; [ -n "$ANTHROPIC_API_KEY" ] && grep -cF "$ANTHROPIC_API_KEY" "$HOME/ps"', "0\nexit 1"],
    ])("%s", (_what, command, result) => {
      const t = delegate("hub", `FAKE:exec=${command}`);
      expect({ state: t.state, node: t.node, result: t.result, error: t.error }).toEqual({ state: "completed", node: "hub", result, error: null });
    }, 120_000);

    it("from box's own shell (the node user, over SSH), the node's `fleet` delegates to hub and waits: the worker role brought the queue URL and box's token", async () => {
      const box = testNode(net, "box");
      expect(await box.run("ls -l /usr/local/bin/fleet | cut -d' ' -f1,3")).toBe("-rwxr-xr-x root\n");
      const out = await box.run("fleet task delegate hub 'FAKE:exec=echo delegated from box' --wait --timeout 60 --json");
      const t = JSON.parse(out) as Record<string, unknown>;
      expect({ state: t.state, submittedBy: t.submittedBy, node: t.node, result: t.result }).toEqual({ state: "completed", submittedBy: "box", node: "hub", result: "delegated from box\nexit 0" });
      expect(await box.run(`fleet task show ${t.id as number} --json | grep -c '"state": "completed"'`)).toBe("1\n");
    }, 120_000);

    it("delegates from inside the task with its task token: `fleet task delegate box … --wait` completes a child linked to it", async () => {
      const box = testNode(net, "box");
      await box.run("sudo -n sh -c 'cat > /usr/local/bin/claude && chmod 755 /usr/local/bin/claude'", { input: STANDIN });
      try {
        const t = delegate("hub", "FAKE:exec=fleet task delegate box 'FAKE:exec=echo from the child' --wait --timeout 60 >/dev/null 2>&1; echo $?");
        expect({ state: t.state, result: t.result }).toEqual({ state: "completed", result: "0\nexit 0" });
        const get = async (id: unknown) => (await (await fetch(`${hubTunnel!.url}/v1/tasks/${id as number}`, { headers: { Authorization: `Bearer ${tokens.hub}` } })).json()) as Record<string, unknown>;
        const parent = await get(t.id);
        expect((parent.children as number[]).length).toBe(1);
        const child = await get((parent.children as number[])[0]);
        expect({ parent: child.parent, node: child.node, submittedBy: child.submittedBy, state: child.state, result: child.result }).toEqual({ parent: t.id, node: "box", submittedBy: "hub", state: "completed", result: "from the child\nexit 0" });
      } finally {
        await box.run("sudo -n rm -f /usr/local/bin/claude");
      }
    }, 180_000);

    it("back-to-back tasks in the slot: one run's cleanup (a kill -1 of fleetkit-w1) never reaches the next run", async () => {
      const url = hubTunnel!.url;
      const headers = { Authorization: `Bearer ${tokens.hub}`, "Content-Type": "application/json" };
      const ids: number[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await fetch(`${url}/v1/tasks`, { method: "POST", headers, body: JSON.stringify({ target: "hub", prompt: `FAKE:exec=echo run ${i}` }) });
        ids.push(((await r.json()) as { id: number }).id);
      }
      const done = await Promise.all(ids.map(async (id) => (await (await fetch(`${url}/v1/tasks/${id}/wait?timeoutSeconds=120`, { headers })).json()) as Record<string, unknown>));
      expect(done.map((t) => [t.state, t.result, t.error])).toEqual(ids.map((_, i) => ["completed", `run ${i}\nexit 0`, null]));
    }, 180_000);

    it.each(["hub", "box"])("%s's queue token is in no file the task can read", (owner) => {
      // The token in two halves, joined by the task's shell: the prompt (stored in the queue) never holds it whole.
      const [a, b] = [tokens[owner]!.slice(0, 18), tokens[owner]!.slice(18)];
      const t = delegate("hub", `FAKE:exec=t=${a}; t=\${t}${b}; grep -rlsF "$t" /etc /var/lib/fleetkit /home /root /tmp /proc/self/environ; echo searched`);
      expect(t.result).toBe("searched\nexit 0");
    }, 120_000);
  });

  it("box's worker, restarted, first kills whatever its slot user still runs (the slot user is the slot's alone)", async () => {
    const box = testNode(net, "box");
    await box.run("sudo -n -u fleetkit-w1 setsid sh -c 'exec sleep 1000' </dev/null >/dev/null 2>&1 &");
    const left = (await box.run("sleep 0.5; pgrep -u fleetkit-w1 -x sleep")).trim();
    expect(left).toMatch(/^\d+$/);
    await box.run("sudo -n systemctl restart fleet-worker.service");
    let gone = false;
    for (let i = 0; i < 40 && !gone; i++) {
      gone = (await box.ssh(`ps -p ${left} >/dev/null || echo gone`)).stdout === "gone\n";
      if (!gone) await new Promise((r) => setTimeout(r, 250));
    }
    expect(gone).toBe(true);
  }, 60_000);

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
    for (const n of ["hub", "box"]) expect((await testNode(net, n).ssh("id fleetkit-w1")).code).not.toBe(0);
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
