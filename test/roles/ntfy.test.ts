/**
 * Role ntfy: the rendered server.yml (parsed as YAML, exact), the container spec the Pulumi component uses,
 * and the install's token handling run for real with marker tokens (a `docker` stand-in on PATH records
 * what the script asks of the Docker engine, which does not exist here).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { loadFleet } from "../../model/load.js";
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderBundle } from "../../roles/index.js";
import { readTemplate, remoteCommand, renderTemplate } from "../../roles/bundle.js";
import { NTFY_LOCKED_HASH, ntfyContainer, ntfyDockerHost, ntfyServerYaml } from "../../roles/ntfy/render.js";

const mesh = loadFleet("fleet.yaml");
const remote = loadFleet("examples/remote-tasks.fleet.yaml");
const node = (fleet: Fleet, name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;
const TOKEN = "tk_marker0ntfy0token000000000000";

describe("role ntfy", () => {
  it.each([
    ["mesh", "arch-orchestrator", "http://arch-orchestrator:8091", "fleet-tasks", "ssh://fleet@arch-orchestrator"],
    ["remote-tasks", "raspberrypi", "http://raspberrypi:8091", "claude-tasks", "ssh://matt@raspberrypi"],
  ] as const)("%s fleet: %s", (label, name, url, topic, dockerHost) => {
    const fleet = label === "mesh" ? mesh : remote;
    const n = node(fleet, name);
    const b = renderBundle(fleet, n, "ntfy");
    expect([b.target, b.secrets, b.services]).toEqual(["node", ["ntfyToken"], [{ name: "ntfy", manager: "docker", scope: "system" }]]);
    expect(b.files.map((f) => [f.path, f.mode, f.owner, f.kind])).toEqual([
      ["/etc/fleetkit/ntfy/server.public.yml", 0o644, "root", "yaml"],
      // The node firewall of the published port (roles/firewall.ts: chains ntfy and ntfy-forward).
      ["/usr/local/lib/fleetkit/firewall/ntfy.sh", 0o755, "root", "shell"],
      ["/etc/systemd/system/fleetkit-firewall-ntfy.service", 0o644, "root", "systemd"],
      ["/etc/systemd/system/fleetkit-firewall-ntfy-refresh.service", 0o644, "root", "systemd"],
      ["/etc/systemd/system/fleetkit-firewall-ntfy-refresh.timer", 0o644, "root", "systemd"],
    ]);
    expect(parseYaml(b.files[0].content)).toEqual({
      "base-url": url,
      "listen-http": ":80",
      "cache-file": "/var/lib/ntfy/cache.db",
      "cache-duration": "12h",
      "attachment-cache-dir": "/var/lib/ntfy/attachments",
      "behind-proxy": false,
      "auth-file": "/var/lib/ntfy/user.db",
      "auth-default-access": "deny-all",
      "enable-login": true,
      "enable-signup": false,
      "auth-users": [`fleetkit-publisher:${NTFY_LOCKED_HASH}:user`],
      "auth-access": [`fleetkit-publisher:${topic}:write-only`],
    });
    expect(ntfyContainer(fleet, n)).toEqual({
      image: "binwiederhier/ntfy:v2.14.0",
      name: "ntfy",
      ports: [{ internal: 80, external: 8091 }],
      volumes: [
        { hostPath: "/etc/fleetkit/ntfy", containerPath: "/etc/ntfy", readOnly: true },
        { hostPath: "/var/lib/fleetkit/ntfy", containerPath: "/var/lib/ntfy", readOnly: false },
      ],
      command: ["serve"],
      restart: "unless-stopped",
      healthUrl: `${url}/v1/health`,
    });
    expect(ntfyDockerHost(n)).toBe(dockerHost);
    for (const t of [b.install, b.uninstall, remoteCommand(n, b.target, b.install)]) expect(t).not.toMatch(/tk_[a-z0-9]{29}/);
  });

  it("the publisher's hash is bcrypt-shaped (60 characters of its alphabet), so ntfy accepts it and no password matches", () => {
    expect(NTFY_LOCKED_HASH).toMatch(/^\$2a\$10\$[./A-Za-z0-9]{53}$/);
  });

  it("base-url and upstream-base-url from fleet.yaml (iOS push)", () => {
    const ios: Fleet = { ...remote, services: { ...remote.services, ntfy: { ...remote.services.ntfy, baseUrl: "https://ntfy.example.org", upstreamBaseUrl: "https://ntfy.sh" } } };
    const y = parseYaml(ntfyServerYaml(ios, node(ios, "raspberrypi")));
    expect([y["base-url"], y["upstream-base-url"]]).toEqual(["https://ntfy.example.org", "https://ntfy.sh"]);
  });

  it("a port or topic change re-renders only ntfy and the queue (workers read ntfy from the queue)", () => {
    const moved: Fleet = { ...remote, services: { ...remote.services, ntfy: { ...remote.services.ntfy, port: 8092 } } };
    const changed = remote.nodes.flatMap((n) => n.roles.filter((r) => ["ntfy", "queue", "worker"].includes(r)).map((r) => [`${n.name}/${r}`, renderBundle(remote, n, r).hash !== renderBundle(moved, node(moved, n.name), r).hash]));
    expect(changed.filter(([, c]) => c).map(([k]) => k)).toEqual(["raspberrypi/ntfy", "raspberrypi/queue"]);
  });
});

/** Runs the ntfy install steps (token check, server.yml, restart) in a temp dir with a docker stand-in. */
function runSteps(token: string, containerExists: boolean, dir: string): { status: number | null; stderr: string; docker: string } {
  const bin = join(dir, "bin");
  spawnSync("mkdir", ["-p", bin, join(dir, "etc")]);
  const log = join(dir, "docker.log");
  writeFileSync(log, "");
  writeFileSync(join(bin, "docker"), `#!/bin/sh\necho "$*" >> ${log}\n[ "$1 $2" != "container inspect" ] || exit ${containerExists ? 0 : 1}\n`);
  chmodSync(join(bin, "docker"), 0o755);
  const view = { user: "fleet", configDir: join(dir, "etc"), dataDir: join(dir, "data"), publicFile: join(dir, "etc/server.public.yml"), configFile: join(dir, "etc/server.yml"), publisher: "fleetkit-publisher", container: "ntfy", rootGroup: "root" };
  writeFileSync(view.publicFile, ntfyServerYaml(remote, node(remote, "raspberrypi")));
  const script = [readTemplate("common/prelude.sh"), "fk_read_secrets ntfyToken", renderTemplate("ntfy/install.sh", view), renderTemplate("ntfy/configure.sh", view)].join("\n");
  const r = spawnSync("sh", ["-c", script], { input: `ntfyToken=${token}\n`, encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  return { status: r.status, stderr: r.stderr, docker: readFileSync(log, "utf8") };
}

describe("ntfy install steps, run", () => {
  it("writes server.yml 0600 with the declared token, restarts a running container once, then is a no-op", () => {
    const dir = mkdtempSync(join(tmpdir(), "fk-ntfy-"));
    try {
      const first = runSteps(TOKEN, true, dir);
      expect([first.status, first.docker]).toEqual([0, "container inspect ntfy\nrestart ntfy\n"]);
      expect(first.stderr).not.toContain(TOKEN);
      const file = join(dir, "etc/server.yml");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const y = parseYaml(readFileSync(file, "utf8"));
      expect(y["auth-tokens"]).toEqual([`fleetkit-publisher:${TOKEN}:fleetkit workers`]);
      expect(y["auth-default-access"]).toBe("deny-all");
      const again = runSteps(TOKEN, true, dir);
      expect([again.status, again.docker]).toEqual([0, ""]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("no container yet (first deploy): writes the config and leaves starting to the stack", () => {
    const dir = mkdtempSync(join(tmpdir(), "fk-ntfy-"));
    try {
      const r = runSteps(TOKEN, false, dir);
      expect([r.status, r.docker]).toEqual([0, "container inspect ntfy\n"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ["too short", "tk_marker"],
    ["upper case", "tk_MARKER0ntfy0token0000000000"],
    ["a quote (YAML injection)", 'tk_marker0ntfy0token00000000"x'],
    ["no prefix", "marker0ntfy0token0000000000000"],
  ])("rejects a token that is %s, without echoing it", (_label, token) => {
    const dir = mkdtempSync(join(tmpdir(), "fk-ntfy-"));
    try {
      const r = runSteps(token, true, dir);
      expect([r.status, r.stderr, r.docker]).toEqual([1, "fleetkit: error: secret ntfyToken must be an ntfy access token: tk_ and 29 lower-case letters or digits; set it with pulumi config set --secret\n", ""]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
