// @needs python3
/**
 * Roles queue and worker: per-OS renders for the three real fleets, the tokens-file merge with marker
 * secrets, and an end-to-end run of exactly what the bundles ship: the runtime payload unpacked by the
 * rendered shell fragment, the queue server started from it, a worker from the worker payload claiming and
 * completing a task over HTTP on loopback.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parsePlist } from "plist";
import { loadFleet, parseFleet } from "../../model/load.js";
import type { Fleet, FleetNode, RoleName } from "../../model/fleet.js";
import { renderBundle } from "../../roles/index.js";
import { POSIX_COMMAND_LINE_LIMIT, readTemplate, remoteCommand, remoteInvocation, renderTemplate } from "../../roles/bundle.js";
import { bundleShipping, shippedTexts } from "../../roles/shipping.js";
import { NODEJS_PACKAGES, queueFacts, queueUrl } from "../../roles/queue/render.js";
import { SLOT_USER, WORKER_PACKAGES, WORKER_STAGED_CLAUDE_DIR, workerDir } from "../../roles/worker/render.js";
import { STAGED_CLAUDE_DIR } from "../../runtime/worker.js";
import { importClosure, RUNTIME_ASSET_PACKAGES, RUNTIME_EXTRA_VERBS, runtimePackage, runtimePayload, staticImports } from "../../roles/runtime-dist.js";
import { encodeAppPrivateKey, formatQueueTokens } from "../../stacks/secrets.js";
import { parseTokensFile } from "../../runtime/config.js";

const mesh = loadFleet("fleet.yaml");
const remote = loadFleet("examples/remote-tasks.fleet.yaml");
const shared = loadFleet("examples/shared-fs-queue.fleet.yaml");
const FLEETS: Record<string, Fleet> = { mesh, remote, shared };
const node = (fleet: Fleet, name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;
const holders = (fleet: Fleet, role: RoleName) => fleet.nodes.filter((n) => n.roles.includes(role)).map((n) => n.name);

describe("which nodes run the queue and workers", () => {
  it.each([
    ["mesh", ["arch-orchestrator"], ["arch-orchestrator", "macbook1", "imac", "rpi1", "rpi2", "rpi3"], "http://arch-orchestrator:8787"],
    ["remote", ["raspberrypi"], ["macbook-pro", "raspberrypi"], "http://raspberrypi:8787"],
    ["shared", ["control-node"], ["control-node", "pi-node-1", "pi-node-2"], "http://control-node:8787"],
  ] as const)("%s fleet", (label, queue, workers, url) => {
    const fleet = FLEETS[label];
    expect([holders(fleet, "queue"), holders(fleet, "worker"), queueUrl(fleet)]).toEqual([queue, workers, url]);
  });
});

describe("role queue", () => {
  it.each([
    ["mesh", "arch-orchestrator", "fk_pacman_install nodejs npm", ["queueTokens", "ntfyToken"], "0.0.0.0:8787"],
    ["remote", "raspberrypi", "fk_apt_install nodejs npm", ["queueTokens", "ntfyToken"], "0.0.0.0:8787"],
    ["shared", "control-node", "fk_apt_install nodejs npm", ["queueTokens"], "0.0.0.0:8787"],
  ] as const)("%s fleet: %s", (label, name, pkgLine, secrets, listen) => {
    const fleet = FLEETS[label];
    const b = renderBundle(fleet, node(fleet, name), "queue");
    const lines = b.install.split("\n");
    expect(b.target).toBe("node");
    expect(lines).toContain(pkgLine);
    expect(lines).toContain(`fk_read_secrets ${secrets.join(" ")}`);
    expect(lines).toContain("fk_systemd_unit fleet-queue.service");
    expect(lines).toContain('if [ "$fk_node_major" -lt 20 ]; then');
    expect(b.secrets).toEqual(secrets);
    expect(b.services).toEqual([{ name: "fleet-queue.service", manager: "systemd", scope: "system" }]);
    expect(b.files.map((f) => [f.path, f.mode, f.owner, f.kind])).toEqual([
      ["/usr/local/lib/fleetkit/queue/tokens-file.mjs", 0o644, "root", "text"],
      ["/etc/fleetkit/queue/nodes.json", 0o644, "root", "json"],
      ["/etc/systemd/system/fleet-queue.service", 0o644, "root", "systemd"],
      // The node firewall of the queue's port (roles/firewall.ts).
      ["/usr/local/lib/fleetkit/firewall/queue.sh", 0o755, "root", "shell"],
      ["/etc/systemd/system/fleetkit-firewall-queue.service", 0o644, "root", "systemd"],
      ["/etc/systemd/system/fleetkit-firewall-queue-refresh.service", 0o644, "root", "systemd"],
      ["/etc/systemd/system/fleetkit-firewall-queue-refresh.timer", 0o644, "root", "systemd"],
    ]);
    const unit = b.files[2].content.split("\n");
    const user = node(fleet, name).user;
    expect(unit).toContain(`User=${user}`);
    expect(unit).toContain(
      `ExecStart=/usr/bin/node /usr/local/lib/fleetkit/queue/fleet.mjs queue serve --db /var/lib/fleetkit/queue/queue.db --listen ${listen} --tokens /etc/fleetkit/queue/tokens.json`,
    );
    expect(unit).toContain("ReadWritePaths=/var/lib/fleetkit/queue");
    expect(b.uninstall.split("\n")).toContain("fk_systemd_remove fleet-queue.service '/etc/systemd/system/fleet-queue.service'");
    // The queue carries its runtime: past Linux's limit for one argument (MAX_ARG_STRLEN), so it could not be
    // one command line; it travels as a file and the SSH command line stays short.
    const ship = bundleShipping(node(fleet, name), b);
    expect(Buffer.byteLength(b.install)).toBeGreaterThan(POSIX_COMMAND_LINE_LIMIT);
    expect(ship.files?.["install.sh"]).toBe(b.install);
    expect([ship.stdinPrefix, Buffer.byteLength(ship.create) < 2048]).toEqual(["", true]);
    expect(() => remoteInvocation(node(fleet, name), b.target, b.install)).toThrow(/^the command for node \S+ is \d+ bytes, over the 126976 one command line may have on Linux/);
  });

  it("nodes.json holds every node's public facts, every person's scope and the ntfy server, no token", () => {
    expect(queueFacts(remote)).toEqual({
      nodes: {
        "macbook-air": { os: "macos", arch: "aarch64", tags: {}, budgetUsdPerSession: 5, profile: "desk", roles: ["tailscale", "claude"], agentapi: null },
        "macbook-pro": { os: "macos", arch: "aarch64", tags: {}, budgetUsdPerSession: 10, profile: "desk", roles: ["tailscale", "claude", "worker"], agentapi: null },
        raspberrypi: { os: "raspios", arch: "aarch64", tags: {}, budgetUsdPerSession: 5, profile: "pi-hub", roles: ["tailscale", "claude", "ntfy", "queue", "worker"], agentapi: null },
      },
      people: {},
      ntfy: { url: "http://raspberrypi:8091", topic: "claude-tasks" },
      publicUrl: "http://raspberrypi:8787",
      retentionDays: 30,
    });
    expect(queueFacts(shared).ntfy).toBeNull();
    // The dashboard's agent panel reaches each AgentAPI node at its fleet.yaml host (one of AgentAPI's allowed hosts).
    const shipped = queueFacts(loadFleet("fleet.yaml")).nodes as Record<string, { agentapi: string | null; profile: string | null }>;
    expect(Object.entries(shipped).filter(([, n]) => n.agentapi).map(([name, n]) => `${name} ${n.profile} ${n.agentapi}`)).toEqual([
      "arch-orchestrator orchestrator http://arch-orchestrator:3284",
      "macbook1 headless-agent http://macbook1:3284",
      "imac headless-agent http://imac:3284",
      "rpi1 headless-agent http://rpi1:3284",
      "rpi2 headless-agent http://rpi2:3284",
      "rpi3 headless-agent http://rpi3:3284",
    ]);
    expect(queueFacts({ ...shared, people: { alice: "operator", bob: "viewer" } }).people).toEqual({ alice: { scope: "operator" }, bob: { scope: "viewer" } });
  });

  it("a fleet with people: the queue also reads peopleTokens (their hashes) and hands it to the tokens merge", () => {
    const withPeople = parseFleet(`${readFileSync("examples/shared-fs-queue.fleet.yaml", "utf8")}\npeople:\n  alice: operator\n  bob: viewer\n`, "people.fleet.yaml");
    expect(withPeople.people).toEqual({ alice: "operator", bob: "viewer" });
    const b = renderBundle(withPeople, node(withPeople, "control-node"), "queue");
    expect(b.secrets).toEqual(["queueTokens", "peopleTokens"]);
    const lines = b.install.split("\n");
    expect(lines).toContain("fk_read_secrets queueTokens peopleTokens");
    expect(lines.find((l) => l.startsWith("printf '%s\\n%s\\n%s\\n'"))).toContain(`"\${FK_SECRET_peopleTokens:-}" | '/usr/bin/node' '/usr/local/lib/fleetkit/queue/tokens-file.mjs' '/etc/fleetkit/queue/nodes.json'`);
    // The people's scopes change the queue's bundle (and nothing else).
    expect(b.hash).not.toBe(renderBundle(shared, node(shared, "control-node"), "queue").hash);
    expect(renderBundle(withPeople, node(withPeople, "pi-node-1"), "worker").hash).toBe(renderBundle(shared, node(shared, "pi-node-1"), "worker").hash);
  });
});

describe("role worker", () => {
  it("installs the queue's Node.js packages plus git on every package manager", () => {
    for (const pm of ["apt", "pacman", "brew"] as const) expect(WORKER_PACKAGES[pm]).toEqual([...NODEJS_PACKAGES[pm]!, "git"]);
  });

  it.each([
    // fleet, node, target, package line, service-manager line, service
    ["mesh", "arch-orchestrator", "node", "fk_pacman_install nodejs npm git", "fk_systemd_unit fleet-worker.service", "fleet-worker.service"],
    ["mesh", "macbook1", "node", "fk_brew_install git", "fk_launchd_daemon dev.fleetkit.worker '/Library/LaunchDaemons/dev.fleetkit.worker.plist' system", "dev.fleetkit.worker"],
    ["mesh", "rpi1", "node", "fk_apt_install nodejs npm git", "fk_systemd_unit fleet-worker.service", "fleet-worker.service"],
    ["remote", "macbook-pro", "node", "fk_brew_install git", "fk_launchd_daemon dev.fleetkit.worker '/Library/LaunchDaemons/dev.fleetkit.worker.plist' system", "dev.fleetkit.worker"],
    ["shared", "pi-node-2", "node", "fk_apt_install nodejs npm git", "fk_systemd_unit fleet-worker.service", "fleet-worker.service"],
  ] as const)("%s fleet: %s (target %s)", (label, name, target, pkgLine, svcLine, service) => {
    const fleet = FLEETS[label];
    const b = renderBundle(fleet, node(fleet, name), "worker");
    const lines = b.install.split("\n");
    expect(b.target).toBe(target);
    expect(lines).toContain(pkgLine);
    expect(lines).toContain(svcLine);
    expect(lines).toContain("fk_read_secrets queueToken");
    expect(lines).toContain('if [ "$fk_node_major" -lt 18 ]; then');
    expect(b.secrets).toEqual(["queueToken"]);
    expect(b.services.map((s) => [s.name, s.manager, s.scope])).toEqual([[service, svcLine.startsWith("fk_systemd") ? "systemd" : "launchd", "system"]]);
  });

  it("Windows (WSL) worker: the systemd unit inside the distro; the install travels on stdin, the uninstall on the command line", () => {
    const text = readFileSync("fleet.yaml", "utf8").split("\n");
    const at = text.findIndex((l) => l.startsWith("  windows-laptop:"));
    const profile = text.findIndex((l, i) => i > at && l.trim() === "profile: workstation");
    text[profile] = "    roles: [tailscale, claude, worker]";
    const laptopFleet = parseFleet(text.join("\n"), "fleet.yaml");
    const laptop = node(laptopFleet, "windows-laptop");
    const b = renderBundle(laptopFleet, laptop, "worker");
    expect([b.target, b.files.map((f) => f.path), b.secrets]).toEqual(["wsl", ["/etc/systemd/system/fleet-worker.service", "/etc/sudoers.d/fleetkit-worker", "/usr/local/bin/fleet"], ["queueToken"]]);
    expect(b.files[0].content.split("\n")).toContain(
      "ExecStart=/usr/bin/node /usr/local/lib/fleetkit/worker/fleet.mjs worker --queue http://arch-orchestrator:8787 --token-file /etc/fleetkit/worker/token --node windows-laptop " +
        "--run-as fleetkit-w1 --home-root /var/lib/fleetkit/workers --claude /usr/local/lib/fleetkit/claude-code/bin/claude --env-file /etc/fleetkit/claude.env",
    );
    const install = remoteInvocation(laptop, b.target, b.install);
    expect(install.stdinPrefix.length).toBeGreaterThan(8191);
    expect(install.command).toContain(` head -c ${install.stdinPrefix.length} | base64 -d | gzip -dc > /tmp/fleetkit-`);
    expect(install.command.length).toBeLessThan(200);
    expect(() => remoteCommand(laptop, b.target, b.install)).toThrow(
      `the wsl script for node windows-laptop is ${install.stdinPrefix.length - 1} characters packed, too long for a Windows command line (8191); only a role install can carry it (on stdin)`,
    );
    expect(remoteInvocation(laptop, b.target, b.uninstall).stdinPrefix).toBe("");
  });

  it("Linux unit: the runtime's worker CLI with the queue URL, token file, node, task identity, pinned claude and its env file", () => {
    const b = renderBundle(mesh, node(mesh, "rpi1"), "worker");
    const unit = b.files[0].content.split("\n");
    expect(unit).toContain("User=fleet");
    expect(unit).toContain("Environment=HOME=/home/fleet");
    expect(unit).toContain(
      "ExecStart=/usr/bin/node /usr/local/lib/fleetkit/worker/fleet.mjs worker --queue http://arch-orchestrator:8787 --token-file /etc/fleetkit/worker/token --node rpi1 " +
        "--run-as fleetkit-w1 --home-root /var/lib/fleetkit/workers --claude /usr/local/lib/fleetkit/claude-code/bin/claude --env-file /etc/fleetkit/claude.env",
    );
    expect(unit).toContain("TimeoutStopSec=45");
    expect(unit).toContain("KillMode=control-group");
    expect(unit).toContain("PrivateTmp=yes");
  });

  it("macOS LaunchDaemon parses with plist and Python's plistlib and runs as the node user", () => {
    const b = renderBundle(mesh, node(mesh, "macbook1"), "worker");
    const xml = b.files[0].content;
    const parsed = parsePlist(xml) as Record<string, unknown>;
    expect(parsed).toMatchObject({
      Label: "dev.fleetkit.worker",
      UserName: "fleet",
      ProgramArguments: [
        "/usr/local/bin/node", "/usr/local/libexec/fleetkit/worker/fleet.mjs", "worker",
        "--queue", "http://arch-orchestrator:8787", "--token-file", "/usr/local/etc/fleetkit/worker/token", "--node", "macbook1",
        "--run-as", "fleetkit-w1", "--home-root", "/usr/local/var/fleetkit/workers",
        "--claude", "/usr/local/libexec/fleetkit/claude-code/bin/claude", "--env-file", "/usr/local/etc/fleetkit/claude.env",
      ],
      RunAtLoad: true,
      KeepAlive: true,
      ExitTimeOut: 45,
    });
    const py = spawnSync("python3", ["-c", "import plistlib,sys; d=plistlib.loads(sys.stdin.buffer.read()); print(d['Label'], d['UserName'])"], { input: xml, encoding: "utf8" });
    expect([py.status, py.stdout]).toEqual([0, "dev.fleetkit.worker fleet\n"]);
  });

  it("a worker node without role claude uses claude from PATH and no env file", () => {
    const noClaude: Fleet = { ...shared, nodes: shared.nodes.map((n) => (n.name === "pi-node-1" ? { ...n, roles: n.roles.filter((r) => r !== "claude") } : n)) };
    const unit = renderBundle(noClaude, node(noClaude, "pi-node-1"), "worker").files[0].content;
    expect(unit).toContain("--node pi-node-1 --run-as fleetkit-w1 --home-root /var/lib/fleetkit/workers\n");
    expect(unit).not.toContain("--env-file");
  });

  /** The sudoers file a worker install places: the quoted heredoc it feeds to `visudo -c`, then to fk_put. */
  const sudoersOf = (install: string) => {
    // The rule visudo checks travels as one single-quoted sh word (it holds no quote of its own).
    const checked = [...install.matchAll(/printf '%s' '([^']*)' \| visudo -cqf -/g)].map((m) => m[1]!);
    const placed = [...install.matchAll(/^fk_put '\/etc\/sudoers.d\/fleetkit-worker' 0440 'root' '(?:root|wheel)' <<'FLEETKIT_EOF'\n([\s\S]*?\n)FLEETKIT_EOF\n/gm)].map((m) => m[1]!);
    expect([checked.length, placed.length]).toEqual([1, 1]);
    expect(placed[0]).toBe(checked[0]);
    // Checked before it is placed.
    expect(install.indexOf("visudo -cqf -")).toBeLessThan(install.indexOf("fk_put '/etc/sudoers.d/fleetkit-worker'"));
    return checked[0]!;
  };

  it.each([
    ["mesh", "rpi1", "fleet", "/usr/local/lib/fleetkit/worker/runtime/supervise.sh"],
    ["mesh", "macbook1", "fleet", "/usr/local/libexec/fleetkit/worker/runtime/supervise.sh"],
    ["remote", "raspberrypi", "matt", "/usr/local/lib/fleetkit/worker/runtime/supervise.sh"],
  ] as const)("%s fleet, %s: one sudoers rule, accepted by visudo: the node user may start the shipped supervisor as fleetkit-w1, nothing else", (label, name, user, supervise) => {
    const fleet = FLEETS[label];
    const b = renderBundle(fleet, node(fleet, name), "worker");
    const sudoers = sudoersOf(b.install);
    expect(sudoers.split("\n").filter((l) => l && !l.startsWith("#"))).toEqual([`${user} ALL=(fleetkit-w1) NOPASSWD: ${supervise}`]);
    expect(b.files.find((f) => f.path === "/etc/sudoers.d/fleetkit-worker")).toMatchObject({ mode: 0o440, owner: "root", group: node(fleet, name).os === "macos" ? "wheel" : "root", content: sudoers });
    const dir = mkdtempSync(join(tmpdir(), "fk-sudoers-"));
    try {
      writeFileSync(join(dir, "fleetkit-worker"), sudoers);
      const v = spawnSync("visudo", ["-cf", join(dir, "fleetkit-worker")], { encoding: "utf8" });
      expect([v.status, v.stderr]).toEqual([0, ""]);
      expect(v.stdout).toContain("parsed OK");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // The supervisor the rule names is the one the worker runtime ships and starts.
    expect(runtimePayload(node(fleet, name), "worker", workerDir(node(fleet, name))).paths).toContain(supervise);
  });

  it("Linux task identity: a system user with its own group, a 0700 home as the slot's HOME, the node home closed; uninstall removes them", () => {
    const b = renderBundle(mesh, node(mesh, "rpi1"), "worker");
    const lines = b.install.split("\n");
    expect(lines).toContain("  useradd --system --user-group --home-dir '/var/lib/fleetkit/workers/rpi1-0' --no-create-home --shell /usr/sbin/nologin --comment 'fleetkit worker slot 1 (queued tasks)' 'fleetkit-w1'");
    expect(lines).toContain("install -d -m 0700 -o 'fleetkit-w1' -g 'fleetkit-w1' '/var/lib/fleetkit/workers/rpi1-0'");
    expect(lines).toContain("install -d -m 0755 -o 'fleet' -g 'fleet' '/var/lib/fleetkit/workers/node-claude'");
    expect(lines).toContain("    chmod o-rwx '/home/fleet'");
    // The identity exists before the service starts.
    expect(b.install.indexOf("useradd --system")).toBeLessThan(b.install.indexOf("fk_systemd_unit fleet-worker.service"));
    const un = b.uninstall.split("\n");
    expect(un.filter((l) => l.includes("/etc/sudoers.d/fleetkit-worker"))).toEqual(["fk_rm '/etc/systemd/system/fleet-worker.service' '/etc/sudoers.d/fleetkit-worker'"]);
    expect(un).toContain(`if [ ! -e "$FK_STATE/roles/claude.hash" ]; then fk_rm '/usr/local/bin/fleet'; fi`);
    // The node's `fleet`, its runtime and token: kept while the claude role (which brings them without a worker) is there.
    expect(b.uninstall).toContain(
      [
        "if [ -e '/var/lib/fleetkit/roles/claude.hash' ]; then",
        "  fk_log 'kept /usr/local/bin/fleet, its runtime and the node'\\''s queue token: role claude uses them too'",
        "else",
        "  fk_rm '/usr/local/bin/fleet' '/etc/fleetkit/worker/token'",
        "  rm -rf '/usr/local/lib/fleetkit/worker'",
        "fi",
      ].join("\n"),
    );
    expect(un).toContain("  userdel 'fleetkit-w1'");
    expect(un).toContain("  rm -rf '/var/lib/fleetkit/workers'");
    expect(b.uninstall.indexOf("fk_systemd_remove fleet-worker.service")).toBeLessThan(b.uninstall.indexOf("userdel"));
  });

  it("macOS task identity: a hidden dscl user 401-499 with a group of its own (not staff), uninstalled with dscl", () => {
    const b = renderBundle(mesh, node(mesh, "macbook1"), "worker");
    const lines = b.install.split("\n");
    for (const l of [
      "  dscl . -create /Groups/'fleetkit-w1' PrimaryGroupID \"$fk_slot_id\"",
      "  dscl . -create /Users/'fleetkit-w1' UniqueID \"$fk_slot_id\"",
      "  dscl . -create /Users/'fleetkit-w1' PrimaryGroupID \"$fk_slot_id\"",
      "  dscl . -create /Users/'fleetkit-w1' NFSHomeDirectory '/usr/local/var/fleetkit/workers/macbook1-0'",
      "  dscl . -create /Users/'fleetkit-w1' UserShell /usr/bin/false",
      "  dscl . -create /Users/'fleetkit-w1' IsHidden 1",
      "  for fk_try in $(seq 401 499); do",
      "install -d -m 0700 -o 'fleetkit-w1' -g 'fleetkit-w1' '/usr/local/var/fleetkit/workers/macbook1-0'",
      "    chmod o-rwx '/Users/fleet'",
    ]) expect(lines).toContain(l);
    expect(lines.filter((l) => l.includes("useradd"))).toEqual([]);
    const un = b.uninstall.split("\n");
    expect(un).toContain("  dscl . -delete /Users/'fleetkit-w1'");
    expect(un).toContain("if dscl . -read /Groups/'fleetkit-w1' >/dev/null 2>&1; then dscl . -delete /Groups/'fleetkit-w1'; fi");
  });

  it("the role and the runtime agree on the slot user's grammar and the staging directory's name", () => {
    expect(WORKER_STAGED_CLAUDE_DIR).toBe(STAGED_CLAUDE_DIR);
    expect(SLOT_USER).toMatch(/^[a-z_][a-z0-9_-]{0,31}$/);
  });
});

describe("runtime packaging", () => {
  it("static imports: named, default, side-effect, re-export and multi-line forms", () => {
    const src = 'import a from "./a.js";\nimport {\n  b,\n  c,\n} from "../b.js";\nimport "./side.js";\nexport { d } from "./d.js";\nimport type { T } from "./t.js";\nconst x = await import("./dyn.js");\n';
    expect(staticImports(src)).toEqual(["./a.js", "../b.js", "./side.js", "./d.js", "./t.js"]);
  });

  it.each([
    // verb, packages it must import, packages it must not (a worker never builds better-sqlite3)
    ["queue", ["better-sqlite3", "fastify", "zod"], []],
    // The worker also ships `fleet task` (the node's fleet command); it reads no fleet file there (lazy import).
    ["worker", ["zod"], ["better-sqlite3", "fastify", "prom-client", "yaml"]],
  ] as const)("%s: the closure of its CLI module and the npm packages it imports", (verb, must, mustNot) => {
    const c = importClosure([`cli/${verb}.ts`, ...RUNTIME_EXTRA_VERBS[verb].map((v) => `cli/${v}.ts`)]);
    expect(c.files).toContain(`cli/${verb}.ts`);
    expect(c.files).toContain("model/errors.ts");
    // cli/task.ts imports the Fleet type (erased at run time; the scan still ships its files, never loaded).
    const typeOnly = verb === "worker" ? ["model/fleet.ts", "model/grammar.ts", "model/schema.ts"] : [];
    expect(c.files.filter((f) => !(f.startsWith("runtime/") || f.startsWith("cli/") || f === "model/errors.ts"))).toEqual(typeOnly);
    // Exactly the bare specifiers the shipped files import, nothing else.
    const bare = new Set(c.files.flatMap((f) => staticImports(readFileSync(f, "utf8"))).filter((s) => !s.startsWith(".") && !s.startsWith("node:")).map((s) => (s.startsWith("@") ? s.split("/").slice(0, 2).join("/") : s.split("/")[0]!)));
    expect(c.packages).toEqual([...bare].sort());
    for (const p of must) expect(c.packages).toContain(p);
    for (const p of mustNot) expect(c.packages).not.toContain(p);
    const pkgs = c.packages;
    const pkg = runtimePackage(verb, readTemplate("queue/fleet.mjs"));
    const lock = JSON.parse(pkg.files.find((f) => f.path === "package-lock.json")!.content);
    const repoLock = JSON.parse(readFileSync("package-lock.json", "utf8"));
    expect(Object.keys(pkg.dependencies)).toEqual([...pkgs, ...RUNTIME_ASSET_PACKAGES[verb], "tsx"].sort());
    for (const [dep, version] of Object.entries(pkg.dependencies)) expect(repoLock.packages[`node_modules/${dep}`].version).toBe(version);
    // Every entry is copied unchanged from our lock (same resolved URL and integrity), none is dev-only.
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === "") continue;
      expect(entry).toEqual(repoLock.packages[path]);
      expect((entry as { dev?: boolean }).dev).toBeUndefined();
    }
    expect(lock.packages[""]).toEqual({ name: `fleetkit-${verb}`, dependencies: pkg.dependencies });
  });

  it("minimum Node.js: 20 for the queue (better-sqlite3 12), 18 for the worker (tsx)", () => {
    const t = readTemplate("queue/fleet.mjs");
    expect([runtimePackage("queue", t).minNodeMajor, runtimePackage("worker", t).minNodeMajor]).toEqual([20, 18]);
  });

  it("the worker ships the run supervisor it executes, 0755, as POSIX sh (shellcheck, dash -n); the queue does not", () => {
    const t = readTemplate("queue/fleet.mjs");
    const shipped = runtimePackage("worker", t).files.find((f) => f.path === "runtime/supervise.sh")!;
    expect([shipped.mode, shipped.content]).toEqual([0o755, readFileSync("runtime/supervise.sh", "utf8")]);
    expect(runtimePackage("queue", t).files.map((f) => f.path)).not.toContain("runtime/supervise.sh");
    const sc = spawnSync("shellcheck", ["-s", "sh", "runtime/supervise.sh"], { encoding: "utf8" });
    expect([sc.status, sc.stdout]).toEqual([0, ""]);
    expect(spawnSync("dash", ["-n", "runtime/supervise.sh"]).status).toBe(0);
  });

  it("the payload is deterministic", () => {
    const n = node(mesh, "rpi1");
    expect(runtimePayload(n, "worker", "/x")).toEqual(runtimePayload(n, "worker", "/x"));
  });
});

// ---- tokens file ----------------------------------------------------------------------------------------

const MARK = (n: number) => `MARKERtoken${String(n).padStart(8, "0")}`;
const NTFY_MARK = "tk_markerntfy0000000000000000000".slice(0, 32);
const sha = (token: string) => createHash("sha256").update(token).digest("hex");

function mergeTokens(fleet: Fleet, stdin: string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), "fk-tokens-"));
  try {
    writeFileSync(join(dir, "nodes.json"), JSON.stringify(queueFacts(fleet)));
    writeFileSync(join(dir, "tokens-file.mjs"), readTemplate("queue/tokens-file.mjs"));
    const r = spawnSync(process.execPath, [join(dir, "tokens-file.mjs"), join(dir, "nodes.json")], { input: stdin, encoding: "utf8" });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `shared` with two people: alice (operator) and bob (viewer). */
const sharedWithPeople: Fleet = { ...shared, people: { alice: "operator", bob: "viewer" } };

describe("tokens file merge (hashes from stdin, errors without values)", () => {
  const sharedTokens = { "control-node": MARK(1), "pi-node-1": MARK(2), "pi-node-2": MARK(3) };
  const people = { alice: MARK(7), bob: MARK(8) };

  it("merges each node's token hash into the runtime's tokens file shape, which the runtime parses", () => {
    const r = mergeTokens(shared, `${formatQueueTokens(sharedTokens)}\n\n\n`);
    expect([r.status, r.stderr]).toEqual([0, ""]);
    const out = JSON.parse(r.stdout);
    expect(out.nodes["pi-node-2"]).toEqual({ os: "raspios", arch: "aarch64", tags: { storage: "nvme" }, budgetUsdPerSession: 5, profile: "pi", roles: ["tailscale", "claude", "worker"], agentapi: null, tokenSha256: sha(MARK(3)) });
    expect(out.people).toEqual({});
    expect(out.ntfy).toBeNull();
    expect(r.stdout).not.toContain("MARKER");
    expect(parseTokensFile(r.stdout, "tokens.json").nodes["pi-node-2"]!.tokenSha256).toBe(sha(MARK(3)));
  });

  it("adds each person's scope and token hash", () => {
    const r = mergeTokens(sharedWithPeople, `${formatQueueTokens(sharedTokens)}\n\n${formatQueueTokens(people)}\n`);
    expect([r.status, r.stderr]).toEqual([0, ""]);
    expect(JSON.parse(r.stdout).people).toEqual({ alice: { scope: "operator", tokenSha256: sha(MARK(7)) }, bob: { scope: "viewer", tokenSha256: sha(MARK(8)) } });
    expect(parseTokensFile(r.stdout, "tokens.json").people.bob).toEqual({ scope: "viewer", tokenSha256: sha(MARK(8)) });
  });

  it("adds the ntfy token when the fleet has an ntfy server", () => {
    const tokens = { "macbook-air": MARK(1), "macbook-pro": MARK(2), raspberrypi: MARK(3) };
    const r = mergeTokens(remote, `${formatQueueTokens(tokens)}\n${NTFY_MARK}\n\n`);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).ntfy).toEqual({ url: "http://raspberrypi:8091", topic: "claude-tasks", token: NTFY_MARK });
  });

  it("leaves out nodes the stack minted no token for (no worker there)", () => {
    const r = mergeTokens(remote, `macbook-pro:${sha(MARK(2))} raspberrypi:${sha(MARK(3))}\n${NTFY_MARK}\n\n`);
    expect(r.status).toBe(0);
    expect(Object.keys(JSON.parse(r.stdout).nodes)).toEqual(["macbook-pro", "raspberrypi"]);
  });

  const line = (t: Record<string, string>) => Object.entries(t).map(([n, v]) => `${n}:${v}`).join(" ");
  const hashes = Object.fromEntries(Object.entries(sharedTokens).map(([n, t]) => [n, sha(t)]));
  it.each([
    ["an empty line", "", "", "secret queueTokens holds no node:sha256 pair; the stack mints one token per node"],
    ["JSON instead of pairs", JSON.stringify(hashes), "", "secret queueTokens must be node:sha256 pairs separated by spaces; the stack writes it (stacks/secrets.ts)"],
    ["a pair without a colon", `control-node${sha(MARK(1))}`, "", "secret queueTokens must be node:sha256 pairs separated by spaces; the stack writes it (stacks/secrets.ts)"],
    ["a token in clear instead of its hash", line({ ...hashes, "pi-node-1": MARK(2) }), "", "secret queueTokens has no valid SHA-256 for node pi-node-1 (64 lower-case hex digits)"],
    ["an upper-case hash", line({ ...hashes, "pi-node-1": sha(MARK(2)).toUpperCase() }), "", "secret queueTokens has no valid SHA-256 for node pi-node-1 (64 lower-case hex digits)"],
    ["an unknown node", line({ ...hashes, rpi9: sha(MARK(4)) }), "", 'secret queueTokens names node "rpi9", which is not in the fleet; remove it'],
    ["a node named like an Object.prototype member", line({ ...hashes, constructor: sha(MARK(4)) }), "", 'secret queueTokens names node "constructor", which is not in the fleet; remove it'],
    ["a node twice", `${line(hashes)} pi-node-1:${sha(MARK(5))}`, "", "secret queueTokens names node pi-node-1 twice"],
    ["a shared token", line({ ...hashes, "pi-node-2": sha(MARK(1)) }), "", "secrets queueTokens and peopleTokens give node pi-node-2 the same token as another; every token needs its own"],
    ["a person with a node's token", line(hashes), `alice:${sha(MARK(1))} bob:${sha(MARK(8))}`, "secrets queueTokens and peopleTokens give person alice the same token as another; every token needs its own"],
    ["a person without a token", line(hashes), `alice:${sha(MARK(7))}`, "secret peopleTokens has no token for person bob; the stack mints one per person in people:"],
    ["an unknown person", line(hashes), `alice:${sha(MARK(7))} bob:${sha(MARK(8))} carol:${sha(MARK(9))}`, 'secret peopleTokens names person "carol", which is not in the fleet; remove it'],
  ])("rejects %s", (_label, nodes, persons, message) => {
    const r = mergeTokens(sharedWithPeople, `${nodes}\n\n${persons}\n`);
    expect([r.status, r.stdout, r.stderr]).toEqual([1, "", `fleetkit: error: ${message}\n`]);
    expect(r.stderr).not.toContain("MARKER");
  });

  it("rejects a malformed ntfy token without echoing it", () => {
    const tokens = { "macbook-air": MARK(1), "macbook-pro": MARK(2), raspberrypi: MARK(3) };
    const r = mergeTokens(remote, `${formatQueueTokens(tokens)}\ntk_MARKER\n\n`);
    expect([r.status, r.stderr]).toEqual([1, "fleetkit: error: secret ntfyToken must be an ntfy access token: tk_ and 29 lower-case letters or digits\n"]);
  });
});

// ---- end to end: the shipped runtime, unpacked by the rendered fragment, serving and working ---------------

const work = mkdtempSync(join(tmpdir(), "fk-runtime-e2e-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Unpacks `verb`'s payload into `dir` by running the rendered runtime fragment (npm ci skipped: see below). */
function unpack(verb: "queue" | "worker", dir: string): void {
  const n = node(shared, "control-node");
  const payload = runtimePayload(n, verb, dir);
  // The repository's installed packages stand in for `npm ci` (no registry in tests): link each one, and
  // stamp the lock as installed so the fragment skips npm.
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  for (const entry of readdirSync("node_modules")) symlinkSync(join(process.cwd(), "node_modules", entry), join(dir, "node_modules", entry));
  const pkg = runtimePackage(verb, readTemplate("queue/fleet.mjs"));
  writeFileSync(join(dir, "node_modules", ".fleetkit-package-lock.json"), pkg.files.find((f) => f.path === "package-lock.json")!.content);
  const fragment = renderTemplate("queue/runtime.sh", { verb, dir, nodeBin: dirname(process.execPath), stateDir: join(work, "state"), minNodeMajor: payload.minNodeMajor, why: "test", payload: payload.base64 });
  const script = [readTemplate("common/prelude.sh"), fragment, 'echo "changed=$FK_CHANGED"'].join("\n");
  // On stdin: with the payload the script is past Linux's 128 KiB limit for one argument (on nodes it
  // travels as a file: roles/shipping.ts).
  const r = spawnSync("sh", ["-s"], { input: script, encoding: "utf8" });
  expect([r.status, r.stdout, r.error?.message]).toEqual([0, "changed=1\n", undefined]);
  // Sources 0644; the run supervisor, which the worker executes (and sudo starts as the slot user), 0755.
  for (const f of payload.paths) expect([f, statSync(f).mode & 0o777]).toEqual([f, f.endsWith("/runtime/supervise.sh") ? 0o755 : 0o644]);
  // A second run places nothing: every file is unchanged.
  const again = spawnSync("sh", ["-s"], { input: script, encoding: "utf8" });
  expect([again.status, again.stdout, again.stderr]).toEqual([0, "changed=0\n", ""]);
}

describe("end to end: the queue and worker the bundles ship", () => {
  it("the node's entry runs the CLI's own dispatcher with the node's verbs: same flags and messages, other verbs refused", () => {
    const wdir = join(work, "worker-entry");
    unpack("worker", wdir);
    expect(runtimePackage("worker", readTemplate("queue/fleet.mjs")).files.map((f) => f.path)).toContain("cli/fleet.ts");
    const entry = (...args: string[]) => {
      const r = spawnSync(process.execPath, [join(wdir, "fleet.mjs"), ...args], { encoding: "utf8", timeout: 60_000 });
      return [r.status, r.stdout.split("\n")[0], r.stderr.split("\n")[0]];
    };
    expect(entry("worker", "--help")).toEqual([0, "usage: fleet worker --queue URL --token-file FILE --node NAME [--claude PATH] [--once] [--concurrency N]", ""]);
    expect(entry("worker", "--bogus")).toEqual([2, "", "fleet worker: unknown option --bogus"]);
    expect(entry("plan")).toEqual([2, "", 'fleet: unknown verb "plan".']);
    // `fleet task` ships with the worker (the node's fleet command); the fleet model does not.
    expect(entry("task", "--help")[0]).toBe(0);
    expect(entry("task", "list", "--fleet", join(wdir, "fleet.yaml"))).toEqual([2, "", "fleet task: reading a fleet file needs a fleetkit checkout; here (a node), pass --queue http://HOST:PORT or set FLEET_QUEUE_URL (the node's fleet command sets it)."]);
    expect(entry("queue", "serve", "--help")[0]).toBe(2);
    expect(entry("queue", "serve", "--help")[2]).toMatch(/^fleet: the queue runtime is not installed here \(.+\); it comes with the queue role: re-run its install$/);
  });

  it("unpacks both runtimes, serves the queue, and a worker completes a delegated task; a viewer reads it and changes nothing", async () => {
    const qdir = join(work, "queue");
    const wdir = join(work, "worker");
    unpack("queue", qdir);
    unpack("worker", wdir);
    const tokens = { "control-node": MARK(1), "pi-node-1": MARK(2), "pi-node-2": MARK(3) };
    const people = { alice: MARK(7), bob: MARK(8) };
    const merged = mergeTokens(sharedWithPeople, `${formatQueueTokens(tokens)}\n\n${formatQueueTokens(people)}\n`);
    expect(merged.stdout).not.toContain("MARKER");
    const tokensFile = join(work, "tokens.json");
    writeFileSync(tokensFile, merged.stdout, { mode: 0o600 });
    const tokenFile = join(work, "pi-node-1.token");
    writeFileSync(tokenFile, `${MARK(2)}\n`, { mode: 0o600 });

    const server = spawn(process.execPath, [join(qdir, "fleet.mjs"), "queue", "serve", "--db", join(work, "queue.db"), "--listen", "127.0.0.1:0", "--tokens", tokensFile], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => reject(new Error(`queue did not start: ${out}`)), 20_000);
        server.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/[^\s]+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        server.on("exit", (code) => reject(new Error(`queue exited ${code}`)));
      });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/v1/tasks`)).status).toBe(401);
      // The dashboard: its pages and the browser assets it serves from the shipped npm packages.
      expect((await fetch(`${url}/login`)).status).toBe(200);
      expect((await fetch(`${url}/assets/htmx.min.js`)).status).toBe(200);
      expect((await fetch(`${url}/assets/sse.js`)).status).toBe(200);
      expect((await fetch(`${url}/assets/uPlot.iife.min.js`)).status).toBe(200);
      expect((await fetch(`${url}/assets/uPlot.min.css`)).status).toBe(200);
      const submit = await fetch(`${url}/v1/tasks`, {
        method: "POST",
        headers: { Authorization: `Bearer ${MARK(1)}`, "Content-Type": "application/json" },
        body: JSON.stringify({ target: "pi-node-1", prompt: "Run uptime" }),
      });
      expect(submit.status).toBe(201);
      const task = (await submit.json()) as { id: string };
      const w = spawnSync(
        process.execPath,
        [join(wdir, "fleet.mjs"), "worker", "--queue", url, "--token-file", tokenFile, "--node", "pi-node-1", "--once", "--executor", "noop", "--home-root", join(work, "homes")],
        { encoding: "utf8", timeout: 30_000 },
      );
      expect(w.status).toBe(0);
      expect(`${w.stdout}${w.stderr}`).not.toContain("MARKER");
      const done = (await (await fetch(`${url}/v1/tasks/${task.id}`, { headers: { Authorization: `Bearer ${MARK(1)}` } })).json()) as { state: string };
      expect(done.state).toBe("completed");
      // bob (viewer) reads it, cannot submit; pi-node-2, neither submitter nor target, cannot read it.
      const as = (token: string, path: string, body?: object) =>
        fetch(`${url}${path}`, { method: body ? "POST" : "GET", headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
      expect((await as(MARK(8), `/v1/tasks/${task.id}`)).status).toBe(200);
      expect(await (await as(MARK(8), "/v1/tasks", { target: "pi-node-1", prompt: "x" })).json()).toEqual({ error: "POST /v1/tasks needs a node or operator token; this is viewer bob's token" });
      expect((await as(MARK(3), `/v1/tasks/${task.id}`)).status).toBe(403);
      // A Claude run through the shipped run supervisor (the unpacked runtime/supervise.sh), with the stand-in.
      const second = await fetch(`${url}/v1/tasks`, {
        method: "POST",
        headers: { Authorization: `Bearer ${MARK(1)}`, "Content-Type": "application/json" },
        body: JSON.stringify({ target: "pi-node-1", prompt: "Run uptime" }),
      });
      const task2 = (await second.json()) as { id: string };
      const standIn = join(process.cwd(), "test/runtime/fixtures/claude");
      const w2 = spawnSync(process.execPath, [join(wdir, "fleet.mjs"), "worker", "--queue", url, "--token-file", tokenFile, "--node", "pi-node-1", "--once", "--claude", standIn, "--home-root", join(work, "homes")], {
        encoding: "utf8",
        timeout: 30_000,
      });
      expect([w2.status, w2.stderr]).toEqual([0, ""]);
      const done2 = (await (await fetch(`${url}/v1/tasks/${task2.id}`, { headers: { Authorization: `Bearer ${MARK(1)}` } })).json()) as { state: string; result: string };
      expect([done2.state, done2.result]).toEqual(["completed", "stand-in ran with model haiku"]);
    } finally {
      server.kill("SIGTERM");
    }
  });
});

// ---- secrets and determinism across the queue, worker, ntfy and toolchains roles ------------------------

const MINE: RoleName[] = ["toolchains", "ntfy", "queue", "worker"];
const mine = (fleet: Fleet) => fleet.nodes.flatMap((n) => n.roles.filter((r) => MINE.includes(r)).map((r) => renderBundle(fleet, n, r)));
const hashes = (fleet: Fleet) => new Map(mine(fleet).map((b) => [`${b.node}/${b.role}`, b.hash]));

describe("secrets: declared per role, never rendered", () => {
  it.each([["mesh"], ["remote"], ["shared"]])("%s fleet: scripts, files and SSH command lines carry no token", (label) => {
    const fleet = FLEETS[label];
    for (const b of mine(fleet)) {
      const n = node(fleet, b.node);
      const expected = { toolchains: [], ntfy: ["ntfyToken"], queue: holders(fleet, "ntfy").length ? ["queueTokens", "ntfyToken"] : ["queueTokens"], worker: ["queueToken"] }[b.role as "ntfy"];
      expect([b.node, b.role, b.secrets]).toEqual([b.node, b.role, expected]);
      for (const t of [b.install, b.uninstall, ...b.files.map((f) => f.content), ...shippedTexts(bundleShipping(n, b))]) {
        expect(t).not.toMatch(/tk_[a-z0-9]{29}\b|MARKER/);
      }
    }
  });

  it("worker token step, run: 0600 file owned by the user, the value never printed; bad values refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "fk-worker-token-"));
    try {
      const run = (value: string) => {
        const view = { user: "root", group: "root", configDir: dir, tokenFile: join(dir, "token") };
        const script = [readTemplate("common/prelude.sh"), "fk_read_secrets queueToken", renderTemplate("worker/token.sh", view)].join("\n");
        return spawnSync("sh", ["-c", script], { input: `queueToken=${value}\n`, encoding: "utf8" });
      };
      const ok = run(MARK(7));
      expect([ok.status, ok.stdout]).toEqual([0, ""]);
      expect(ok.stderr).toBe(`fleetkit: wrote ${join(dir, "token")}\n`);
      expect(readFileSync(join(dir, "token"), "utf8")).toBe(`${MARK(7)}\n`);
      expect(statSync(join(dir, "token")).mode & 0o777).toBe(0o600);
      for (const [bad, msg] of [
        ["MARKER;rm -rf /tmp/x", "secret queueToken holds characters other than letters, digits, _ and -; set it with pulumi config set --secret"],
        ["MARKERshort", "secret queueToken is shorter than 16 characters; set the node's token with pulumi config set --secret"],
      ]) {
        const r = run(bad!);
        expect([r.status, r.stderr]).toEqual([1, `fleetkit: error: ${msg}\n`]);
      }
      expect(readFileSync(join(dir, "token"), "utf8")).toBe(`${MARK(7)}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("queue with GitHub issue tasks (services.queue.github)", () => {
  const withGithub = (github: string) =>
    parseFleet(readFileSync("examples/remote-tasks.fleet.yaml", "utf8").replace(/^services:\n/m, `services:\n  queue:\n    github: ${github}\n`), "examples/remote-tasks.fleet.yaml");

  it.each([
    ["{}", ["queueTokens", "ntfyToken", "githubToken"], " --github-token-file /etc/fleetkit/queue/github.token --github-api-url https://api.github.com"],
    [
      "{ apiUrl: 'https://ghe.example.com/api/v3/', webhook: true, dispatchLabel: 'fleet: go' }",
      ["queueTokens", "ntfyToken", "githubToken", "githubWebhookSecret"],
      " --github-token-file /etc/fleetkit/queue/github.token --github-api-url https://ghe.example.com/api/v3 --github-webhook-secret-file /etc/fleetkit/queue/github-webhook.secret --github-dispatch-label \"fleet: go\"",
    ],
    [
      "{ poll: { repos: [acme/widgets, Acme/gadgets.js], intervalSeconds: 120 }, dispatchLabel: 'fleet 100%' }",
      ["queueTokens", "ntfyToken", "githubToken"],
      " --github-token-file /etc/fleetkit/queue/github.token --github-api-url https://api.github.com --github-poll-repo acme/widgets --github-poll-repo Acme/gadgets.js --github-poll-seconds 120 --github-dispatch-label \"fleet 100%%\"",
    ],
    [
      "{ app: { id: 123456 } }",
      ["queueTokens", "ntfyToken", "githubAppPrivateKey"],
      " --github-app-id 123456 --github-app-key-file /etc/fleetkit/queue/github-app.pem --github-api-url https://api.github.com",
    ],
    [
      "{ app: { id: 123456, installationId: 7890 }, webhook: true }",
      ["queueTokens", "ntfyToken", "githubAppPrivateKey", "githubWebhookSecret"],
      " --github-app-id 123456 --github-app-key-file /etc/fleetkit/queue/github-app.pem --github-app-installation-id 7890 --github-api-url https://api.github.com --github-webhook-secret-file /etc/fleetkit/queue/github-webhook.secret --github-dispatch-label fleet:dispatch",
    ],
  ])("github: %s → secrets %j and the unit's flags", (github, secrets, flags) => {
    const fleet = withGithub(github);
    const b = renderBundle(fleet, node(fleet, "raspberrypi"), "queue");
    expect(b.secrets).toEqual(secrets);
    const exec = b.files.find((f) => f.path === "/etc/systemd/system/fleet-queue.service")!.content.split("\n").find((l) => l.startsWith("ExecStart="))!;
    expect(exec).toBe(`ExecStart=/usr/bin/node /usr/local/lib/fleetkit/queue/fleet.mjs queue serve --db /var/lib/fleetkit/queue/queue.db --listen 0.0.0.0:8787 --tokens /etc/fleetkit/queue/tokens.json${flags}`);
    const key = github.includes("app") ? " '/etc/fleetkit/queue/github-app.pem'" : "";
    expect(b.uninstall).toContain(`fk_rm '/etc/fleetkit/queue/tokens.json' '/etc/fleetkit/queue/github.token'${key} '/etc/fleetkit/queue/github-webhook.secret'\n`);
  });

  it.each([
    ["{ webhook: yes-please }", /services\.queue\.github\.webhook/],
    ["{ token: ghp_inline }", /services\.queue\.github/],
    ["{ app: { id: '123' } }", /services\.queue\.github\.app\.id/],
    ["{ app: { id: 0 } }", /services\.queue\.github\.app\.id/],
    ["{ app: { installationId: 5 } }", /services\.queue\.github\.app\.id/],
    ["{ app: { id: 1, privateKey: x } }", /services\.queue\.github\.app/],
  ])("a bad github block %s is a located error", (github, error) => {
    expect(() => withGithub(github)).toThrow(error);
  });

  it("github secrets step with an App, run: the key decoded into a 0600 file, an earlier token file removed, the key never printed; a bad key refused, nothing written", () => {
    const dir = mkdtempSync(join(tmpdir(), "fk-queue-github-app-"));
    try {
      const view = { user: "root", group: "root", configDir: dir, tokenFile: join(dir, "github.token"), app: { id: 5, keyFile: join(dir, "github-app.pem") }, apiUrl: "https://api.github.com" };
      // A real 2048-bit key: its base64 is one stdin line of about 2.3 KB.
      const pem = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
      const run = (key: string) => {
        const script = [readTemplate("common/prelude.sh"), "fk_read_secrets githubAppPrivateKey", renderTemplate("queue/github-secrets.sh", view)].join("\n");
        return spawnSync("sh", ["-c", script], { input: `githubAppPrivateKey=${key}\n`, encoding: "utf8" });
      };
      writeFileSync(join(dir, "github.token"), "github_pat_old\n", { mode: 0o600 });
      const ok = run(encodeAppPrivateKey(pem));
      expect([ok.status, ok.stdout, ok.stderr]).toEqual([0, "", `fleetkit: wrote ${join(dir, "github-app.pem")}\nfleetkit: removed ${join(dir, "github.token")}\n`]);
      expect([readFileSync(join(dir, "github-app.pem"), "utf8"), statSync(join(dir, "github-app.pem")).mode & 0o777]).toEqual([pem, 0o600]);
      for (const [key, msg] of [
        ["not;base64", "secret githubAppPrivateKey must be the App's PEM private key; set it with pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem"],
        [Buffer.from("just text\n").toString("base64"), "secret githubAppPrivateKey does not decode to a PEM private key; set it with pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem"],
      ]) {
        const r = run(key!);
        expect([r.status, r.stderr.split("\n").filter((l) => l.startsWith("fleetkit: error"))]).toEqual([1, [`fleetkit: error: ${msg}`]]);
        expect(r.stderr).not.toContain(pem.split("\n")[3]);
      }
      expect(ok.stderr).not.toContain(pem.split("\n")[3]);
      expect(readFileSync(join(dir, "github-app.pem"), "utf8")).toBe(pem);
      expect(readdirSync(dir).filter((f) => f.startsWith(".github.")).length).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("github secrets step, run: 0600 files owned by the user, values never printed; bad values refused, nothing written", () => {
    const dir = mkdtempSync(join(tmpdir(), "fk-queue-github-"));
    try {
      const view = { user: "root", group: "root", configDir: dir, tokenFile: join(dir, "github.token"), apiUrl: "https://api.github.com", webhook: { secretFile: join(dir, "hook.secret"), label: "fleet:dispatch" } };
      const run = (token: string, hook: string) => {
        const script = [readTemplate("common/prelude.sh"), "fk_read_secrets githubToken githubWebhookSecret", renderTemplate("queue/github-secrets.sh", view)].join("\n");
        return spawnSync("sh", ["-c", script], { input: `githubToken=${token}\ngithubWebhookSecret=${hook}\n`, encoding: "utf8" });
      };
      const ok = run("github_pat_MARKERx1", "s3cr3t!#webhook");
      expect([ok.status, ok.stdout, ok.stderr]).toEqual([0, "", `fleetkit: wrote ${join(dir, "github.token")}\nfleetkit: wrote ${join(dir, "hook.secret")}\n`]);
      expect([readFileSync(join(dir, "github.token"), "utf8"), statSync(join(dir, "github.token")).mode & 0o777]).toEqual(["github_pat_MARKERx1\n", 0o600]);
      expect([readFileSync(join(dir, "hook.secret"), "utf8"), statSync(join(dir, "hook.secret")).mode & 0o777]).toEqual(["s3cr3t!#webhook\n", 0o600]);
      for (const [token, hook, msg] of [
        ["ghp_x;rm -rf /", "ok", "secret githubToken must be a GitHub token (letters, digits and _, e.g. github_pat_…); set it with pulumi config set --secret fleetkit:githubToken"],
        ["", "ok", "secret githubToken was not given on stdin; set it with pulumi config set --secret"],
        ["ghp_ok", "two words", "secret githubWebhookSecret must be one word of printable characters; set it with pulumi config set --secret fleetkit:githubWebhookSecret"],
      ]) {
        const r = run(token!, hook!);
        expect([r.status, r.stderr.split("\n").filter((l) => l.startsWith("fleetkit: error"))]).toEqual([1, [`fleetkit: error: ${msg}`]]);
        expect(r.stderr).not.toContain(token || "\u0000");
      }
      expect(readFileSync(join(dir, "github.token"), "utf8")).toBe("github_pat_MARKERx1\n");
      expect(readdirSync(dir).filter((f) => f.startsWith(".github."))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bundle hashes of queue, worker, ntfy and toolchains", () => {
  it.each([["mesh"], ["remote"], ["shared"]])("%s fleet: two renders are identical", (label) => {
    expect(mine(FLEETS[label])).toEqual(mine(FLEETS[label]));
  });

  it("adding a worker node changes only the queue's hash (it learns the node's facts) and ntfy's (its firewall admits the fleet)", () => {
    const rpi4: FleetNode = { ...node(mesh, "rpi3"), name: "rpi4", host: "rpi4" };
    const before = hashes(mesh);
    const after = hashes({ ...mesh, nodes: [...mesh.nodes, rpi4] });
    const changed = [...before].filter(([k, h]) => after.get(k) !== h).map(([k]) => k);
    expect(changed).toEqual(["arch-orchestrator/ntfy", "arch-orchestrator/queue"]);
    expect([...after.keys()].filter((k) => !before.has(k))).toEqual(["rpi4/worker"]);
  });

  it.each([
    ["queue port", (f: Fleet): Fleet => ({ ...f, services: { ...f.services, queue: { ...f.services.queue, port: 9000 } } }), ["arch-orchestrator/queue", "arch-orchestrator/worker", "macbook1/worker", "imac/worker", "rpi1/worker", "rpi2/worker", "rpi3/worker"]],
    // People's laptops on the tailnet reach the dashboard: only the queue node's firewall changes.
    ["queue allowFrom", (f: Fleet): Fleet => ({ ...f, services: { ...f.services, queue: { ...f.services.queue, allowFrom: ["tailnet"] } } }), ["arch-orchestrator/queue"]],
    ["ntfy topic", (f: Fleet): Fleet => ({ ...f, services: { ...f.services, ntfy: { ...f.services.ntfy, topic: "other" } } }), ["arch-orchestrator/ntfy", "arch-orchestrator/queue"]],
    ["rpi2's budget", (f: Fleet): Fleet => ({ ...f, nodes: f.nodes.map((n) => (n.name === "rpi2" ? { ...n, budgetUsdPerSession: 6 } : n)) }), ["arch-orchestrator/queue"]],
  ] as const)("editing the %s re-renders exactly the bundles that use it", (_what, edit, expected) => {
    const before = hashes(mesh);
    const after = hashes(edit(mesh));
    expect([...before].filter(([k, h]) => after.get(k) !== h).map(([k]) => k)).toEqual(expected);
  });
});
