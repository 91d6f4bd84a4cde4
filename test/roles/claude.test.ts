import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderBundle } from "../../roles/index.js";
import { readTemplate, renderTemplate } from "../../roles/bundle.js";
import { parseDocument } from "yaml";

const mesh = loadFleet("fleet.yaml");
const remote = loadFleet("examples/remote-tasks.fleet.yaml");
const shared = loadFleet("examples/shared-fs-queue.fleet.yaml");
const node = (fleet: Fleet, name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;
const FLEETS: Record<string, Fleet> = { mesh, remote, shared };

describe("role claude: per OS family", () => {
  it.each([
    // fleet, node, target, package-manager line, npm (prefix) line, whether claude brings the node's `fleet` (no worker there)
    ["mesh", "arch-orchestrator", "node", "fk_pacman_install nodejs npm bubblewrap socat", "/usr/local/lib/fleetkit/claude-code", false],
    ["mesh", "macbook1", "node", "fk_brew_install node", "/usr/local/libexec/fleetkit/claude-code", false],
    ["remote", "macbook-air", "node", "fk_brew_install node", "/usr/local/libexec/fleetkit/claude-code", true],
    ["mesh", "rpi1", "node", "fk_apt_install nodejs npm bubblewrap socat", "/usr/local/lib/fleetkit/claude-code", false],
    ["shared", "control-node", "node", "fk_apt_install nodejs npm bubblewrap socat", "/usr/local/lib/fleetkit/claude-code", false],
    ["mesh", "windows-desktop", "wsl", "fk_apt_install nodejs npm bubblewrap socat", "/usr/local/lib/fleetkit/claude-code", true],
  ] as const)("%s fleet: %s (target %s)", (label, name, target, pkgLine, prefix, cli) => {
    const fleet = FLEETS[label];
    const b = renderBundle(fleet, node(fleet, name), "claude");
    const lines = b.install.split("\n");
    expect(b.target).toBe(target);
    expect(lines).toContain(pkgLine);
    expect(lines).toContain(`  npm install --global --prefix '${prefix}' --no-audit --no-fund --loglevel=error '@anthropic-ai/claude-code@2.1.331' >/dev/null`);
    expect(lines).toContain(`  ln -sfn '${prefix}/bin/claude' '/usr/local/bin/claude'`);
    expect(lines).toContain(`fk_read_secrets --any anthropicApiKey claudeOauthToken${cli ? " queueToken" : ""}`);
    expect([b.secrets, b.secretsMode, b.requiredSecrets, b.services]).toEqual([
      ["anthropicApiKey", "claudeOauthToken", ...(cli ? ["queueToken"] : [])],
      "any",
      cli ? ["queueToken"] : undefined,
      [],
    ]);
    // The node's `fleet`: placed by this role only without a worker; removed by it only once no worker is left.
    expect(lines.filter((l) => l.startsWith("fk_put '/usr/local/bin/fleet' 0755 'root'"))).toHaveLength(cli ? 1 : 0);
    const state = node(fleet, name).os === "macos" ? "/usr/local/var/fleetkit" : "/var/lib/fleetkit";
    expect(b.uninstall).toContain(`if [ -e '${state}/roles/worker.hash' ]; then`);
  });

  it.each([
    ["mesh", "macbook2", [
      ["/Users/fleet/.claude/settings.json", 0o644, "fleet", "staff", "json"],
      ["/Users/fleet/.claude/CLAUDE.md", 0o644, "fleet", "staff", "text"],
      ["/usr/local/etc/fleetkit/node.json", 0o644, "root", undefined, "json"],
      ["/Users/fleet/.claude/skills/fleet/SKILL.md", 0o644, "fleet", "staff", "text"],
      // No worker on macbook2: this role brings the node's `fleet` (roles/worker/render.ts fleetCli).
      ["/usr/local/bin/fleet", 0o755, "root", "wheel", "shell"],
    ]],
    ["remote", "macbook-pro", [
      ["/Users/matt/.claude/settings.json", 0o644, "matt", "staff", "json"],
      ["/Users/matt/.claude/CLAUDE.md", 0o644, "matt", "staff", "text"],
      ["/usr/local/etc/fleetkit/node.json", 0o644, "root", undefined, "json"],
      ["/Users/matt/.claude/skills/fleet/SKILL.md", 0o644, "matt", "staff", "text"],
    ]],
    ["mesh", "rpi2", [
      ["/home/fleet/.claude/settings.json", 0o644, "fleet", "fleet", "json"],
      ["/home/fleet/.claude/CLAUDE.md", 0o644, "fleet", "fleet", "text"],
      ["/etc/fleetkit/node.json", 0o644, "root", undefined, "json"],
      ["/home/fleet/.claude/skills/fleet/SKILL.md", 0o644, "fleet", "fleet", "text"],
    ]],
    ["shared", "pi-node-1", [
      ["/home/user/.claude/settings.json", 0o644, "user", "user", "json"],
      ["/home/user/.claude/CLAUDE.md", 0o644, "user", "user", "text"],
      ["/etc/fleetkit/node.json", 0o644, "root", undefined, "json"],
      ["/home/user/.claude/skills/fleet/SKILL.md", 0o644, "user", "user", "text"],
    ]],
  ] as const)("%s fleet: files of %s: paths, modes, owners, groups", (label, name, files) => {
    const fleet = FLEETS[label];
    const b = renderBundle(fleet, node(fleet, name), "claude");
    expect(b.files.map((f) => [f.path, f.mode, f.owner, f.group, f.kind])).toEqual(files);
  });

  it.each([
    ["macbook1", "fleet:staff", "/Users/fleet/.claude", "fk_put '/usr/local/etc/fleetkit/claude.env' 0600 'fleet' 'staff' < \"$fk_env_tmp\""],
    ["rpi3", "fleet:fleet", "/home/fleet/.claude", "fk_put '/etc/fleetkit/claude.env' 0600 'fleet' 'fleet' < \"$fk_env_tmp\""],
  ])("%s: ~/.claude owned by %s, env file 0600 for the node user", (name, owner, dir, putLine) => {
    const lines = renderBundle(mesh, node(mesh, name), "claude").install.split("\n");
    expect(lines).toContain(`chown '${owner}' '${dir}'`);
    expect(lines).toContain(`chmod 0700 '${dir}'`);
    expect(lines).toContain(putLine);
  });

  it("settings.json carries the fleet's permissions and sandbox (claude-workers.md shape) and pins the updater off", () => {
    const b = renderBundle(mesh, node(mesh, "imac"), "claude");
    expect(JSON.parse(b.files[0].content)).toEqual({
      env: { DISABLE_AUTOUPDATER: "1" },
      permissions: { allow: ["Edit"], defaultMode: "bypassPermissions" },
      sandbox: { enabled: true, autoAllowBashIfSandboxed: true, network: { allowedDomains: ["*.com", "*.io", "*.dev"] } },
    });
  });

  it("sandbox off: no bubblewrap/socat, sandbox.enabled false", () => {
    const fleet: Fleet = { ...mesh, claude: { ...mesh.claude!, sandbox: false } };
    const b = renderBundle(fleet, node(fleet, "rpi1"), "claude");
    expect(b.install.split("\n")).toContain("fk_apt_install nodejs npm");
    expect(JSON.parse(b.files[0].content).sandbox).toEqual({ enabled: false });
  });

  it.each([
    ["mesh", "arch-orchestrator", { node: "arch-orchestrator", fleet: "agent-mesh", budgetUsdPerSession: 20, roles: ["tailscale", "claude", "icecc-scheduler", "iceccd", "toolchains", "agentapi", "ntfy", "queue", "worker"], os: "arch", arch: "x86_64" }],
    ["mesh", "rpi1", { node: "rpi1", fleet: "agent-mesh", budgetUsdPerSession: 5, roles: ["tailscale", "claude", "iceccd", "toolchains", "agentapi", "worker"], os: "raspios", arch: "aarch64" }],
    ["shared", "control-node", { node: "control-node", fleet: "shared-fs-queue", budgetUsdPerSession: 10, roles: ["tailscale", "claude", "queue", "worker"], os: "debian", arch: "x86_64" }],
  ] as const)("%s fleet: node.json of %s records the budget cap for the worker runtime", (label, name, facts) => {
    const fleet = FLEETS[label];
    const f = renderBundle(fleet, node(fleet, name), "claude").files[2];
    expect(JSON.parse(f.content)).toEqual(facts);
  });

  it.each([
    ["macbook1", 10, true, "`macbook1` (`macbook1.tail-agent-mesh.ts.net` on the tailnet)"],
    ["macbook2", 5, false, "`macbook2` (`macbook2.tail-agent-mesh.ts.net` on the tailnet)"],
  ])("CLAUDE.md of %s: identity, budget $%d, AgentAPI line only with agentapi", (name, budget, agentapi, address) => {
    const md = renderBundle(mesh, node(mesh, name), "claude").files[1].content;
    expect(md.split("\n")[0]).toBe(`# Fleet node ${name}`);
    expect(md).toContain(`a node of the fleet **agent-mesh** (macos, x86_64)`);
    expect(md).toContain(`- Address: ${address}.`);
    expect(md).toContain(`- Budget cap: **$${budget} per session**. Headless runs get \`--max-budget-usd ${budget}\``);
    expect(md).toContain('    fleet task delegate <node|any> "<prompt>" [--model M] [--wait]');
    expect(md.includes("AgentAPI serves this Claude session on port 3284")).toBe(agentapi);
    expect(md).not.toMatch(/\n\n\n/);
  });

  it("uninstall removes Claude Code, its link and the env file, but keeps ~/.claude", () => {
    const u = renderBundle(mesh, node(mesh, "rpi1"), "claude").uninstall;
    expect(u).toContain("fk_rm '/etc/fleetkit/claude.env'\n");
    expect(u).toContain("if [ -d '/usr/local/lib/fleetkit/claude-code' ]; then rm -rf '/usr/local/lib/fleetkit/claude-code';");
    expect(u).toContain("fk_rm '/home/fleet/.claude/settings.json' '/home/fleet/.claude/CLAUDE.md' '/etc/fleetkit/node.json' '/home/fleet/.claude/skills/fleet/SKILL.md'\n");
    expect(u).toContain("rmdir '/home/fleet/.claude/skills/fleet' 2>/dev/null || true\n");
    expect(u).not.toMatch(/rm -rf \/home\/fleet\/\.claude/);
  });
});

/**
 * The credentials step (claude/env.sh after fk_read_secrets) run for real by sh, as the current user,
 * with marker secrets on stdin: proves the env file's exact content and 0600 mode, that either secret
 * alone is enough, that none is an error, and that no secret reaches stdout or stderr.
 */
describe("the fleet skill (~/.claude/skills/fleet/SKILL.md, Claude Code's skills format)", () => {
  const skillOf = (fleet: Fleet, name: string) => {
    const b = renderBundle(fleet, node(fleet, name), "claude");
    const f = b.files.find((x) => x.path.endsWith("/.claude/skills/fleet/SKILL.md"))!;
    return { file: f, text: f.content };
  };

  it("has YAML front matter naming the skill and saying when to use it", () => {
    const { file, text } = skillOf(mesh, "rpi1");
    expect([file.path, file.mode, file.owner]).toEqual(["/home/fleet/.claude/skills/fleet/SKILL.md", 0o644, "fleet"]);
    const m = /^---\n([\s\S]*?)\n---\n/.exec(text)!;
    const front = parseDocument(m[1]!);
    expect(front.errors).toEqual([]);
    expect(Object.keys(front.toJS())).toEqual(["name", "description"]);
    expect(front.get("name")).toBe("fleet");
    expect(front.get("description")).toMatch(/^Hand work to another machine of this fleetkit fleet, .*fleet task delegate/);
  });

  // mesh without its queue (and so without workers): no `fleet` anywhere.
  const noQueue: Fleet = { ...mesh, nodes: mesh.nodes.map((n) => ({ ...n, roles: n.roles.filter((r) => r !== "queue" && r !== "worker") })) };
  it.each([
    ["mesh", "rpi1", true],
    // No worker on macbook2: the claude role brings `fleet` there (roles/worker/render.ts fleetCli).
    ["mesh", "macbook2", true],
    ["remote", "macbook-pro", true],
    ["noQueue", "rpi1", false],
  ] as const)("%s/%s: names this node, points at `fleet task status` for the others, and says whether `fleet` is installed here (%s)", (fleet, name, command) => {
    const f = fleet === "noQueue" ? noQueue : FLEETS[fleet]!;
    const { text } = skillOf(f, name);
    expect(text).toContain(`This node is **${name}**.`);
    expect(text).toContain("    fleet task status         # every node: OS, arch, profile, roles, tags, online or not, spend today against its cap\n");
    expect(text.includes("The `fleet` command on this node talks to the fleet's queue")).toBe(command);
    expect(text.includes("This fleet runs no queue, so there is no `fleet` command here")).toBe(!command);
    // No other node is named (but the queue's, in its URL): adding or changing a node re-deploys no other node's claude role.
    const queueNode = f.nodes.find((n) => n.roles.includes("queue"))?.name;
    for (const other of f.nodes.filter((n) => n.name !== name && n.name !== queueNode)) expect(text).not.toMatch(new RegExp(`\\b${other.name}\\b`));
  });

  it("gives the delegation commands; CLAUDE.md points at it", () => {
    const { text } = skillOf(mesh, "rpi1");
    expect(text).toContain('    fleet task delegate <node|any> "<prompt>" [--tag k=v] [--model auto|haiku|sonnet|opus] [--priority high|medium|low] --wait\n');
    expect(text).toContain("queue at `http://arch-orchestrator:8787`");
    const claudeMd = renderBundle(mesh, node(mesh, "rpi1"), "claude").files.find((x) => x.path.endsWith("/.claude/CLAUDE.md"))!.content;
    expect(claudeMd).toContain("The skill `fleet`\n(`~/.claude/skills/fleet/SKILL.md`) says how to see every node of the fleet (`fleet task status`)");
  });
});

describe("Claude credentials from stdin (claude/env.sh run by sh)", () => {
  const API = "sk-ant-api03-MARKERapi_key-0123";
  const OAUTH = "sk-ant-oat01-MARKERoauth_tok-4567";
  const me = userInfo().username;
  const group = spawnSync("id", ["-gn"], { encoding: "utf8" }).stdout.trim();

  function run(stdin: string, dir = mkdtempSync(join(tmpdir(), "fk-claude-"))) {
    const envFile = join(dir, "claude.env");
    const script = [
      readTemplate("common/prelude.sh"),
      "fk_read_secrets --any anthropicApiKey claudeOauthToken",
      renderTemplate("claude/env.sh", { configDir: dir, envFile, user: me, group, systemd: false, launchd: false }),
      'echo "changed=$FK_CHANGED"',
    ].join("\n");
    const r = spawnSync("sh", ["-c", script], { input: stdin, encoding: "utf8", env: { PATH: process.env.PATH } });
    let content: string | null = null;
    let mode: string | null = null;
    try {
      content = readFileSync(envFile, "utf8");
      mode = (statSync(envFile).mode & 0o777).toString(8);
    } catch {
      /* not written */
    }
    return { dir, status: r.status, stdout: r.stdout, stderr: r.stderr, content, mode };
  }

  it.each([
    ["API key only", `anthropicApiKey=${API}\n`, `ANTHROPIC_API_KEY=${API}\n`],
    ["OAuth token only", `claudeOauthToken=${OAUTH}\n`, `CLAUDE_CODE_OAUTH_TOKEN=${OAUTH}\n`],
    ["both, other lines ignored", `tailscaleAuthKey=tskey-x\nclaudeOauthToken=${OAUTH}\nanthropicApiKey=${API}`, `ANTHROPIC_API_KEY=${API}\nCLAUDE_CODE_OAUTH_TOKEN=${OAUTH}\n`],
  ])("%s → exact 0600 env file, no secret in any output", (_, stdin, expected) => {
    const r = run(stdin);
    try {
      expect([r.status, r.content, r.mode, r.stdout]).toEqual([0, expected, "600", "changed=1\n"]);
      for (const s of [API, OAUTH]) expect(r.stdout + r.stderr).not.toContain(s);
      // A second run with the same secrets changes nothing.
      const again = run(stdin, r.dir);
      expect([again.status, again.stdout]).toEqual([0, "changed=0\n"]);
    } finally {
      rmSync(r.dir, { recursive: true, force: true });
    }
  });

  it.each([
    ["no secret at all", "", "fleetkit: error: none of the secrets anthropicApiKey claudeOauthToken was given on stdin; set one of them with pulumi config set --secret\n"],
    ["a value with a space", `anthropicApiKey=sk-ant bad\n`, "fleetkit: error: a Claude secret holds characters other than letters, digits and _.+/=-; check the value given to pulumi config set --secret\n"],
  ])("%s → exit 1 with a clear message, nothing written", (_, stdin, message) => {
    const r = run(stdin);
    rmSync(r.dir, { recursive: true, force: true });
    expect([r.status, r.stderr, r.content]).toEqual([1, message, null]);
  });
});

/**
 * The install step (claude/install.sh) run for real by sh against the npm registry, into a temp prefix
 * and link dir: the pinned package installs a working native `claude`, a second run changes nothing, the
 * uninstall step removes it. (Reaches registry.npmjs.org; the npm cache makes reruns fast.)
 */
describe("Claude Code install step, run for real (npm registry)", () => {
  it("installs 2.1.331 so that `claude --version` answers; rerun unchanged; uninstall removes it", () => {
    const dir = mkdtempSync(join(tmpdir(), "fk-cc-"));
    const version = mesh.claude!.version;
    const user = userInfo().username;
    const group = spawnSync("id", ["-gn"], { encoding: "utf8" }).stdout.trim();
    const view = {
      ...{ version, prefix: `${dir}/prefix`, claudeExe: `${dir}/prefix/bin/claude`, npmPackage: `@anthropic-ai/claude-code@${version}`, nodeBin: "/usr/bin", user, owner: `${user}:${group}` },
      ...{ claudeDir: `${dir}/home/.claude`, skillDir: `${dir}/home/.claude/skills/fleet`, envFile: `${dir}/etc/claude.env`, linkDir: `${dir}/bin`, link: `${dir}/bin/claude` },
    };
    const script = (tpl: string) => [readTemplate("common/prelude.sh"), renderTemplate(tpl, view), 'echo "changed=$FK_CHANGED"'].join("\n");
    const sh = (tpl: string) => spawnSync("sh", ["-c", script(tpl)], { encoding: "utf8" });
    try {
      const first = sh("claude/install.sh");
      expect([first.status, first.stdout, first.stderr]).toEqual([0, "changed=1\n", `fleetkit: npm install @anthropic-ai/claude-code@${version}\n`]);
      expect(spawnSync(`${dir}/bin/claude`, ["--version"], { encoding: "utf8" }).stdout).toBe(`${version} (Claude Code)\n`);
      expect((statSync(`${dir}/home/.claude`).mode & 0o777).toString(8)).toBe("700");
      expect(sh("claude/install.sh").stdout).toBe("changed=0\n");
      const un = sh("claude/uninstall.sh");
      expect([un.status, un.stdout]).toEqual([0, "changed=1\n"]);
      expect(spawnSync("ls", [dir], { encoding: "utf8" }).stdout).toBe("bin\nhome\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
