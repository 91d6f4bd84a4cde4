/**
 * The role component: one role's bundle shipped to one node. Every role is this component (type token
 * `fleetkit:role:<Role>`), except ntfy, which extends it with its Docker container (`roles/ntfy/component.ts`).
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { FleetNode } from "../model/fleet.js";
import { NODE_COPY_REMOTE_PATH, ownsBundleCopy, type ShippedBundle } from "./shipping.js";
import { bundleResourceName, installResourceName, roleTypeToken } from "./naming.js";

/** SSH connection inputs of @pulumi/command (host, port, user, privateKey, perDialTimeout, dialErrorLimit). */
export type SshConnection = command.types.input.remote.ConnectionArgs;

/** Inputs of a role component. */
export interface RoleArgs {
  /** The node the role runs on (its WSL distro decides how `wsl` scripts are started). */
  node: FleetNode;
  /**
   * The role's bundle, shipped (roles/shipping.ts `shipBundle`): its command lines, and on Linux and macOS
   * the local directory its files were written to (under the program's `fleetkit:bundleDir`).
   */
  bundle: ShippedBundle;
  /**
   * SSH connection to the node. Keep it stable between runs (same host, key secret-ness, limits): any
   * change replaces the install command, which runs uninstall, then install.
   */
  connection: pulumi.Input<SshConnection>;
  /**
   * The node's copy (`<node>-bundles`, stacks/node.ts) that carries this role's files, which the install waits
   * for; needed when the bundle travels as files and has no copy of its own (roles/shipping.ts `ownsBundleCopy`).
   */
  nodeCopy?: command.remote.CopyToRemote;
  /** The install script's stdin: the bundle's secrets as `NAME=value` lines (secret); undefined = none. */
  secretStdin?: pulumi.Input<string>;
  /**
   * Keep this role's resources on the node when they leave the program (`retainOnDelete`): set for nodes
   * listed in `fleetkit:forgetNodes`, whose uninstall cannot run because the machine is gone. Default false.
   */
  forget?: boolean;
}

/**
 * Ships one role to one node (roles/shipping.ts `bundleShipping`, `shipBundle`):
 * - on Linux and macOS the install waits for the copy that carries the directory `<role>.<hash>` (install and
 *   uninstall scripts, written locally under the program's `bundleDir`) into the node user's
 *   `~/.fleetkit/bundles/` over SFTP with the shipping helper: the node's copy (`nodeCopy`), or for a tailscale
 *   role joined through `bootstrapHost` a `remote.CopyToRemote` of its own named `<name>-bundle` (its
 *   `bundles` directory holding this role and the helper), dialled like its install. The engine compares the
 *   archive's hash, so unchanged bundles copy nothing;
 * - a `remote.Command` named `<name>-install`, after the copy: `create` is a short line that has root's
 *   checked copy of the shipping helper check the scripts' sha256 and run the install, `delete` the uninstall; on Windows both carry the script
 *   inline (`remoteInvocation`), a WSL install too long for a Windows command line (the worker's) on stdin
 *   ahead of the secrets;
 * - no `triggers`, on purpose: `create` names the bundle hash and the scripts' sha256 (or is the whole script
 *   on Windows), so it changes exactly when the bundle does, and a changed `create` with no `update` is an update that re-runs `create` in place
 *   (FIELD-NOTES). Install scripts converge from any earlier version, so the role keeps running until the
 *   new install succeeds: a download whose sha256 does not match stops before anything is replaced, and
 *   the next `pulumi up` retries. (`triggers` would force a replacement: with `deleteBeforeReplace` the
 *   old uninstall would run first and leave the node without the role when the new install fails, and a
 *   max-jobs edit would remove and reinstall packages);
 * - `deleteBeforeReplace` for what still replaces the command (a changed `connection`): the old uninstall
 *   runs before the new install and never undoes it (FIELD-NOTES: create-before-delete would);
 * - secrets reach the script only on stdin; a role with secrets marks stdout/stderr secret and logs stderr
 *   only, so nothing a script echoes can leak into a diff or the log;
 * - the component's `dependsOn` is passed on to its own copy and the command, so both really wait for the
 *   roles this one needs (a `dependsOn` on a component alone does not hold back its children).
 *
 * Children are named `<name>-…` and checked to be (like sst's base component).
 */
export class RoleComponent extends pulumi.ComponentResource {
  /** sha256 of the bundle (the marker the install leaves on the node; `fleet drift` compares it). */
  public readonly bundleHash: pulumi.Output<string>;
  /** The install command (create = install, delete = uninstall). */
  public readonly install: command.remote.Command;
  /** The copy that carries the bundle's files to the node, its own or the node's (Linux and macOS); undefined on Windows nodes. */
  public readonly copy?: command.remote.CopyToRemote;
  /** The install script's standard output (secret for roles with secrets); its last line says changed/unchanged. */
  public readonly stdout: pulumi.Output<string>;
  /** The component's name: every child's name starts with it. */
  protected readonly name: string;
  /** The options children inherit from the component (retainOnDelete for forgotten nodes). */
  protected readonly forget: boolean;

  /**
   * @param name the role resource name, `<node>-<role>` (plan.ts `roleResourceName`)
   * @param args the node, bundle, connection and secrets
   * @param opts component options; `dependsOn` is also applied to the install command
   * @throws Error when the bundle travels in the node's copy and `args.nodeCopy` is missing (a fleetkit bug)
   */
  constructor(name: string, args: RoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(roleTypeToken(args.bundle.role), name, {}, opts);
    this.name = name;
    this.forget = args.forget ?? false;
    const { bundle } = args;
    const hasSecrets = bundle.secrets.length > 0;
    const shipping = bundle.shipping;
    const given = opts?.dependsOn;
    // The Fleet passes plain resources (stacks/node.ts), never a Promise of a list.
    const after: pulumi.Input<pulumi.Resource>[] = given === undefined ? [] : Array.isArray(given) ? given : [given as pulumi.Input<pulumi.Resource>];
    if (shipping.copyDir && ownsBundleCopy(args.node, bundle.role)) {
      this.copy = new command.remote.CopyToRemote(
        this.childName(bundleResourceName(name)),
        { connection: args.connection, source: new pulumi.asset.FileArchive(shipping.copyDir), remotePath: NODE_COPY_REMOTE_PATH },
        this.childOptions({ dependsOn: after }),
      );
    } else if (shipping.localDir) {
      if (!args.nodeCopy) throw new Error(`${name}: its bundle travels in the node's copy, which was not passed (a fleetkit bug)`);
      this.copy = args.nodeCopy;
    }
    const prefix = shipping.stdinPrefix;
    const stdin = !prefix ? args.secretStdin : args.secretStdin === undefined ? prefix : pulumi.concat(prefix, args.secretStdin);
    this.install = new command.remote.Command(
      this.childName(installResourceName(name)),
      {
        connection: args.connection,
        create: shipping.create,
        delete: shipping.delete,
        ...(stdin !== undefined ? { stdin } : {}),
        // The previous run's output would travel to the node as SSH environment; it is not needed.
        addPreviousOutputInEnv: false,
        ...(hasSecrets ? { logging: "stderr" as const } : {}),
      },
      {
        parent: this,
        dependsOn: this.copy ? [this.copy, ...after] : after,
        deleteBeforeReplace: true,
        retainOnDelete: this.forget,
        ...(hasSecrets ? { additionalSecretOutputs: ["stdout", "stderr"] } : {}),
      },
    );
    this.bundleHash = pulumi.output(bundle.hash);
    this.stdout = this.install.stdout;
  }

  /**
   * Returns `child` after checking it starts with `<name>-`, so two instances never collide.
   * @throws Error naming the child and the required prefix (a fleetkit bug).
   */
  protected childName(child: string): string {
    if (!child.startsWith(`${this.name}-`)) throw new Error(`child resource "${child}" of ${this.name} must be named ${this.name}-…`);
    return child;
  }

  /** Options for a child created by a subclass: parented here, retained when the node is forgotten. */
  protected childOptions(extra: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions {
    return { ...extra, parent: this, retainOnDelete: this.forget };
  }
}

/** A role component with nothing beyond its install command; registers its outputs. */
export class Role extends RoleComponent {
  constructor(name: string, args: RoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts);
    this.registerOutputs({ bundleHash: this.bundleHash, stdout: this.stdout });
  }
}
