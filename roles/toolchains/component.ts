/**
 * Toolchain tarball distribution in the program (roles/toolchains/render.ts describes the tarballs and scripts):
 * - a builder's `toolchains` component also reads the builder's manifest after its install
 *   (`<name>-manifest`, a remote.Command whose stdout is `manifest-<arch>`);
 * - a receiving node's `iceccd` component (roles/iceccd/component.ts) gets one `<name>-toolchains-<arch>` local.Command per builder: run
 *   on the machine doing `pulumi up`, it asks the node whether each listed tarball is present with that
 *   sha256 and streams only the missing ones builder → node over SSH (`ssh builder cat … | ssh node
 *   sudo fleetkit-toolchain-receive ARCH COMPILER TARGET FILE SHA256`), so an unchanged tarball is never copied
 *   again. The receive program is a file the node's iceccd bundle installed (roles/toolchains/render.ts
 *   `toolchainReceiveProgram`, with the node's ICECC_VERSION environment file): it checks its arguments,
 *   verifies the sha256 before anything is replaced and links `current-<stem>.tar.gz`, so this
 *   command stays a few lines long. It re-runs when the manifest changes (the script is made from it).
 *
 * Both use the local `ssh` client with the options of roles/ssh.ts `sshClientArgs` (BatchMode, the fleet's dial
 * timeout, the key file when the key came from a file, else the ssh-agent), like Docker's SSH transport for ntfy.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { ArchName, FleetNode } from "../../model/fleet.js";
import { remoteCommand, rootArgvCommand, shQuote } from "../bundle.js";
import { shWord } from "../escape.js";
import { sshClientArgs, type SshClientOptions } from "../ssh.js";
import { parseManifest, receiveArguments, TOOLCHAIN_DIR, toolchainReceivePath } from "./render.js";
import { RoleComponent, type RoleArgs } from "../component.js";
import { toolchainManifestResourceName } from "../naming.js";

/** How the local `ssh` client reaches a node to stream tarballs: roles/ssh.ts {@link SshClientOptions}'s key file and extra `-o` options (tests: `UserKnownHostsFile=…`). */
export type StreamSshOptions = Pick<SshClientOptions, "keyFile" | "options">;

/**
 * The local `ssh` invocation that runs `remoteLine` on `node` (`remoteLine` as one shell word): the node's
 * port and the options of roles/ssh.ts {@link sshClientArgs} (batch mode, the fleet's dial timeout, a new
 * host key accepted, a changed one refused), each word quoted for sh where it needs it.
 */
export function sshInvocation(node: FleetNode, remoteLine: string, client: StreamSshOptions = {}): string {
  const opts = sshClientArgs(node, { keyFile: client.keyFile, options: client.options }).map(shWord);
  return `ssh ${opts.join(" ")} ${shQuote(`${node.user}@${node.host}`)} ${shQuote(remoteLine)}`;
}

/**
 * A sh function `name` that runs its one argument as the remote line on `node` over SSH, with the options of
 * {@link sshInvocation}: the distribution script names each node's ssh options once, not per command.
 */
export function sshFunction(name: string, node: FleetNode, client: StreamSshOptions = {}): string {
  const opts = sshClientArgs(node, { keyFile: client.keyFile, options: client.options }).map(shWord);
  return `${name}() { ssh ${opts.join(" ")} ${shQuote(`${node.user}@${node.host}`)} "$1"; }`;
}

/** Where a node's Linux-side scripts run: inside the WSL distro on Windows, else the node's shell. */
const linuxTarget = (node: FleetNode) => (node.os === "windows-wsl" ? "wsl" : "node");

/** Tarball locations for {@link distributionScript}; the defaults are the real paths, tests use temp dirs. */
export interface DistributionPaths {
  /** The builder's tarball directory (default /opt/icecc-envs). */
  builderEnvDir?: string;
  /** The receive program on the receiver (default roles/toolchains/render.ts `toolchainReceivePath`). */
  receiveProgram?: string;
}

/**
 * The local sh script that brings `receiver` up to date with `builder`'s manifest text: one line per tarball,
 * `fk_tarball ARCH COMPILER TARGET FILE SHA256` (the manifest's fields, plain words), which asks the receiver's
 * installed receive program whether the tarball is there (`… check`), streams it from the builder only when
 * it is missing, and runs the receive program either way (it reads stdin only when the file is missing; it
 * also links the current tarball). The programs run as root without a shell script in between
 * (roles/bundle.ts `rootArgvCommand`), so each tarball costs one short line. Pure.
 * @throws Error when the manifest is malformed (roles/toolchains/render.ts parseManifest), or a path would
 *   need quoting inside the script's double quotes (a fleetkit bug: the paths are fixed, tests' temp paths plain).
 */
export function distributionScript(
  builder: FleetNode,
  receiver: FleetNode,
  manifest: string,
  ssh: { builder?: StreamSshOptions; receiver?: StreamSshOptions } = {},
  paths: DistributionPaths = {},
): string {
  const tarballs = parseManifest(manifest);
  const lines = ["set -eu", `# fleetkit: toolchains from ${builder.name} to ${receiver.name}`];
  if (tarballs.length === 0) {
    lines.push(`echo "fleetkit: ${builder.name} lists no toolchain tarballs yet" >&2`);
    return lines.join("\n") + "\n";
  }
  const receive = rootArgvCommand(receiver, linuxTarget(receiver), [paths.receiveProgram ?? toolchainReceivePath(receiver)]);
  const send = rootArgvCommand(builder, linuxTarget(builder), ["cat", `${paths.builderEnvDir ?? TOOLCHAIN_DIR}/`]);
  for (const part of [receive, send]) if (/["$`\\]/.test(part)) throw new Error(`distributionScript: ${JSON.stringify(part)} cannot stand inside double quotes (a fleetkit bug)`);
  lines.push(
    sshFunction("fk_on_builder", builder, ssh.builder),
    sshFunction("fk_on_receiver", receiver, ssh.receiver),
    `fk_tarball() { r="${receive} $*"; if [ "$(fk_on_receiver "$r check")" = missing ]; then fk_on_builder "${send}$4" | fk_on_receiver "$r"; else fk_on_receiver "$r" </dev/null; fi; }`,
  );
  for (const t of tarballs) lines.push(`fk_tarball ${receiveArguments(t).join(" ")}`);
  return lines.join("\n") + "\n";
}

/** Inputs of a builder's toolchains component: a role plus the arch it builds. */
export interface ToolchainsArgs extends RoleArgs {
  /** The builder's arch: its manifest is `/opt/icecc-envs/manifest-<arch>`. */
  arch: ArchName;
}

/** The `toolchains` role on a builder: its bundle builds the tarballs; `<name>-manifest` reads the list. */
export class Toolchains extends RoleComponent {
  /** Reads the builder's manifest after each install. */
  public readonly manifestCommand: command.remote.Command;
  /** The manifest text (`arch compiler file sha256` lines). */
  public readonly manifest: pulumi.Output<string>;

  constructor(name: string, args: ToolchainsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts);
    const file = `${TOOLCHAIN_DIR}/manifest-${args.arch}`;
    this.manifestCommand = new command.remote.Command(
      this.childName(toolchainManifestResourceName(name)),
      {
        connection: args.connection,
        create: remoteCommand(args.node, args.bundle.target, `cat ${shQuote(file)}`),
        triggers: [args.bundle.hash],
        addPreviousOutputInEnv: false,
      },
      this.childOptions({ dependsOn: [this.install] }),
    );
    this.manifest = this.manifestCommand.stdout;
    this.registerOutputs({ bundleHash: this.bundleHash, stdout: this.stdout, manifest: this.manifest });
  }
}
