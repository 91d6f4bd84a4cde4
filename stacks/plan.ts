/**
 * The plan: which Pulumi resources each node's roles become, with their bundle hashes and dependencies.
 * Pure (no config, no I/O beyond the templates the renderers read); `fleet plan` prints it, and the program
 * (`stacks/index.ts`) registers exactly these resources: it takes every name, type token and dependency
 * from the functions here, and the program tests compare the engine's registrations with {@link planFleet}.
 */
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import { nodeWithRole } from "../model/fleet.js";
import { ROLES, renderFleetBundles } from "../roles/index.js";
import { toolchainsPlan } from "../roles/toolchains/render.js";
import { ROLE_NAMES, type ArchName } from "../model/schema.js";
import type { Bundle } from "../roles/types.js";

/** Type token of the Fleet component (one per stack). */
export const FLEET_TYPE = "fleetkit:index:Fleet";
/** Type token of a Node component (one per node, parent the Fleet). */
export const NODE_TYPE = "fleetkit:index:Node";
/** Type token of @pulumi/command's remote.Command (a role's install/uninstall over SSH). */
export const COMMAND_TYPE = "command:remote:Command";
/** Type token of @pulumi/command's local.Command (toolchain streaming, run where `pulumi up` runs). */
export const LOCAL_COMMAND_TYPE = "command:local:Command";
/** Type token of @pulumi/random's RandomPassword (stack-minted tokens). */
export const RANDOM_PASSWORD_TYPE = "random:index/randomPassword:RandomPassword";
/** Type token of the Docker provider resource (ntfy's `docker.Provider`, host `ssh://user@node`). */
export const DOCKER_PROVIDER_TYPE = "pulumi:providers:docker";
/** Type token of @pulumi/docker's RemoteImage (the pinned ntfy image). */
export const DOCKER_IMAGE_TYPE = "docker:index/remoteImage:RemoteImage";
/** Type token of @pulumi/docker's Container (the ntfy server). */
export const DOCKER_CONTAINER_TYPE = "docker:index/container:Container";
/** Type token of the Tailscale provider resource (stacks/tailnet.ts, when the stack manages the tailnet). */
export const TAILSCALE_PROVIDER_TYPE = "pulumi:providers:tailscale";
/** Type token of @pulumi/tailscale's Acl (the tailnet's whole policy file). */
export const TAILNET_POLICY_TYPE = "tailscale:index/acl:Acl";
/** Type token of @pulumi/tailscale's TailnetKey (a node's single-use auth key). */
export const TAILNET_KEY_TYPE = "tailscale:index/tailnetKey:TailnetKey";
/** Type token of @pulumi/tailscale's DeviceTags (a node's device tag). */
export const DEVICE_TAGS_TYPE = "tailscale:index/deviceTags:DeviceTags";
/**
 * Types the program parents to the Fleet rather than to a role component, though the plan lists them under
 * the role that reads them: the minted secrets (queue and ntfy tokens, Tailscale auth keys).
 */
export const FLEET_CHILD_TYPES: readonly string[] = [RANDOM_PASSWORD_TYPE, TAILNET_KEY_TYPE];
/** Name of the Tailscale provider resource (one per stack; named apart from the fleet so a rename replaces nothing). */
export const TAILNET_PROVIDER_NAME = "tailnet";
/** Name of the tailnet policy resource. */
export const TAILNET_POLICY_NAME = "tailnet-policy";

/**
 * One resource the program registers: Pulumi type token, resource name, and the names of the resources the
 * engine is told it depends on. Dependencies are listed as the engine receives them: a `dependsOn` on a
 * role component stands for that component's own resources (its install command, and for ntfy its Docker
 * resources), and a secret on stdin adds the token resource it came from. Sorted by name.
 */
export interface PlannedResource {
  type: string;
  name: string;
  dependsOn: string[];
}

/** One role on one node in the plan. */
export interface PlannedRole {
  role: RoleName;
  /** sha256 (hex) of the role's bundle: the marker its install leaves on the node (`fleet drift` compares it). */
  bundleHash: string;
  /** The role component first, then its resources in creation order. */
  resources: PlannedResource[];
}

/** The whole plan; the JSON shape of `fleet plan --json`. */
export interface FleetPlan {
  fleet: string;
  nodes: {
    name: string;
    os: string;
    arch: string;
    host: string;
    roles: PlannedRole[];
  }[];
  /**
   * The stack's tailnet resources, children of the Fleet: the Tailscale provider and the policy when the
   * stack manages the tailnet ({@link PlanOptions.tailnetManaged}), else none. (Each node's auth key and
   * device tags are listed under its tailscale role.)
   */
  tailnet: { managed: boolean; resources: PlannedResource[] };
}

/**
 * Facts about the stack's config that change the resource set (not the bundles). `fleet plan` runs offline
 * without stack config and plans with the defaults.
 */
export interface PlanOptions {
  /** `fleetkit:ntfyToken` is set, so no ntfy token is minted (default false: minted when a bundle needs one). */
  ntfyTokenFromConfig?: boolean;
  /**
   * The stack has Tailscale API credentials (stacks/tailnet.ts): it manages the tailnet policy, mints a key
   * per node and tags each node's device (default false: nodes join with the pasted key).
   */
  tailnetManaged?: boolean;
}

/** `fleetkit:role:IceccScheduler` for `icecc-scheduler`. */
export function roleTypeToken(role: RoleName): string {
  return `fleetkit:role:${role.split("-").map((w) => w[0].toUpperCase() + w.slice(1)).join("")}`;
}

/** The type token of every role component, by role (`fleetkit:role:Iceccd` …): the one place they are spelled. */
export const ROLE_TYPES: Readonly<Record<RoleName, string>> = Object.freeze(
  Object.fromEntries(ROLE_NAMES.map((r) => [r, roleTypeToken(r)])) as Record<RoleName, string>,
);

/** Name of the role component of `role` on `node` (child resources are prefixed with it). */
export function roleResourceName(node: string, role: RoleName): string {
  return `${node}-${role}`;
}

/** Name of a role's install command (create = install script, delete = uninstall script). */
export function installResourceName(roleResource: string): string {
  return `${roleResource}-install`;
}

/** Names of the ntfy role's Docker resources: the provider, the pinned image and the container. */
export function ntfyResourceNames(roleResource: string): { provider: string; image: string; container: string } {
  return { provider: `${roleResource}-docker`, image: `${roleResource}-image`, container: `${roleResource}-container` };
}

/** Name of the command that reads a builder's toolchain manifest (child of its toolchains component). */
export function toolchainManifestResourceName(roleResource: string): string {
  return `${roleResource}-manifest`;
}

/** Name of the command that brings an iceccd node's tarballs of `arch` up to date (child of its iceccd component). */
export function toolchainReceiveResourceName(roleResource: string, arch: ArchName): string {
  return `${roleResource}-toolchains-${arch}`;
}

/** Name of the minted queue token of `node` (a child of the Fleet: the queue node and the node share it). */
export function queueTokenResourceName(node: string): string {
  return `${node}-queue-token`;
}

/** Name of the minted Tailscale auth key of `node` (a child of the Fleet, listed under the node's tailscale role). */
export function tailnetKeyResourceName(node: string): string {
  return `${node}-tailscale-key`;
}

/** Name of the device tags of a tailscale role component (its child, after its install). */
export function deviceTagsResourceName(roleResource: string): string {
  return `${roleResource}-tags`;
}

/** Name of the minted queue token of a person of fleet.yaml `people:` (a child of the Fleet). */
export function personTokenResourceName(person: string): string {
  return `${person}-person-token`;
}

/** Name of the minted ntfy token, named after the node whose role it is listed under (see {@link planFleet}). */
export function ntfyTokenResourceName(node: string): string {
  return `${node}-ntfy-token`;
}

/**
 * The role components a role on `node` must wait for (explicit `dependsOn`, DESIGN layer 3), as its
 * definition declares them (roles/<role>/index.ts `after`): Tailscale before every other role on the
 * node; iceccd and toolchains after the scheduler's component; AgentAPI after Claude; a worker after
 * Claude and the queue server. Names, possibly on other nodes, in the definition's order.
 */
export function roleDependencies(fleet: Fleet, node: FleetNode, role: RoleName): string[] {
  const deps: string[] = [];
  for (const dep of ROLES[role].after) {
    if (dep.where === "local") {
      if (node.roles.includes(dep.role)) deps.push(roleResourceName(node.name, dep.role));
    } else {
      const holder = nodeWithRole(fleet, dep.role);
      if (holder) deps.push(roleResourceName(holder.name, dep.role));
    }
  }
  return [...new Set(deps)].filter((d) => d !== roleResourceName(node.name, role));
}

/**
 * The resources a role component parents (what a `dependsOn` on it stands for), in creation order: its
 * install command; for ntfy the Docker provider, image and container; for toolchains on a builder the
 * manifest reader; for iceccd on a Linux node one toolchain receiver per builder (roles/toolchains/render.ts
 * `toolchainsPlan`); for tailscale in a managed tailnet the device tags (after the install and the policy).
 */
export function roleChildResources(fleet: Fleet, node: FleetNode, role: RoleName, options: PlanOptions = {}): PlannedResource[] {
  const roleResource = roleResourceName(node.name, role);
  const install = installResourceName(roleResource);
  const children: PlannedResource[] = [{ type: COMMAND_TYPE, name: install, dependsOn: [] }];
  if (role === "tailscale" && options.tailnetManaged) children.push({ type: DEVICE_TAGS_TYPE, name: deviceTagsResourceName(roleResource), dependsOn: [install, TAILNET_POLICY_NAME] });
  if (role === "ntfy") {
    const n = ntfyResourceNames(roleResource);
    children.push(
      { type: DOCKER_PROVIDER_TYPE, name: n.provider, dependsOn: [install] },
      { type: DOCKER_IMAGE_TYPE, name: n.image, dependsOn: [install] },
      { type: DOCKER_CONTAINER_TYPE, name: n.container, dependsOn: [n.image, install] },
    );
  }
  if (role === "toolchains") children.push({ type: COMMAND_TYPE, name: toolchainManifestResourceName(roleResource), dependsOn: [install] });
  if (role === "iceccd") {
    for (const source of toolchainSources(fleet, node)) {
      const manifest = toolchainManifestResourceName(roleResourceName(source.from, "toolchains"));
      children.push({ type: LOCAL_COMMAND_TYPE, name: toolchainReceiveResourceName(roleResource, source.arch), dependsOn: [install, manifest].sort() });
    }
  }
  return children;
}

/** The builders `node` receives toolchain tarballs from (none for macOS and for builders themselves). */
export function toolchainSources(fleet: Fleet, node: FleetNode): { from: string; arch: ArchName }[] {
  return toolchainsPlan(fleet)
    .distribution.filter((d) => d.to.includes(node.name))
    .map((d) => ({ from: d.from, arch: d.arch }));
}

/** Which minted secrets a fleet needs, from its rendered bundles. */
export interface MintedSecrets {
  /**
   * Nodes that get a queue token, in fleet order: every node when the fleet runs a queue (the queue role
   * reads `queueTokens`), so a node without a worker can still submit tasks with `fleet task`; otherwise
   * the nodes with a bundle that reads `queueToken`.
   */
  queueTokenNodes: string[];
  /**
   * Per token node, the node and role its token is listed under in the plan: the node's own role that
   * reads `queueToken` (its worker), else the queue role, which reads every token.
   */
  queueTokenOwners: Map<string, { node: string; role: RoleName }>;
  /** The node and role the minted ntfy token is listed under; undefined = none minted. */
  ntfyTokenOwner?: { node: string; role: RoleName };
  /**
   * Nodes that get a minted Tailscale auth key, in fleet order: with a managed tailnet, every node with a
   * bundle that reads `tailscaleAuthKey` (its tailscale role); else none (the pasted key is used).
   */
  tailnetKeyNodes: string[];
  /** People (fleet.yaml `people:`) who get a token, listed under the queue role that reads `peopleTokens`; none without one. */
  people: { names: string[]; owner?: { node: string; role: RoleName } };
}

/**
 * Decides the minted secrets: a queue token for every node when the fleet runs a queue, else for every node
 * with a bundle that reads `queueToken`; one ntfy token when some bundle reads `ntfyToken` and config does
 * not supply it, listed under the ntfy role when that reads it, else under the first bundle (fleet order)
 * that does.
 */
export function mintedSecrets(bundles: Map<string, Bundle[]>, options: PlanOptions = {}, people: readonly string[] = []): MintedSecrets {
  const all = [...bundles.values()].flat();
  const queue = all.find((b) => b.secrets.includes("queueTokens"));
  const queueTokenOwners = new Map<string, { node: string; role: RoleName }>();
  for (const [node, bs] of bundles) {
    const reader = bs.find((b) => b.secrets.includes("queueToken")) ?? queue;
    if (reader) queueTokenOwners.set(node, { node: reader.node, role: reader.role });
  }
  const queueTokenNodes = [...queueTokenOwners.keys()];
  let ntfyTokenOwner: MintedSecrets["ntfyTokenOwner"];
  if (!options.ntfyTokenFromConfig) {
    const readers = all.filter((b) => b.secrets.includes("ntfyToken"));
    const owner = readers.find((b) => b.role === "ntfy") ?? readers[0];
    if (owner) ntfyTokenOwner = { node: owner.node, role: owner.role };
  }
  const tailnetKeyNodes = options.tailnetManaged ? [...bundles].filter(([, bs]) => bs.some((b) => b.secrets.includes("tailscaleAuthKey"))).map(([node]) => node) : [];
  const peopleReader = all.find((b) => b.secrets.includes("peopleTokens"));
  const minted: MintedSecrets["people"] = peopleReader ? { names: [...people], owner: { node: peopleReader.node, role: peopleReader.role } } : { names: [] };
  return { queueTokenNodes, queueTokenOwners, ntfyTokenOwner, tailnetKeyNodes, people: minted };
}

/** The token resources a bundle's stdin is built from (names of the minted RandomPasswords it reads). */
export function secretInputResources(bundle: Bundle, minted: MintedSecrets): string[] {
  const names: string[] = [];
  for (const s of bundle.secrets) {
    if (s === "queueToken" && minted.queueTokenNodes.includes(bundle.node)) names.push(queueTokenResourceName(bundle.node));
    if (s === "queueTokens") names.push(...minted.queueTokenNodes.map(queueTokenResourceName));
    if (s === "ntfyToken" && minted.ntfyTokenOwner) names.push(ntfyTokenResourceName(minted.ntfyTokenOwner.node));
    if (s === "tailscaleAuthKey" && minted.tailnetKeyNodes.includes(bundle.node)) names.push(tailnetKeyResourceName(bundle.node));
    if (s === "peopleTokens") names.push(...minted.people.names.map(personTokenResourceName));
  }
  return names;
}

/** Renders every node's bundles once, in fleet order (roles/index.ts `renderFleetBundles`). */
export const renderBundles: (fleet: Fleet) => Map<string, Bundle[]> = renderFleetBundles;

const sorted = (names: Iterable<string>) => [...new Set(names)].sort();

/**
 * The plan of a whole fleet: nodes in file order, roles in canonical order, each role's resources (its
 * component, minted tokens listed under it, its install command, then {@link roleChildResources}).
 * @param bundles the fleet's rendered bundles (default: rendered here); pass them to render only once.
 */
export function planFleet(fleet: Fleet, options: PlanOptions = {}, bundles: Map<string, Bundle[]> = renderBundles(fleet)): FleetPlan {
  const minted = mintedSecrets(bundles, options, Object.keys(fleet.people));
  const childrenOf = new Map<string, PlannedResource[]>();
  for (const node of fleet.nodes) for (const b of bundles.get(node.name)!) childrenOf.set(roleResourceName(node.name, b.role), roleChildResources(fleet, node, b.role, options));
  const expand = (components: string[]) => components.flatMap((c) => (childrenOf.get(c) ?? []).map((r) => r.name));

  return {
    fleet: fleet.name,
    nodes: fleet.nodes.map((node) => ({
      name: node.name,
      os: node.os,
      arch: node.arch,
      host: node.host,
      roles: bundles.get(node.name)!.map((bundle): PlannedRole => {
        const name = roleResourceName(node.name, bundle.role);
        const after = expand(roleDependencies(fleet, node, bundle.role));
        const tokens: PlannedResource[] = [];
        for (const [tokenNode, owner] of minted.queueTokenOwners) {
          if (owner.node === node.name && owner.role === bundle.role) tokens.push({ type: RANDOM_PASSWORD_TYPE, name: queueTokenResourceName(tokenNode), dependsOn: [] });
        }
        if (minted.ntfyTokenOwner?.node === node.name && minted.ntfyTokenOwner.role === bundle.role)
          tokens.push({ type: RANDOM_PASSWORD_TYPE, name: ntfyTokenResourceName(node.name), dependsOn: [] });
        if (bundle.secrets.includes("tailscaleAuthKey") && minted.tailnetKeyNodes.includes(node.name))
          tokens.push({ type: TAILNET_KEY_TYPE, name: tailnetKeyResourceName(node.name), dependsOn: [TAILNET_POLICY_NAME] });
        if (minted.people.owner?.node === node.name && minted.people.owner.role === bundle.role)
          for (const person of minted.people.names) tokens.push({ type: RANDOM_PASSWORD_TYPE, name: personTokenResourceName(person), dependsOn: [] });
        const [install, ...rest] = roleChildResources(fleet, node, bundle.role, options);
        return {
          role: bundle.role,
          bundleHash: bundle.hash,
          resources: [
            { type: ROLE_TYPES[bundle.role], name, dependsOn: sorted(after) },
            ...tokens,
            { ...install, dependsOn: sorted([...after, ...secretInputResources(bundle, minted)]) },
            ...rest.map((r) => ({ ...r, dependsOn: sorted(r.dependsOn) })),
          ],
        };
      }),
    })),
    tailnet: {
      managed: options.tailnetManaged ?? false,
      resources: options.tailnetManaged
        ? [
            { type: TAILSCALE_PROVIDER_TYPE, name: TAILNET_PROVIDER_NAME, dependsOn: [] },
            { type: TAILNET_POLICY_TYPE, name: TAILNET_POLICY_NAME, dependsOn: [] },
          ]
        : [],
    },
  };
}
