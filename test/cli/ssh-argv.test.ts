/**
 * The exact argv fleetkit hands the local `ssh` client at its three call sites, for a Linux node, a
 * windows-wsl node and a node on a custom sshPort with its own user and dial timeout:
 * - `fleet` verbs: cli/ssh.ts `sshArgs` (with and without FLEET_SSH_CONFIG / FLEET_KNOWN_HOSTS, stdin);
 * - toolchain streaming: roles/toolchains/component.ts `sshInvocation` (one sh line);
 * - Docker's SSH transport for ntfy: roles/ntfy/render.ts `ntfyDockerSshOpts` (recorded in Pulumi state;
 *   test/program/docker-ssh-opts.test.ts pins what the program sends). The program asks it only of Linux
 *   nodes (ntfy runs on debian, raspios and arch); the windows-wsl row pins the pure function all the same.
 * All three take their options from roles/ssh.ts `sshClientArgs`, in its one order (Docker's, which state
 * pins); what follows the options (login, host, `-T`, `-n`) and the quoting are each call site's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFleet, parseFleet } from "../../model/load.js";
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { sshArgs, sshTargetOf } from "../../cli/ssh.js";
import { sshInvocation } from "../../roles/toolchains/component.js";
import { ntfyDockerSshOpts } from "../../roles/ntfy/render.js";

const mesh = loadFleet("fleet.yaml");
const custom = parseFleet(
  [
    "fleet: ssh-argv",
    "defaults:",
    "  user: fleet",
    "  perDialTimeoutSeconds: 7",
    "  sshKeyPath: ~/keys/fleet key",
    "nodes:",
    "  pi: { host: pi.tail-net.ts.net, user: ops, sshPort: 2222, os: raspios, arch: aarch64, roles: [tailscale] }",
    "",
  ].join("\n"),
  "ssh-argv.yaml",
);
const node = (fleet: Fleet, name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;
const arch = node(mesh, "arch-orchestrator");
const win = node(mesh, "windows-desktop");
const pi = node(custom, "pi");

const ENV = ["HOME", "FLEET_SSH_CONFIG", "FLEET_KNOWN_HOSTS"] as const;
const saved: Partial<Record<(typeof ENV)[number], string>> = {};
beforeAll(() => {
  for (const k of ENV) saved[k] = process.env[k];
  process.env.HOME = "/home/op";
});
afterAll(() => {
  for (const k of ENV) if (saved[k] === undefined) delete process.env[k];
  else process.env[k] = saved[k];
});

/** `sshArgs` with exactly the given FLEET_* variables set. */
function sshArgsWith(env: { FLEET_SSH_CONFIG?: string; FLEET_KNOWN_HOSTS?: string }, n: FleetNode, stdin: boolean): string[] {
  delete process.env.FLEET_SSH_CONFIG;
  delete process.env.FLEET_KNOWN_HOSTS;
  Object.assign(process.env, env);
  return sshArgs(sshTargetOf(n), { stdin });
}

// ssh reads UserKnownHostsFile as a list split at white space (ssh_config(5)): a known_hosts path has none.
const CI_ENV = { FLEET_SSH_CONFIG: "/etc/fleet/ssh config", FLEET_KNOWN_HOSTS: "/tmp/fleet/known_hosts" };
const REMOTE = "cat /opt/icecc-envs/x86_64-gcc.tar.gz";
const KEY = "/home/op/.ssh/it's key";

describe("fleet verbs: sshArgs", () => {
  it.each<[string, () => string[], string[]]>([
    [
      "arch-orchestrator, no FLEET_* env, no stdin",
      () => sshArgsWith({}, arch, false),
      ["-i", "/home/op/.ssh/id_ed25519", "-o", "IdentitiesOnly=yes", "-p", "22", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
        "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2", "-o", "LogLevel=ERROR", "-l", "fleet", "-T", "-n", "--", "arch-orchestrator"],
    ],
    [
      "windows-desktop (windows-wsl), FLEET_SSH_CONFIG and FLEET_KNOWN_HOSTS, stdin",
      () => sshArgsWith(CI_ENV, win, true),
      ["-F", "/etc/fleet/ssh config", "-i", "/home/op/.ssh/id_ed25519", "-o", "IdentitiesOnly=yes", "-p", "22", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
        "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2", "-o", "LogLevel=ERROR", "-o", "UserKnownHostsFile=/tmp/fleet/known_hosts", "-l", "fleet", "-T", "--", "windows-desktop"],
    ],
    [
      "pi on port 2222 as ops, 7 s dial, FLEET_KNOWN_HOSTS only, no stdin",
      () => sshArgsWith({ FLEET_KNOWN_HOSTS: "/tmp/kh" }, pi, false),
      ["-i", "/home/op/keys/fleet key", "-o", "IdentitiesOnly=yes", "-p", "2222", "-o", "ConnectTimeout=7", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
        "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2", "-o", "LogLevel=ERROR", "-o", "UserKnownHostsFile=/tmp/kh", "-l", "ops", "-T", "-n", "--", "pi.tail-net.ts.net"],
    ],
  ])("%s", (_label, actual, expected) => expect(actual()).toEqual(expected));
});

describe("toolchain streaming: sshInvocation", () => {
  it.each<[string, () => string, string]>([
    [
      "arch-orchestrator, ssh-agent",
      () => sshInvocation(arch, REMOTE),
      "ssh -p 22 -o ConnectTimeout=10 -o BatchMode=yes -o StrictHostKeyChecking=accept-new 'fleet@arch-orchestrator' 'cat /opt/icecc-envs/x86_64-gcc.tar.gz'",
    ],
    [
      "windows-desktop (windows-wsl), a key file with a quote in its name",
      () => sshInvocation(win, REMOTE, { keyFile: KEY }),
      "ssh -i '/home/op/.ssh/it'\\''s key' -p 22 -o ConnectTimeout=10 -o BatchMode=yes -o StrictHostKeyChecking=accept-new 'fleet@windows-desktop' 'cat /opt/icecc-envs/x86_64-gcc.tar.gz'",
    ],
    [
      "pi on port 2222 as ops, 7 s dial, key file and a known_hosts option",
      () => sshInvocation(pi, REMOTE, { keyFile: "/home/op/keys/fleet", options: ["UserKnownHostsFile=~/.ssh/fleet_known_hosts"] }),
      "ssh -i /home/op/keys/fleet -p 2222 -o ConnectTimeout=7 -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o 'UserKnownHostsFile=~/.ssh/fleet_known_hosts' 'ops@pi.tail-net.ts.net' 'cat /opt/icecc-envs/x86_64-gcc.tar.gz'",
    ],
  ])("%s", (_label, actual, expected) => expect(actual()).toBe(expected));
});

describe("Docker's SSH transport for ntfy: ntfyDockerSshOpts", () => {
  it.each<[string, () => string[], string[]]>([
    ["arch-orchestrator, ssh-agent", () => ntfyDockerSshOpts(arch), ["-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]],
    ["windows-desktop (windows-wsl), a key file", () => ntfyDockerSshOpts(win, KEY), ["-i", KEY, "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]],
    ["pi on port 2222 (in the ssh:// URL, not here), 7 s dial, a key file", () => ntfyDockerSshOpts(pi, "/home/op/keys/fleet key"), ["-i", "/home/op/keys/fleet key", "-o", "ConnectTimeout=7", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]],
  ])("%s", (_label, actual, expected) => expect(actual()).toEqual(expected));
});
