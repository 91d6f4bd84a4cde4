/**
 * The Node component (`fleetkit:index:Node`): one machine of the fleet and the parent of its role
 * components. The Fleet component creates those, across all nodes, in dependency order (plan.ts
 * `roleCreationOrder`), so each one's explicit `dependsOn` (plan.ts `roleDependencies`) names components that
 * already exist: plain resources, never Promises (a Promise in `dependsOn` makes the SDK walk the whole
 * resource graph for unknowns once per such input, which made the program quadratic in the node count).
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { BuiltinRoleName, Fleet as FleetModel, FleetNode, RoleName } from "../model/fleet.js";
import { NODE_COPY_REMOTE_PATH, nodeCopyAwaitsTailscale, ownsBundleCopy, type ShippedBundle } from "../roles/shipping.js";
import { NODE_TYPE, nodeBundlesResourceName, roleDependencies, roleResourceName } from "./plan.js";
import { isBuiltinRole } from "../roles/registry.js";
import { Role, type RoleArgs, type RoleComponent, type SshConnection } from "../roles/component.js";
import { Ntfy } from "../roles/ntfy/component.js";
import { ntfyContainer, ntfyDockerHost, ntfyDockerSshOpts } from "../roles/ntfy/render.js";
import { Iceccd } from "../roles/iceccd/component.js";
import { Toolchains } from "../roles/toolchains/component.js";
import { toolchainSources } from "./plan.js";
import { secretStdin, type StackSecrets } from "./secrets.js";
import { Tailscale, type NodeTailnet } from "../roles/tailscale/component.js";

/**
 * The role component of that name (`<node>-<role>`), already created: the Fleet component creates roles in
 * dependency order. @throws Error when it does not exist yet (a fleetkit bug in that order).
 */
export type RoleLookup = (name: string) => RoleComponent;

/**
 * Creates the component of one role on one node: `name` is `<node>-<role>`, `role` the common role inputs
 * (node, bundle, connection, secrets), `node` the Node component's own inputs for what a role needs beyond
 * them (peers, key files, the managed tailnet), `opts` parent and `dependsOn`.
 */
export type ComponentFactory = (name: string, role: RoleArgs, node: Omit<NodeArgs, "bundles">, opts: pulumi.ComponentResourceOptions) => RoleComponent;

/**
 * The component of each role: a plain {@link Role} (the install command) unless the role has Pulumi
 * children of its own: ntfy's Docker resources, the tailnet device tags, a builder's toolchain manifest,
 * an iceccd node's toolchain receivers. A total record: a new role must say which it is.
 */
export const COMPONENTS: Readonly<Record<BuiltinRoleName, ComponentFactory>> = Object.freeze({
  tailscale: (name, role, args, opts) => new Tailscale(name, { ...role, tailnet: args.tailnet }, opts),
  claude: (name, role, _args, opts) => new Role(name, role, opts),
  "icecc-scheduler": (name, role, _args, opts) => new Role(name, role, opts),
  iceccd: (name, role, args, opts) => {
    const { fleet, node } = args;
    const sources = toolchainSources(fleet, node).map(({ from, arch }) => {
      const builder = fleet.nodes.find((n) => n.name === from)!;
      const manifest = (args.lookup(roleResourceName(from, "toolchains")) as Toolchains).manifest;
      return { builder, arch, manifest, keyFile: args.sshKeyFileOf?.(from) };
    });
    return new Iceccd(name, { ...role, sources, keyFile: args.sshKeyFile }, opts);
  },
  toolchains: (name, role, args, opts) => new Toolchains(name, { ...role, arch: args.node.arch }, opts),
  agentapi: (name, role, _args, opts) => new Role(name, role, opts),
  ntfy: (name, role, args, opts) => {
    const { fleet, node } = args;
    return new Ntfy(name, { ...role, container: ntfyContainer(fleet, node), dockerHost: ntfyDockerHost(node), dockerSshOpts: ntfyDockerSshOpts(node, args.sshKeyFile) }, opts);
  },
  queue: (name, role, _args, opts) => new Role(name, role, opts),
  worker: (name, role, _args, opts) => new Role(name, role, opts),
});

/** Inputs of a Node component. */
export interface NodeArgs {
  /** The whole fleet (for peers: the scheduler's and the queue's nodes). */
  fleet: FleetModel;
  /** This node, with defaults applied. */
  node: FleetNode;
  /** The node's shipped bundles, one per role, in canonical role order (their hashes are the node's output). */
  bundles: ShippedBundle[];
  /**
   * The local directory the node's copy sends (roles/shipping.ts `shipNode`); undefined when no role's files
   * travel in it (Windows nodes).
   */
  copyDir?: string;
  /** Config and minted secrets; each role gets the ones its bundle declares, on stdin. */
  secrets: StackSecrets;
  /** SSH private key (PEM/OpenSSH text), a secret Output so it never flips between plain and secret. */
  sshPrivateKey: pulumi.Input<string>;
  /**
   * Local path of that key when it was read from a file (fleet.yaml `defaults.sshKeyPath`, `~` expanded),
   * handed to Docker's ssh client for ntfy; undefined when the key came from config (ssh-agent is used).
   */
  sshKeyFile?: string;
  /** The node is listed in `fleetkit:forgetNodes`: its resources get `retainOnDelete`. Default false. */
  forget?: boolean;
  /** Local key file per node name (Docker's and the toolchain streaming's ssh); undefined = ssh-agent. */
  sshKeyFileOf?: (node: string) => string | undefined;
  /** Finds an already created role component of any node by name (for `dependsOn` across nodes). */
  lookup: RoleLookup;
  /** The managed tailnet as this node's tailscale role needs it; undefined = not managed. */
  tailnet?: NodeTailnet;
}

/**
 * The SSH connection of `node` for @pulumi/command: its host (or `hostOverride`), port, user, the key, and
 * fleet.yaml's dial limits (`perDialTimeoutSeconds`, `dialErrorLimit`) so an offline node fails fast.
 */
export function sshConnection(node: FleetNode, privateKey: pulumi.Input<string>, hostOverride?: string): SshConnection {
  return {
    host: hostOverride ?? node.host,
    port: node.sshPort,
    user: node.user,
    privateKey,
    perDialTimeout: node.perDialTimeoutSeconds,
    dialErrorLimit: node.dialErrorLimit,
  };
}

/**
 * One node. Children: the copy of its bundle files (`<node>-bundles`, a `remote.CopyToRemote` of
 * `copyDir` to `~/.fleetkit`, on Linux and macOS), and one role component per role, named `<node>-<role>`
 * (type `fleetkit:role:<Role>`), each added by {@link Node.addRole} once the roles it waits for exist.
 * The `tailscale` role connects to `bootstrapHost` when set (the node is not on the tailnet before it
 * runs); every other role connects to `host`. Keep `bootstrapHost` in fleet.yaml after the first run:
 * removing it changes that command's connection, which the provider treats as replace-on-change
 * (FIELD-NOTES): Tailscale is uninstalled and installed again. On such a node the tailscale role's files have
 * a copy of their own through `bootstrapHost`, and the node's copy waits for that role's install.
 */
export class Node extends pulumi.ComponentResource {
  /** The node's role components by role, as they are added. */
  public readonly roles: Partial<Record<RoleName, RoleComponent>> = {};
  /** Bundle hash per role (the markers the installs leave on the node). */
  public readonly bundleHashes: Record<string, string>;
  /** The copy of the node's bundle files, created with the first role whose files it carries. */
  public copy?: command.remote.CopyToRemote;
  /** The Node's inputs without the bundles, which are held only until their role is added. */
  private readonly args: Omit<NodeArgs, "bundles">;
  /**
   * The bundles of the roles not added yet ({@link Node.addRole} takes its bundle out).
   */
  private readonly pending: Map<RoleName, ShippedBundle>;

  constructor(name: string, args: NodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super(NODE_TYPE, name, {}, opts);
    if (name !== args.node.name) throw new Error(`Node component ${name} must be named after its node (${args.node.name})`);
    const { bundles, ...rest } = args;
    this.args = rest;
    this.pending = new Map(bundles.map((b) => [b.role, b]));
    this.bundleHashes = Object.fromEntries(bundles.map((b) => [b.role, b.hash]));
    this.registerOutputs({ bundleHashes: this.bundleHashes });
  }

  /**
   * Creates the component of `role` on this node, `dependsOn` the components its definition waits for
   * (plan.ts `roleDependencies`), which must exist already.
   * @throws Error when the node has no bundle for `role` or it was added already, or a dependency is not
   * created yet (fleetkit bugs).
   */
  addRole(role: RoleName): RoleComponent {
    const { fleet, node } = this.args;
    const bundle = this.pending.get(role);
    if (!bundle) throw new Error(`node ${node.name} has no bundle for role ${role}${this.roles[role] ? " left (it was added already)" : ""}`);
    this.pending.delete(role);
    const host = bundle.role === "tailscale" ? (node.bootstrapHost ?? node.host) : node.host;
    const deps = roleDependencies(fleet, node, bundle.role);
    const roleArgs: RoleArgs = {
      node,
      bundle,
      ...(bundle.shipping.localDir && !ownsBundleCopy(node, bundle.role) ? { nodeCopy: this.nodeCopy() } : {}),
      connection: sshConnection(node, this.args.sshPrivateKey, host),
      secretStdin: secretStdin(bundle, this.args.secrets),
      forget: this.args.forget ?? false,
    };
    const roleOpts: pulumi.ComponentResourceOptions = { parent: this, ...(deps.length ? { dependsOn: deps.map(this.args.lookup) } : {}) };
    // A user role (fleet.yaml roleSources) is its install command only.
    const factory: ComponentFactory = isBuiltinRole(bundle.role) ? COMPONENTS[bundle.role] : (n, r, _args, o) => new Role(n, r, o);
    const component = factory(roleResourceName(node.name, bundle.role), roleArgs, this.args, roleOpts);
    this.roles[bundle.role] = component;
    return component;
  }

  /**
   * The node's copy, created on first use: `copyDir` sent to `~/.fleetkit` over `host`. On a node joined
   * through `bootstrapHost` it waits for the tailscale role's install (its tailnet name answers only then),
   * which must exist already (the roles on a node wait for its tailscale role).
   * @throws Error when there is no `copyDir` or that install is not created yet (fleetkit bugs).
   */
  private nodeCopy(): command.remote.CopyToRemote {
    if (this.copy) return this.copy;
    const { node, copyDir } = this.args;
    if (!copyDir) throw new Error(`node ${node.name} has bundle files but no copy directory (a fleetkit bug)`);
    const dependsOn: pulumi.Resource[] = [];
    if (nodeCopyAwaitsTailscale(node)) {
      const tailscale = this.roles.tailscale;
      if (!tailscale) throw new Error(`node ${node.name}: its bundles are copied through its tailnet name before its tailscale role exists (a fleetkit bug)`);
      dependsOn.push(tailscale.install);
    }
    this.copy = new command.remote.CopyToRemote(
      nodeBundlesResourceName(node.name),
      { connection: sshConnection(node, this.args.sshPrivateKey), source: new pulumi.asset.FileArchive(copyDir), remotePath: NODE_COPY_REMOTE_PATH },
      { parent: this, dependsOn, retainOnDelete: this.args.forget ?? false },
    );
    return this.copy;
  }
}
