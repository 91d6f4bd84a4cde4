/**
 * The options fleetkit gives the local OpenSSH client, built in one place for the three ways it runs `ssh`:
 * - `fleet` verbs (cli/ssh.ts `sshArgs`, through zx's `$`);
 * - toolchain tarballs streamed between nodes (roles/toolchains/component.ts `sshInvocation`, a sh line in a
 *   local.Command);
 * - Docker's SSH transport for ntfy (roles/ntfy/render.ts `ntfyDockerSshOpts`, docker.Provider `sshOpts`).
 *
 * The order of the words is fixed, and is the order Docker's `sshOpts` have always had: that list is
 * recorded in every stack's Pulumi state, so another order would show every stack a provider diff
 * (test/program/docker-ssh-opts.test.ts). For ssh itself the order does not matter, except that of two
 * values for one option the first wins (ssh_config(5): "For each parameter, the first obtained value will
 * be used"; command-line options come before any configuration file).
 */
import type { FleetNode } from "../model/fleet.js";

/** What of a node the options depend on. A {@link FleetNode} is one, and so is cli/ssh.ts `SshTarget`. */
export type SshDialTarget = Pick<FleetNode, "sshPort" | "perDialTimeoutSeconds">;

/** What differs between the call sites; every field is optional and off (or absent) by default. */
export interface SshClientOptions {
  /** ssh_config file read instead of ~/.ssh/config and /etc/ssh/ssh_config (`-F`, ssh(1)). */
  configFile?: string;
  /** Private key file (`-i`, ssh(1)); undefined or "" = the keys ssh-agent and ssh_config offer. */
  keyFile?: string;
  /**
   * Offer only the key files given (`IdentitiesOnly=yes`, ssh_config(5)), not every key ssh-agent holds: an
   * agent with many keys can use up sshd's MaxAuthTries before the right one is tried. Default false.
   */
  identitiesOnly?: boolean;
  /**
   * Dial the node's `sshPort` (`-p`, ssh(1)). Default true; false where the destination carries the port:
   * Docker's `ssh://user@host:port` URL, which Docker's own connection helper turns into `-l` and `-p`
   * (docker/cli cli/connhelper/ssh `Spec.Args`).
   */
  port?: boolean;
  /**
   * Notice a peer that goes silent after connecting (a node dropping off the tailnet mid-run):
   * `ServerAliveInterval=5`, `ServerAliveCountMax=2`, so ssh gives up after about 10 s without an answer
   * (ssh_config(5): interval × count; the default interval 0 never asks). Default false.
   */
  keepalive?: boolean;
  /**
   * Only errors on ssh's stderr (`LogLevel=ERROR`, ssh_config(5); the default, INFO, also prints notices
   * such as "Permanently added … to the list of known hosts" on first contact). Default false.
   */
  quiet?: boolean;
  /**
   * known_hosts file instead of ~/.ssh/known_hosts (`UserKnownHostsFile`, ssh_config(5)). ssh splits the
   * value at white space into several files, so the path must have none.
   */
  knownHostsFile?: string;
  /** Further `-o` options (`Key=value`), written after fleetkit's own: they add options, they cannot override these. */
  options?: readonly string[];
}

/**
 * The local `ssh` client's options for reaching `node`: every word before the destination (user and host are
 * the caller's: `-l user -- host`, `user@host`, or Docker's URL), in this order:
 *
 * | words | when | what it does (ssh(1), ssh_config(5)) |
 * |---|---|---|
 * | `-F configFile` | `configFile` | reads that ssh_config file only |
 * | `-i keyFile` | `keyFile` | authenticates with that private key |
 * | `-o IdentitiesOnly=yes` | `identitiesOnly` | offers the given keys only, not all of ssh-agent's |
 * | `-p sshPort` | `port` (default) | dials the node's sshd port |
 * | `-o ConnectTimeout=perDialTimeoutSeconds` | always | bounds the TCP connect and the SSH handshake and key exchange, in seconds |
 * | `-o BatchMode=yes` | always | never prompts (password, passphrase, host key): fails instead |
 * | `-o StrictHostKeyChecking=accept-new` | always | adds a new host's key to known_hosts; refuses a changed key |
 * | `-o ServerAliveInterval=5 -o ServerAliveCountMax=2` | `keepalive` | drops a peer silent for about 10 s |
 * | `-o LogLevel=ERROR` | `quiet` | prints errors only |
 * | `-o UserKnownHostsFile=knownHostsFile` | `knownHostsFile` | keeps host keys in that file |
 * | `-o option` … | `options` | the caller's own, after all of the above |
 *
 * Pure: the words as ssh receives them (argv), unquoted; a caller building a sh line quotes each.
 */
export function sshClientArgs(node: SshDialTarget, opts: SshClientOptions = {}): string[] {
  const o = (option: string) => ["-o", option];
  return [
    ...(opts.configFile ? ["-F", opts.configFile] : []),
    ...(opts.keyFile ? ["-i", opts.keyFile] : []),
    ...(opts.identitiesOnly ? o("IdentitiesOnly=yes") : []),
    ...((opts.port ?? true) ? ["-p", String(node.sshPort)] : []),
    ...o(`ConnectTimeout=${node.perDialTimeoutSeconds}`),
    ...o("BatchMode=yes"),
    ...o("StrictHostKeyChecking=accept-new"),
    ...(opts.keepalive ? [...o("ServerAliveInterval=5"), ...o("ServerAliveCountMax=2")] : []),
    ...(opts.quiet ? o("LogLevel=ERROR") : []),
    ...(opts.knownHostsFile ? o(`UserKnownHostsFile=${opts.knownHostsFile}`) : []),
    ...(opts.options ?? []).flatMap(o),
  ];
}
