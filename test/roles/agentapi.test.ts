// @needs python3
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parsePlist } from "plist";
import { loadFleet } from "../../model/load.js";
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderBundle } from "../../roles/index.js";
import { agentapiAllowedHosts } from "../../roles/agentapi/render.js";

const mesh = loadFleet("fleet.yaml");
const node = (fleet: Fleet, name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;

const SUMS = { "linux-x86_64": "1".repeat(64), "linux-aarch64": "2".repeat(64), "darwin-x86_64": "3".repeat(64), "darwin-aarch64": "4".repeat(64) };
/** The mesh with agentapi pinned for every platform and, to cover WSL, AgentAPI on windows-laptop too. */
const pinned: Fleet = {
  ...mesh,
  artifacts: { ...mesh.artifacts, agentapi: { ...mesh.artifacts.agentapi, sha256: SUMS } },
  nodes: mesh.nodes.map((n) => (n.name === "windows-laptop" ? { ...n, roles: [...n.roles, "agentapi"] } : n)),
};
const remotePinned: Fleet = (() => {
  const f = loadFleet("examples/remote-tasks.fleet.yaml");
  return { ...f, artifacts: { ...f.artifacts, agentapi: { ...f.artifacts.agentapi, sha256: SUMS } }, nodes: f.nodes.map((n) => ({ ...n, roles: [...n.roles, "agentapi"] })) };
})();

const FLEETS: Record<string, Fleet> = { mesh, pinned, remotePinned, noTailnet: { ...mesh, tailnet: undefined } };

describe("role agentapi: per OS family", () => {
  it.each([
    // fleet, node, target, download line, service-manager line, service
    ["pinned", "arch-orchestrator", "node", `fk_download 'https://github.com/coder/agentapi/releases/download/v0.10.0/agentapi-linux-amd64' '${SUMS["linux-x86_64"]}' '/usr/local/lib/fleetkit/agentapi' 0755`, "fk_systemd_unit claude-agentapi.service", "claude-agentapi.service"],
    ["pinned", "macbook1", "node", `fk_download 'https://github.com/coder/agentapi/releases/download/v0.10.0/agentapi-darwin-amd64' '${SUMS["darwin-x86_64"]}' '/usr/local/libexec/fleetkit/agentapi' 0755`, "fk_launchd_daemon com.claude.agentapi '/Library/LaunchDaemons/com.claude.agentapi.plist' system", "com.claude.agentapi"],
    ["remotePinned", "macbook-air", "node", `fk_download 'https://github.com/coder/agentapi/releases/download/v0.10.0/agentapi-darwin-arm64' '${SUMS["darwin-aarch64"]}' '/usr/local/libexec/fleetkit/agentapi' 0755`, "fk_launchd_daemon com.claude.agentapi '/Library/LaunchDaemons/com.claude.agentapi.plist' system", "com.claude.agentapi"],
    ["pinned", "rpi1", "node", `fk_download 'https://github.com/coder/agentapi/releases/download/v0.10.0/agentapi-linux-arm64' '${SUMS["linux-aarch64"]}' '/usr/local/lib/fleetkit/agentapi' 0755`, "fk_systemd_unit claude-agentapi.service", "claude-agentapi.service"],
    ["pinned", "windows-laptop", "wsl", `fk_download 'https://github.com/coder/agentapi/releases/download/v0.10.0/agentapi-linux-amd64' '${SUMS["linux-x86_64"]}' '/usr/local/lib/fleetkit/agentapi' 0755`, "fk_systemd_unit claude-agentapi.service", "claude-agentapi.service"],
  ] as const)("%s fleet: %s (target %s)", (label, name, target, fetchLine, svcLine, service) => {
    const fleet = FLEETS[label];
    const b = renderBundle(fleet, node(fleet, name), "agentapi");
    const lines = b.install.split("\n");
    expect(b.target).toBe(target);
    expect(lines).toContain(fetchLine);
    expect(lines).toContain(svcLine);
    expect(lines).toContain("until curl -fsS -o /dev/null http://127.0.0.1:3284/status; do");
    expect(b.services.map((s) => [s.name, s.manager, s.scope])).toEqual([[service, svcLine.startsWith("fk_systemd") ? "systemd" : "launchd", "system"]]);
    expect(b.secrets).toEqual([]);
  });

  it("Linux unit: runs as the node user with the Claude env file, narrow allowed hosts, pinned claude", () => {
    const b = renderBundle(pinned, node(pinned, "rpi1"), "agentapi");
    expect(b.files.map((f) => [f.path, f.mode, f.owner, f.kind])).toEqual([
      ["/etc/systemd/system/claude-agentapi.service", 0o644, "root", "systemd"],
      ["/usr/local/lib/fleetkit/claude-onboarded.mjs", 0o644, "root", "text"],
      // AgentAPI has no authentication: the node firewall is its guard (roles/firewall.ts).
      ["/usr/local/lib/fleetkit/firewall/agentapi.sh", 0o755, "root", "shell"],
      ["/etc/systemd/system/fleetkit-firewall-agentapi.service", 0o644, "root", "systemd"],
      ["/etc/systemd/system/fleetkit-firewall-agentapi-refresh.service", 0o644, "root", "systemd"],
      ["/etc/systemd/system/fleetkit-firewall-agentapi-refresh.timer", 0o644, "root", "systemd"],
    ]);
    const unit = b.files[0].content.split("\n");
    expect(unit).toContain("User=fleet");
    expect(unit).toContain("WorkingDirectory=/home/fleet");
    expect(unit).toContain("EnvironmentFile=/etc/fleetkit/claude.env");
    expect(unit).toContain("ExecStartPre=-/usr/bin/node /usr/local/lib/fleetkit/claude-onboarded.mjs");
    expect(unit).toContain(
      "ExecStart=/usr/local/lib/fleetkit/agentapi server --type claude --port 3284 --allowed-hosts localhost,127.0.0.1,rpi1,rpi1.tail-agent-mesh.ts.net " +
        "--allowed-origins http://localhost:3284,http://127.0.0.1:3284,http://rpi1:3284,http://rpi1.tail-agent-mesh.ts.net:3284 -- /usr/local/lib/fleetkit/claude-code/bin/claude",
    );
    expect(b.files[0].content).toContain("AgentAPI has NO authentication");
  });

  it("macOS LaunchDaemon parses (plist and Python plistlib) and runs as the node user with the env file", () => {
    const b = renderBundle(pinned, node(pinned, "imac"), "agentapi");
    expect(b.files.map((f) => [f.path, f.mode, f.owner, f.kind])).toEqual([
      ["/Library/LaunchDaemons/com.claude.agentapi.plist", 0o644, "root", "launchd"],
      ["/usr/local/libexec/fleetkit/claude-onboarded.mjs", 0o644, "root", "text"],
      ["/usr/local/libexec/fleetkit/firewall/agentapi.sh", 0o755, "root", "shell"],
      ["/Library/LaunchDaemons/dev.fleetkit.firewall.agentapi.plist", 0o644, "root", "launchd"],
    ]);
    const job = parsePlist(b.files[0].content) as Record<string, unknown>;
    expect(job.Label).toBe("com.claude.agentapi");
    expect(job.UserName).toBe("fleet");
    // The sh -c script is a constant; every path and host reaches it as a positional parameter.
    expect(job.ProgramArguments).toEqual([
      "/bin/sh",
      "-c",
      'set -a; . "$1"; set +a; "$2" "$3"; shift 3; exec "$@"',
      "claude-agentapi",
      "/usr/local/etc/fleetkit/claude.env",
      "/usr/local/bin/node",
      "/usr/local/libexec/fleetkit/claude-onboarded.mjs",
      "/usr/local/libexec/fleetkit/agentapi",
      ...["server", "--type", "claude", "--port", "3284", "--allowed-hosts", "localhost,127.0.0.1,imac,imac.tail-agent-mesh.ts.net"],
      ...["--allowed-origins", "http://localhost:3284,http://127.0.0.1:3284,http://imac:3284,http://imac.tail-agent-mesh.ts.net:3284"],
      ...["--", "/usr/local/libexec/fleetkit/claude-code/bin/claude"],
    ]);
    expect(job.EnvironmentVariables).toEqual({ HOME: "/Users/fleet", PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", TERM: "xterm-256color" });
    const py = spawnSync("python3", ["-c", "import plistlib,sys; d=plistlib.loads(sys.stdin.buffer.read()); print(d['Label'], d['UserName'], d['KeepAlive'])"], { input: b.files[0].content, encoding: "utf8" });
    expect([py.status, py.stdout]).toEqual([0, "com.claude.agentapi fleet True\n"]);
  });

  it.each([
    ["noTailnet", "rpi2", ["localhost", "127.0.0.1", "rpi2"]],
    ["mesh", "rpi2", ["localhost", "127.0.0.1", "rpi2", "rpi2.tail-agent-mesh.ts.net"]],
    ["remotePinned", "macbook-pro", ["localhost", "127.0.0.1", "katies-macbook-pro", "macbook-pro", "macbook-pro.tail-remote-tasks.ts.net"]],
  ] as const)("%s fleet: allowed hosts of %s are only its own names", (label, name, hosts) => {
    expect(agentapiAllowedHosts(FLEETS[label], node(FLEETS[label], name))).toEqual(hosts);
  });

  it("without a pinned sha256 the install stops before anything changes and says how to pin it", () => {
    const b = renderBundle(mesh, node(mesh, "rpi1"), "agentapi");
    const body = b.install.split('mkdir -p "$FK_STATE/roles"\n')[1].split("\n");
    expect(body[0]).toBe(
      "fk_die 'no sha256 pinned for agentapi v0.10.0 on linux-aarch64: run npx fleet pin-artifacts where https://github.com/coder/agentapi/releases/download/v0.10.0/agentapi-linux-arm64 downloads " +
        "(or download it, run sha256sum on it and add it to fleet.yaml as artifacts.agentapi.sha256.linux-aarch64)'",
    );
  });

  it.each([
    ["rpi3", "fk_systemd_remove claude-agentapi.service '/etc/systemd/system/claude-agentapi.service'", "fk_rm '/usr/local/lib/fleetkit/agentapi'"],
    ["macbook1", "fk_launchd_remove com.claude.agentapi '/Library/LaunchDaemons/com.claude.agentapi.plist' system", "fk_rm '/usr/local/libexec/fleetkit/agentapi'"],
  ])("%s uninstall stops the service, then removes the binary", (name, stop, rm) => {
    const lines = renderBundle(pinned, node(pinned, name), "agentapi").uninstall.split("\n");
    expect(lines.indexOf(stop)).toBeGreaterThan(0);
    expect(lines.indexOf(rm)).toBeGreaterThan(lines.indexOf(stop));
  });
});

/**
 * claude-onboarded.mjs, as rendered for rpi1, run by node in a temp HOME and working directory the way the
 * unit's ExecStartPre runs it: the exact ~/.claude.json it leaves, its mode, what it prints, and that a
 * second run (or a file it cannot read as a JSON object) writes nothing.
 */
describe("claude-onboarded.mjs pre-answers Claude Code's first-run questions in ~/.claude.json", () => {
  const script = renderBundle(pinned, node(pinned, "rpi1"), "agentapi").files.find((f) => f.path.endsWith("claude-onboarded.mjs"))!.content;
  const KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
  const TAIL = KEY.slice(-20);
  function run(before: string | null, env: Record<string, string>) {
    const home = mkdtempSync(join(tmpdir(), "fleetkit-onboard-"));
    const file = join(home, ".claude.json");
    if (before !== null) writeFileSync(file, before.replaceAll("HOME", home), { mode: 0o644 });
    const scriptFile = join(home, "claude-onboarded.mjs");
    writeFileSync(scriptFile, script);
    const r = spawnSync(process.execPath, [scriptFile], { cwd: home, env: { PATH: process.env.PATH!, HOME: home, ...env }, encoding: "utf8" });
    const after = existsSync(file) ? readFileSync(file, "utf8") : null;
    const mode = existsSync(file) ? statSync(file).mode & 0o777 : null;
    const again = spawnSync(process.execPath, [scriptFile], { cwd: home, env: { PATH: process.env.PATH!, HOME: home, ...env }, encoding: "utf8" });
    const unchanged = (existsSync(file) ? readFileSync(file, "utf8") : null) === after;
    const leftovers = readdirSync(home).filter((f) => f.includes(".fleetkit-"));
    rmSync(home, { recursive: true, force: true });
    const masked = after?.replaceAll(home, "HOME") ?? null;
    return { status: r.status, stdout: r.stdout.replaceAll(home, "HOME"), stderr: r.stderr.replaceAll(home, "HOME"), text: masked, after: r.status === 0 && masked !== null ? (JSON.parse(masked) as unknown) : null, mode, again: [again.status, again.stdout], unchanged, leftovers };
  }
  const wrote = "fleetkit: HOME/.claude.json: Claude Code's first-run questions pre-answered for HOME\n";

  it.each([
    ["no file, API key", null, { ANTHROPIC_API_KEY: KEY }, { theme: "dark", hasCompletedOnboarding: true, customApiKeyResponses: { approved: [TAIL], rejected: [] }, projects: { HOME: { hasTrustDialogAccepted: true } } }],
    ["no file, OAuth token only: no key answer", null, { CLAUDE_CODE_OAUTH_TOKEN: "sk-ant-oat01-token" }, { theme: "dark", hasCompletedOnboarding: true, projects: { HOME: { hasTrustDialogAccepted: true } } }],
    [
      "the user's own state: theme, other keys, a rejected key and project settings kept",
      JSON.stringify({ theme: "light", numStartups: 7, customApiKeyResponses: { approved: ["old-key-tail-0000000"], rejected: [TAIL] }, projects: { HOME: { allowedTools: ["Bash"] }, "/srv": { hasTrustDialogAccepted: false } } }),
      { ANTHROPIC_API_KEY: KEY },
      {
        theme: "light",
        numStartups: 7,
        customApiKeyResponses: { approved: ["old-key-tail-0000000", TAIL], rejected: [] },
        projects: { HOME: { allowedTools: ["Bash"], hasTrustDialogAccepted: true }, "/srv": { hasTrustDialogAccepted: false } },
        hasCompletedOnboarding: true,
      },
    ],
  ] as const)("%s", (_, before, env, expected) => {
    const r = run(before, env);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr, after: r.after, mode: r.mode }).toEqual({ status: 0, stdout: wrote, stderr: "", after: expected, mode: 0o600 });
    expect([r.again, r.unchanged, r.leftovers]).toEqual([[0, ""], true, []]);
    expect(JSON.stringify(r.after)).not.toContain(KEY.slice(0, -20));
  });

  it("already answered: writes nothing, prints nothing", () => {
    const done = JSON.stringify({ theme: "dark", hasCompletedOnboarding: true, customApiKeyResponses: { approved: [TAIL], rejected: [] }, projects: { PLACEHOLDER: { hasTrustDialogAccepted: true } } });
    const home = mkdtempSync(join(tmpdir(), "fleetkit-onboard-"));
    writeFileSync(join(home, ".claude.json"), done.replace("PLACEHOLDER", home), { mode: 0o600 });
    writeFileSync(join(home, "s.mjs"), script);
    const mtime = statSync(join(home, ".claude.json")).mtimeMs;
    const r = spawnSync(process.execPath, [join(home, "s.mjs")], { cwd: home, env: { PATH: process.env.PATH!, HOME: home, ANTHROPIC_API_KEY: KEY }, encoding: "utf8" });
    expect([r.status, r.stdout, r.stderr, statSync(join(home, ".claude.json")).mtimeMs]).toEqual([0, "", "", mtime]);
    rmSync(home, { recursive: true, force: true });
  });

  it.each([
    // JSON.parse's own words follow "is not valid JSON (" and differ between Node.js versions.
    ["not JSON", "{ theme: dark", /^fleetkit: HOME\/\.claude\.json is not valid JSON \(Expected property name .+\); left as it is, /],
    ["a JSON array", "[1, 2]", /^fleetkit: HOME\/\.claude\.json is not a JSON object; left as it is, /],
  ])("a file that is %s: exit 1, a warning naming the file, the file untouched", (_, before, start) => {
    const r = run(before, { ANTHROPIC_API_KEY: KEY });
    expect([r.status, r.stdout, r.mode, r.text, r.unchanged]).toEqual([1, "", 0o644, before, true]);
    expect(r.stderr).toMatch(start);
    expect(r.stderr.endsWith("so Claude Code may ask its first-run questions. Fix or remove the file, then restart AgentAPI.\n")).toBe(true);
  });
});
