// @needs python3
/**
 * Roles queue and worker: per-OS renders for the three real fleets, the tokens-file merge with marker
 * secrets, and an end-to-end run of exactly what the bundles ship: the runtime payload unpacked by the
 * rendered shell fragment, the queue server started from it, a worker from the worker payload claiming and
 * completing a task over HTTP on loopback.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parsePlist } from "plist";
import { loadFleet, parseFleet } from "../../stacks/model/load.js";
import type { Fleet, FleetNode, RoleName } from "../../stacks/model/fleet.js";
import { renderBundle } from "../../roles/index.js";
import { readTemplate, remoteCommand, remoteInvocation, renderTemplate } from "../../roles/bundle.js";
import { queueFacts, queueUrl } from "../../roles/queue.js";
import { importClosure, runtimePackage, runtimePayload, staticImports } from "../../roles/runtime-dist.js";

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
    ["mesh", "arch-orchestrator", "fk_pacman_install nodejs npm", ["queueTokens", "ntfyToken"], "arch-orchestrator:8787"],
    ["remote", "raspberrypi", "fk_apt_install nodejs npm", ["queueTokens", "ntfyToken"], "raspberrypi:8787"],
    ["shared", "control-node", "fk_apt_install nodejs npm", ["queueTokens"], "control-node:8787"],
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
    ]);
    const unit = b.files[2].content.split("\n");
    const user = node(fleet, name).user;
    expect(unit).toContain(`User=${user}`);
    expect(unit).toContain(
      `ExecStart=/usr/bin/node /usr/local/lib/fleetkit/queue/fleet.mjs queue serve --db /var/lib/fleetkit/queue/queue.db --listen ${listen} --tokens /etc/fleetkit/queue/tokens.json`,
    );
    expect(unit).toContain("ReadWritePaths=/var/lib/fleetkit/queue");
    expect(b.uninstall.split("\n")).toContain("fk_systemd_remove fleet-queue.service '/etc/systemd/system/fleet-queue.service'");
    // The whole SSH command stays under Linux's 128 KiB limit for one argument (MAX_ARG_STRLEN).
    expect(Buffer.byteLength(remoteCommand(node(fleet, name), b.target, b.install))).toBeLessThan(128 * 1024);
  });

  it("nodes.json holds every node's public facts and the ntfy server, no token", () => {
    expect(queueFacts(remote)).toEqual({
      nodes: {
        "macbook-air": { os: "macos", arch: "aarch64", tags: {}, budgetUsdPerSession: 5 },
        "macbook-pro": { os: "macos", arch: "aarch64", tags: {}, budgetUsdPerSession: 10 },
        raspberrypi: { os: "raspios", arch: "aarch64", tags: {}, budgetUsdPerSession: 5 },
      },
      ntfy: { url: "http://raspberrypi:8091", topic: "claude-tasks" },
      publicUrl: "http://raspberrypi:8787",
    });
    expect(queueFacts(shared).ntfy).toBeNull();
  });
});

describe("role worker", () => {
  it.each([
    // fleet, node, target, package line, service-manager line, service
    ["mesh", "arch-orchestrator", "node", "fk_pacman_install nodejs npm", "fk_systemd_unit fleet-worker.service", "fleet-worker.service"],
    ["mesh", "macbook1", "node", "fk_brew_install node", "fk_launchd_daemon dev.fleetkit.worker '/Library/LaunchDaemons/dev.fleetkit.worker.plist' system", "dev.fleetkit.worker"],
    ["mesh", "rpi1", "node", "fk_apt_install nodejs npm", "fk_systemd_unit fleet-worker.service", "fleet-worker.service"],
    ["remote", "macbook-pro", "node", "fk_brew_install node", "fk_launchd_daemon dev.fleetkit.worker '/Library/LaunchDaemons/dev.fleetkit.worker.plist' system", "dev.fleetkit.worker"],
    ["shared", "pi-node-2", "node", "fk_apt_install nodejs npm", "fk_systemd_unit fleet-worker.service", "fleet-worker.service"],
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
    expect([b.target, b.files.map((f) => f.path), b.secrets]).toEqual(["wsl", ["/etc/systemd/system/fleet-worker.service"], ["queueToken"]]);
    expect(b.files[0].content.split("\n")).toContain(
      "ExecStart=/usr/bin/node /usr/local/lib/fleetkit/worker/fleet.mjs worker --queue http://arch-orchestrator:8787 --token-file /etc/fleetkit/worker/token --node windows-laptop " +
        "--claude /usr/local/lib/fleetkit/claude-code/bin/claude --env-file /etc/fleetkit/claude.env",
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

  it("Linux unit: the runtime's worker CLI with the queue URL, token file, node, pinned claude and its env file", () => {
    const b = renderBundle(mesh, node(mesh, "rpi1"), "worker");
    const unit = b.files[0].content.split("\n");
    expect(unit).toContain("User=fleet");
    expect(unit).toContain("Environment=HOME=/home/fleet");
    expect(unit).toContain(
      "ExecStart=/usr/bin/node /usr/local/lib/fleetkit/worker/fleet.mjs worker --queue http://arch-orchestrator:8787 --token-file /etc/fleetkit/worker/token --node rpi1 " +
        "--claude /usr/local/lib/fleetkit/claude-code/bin/claude --env-file /etc/fleetkit/claude.env",
    );
    expect(unit).toContain("TimeoutStopSec=45");
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
    expect(unit).toContain("--node pi-node-1\n");
    expect(unit).not.toContain("--env-file");
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
    ["worker", ["zod"], ["better-sqlite3", "fastify", "prom-client"]],
  ] as const)("%s: the closure of its CLI module and the npm packages it imports", (verb, must, mustNot) => {
    const c = importClosure([`runtime/cli/${verb}.ts`]);
    expect(c.files).toContain(`runtime/cli/${verb}.ts`);
    expect(c.files).toContain("scripts/errors.ts");
    expect(c.files.every((f) => f.startsWith("runtime/") || f === "scripts/errors.ts")).toBe(true);
    // Exactly the bare specifiers the shipped files import, nothing else.
    const bare = new Set(c.files.flatMap((f) => staticImports(readFileSync(f, "utf8"))).filter((s) => !s.startsWith(".") && !s.startsWith("node:")).map((s) => (s.startsWith("@") ? s.split("/").slice(0, 2).join("/") : s.split("/")[0]!)));
    expect(c.packages).toEqual([...bare].sort());
    for (const p of must) expect(c.packages).toContain(p);
    for (const p of mustNot) expect(c.packages).not.toContain(p);
    const pkgs = c.packages;
    const pkg = runtimePackage(verb, readTemplate("queue/fleet.mjs"));
    const lock = JSON.parse(pkg.files.find((f) => f.path === "package-lock.json")!.content);
    const repoLock = JSON.parse(readFileSync("package-lock.json", "utf8"));
    expect(Object.keys(pkg.dependencies)).toEqual([...pkgs, "tsx"].sort());
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

  it("the payload is deterministic", () => {
    const n = node(mesh, "rpi1");
    expect(runtimePayload(n, "worker", "/x")).toEqual(runtimePayload(n, "worker", "/x"));
  });
});

// ---- tokens file ----------------------------------------------------------------------------------------

const MARK = (n: number) => `MARKERtoken${String(n).padStart(8, "0")}`;
const NTFY_MARK = "tk_markerntfy0000000000000000000".slice(0, 32);

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

describe("tokens file merge (secrets from stdin, errors without values)", () => {
  const sharedTokens = { "control-node": MARK(1), "pi-node-1": MARK(2), "pi-node-2": MARK(3) };
  const line = (t: Record<string, string>) => Object.entries(t).map(([n, v]) => `${n}:${v}`).join(" ");

  it("merges one token per node into the runtime's tokens file shape", () => {
    const r = mergeTokens(shared, `${line(sharedTokens)}\n\n`);
    expect([r.status, r.stderr]).toEqual([0, ""]);
    const out = JSON.parse(r.stdout);
    expect(out.nodes["pi-node-2"]).toEqual({ os: "raspios", arch: "aarch64", tags: { storage: "nvme" }, budgetUsdPerSession: 5, token: MARK(3) });
    expect(out.ntfy).toBeNull();
  });

  it("adds the ntfy token when the fleet has an ntfy server", () => {
    const tokens = { "macbook-air": MARK(1), "macbook-pro": MARK(2), raspberrypi: MARK(3) };
    const r = mergeTokens(remote, `${line(tokens)}\n${NTFY_MARK}\n`);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).ntfy).toEqual({ url: "http://raspberrypi:8091", topic: "claude-tasks", token: NTFY_MARK });
  });

  it("leaves out nodes the stack minted no token for (no worker there)", () => {
    const r = mergeTokens(remote, `macbook-pro:${MARK(2)} raspberrypi:${MARK(3)}\n${NTFY_MARK}\n`);
    expect(r.status).toBe(0);
    expect(Object.keys(JSON.parse(r.stdout).nodes)).toEqual(["macbook-pro", "raspberrypi"]);
  });

  it.each([
    ["an empty line", "", "secret queueTokens holds no node:token pair; the stack mints one per worker node"],
    ["JSON instead of pairs", JSON.stringify(sharedTokens), "secret queueTokens must be node:token pairs separated by spaces; set it with pulumi config set --secret"],
    ["a pair without a colon", `control-node${MARK(1)}`, "secret queueTokens must be node:token pairs separated by spaces; set it with pulumi config set --secret"],
    ["a short token", line({ ...sharedTokens, "pi-node-1": "MARKERshort" }), "secret queueTokens has no valid token for node pi-node-1 (16-256 letters, digits, _ or -)"],
    ["a token with a quote", line({ ...sharedTokens, "pi-node-1": `${MARK(9)}"x` }), "secret queueTokens has no valid token for node pi-node-1 (16-256 letters, digits, _ or -)"],
    ["an unknown node", line({ ...sharedTokens, rpi9: MARK(4) }), 'secret queueTokens names node "rpi9", which is not in the fleet; remove it'],
    ["a node twice", `${line(sharedTokens)} pi-node-1:${MARK(5)}`, "secret queueTokens names node pi-node-1 twice"],
    ["a shared token", line({ ...sharedTokens, "pi-node-2": MARK(1) }), "secret queueTokens gives node pi-node-2 the same token as another node; every node needs its own"],
  ])("rejects %s", (_label, input, message) => {
    const r = mergeTokens(shared, `${input}\n\n`);
    expect([r.status, r.stdout, r.stderr]).toEqual([1, "", `fleetkit: error: ${message}\n`]);
    expect(r.stderr).not.toContain("MARKER");
  });

  it("rejects a malformed ntfy token without echoing it", () => {
    const tokens = { "macbook-air": MARK(1), "macbook-pro": MARK(2), raspberrypi: MARK(3) };
    const r = mergeTokens(remote, `${line(tokens)}\ntk_MARKER\n`);
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
  const r = spawnSync("sh", ["-c", script], { encoding: "utf8" });
  expect([r.status, r.stdout]).toEqual([0, "changed=1\n"]);
  for (const f of payload.paths) expect(statSync(f).mode & 0o777).toBe(0o644);
  // A second run places nothing: every file is unchanged.
  const again = spawnSync("sh", ["-c", script], { encoding: "utf8" });
  expect([again.status, again.stdout, again.stderr]).toEqual([0, "changed=0\n", ""]);
}

describe("end to end: the queue and worker the bundles ship", () => {
  it("unpacks both runtimes, serves the queue, and a worker completes a delegated task", async () => {
    const qdir = join(work, "queue");
    const wdir = join(work, "worker");
    unpack("queue", qdir);
    unpack("worker", wdir);
    const tokens = { "control-node": MARK(1), "pi-node-1": MARK(2), "pi-node-2": MARK(3) };
    const merged = mergeTokens(shared, `${Object.entries(tokens).map(([n, v]) => `${n}:${v}`).join(" ")}\n\n`);
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
      for (const t of [b.install, b.uninstall, ...b.files.map((f) => f.content), remoteCommand(n, b.target, b.install), remoteCommand(n, b.target, b.uninstall)]) {
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

describe("bundle hashes of queue, worker, ntfy and toolchains", () => {
  it.each([["mesh"], ["remote"], ["shared"]])("%s fleet: two renders are identical", (label) => {
    expect(mine(FLEETS[label])).toEqual(mine(FLEETS[label]));
  });

  it("adding a worker node changes only the queue's hash (it learns the node's facts)", () => {
    const rpi4: FleetNode = { ...node(mesh, "rpi3"), name: "rpi4", host: "rpi4" };
    const before = hashes(mesh);
    const after = hashes({ ...mesh, nodes: [...mesh.nodes, rpi4] });
    const changed = [...before].filter(([k, h]) => after.get(k) !== h).map(([k]) => k);
    expect(changed).toEqual(["arch-orchestrator/queue"]);
    expect([...after.keys()].filter((k) => !before.has(k))).toEqual(["rpi4/worker"]);
  });

  it.each([
    ["queue port", (f: Fleet): Fleet => ({ ...f, services: { ...f.services, queue: { port: 9000 } } }), ["arch-orchestrator/queue", "arch-orchestrator/worker", "macbook1/worker", "imac/worker", "rpi1/worker", "rpi2/worker", "rpi3/worker"]],
    ["ntfy topic", (f: Fleet): Fleet => ({ ...f, services: { ...f.services, ntfy: { ...f.services.ntfy, topic: "other" } } }), ["arch-orchestrator/ntfy", "arch-orchestrator/queue"]],
    ["rpi2's budget", (f: Fleet): Fleet => ({ ...f, nodes: f.nodes.map((n) => (n.name === "rpi2" ? { ...n, budgetUsdPerSession: 6 } : n)) }), ["arch-orchestrator/queue"]],
  ] as const)("editing the %s re-renders exactly the bundles that use it", (_what, edit, expected) => {
    const before = hashes(mesh);
    const after = hashes(edit(mesh));
    expect([...before].filter(([k, h]) => after.get(k) !== h).map(([k]) => k)).toEqual(expected);
  });
});
