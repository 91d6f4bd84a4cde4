/**
 * The Fleet component (`fleetkit:index:Fleet`): the root of a stack's resources. It mints the secrets the
 * stack owns (queue tokens, the ntfy token when config has none) and creates one Node component per node.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { Fleet as FleetModel } from "../model/fleet.js";
import { renderNodeBundles } from "../roles/index.js";
import { shipNode, type ShippedNode } from "../roles/shipping.js";
import { FLEET_TYPE, mintedSecrets, ntfyTokenResourceName, personTokenResourceName, queueTokenResourceName, roleCreationOrder, roleResourceName } from "./plan.js";
import type { RoleComponent } from "../roles/component.js";
import { Node } from "./node.js";
import { checkGitHubCredentials, NTFY_TOKEN_RANDOM_LENGTH, QUEUE_TOKEN_LENGTH, type StackSecrets } from "./secrets.js";
import { createTailnet, type TailnetConfig, type TailnetResources } from "./tailnet.js";
import { tailnetTags, type TailnetPolicy } from "./tailnet-policy.js";

/** Inputs of the Fleet component. */
export interface FleetArgs {
  /** The validated fleet (model/load.ts `loadFleet`). */
  fleet: FleetModel;
  /**
   * Local directory the bundles of Linux and macOS nodes are written to before they are copied
   * (roles/shipping.ts; index.ts: `fleetkit:bundleDir`, default `.fleetkit/bundles` in the project).
   */
  bundleDir: string;
  /** Secrets from config (secrets.ts `readConfigSecrets`). */
  configSecrets: StackSecrets["config"];
  /** SSH private key text per node name, secret (index.ts reads `fleetkit:sshPrivateKey` or the key file). */
  sshPrivateKey: (node: string) => pulumi.Input<string>;
  /** Local key file per node name when the key came from a file (handed to Docker's ssh); else undefined. */
  sshKeyFile?: (node: string) => string | undefined;
  /**
   * Nodes to forget (`fleetkit:forgetNodes`): their resources get `retainOnDelete`, so removing them from
   * fleet.yaml afterwards drops them from the stack without running uninstall on a machine that is gone.
   */
  forgetNodes?: string[];
  /**
   * The managed tailnet (stacks/tailnet.ts): its config and the policy to apply (fleetkit's merged with the
   * user's file); undefined = not managed, nodes join with `fleetkit:tailscaleAuthKey`.
   */
  tailnet?: { config: TailnetConfig; policy: TailnetPolicy };
}

/**
 * A whole fleet. Children: one `Node` per node and the minted tokens (`<node>-queue-token`,
 * `<person>-person-token` per person of `people:` when the fleet runs a queue, and `<node>-ntfy-token` when
 * `fleetkit:ntfyToken` is unset); with a managed tailnet also the Tailscale provider `tailnet`, the policy
 * `tailnet-policy` and each node's auth key `<node>-tailscale-key` (stacks/tailnet.ts `createTailnet`).
 * Children are named after the node they belong to,
 * not after the fleet: a node's resource names (and so its URNs) must not change when the fleet is renamed,
 * or every role on every node would be replaced. One Fleet per stack, so names never collide.
 *
 * Forgetting a dead node (its uninstall cannot run, FIELD-NOTES): `pulumi config set --path
 * 'fleetkit:forgetNodes[0]' rpi3`, `pulumi up` (marks its resources retainOnDelete, touches no machine),
 * then remove the node from fleet.yaml and `pulumi up` again: its resources leave the stack and nothing
 * runs on it. (`pulumi state delete <urn> --target-dependents` does the same by hand.) A dead ntfy node
 * needs the by-hand way for its Docker provider, which cannot configure without reaching the engine.
 */
export class Fleet extends pulumi.ComponentResource {
  /** Node components by node name, in fleet order. */
  public readonly nodes: Record<string, Node> = {};
  /** Minted queue tokens by node name (secret). */
  public readonly queueTokens: Record<string, pulumi.Output<string>> = {};
  /** Minted queue tokens of the people in fleet.yaml `people:` by name (secret; none without a queue). */
  public readonly peopleTokens: Record<string, pulumi.Output<string>> = {};
  /** Bundle hashes per node and role. */
  public readonly bundleHashes: Record<string, Record<string, string>>;
  /** The managed tailnet's provider, policy and keys; undefined when the stack does not manage it. */
  public readonly tailnet?: TailnetResources;

  constructor(name: string, args: FleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super(FLEET_TYPE, name, {}, opts);
    const model = args.fleet;
    // Rendered and shipped node by node: each node's scripts are garbage once its files are written.
    const shipped = new Map<string, ShippedNode>(model.nodes.map((node) => [node.name, shipNode(node, renderNodeBundles(model, node), args.bundleDir)]));
    const bundles = new Map([...shipped].map(([node, s]) => [node, s.bundles]));
    const forget = new Set(args.forgetNodes ?? []);
    const child = { parent: this };
    checkGitHubCredentials(model.services.queue.github, args.configSecrets);
    const minted = mintedSecrets(bundles, { ntfyTokenFromConfig: args.configSecrets.ntfyToken !== undefined, tailnetManaged: args.tailnet !== undefined }, Object.keys(model.people));
    const retain = (node: string) => ({ ...child, retainOnDelete: forget.has(node) });

    for (const node of minted.queueTokenNodes) {
      const token = new random.RandomPassword(queueTokenResourceName(node), { length: QUEUE_TOKEN_LENGTH, special: false }, retain(node));
      this.queueTokens[node] = token.result;
    }
    // People's tokens (operator, viewer): the queue node gets their hashes; the people get them from the
    // secret stack output peopleTokens.
    for (const person of minted.people.names) {
      const token = new random.RandomPassword(personTokenResourceName(person), { length: QUEUE_TOKEN_LENGTH, special: false }, child);
      this.peopleTokens[person] = token.result;
    }
    let mintedNtfyToken: pulumi.Output<string> | undefined;
    if (minted.ntfyTokenOwner) {
      const owner = minted.ntfyTokenOwner.node;
      const token = new random.RandomPassword(ntfyTokenResourceName(owner), { length: NTFY_TOKEN_RANDOM_LENGTH, special: false, upper: false }, retain(owner));
      mintedNtfyToken = pulumi.secret(pulumi.interpolate`tk_${token.result}`);
    }
    const tags = args.tailnet ? tailnetTags(model) : undefined;
    if (args.tailnet) this.tailnet = createTailnet(this, args.tailnet.config, args.tailnet.policy, tags!, minted.tailnetKeyNodes, (n) => forget.has(n));
    const secrets: StackSecrets = { config: args.configSecrets, queueTokens: this.queueTokens, peopleTokens: this.peopleTokens, mintedNtfyToken, tailnetKeys: this.tailnet?.keys };

    this.bundleHashes = {};
    this.createNodes(model, shipped, args, { secrets, forget, tags });
    this.registerOutputs({ bundleHashes: this.bundleHashes });
  }

  /**
   * One Node component per node, in fleet order, then every role component in dependency order across the
   * nodes (plan.ts `roleCreationOrder`), each parented to its node and depending on components that exist.
   */
  private createNodes(
    model: FleetModel,
    shipped: Map<string, ShippedNode>,
    args: FleetArgs,
    ctx: { secrets: StackSecrets; forget: Set<string>; tags?: Map<string, string> },
  ): void {
    const { secrets, forget } = ctx;
    const child = { parent: this };
    const components = new Map<string, RoleComponent>();
    const lookup = (name: string): RoleComponent => {
      const c = components.get(name);
      if (!c) throw new Error(`role component ${name} is not created yet in fleet ${model.name} (a fleetkit bug in roleCreationOrder)`);
      return c;
    };
    for (const node of model.nodes) {
      const component = new Node(
        node.name,
        {
          fleet: model,
          node,
          bundles: shipped.get(node.name)?.bundles ?? [],
          copyDir: shipped.get(node.name)?.copyDir,
          secrets,
          sshPrivateKey: args.sshPrivateKey(node.name),
          sshKeyFile: args.sshKeyFile?.(node.name),
          sshKeyFileOf: args.sshKeyFile,
          forget: forget.has(node.name),
          lookup,
          ...(this.tailnet
            ? {
                tailnet: {
                  provider: this.tailnet.provider,
                  policy: this.tailnet.policy,
                  tag: ctx.tags!.get(node.name)!,
                  device: model.tailnet ? `${node.name}.${model.tailnet}` : node.name,
                },
              }
            : {}),
        },
        child,
      );
      this.nodes[node.name] = component;
      this.bundleHashes[node.name] = component.bundleHashes;
    }
    for (const [node, role] of roleCreationOrder(model)) components.set(roleResourceName(node, role), this.nodes[node]!.addRole(role));
  }
}
