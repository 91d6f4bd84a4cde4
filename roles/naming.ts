/**
 * The names of what the Pulumi program registers, in one place: type tokens (fleetkit's own components and
 * the providers' resources), resource names (every child of a role component starts with the component's
 * `<node>-<role>`), and the shape the plan lists them in. Pure, no Pulumi import: the plan, the role
 * definitions and the components all read them from here.
 */
import type { RoleName } from "../model/fleet.js";
import { ROLE_NAMES, type ArchName, type BuiltinRoleName } from "../model/schema.js";

/** Type token of the Fleet component (one per stack). */
export const FLEET_TYPE = "fleetkit:index:Fleet";
/** Type token of a Node component (one per node, parent the Fleet). */
export const NODE_TYPE = "fleetkit:index:Node";
/** Type token of @pulumi/command's remote.Command (a role's install/uninstall over SSH). */
export const COMMAND_TYPE = "command:remote:Command";
/** Type token of @pulumi/command's remote.CopyToRemote (a node's bundles copied to a Linux or macOS node, roles/shipping.ts). */
export const COPY_TYPE = "command:remote:CopyToRemote";
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

/** `fleetkit:role:IceccScheduler` for `icecc-scheduler` (a user role's the same way: `fleetkit:role:NodeExporter`). */
export function roleTypeToken(role: RoleName): string {
  return `fleetkit:role:${role.split("-").map((w) => w[0].toUpperCase() + w.slice(1)).join("")}`;
}

/** The type token of every built-in role component, by role (`fleetkit:role:Iceccd` …): the one place they are spelled. */
export const ROLE_TYPES: Readonly<Record<BuiltinRoleName, string>> = Object.freeze(
  Object.fromEntries(ROLE_NAMES.map((r) => [r, roleTypeToken(r)])) as Record<BuiltinRoleName, string>,
);

/** Name of the role component of `role` on `node` (child resources are prefixed with it). */
export function roleResourceName(node: string, role: RoleName): string {
  return `${node}-${role}`;
}

/** Name of a role's install command (create = install script, delete = uninstall script). */
export function installResourceName(roleResource: string): string {
  return `${roleResource}-install`;
}

/**
 * Name of the copy of one role's bundle files to its node, which the install command waits for: only a
 * tailscale role joined through `bootstrapHost` has one of its own (roles/shipping.ts `ownsBundleCopy`);
 * every other role's files travel in its node's copy ({@link nodeBundlesResourceName}).
 */
export function bundleResourceName(roleResource: string): string {
  return `${roleResource}-bundle`;
}

/**
 * Name of the copy of a node's bundle files (roles/shipping.ts): one `remote.CopyToRemote` per Linux or macOS
 * node, child of its Node component, which every role's install command there waits for.
 */
export function nodeBundlesResourceName(node: string): string {
  return `${node}-bundles`;
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

