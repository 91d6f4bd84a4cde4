/**
 * The plan: which Pulumi resources each node's roles become, with their bundle hashes and dependencies.
 * Pure (no config, no I/O beyond the templates the renderers read); `fleet plan` prints it, and the program
 * (`stacks/index.ts`) registers exactly these resources: it takes every name, type token and dependency
 * from the functions here, and the program tests compare the engine's registrations with {@link planFleet}.
 */
import type { Fleet, FleetNode, RoleName } from "../model/fleet.js";
import { nodeWithRole } from "../model/fleet.js";
import { renderFleetBundles, roleDefinition } from "../roles/index.js";
export { toolchainSources } from "../roles/toolchains/render.js";
import { toolchainSources } from "../roles/toolchains/render.js";
import type { Bundle } from "../roles/types.js";
import { bundleCopyName, nodeCopyAwaitsTailscale, ownsBundleCopy, shipsBundleFiles } from "../roles/shipping.js";
import {
  COMMAND_TYPE,
  COPY_TYPE,
  bundleResourceName,
  nodeBundlesResourceName,
  RANDOM_PASSWORD_TYPE,
  roleTypeToken,
  TAILNET_KEY_TYPE,
  TAILNET_POLICY_NAME,
  TAILNET_POLICY_TYPE,
  TAILNET_PROVIDER_NAME,
  TAILSCALE_PROVIDER_TYPE,
  installResourceName,
  ntfyTokenResourceName,
  personTokenResourceName,
  queueTokenResourceName,
  roleResourceName,
  tailnetKeyResourceName,
  type PlannedResource,
} from "../roles/naming.js";

export * from "../roles/naming.js";

/**
 * The config keys of tailnet management, without the `fleetkit:` namespace (read by stacks/tailnet.ts; here,
 * beside the plan, so that `fleet plan` names them without loading the Pulumi SDK).
 */
export const TAILNET_CONFIG_KEYS = {
  apiKey: "tailscaleApiKey",
  oauthClientId: "tailscaleOauthClientId",
  oauthClientSecret: "tailscaleOauthClientSecret",
  tailnet: "tailscaleTailnet",
  tagOwners: "tailscaleTagOwners",
  policyFile: "tailnetPolicyFile",
} as const;

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
    /** The Node's own resources ({@link nodeResources}): the copy of its bundle files on Linux and macOS. */
    resources: PlannedResource[];
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

/**
 * The role components a role on `node` must wait for (explicit `dependsOn`, DESIGN layer 3), as its
 * definition declares them (roles/<role>/index.ts `after`): Tailscale before every other role on the
 * node; iceccd and toolchains after the scheduler's component; AgentAPI after Claude; a worker after
 * Claude and the queue server. Names, possibly on other nodes, in the definition's order.
 */
export function roleDependencies(fleet: Fleet, node: FleetNode, role: RoleName): string[] {
  const deps: string[] = [];
  for (const dep of roleDefinition(fleet, role).after) {
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
 * The order the program creates role components in, across the whole fleet: every role after the roles it
 * waits for ({@link roleDependencies}) and, for iceccd, after the toolchains components it receives tarballs
 * from (it reads their manifests); otherwise fleet order, then the node's role order. Pure.
 * @returns `[node, role]` pairs, each once.
 * @throws Error on a cycle (the fleet model's rules make one impossible: a fleetkit bug).
 */
export function roleCreationOrder(fleet: Fleet): [string, RoleName][] {
  const byName = new Map(fleet.nodes.flatMap((n) => n.roles.map((r) => [roleResourceName(n.name, r), [n, r] as const])));
  const order: [string, RoleName][] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, path: string[]): void => {
    const seen = state.get(name);
    if (seen === "done") return;
    if (seen === "visiting") throw new Error(`role components wait for each other in a cycle: ${[...path, name].join(" → ")}`);
    const [node, role] = byName.get(name)!;
    state.set(name, "visiting");
    const before = [...roleDependencies(fleet, node, role), ...(role === "iceccd" ? toolchainSources(fleet, node).map((s) => roleResourceName(s.from, "toolchains")) : [])];
    for (const dep of before) if (byName.has(dep)) visit(dep, [...path, name]);
    state.set(name, "done");
    order.push([node.name, role]);
  };
  for (const name of byName.keys()) visit(name, []);
  return order;
}

/**
 * The resources a role component parents (what a `dependsOn` on it stands for), in creation order: its own
 * copy of its bundle files where it has one (roles/shipping.ts `ownsBundleCopy`; planFleet adds the roles it
 * waits for, as for the install), its install command (waiting for the copy that carries its files, its own
 * or its node's), then what the role's definition declares its component creates (roles/<role>/index.ts
 * `children`: ntfy's Docker provider, image and container; a builder's toolchain manifest reader; an iceccd
 * node's toolchain receivers; the device tags of a tailscale node in a managed tailnet).
 */
export function roleChildResources(fleet: Fleet, node: FleetNode, role: RoleName, options: PlanOptions = {}): PlannedResource[] {
  const name = roleResourceName(node.name, role);
  const copy = ownsBundleCopy(node, role) ? [{ type: COPY_TYPE, name: bundleResourceName(name), dependsOn: [] }] : [];
  const install = { type: COMMAND_TYPE, name: installResourceName(name), dependsOn: shipsBundleFiles(node) ? [bundleCopyName(node, role)] : [] };
  return [...copy, install, ...(roleDefinition(fleet, role).children?.(fleet, node, options) ?? [])];
}

/**
 * The resources a Node component parents besides its role components: on a Linux or macOS node with a role
 * whose files travel in it, the node's copy (`<node>-bundles`, stacks/node.ts), which waits for the node's
 * tailscale install when that role has a copy of its own (joined through `bootstrapHost`).
 */
export function nodeResources(node: FleetNode): PlannedResource[] {
  if (!node.roles.some((r) => shipsBundleFiles(node) && !ownsBundleCopy(node, r))) return [];
  const after = nodeCopyAwaitsTailscale(node) ? [installResourceName(roleResourceName(node.name, "tailscale"))] : [];
  return [{ type: COPY_TYPE, name: nodeBundlesResourceName(node.name), dependsOn: after }];
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
export function mintedSecrets(bundles: Map<string, Pick<Bundle, "node" | "role" | "secrets">[]>, options: PlanOptions = {}, people: readonly string[] = []): MintedSecrets {
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
export function secretInputResources(bundle: Pick<Bundle, "node" | "secrets">, minted: MintedSecrets): string[] {
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
      resources: nodeResources(node),
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
        const children = roleChildResources(fleet, node, bundle.role, options);
        const installName = installResourceName(name);
        return {
          role: bundle.role,
          bundleHash: bundle.hash,
          resources: [
            { type: roleTypeToken(bundle.role), name, dependsOn: sorted(after) },
            ...tokens,
            ...children.map((r) =>
              r.name === installName
                ? { ...r, dependsOn: sorted([...r.dependsOn, ...after, ...secretInputResources(bundle, minted)]) }
                : r.name === bundleResourceName(name)
                  ? { ...r, dependsOn: sorted([...r.dependsOn, ...after]) }
                  : { ...r, dependsOn: sorted(r.dependsOn) },
            ),
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
