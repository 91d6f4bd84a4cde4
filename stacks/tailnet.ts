/**
 * Tailnet as code: when the stack has Tailscale API credentials, the stack manages the tailnet's policy
 * (stacks/tailnet-policy.ts, generated from roles/reach.ts) and mints one auth key per node, through an
 * explicit `tailscale.Provider` (@pulumi/tailscale). Without credentials none of this exists and every node
 * joins with the pasted `fleetkit:tailscaleAuthKey`, exactly as before (same resources, same URNs).
 *
 * Stack config (namespace `fleetkit`):
 * - `tailscaleApiKey` (secret): an API access token (`tskey-api-…`, Tailscale KB 1101), or instead
 * - `tailscaleOauthClientId` + `tailscaleOauthClientSecret` (secret): an OAuth client (KB 1215, what
 *   Tailscale recommends for automation) with the scopes `policy_file`, `auth_keys` and `devices:core`
 *   and a tag of its own, which must then be listed in
 * - `tailscaleTagOwners`: extra owners of every fleet tag (a list, e.g. `["tag:fleetkit"]`): an OAuth client
 *   mints keys only for tags its own tag owns;
 * - `tailscaleTailnet`: the provider's `tailnet` (the tailnet ID; default: the tailnet the credentials
 *   belong to). fleet.yaml's `tailnet` is the MagicDNS suffix, used to find each node's device;
 * - `tailnetPolicyFile`: a HuJSON policy file of the user's own entries (grants, acls, tagOwners, tests,
 *   groups, ssh …), merged into the policy (tailnet-policy.ts `mergeTailnetPolicy`).
 *
 * With credentials set, fleetkit owns the tailnet's whole policy file: the `Acl` resource is created with
 * `overwriteExistingContent` (the policy the tailnet had is replaced, not imported), so anything the tailnet
 * should keep must be in `tailnetPolicyFile`; edits made in the admin console are reverted by the next
 * `pulumi up`. When the credentials are removed the policy stays as it was last applied
 * (`resetAclOnDestroy: false`: resetting would restore Tailscale's allow-all default).
 */
import * as pulumi from "@pulumi/pulumi";
import * as tailscale from "@pulumi/tailscale";
import type { TailnetPolicy } from "./tailnet-policy.js";
import { TAILNET_CONFIG_KEYS, TAILNET_POLICY_NAME, TAILNET_PROVIDER_NAME, tailnetKeyResourceName } from "./plan.js";

/**
 * Seconds a minted auth key stays valid (7 days): it only has to last until the node's first join, which
 * the same `pulumi up` normally does minutes later. Tailscale allows at most 90 days (KB 1085 "Auth keys").
 */
export const TAILNET_KEY_EXPIRY_SECONDS = 7 * 24 * 60 * 60;

/** The stack's Tailscale credentials and tailnet settings; undefined when the tailnet is not managed. */
export interface TailnetConfig {
  /** Provider credentials, secret Outputs: an API key, or an OAuth client id and secret. */
  credentials: { apiKey: pulumi.Output<string> } | { oauthClientId: pulumi.Output<string>; oauthClientSecret: pulumi.Output<string> };
  /** The config key that switched management on, for messages (`fleetkit:tailscaleApiKey` …). */
  source: string;
  /** Provider `tailnet`; undefined = the credentials' own tailnet. */
  tailnet?: string;
  /** Extra owners of every fleet tag (`fleetkit:tailscaleTagOwners`). */
  tagOwners: string[];
  /** Path of the user's policy entries (`fleetkit:tailnetPolicyFile`), relative to the project. */
  policyFile?: string;
}

/**
 * Reads the tailnet config from the stack. Credentials become secret Outputs whether or not they were
 * set with `--secret`.
 * @returns undefined when neither an API key nor an OAuth client is configured.
 * @throws pulumi.RunError (one paragraph) for an API key together with an OAuth client, half an OAuth
 *   client, an OAuth client without `tailscaleTagOwners`, or a `tailscaleTagOwners` that is not a list of
 *   strings.
 */
export function readTailnetConfig(config: pulumi.Config): TailnetConfig | undefined {
  const raw = (key: string) => pulumi.runtime.getConfig(`${config.name}:${key}`) || undefined;
  const k = TAILNET_CONFIG_KEYS;
  const apiKey = raw(k.apiKey);
  const clientId = raw(k.oauthClientId);
  const clientSecret = raw(k.oauthClientSecret);
  if (apiKey === undefined && clientId === undefined && clientSecret === undefined) return undefined;
  if (apiKey !== undefined && (clientId !== undefined || clientSecret !== undefined)) {
    throw new pulumi.RunError(
      `both fleetkit:${k.apiKey} and an OAuth client (fleetkit:${k.oauthClientId}/${k.oauthClientSecret}) are set; the Tailscale provider takes one kind of credential. ` +
        `Remove one with \`pulumi config rm fleetkit:<key>\` and run again.`,
    );
  }
  if (apiKey === undefined && (clientId === undefined || clientSecret === undefined)) {
    const missing = clientId === undefined ? k.oauthClientId : k.oauthClientSecret;
    throw new pulumi.RunError(`fleetkit:${missing} is not set: an OAuth client needs both its id and its secret. Set it with \`pulumi config set --secret fleetkit:${missing} <value>\` and run again.`);
  }
  const owners = config.getObject<unknown>(k.tagOwners) ?? [];
  if (!Array.isArray(owners) || owners.some((o) => typeof o !== "string" || !/^(tag:[A-Za-z][A-Za-z0-9-]*|autogroup:[a-z-]+|group:[^\s]+|[^\s@]+@[^\s@]+)$/.test(o))) {
    throw new pulumi.RunError(
      `fleetkit:${k.tagOwners} must be a list of tag owners (tag:…, group:…, autogroup:… or a user's e-mail), e.g. \`pulumi config set --path 'fleetkit:${k.tagOwners}[0]' tag:fleetkit\`; got ${JSON.stringify(owners)}.`,
    );
  }
  if (apiKey === undefined && owners.length === 0) {
    throw new pulumi.RunError(
      `an OAuth client mints auth keys only for tags its own tag owns (Tailscale KB 1215), so fleetkit:${k.tagOwners} must name the client's tag: ` +
        `\`pulumi config set --path 'fleetkit:${k.tagOwners}[0]' tag:fleetkit\` (the tag you gave the OAuth client), then run again.`,
    );
  }
  return {
    credentials: apiKey !== undefined ? { apiKey: pulumi.secret(apiKey) } : { oauthClientId: pulumi.secret(clientId!), oauthClientSecret: pulumi.secret(clientSecret!) },
    source: `fleetkit:${apiKey !== undefined ? k.apiKey : k.oauthClientSecret}`,
    tailnet: raw(k.tailnet),
    tagOwners: owners as string[],
    policyFile: raw(k.policyFile),
  };
}

/**
 * The description of `node`'s key in the admin console: `fleetkit <node>` with every `-` as a space, cut to
 * 50 characters (the Tailscale provider: "a description of the key consisting of alphanumeric characters",
 * at most 50). It depends on the node's name alone: a changed description replaces the key, so renaming the
 * fleet must not change it.
 */
export function tailnetKeyDescription(node: string): string {
  return `fleetkit ${node}`.replace(/[^A-Za-z0-9 ]+/g, " ").slice(0, 50).trimEnd();
}

/** What {@link createTailnet} made: the provider, the policy and each node's key (secret). */
export interface TailnetResources {
  provider: tailscale.Provider;
  policy: tailscale.Acl;
  /** The minted auth key of each node, by node name: what its tailscale role reads as `tailscaleAuthKey`. */
  keys: Record<string, pulumi.Output<string>>;
}

/**
 * Creates the tailnet's resources as children of `parent` (the Fleet), named independently of the fleet's
 * name so renaming the fleet replaces nothing: the provider `tailnet`, the policy `tailnet-policy`, and one
 * `tailscale.TailnetKey` `<node>-tailscale-key` per node in `keyNodes`, created after the policy (a key's
 * tags must already be defined in `tagOwners`).
 *
 * Each key is pre-authorised (the node needs no approval), single-use (`reusable: false`), not ephemeral
 * (the node stays when offline), tagged with the node's tag (the device then belongs to the tag, not to
 * the person whose credentials minted it, KB 1068) and valid {@link TAILNET_KEY_EXPIRY_SECONDS}.
 * What the next `pulumi up` does with it:
 * - a used (or expired) key stays as it is in the state: `recreateIfInvalid: "never"` (also the provider's
 *   default for single-use keys, set explicitly because `"always"` would mint a new key on every run after
 *   the join, change the tailscale install's stdin and re-run it each time). The install's stdin, and so
 *   the command, is unchanged: nothing runs;
 * - rotating a key (`pulumi up --replace <urn of rpi1-tailscale-key>`, e.g. for a node whose first join
 *   failed until its key expired) changes only the tailscale install's secret stdin, an update that re-runs
 *   the same install script in place: the command is never replaced (no uninstall, no logout). On a node
 *   already joined the script does not use the key at all (templates/tailscale/up.sh and
 *   windows-install.ps1 join only when tailscaled is not Running under the node's name).
 * - a node whose tag changes (another profile, a role added) gets a new key (the provider replaces a key whose
 *   tags change): its install re-runs in place as above, and its device tags (roles/tailscale/component.ts) retag the
 *   device through the API.
 * `keys` are secret Outputs: they reach a node only on the tailscale install's stdin.
 */
export function createTailnet(
  parent: pulumi.Resource,
  config: TailnetConfig,
  policy: TailnetPolicy,
  tags: Map<string, string>,
  keyNodes: string[],
  retain: (node: string) => boolean,
): TailnetResources {
  const provider = new tailscale.Provider(TAILNET_PROVIDER_NAME, { ...config.credentials, ...(config.tailnet ? { tailnet: config.tailnet } : {}) }, { parent });
  const acl = new tailscale.Acl(
    TAILNET_POLICY_NAME,
    { acl: JSON.stringify(policy, null, 2), overwriteExistingContent: true, resetAclOnDestroy: false },
    { parent, provider },
  );
  const keys: Record<string, pulumi.Output<string>> = {};
  for (const node of keyNodes) {
    const key = new tailscale.TailnetKey(
      tailnetKeyResourceName(node),
      {
        preauthorized: true,
        reusable: false,
        ephemeral: false,
        tags: [tags.get(node)!],
        expiry: TAILNET_KEY_EXPIRY_SECONDS,
        recreateIfInvalid: "never",
        description: tailnetKeyDescription(node),
      },
      { parent, provider, dependsOn: [acl], retainOnDelete: retain(node) },
    );
    keys[node] = pulumi.secret(key.key);
  }
  return { provider, policy: acl, keys };
}
