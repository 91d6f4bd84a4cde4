/**
 * The Pulumi program (`main` in Pulumi.yaml): loads the stack's fleet file and creates the Fleet component,
 * which creates a Node per node and a role component per role.
 *
 * Stack config (namespace `fleetkit`):
 * - `fleetFile`: fleet file to deploy, relative to the project (default `fleet.yaml`);
 * - secrets `tailscaleAuthKey`, `anthropicApiKey` or `claudeOauthToken`, optional `ntfyToken` and
 *   `sshPrivateKey` (see secrets.ts); without `sshPrivateKey` the key at fleet.yaml `defaults.sshKeyPath`
 *   is read;
 * - `bundleDir`: where the role bundles copied to Linux and macOS nodes are written first (default
 *   `.fleetkit/bundles` in the project; content-addressed, safe to delete between runs);
 * - `forgetNodes`: list of node names whose machines are gone (see fleet.ts for the two-step procedure);
 * - `tailscaleApiKey` (or `tailscaleOauthClientId` + `tailscaleOauthClientSecret`), `tailscaleTailnet`,
 *   `tailscaleTagOwners`, `tailnetPolicyFile`: tailnet as code (see tailnet.ts); with credentials set the
 *   stack owns the tailnet's policy file and mints each node's auth key, so `tailscaleAuthKey` is unused.
 *
 * A bad fleet file or missing secret stops the program with one paragraph (a `pulumi.RunError`), never a
 * stack trace.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { UserError } from "../model/errors.js";
import { loadFleetWithRoles } from "../roles/sources.js";
import type { Fleet as FleetModel } from "../model/fleet.js";
import { Fleet } from "./fleet.js";
import { CONFIG_NAMESPACE, readConfigSecrets } from "./secrets.js";
import { readTailnetConfig } from "./tailnet.js";
import { fleetTailnetPolicy, mergeTailnetPolicy, readUserPolicy, type TailnetPolicy } from "./tailnet-policy.js";

const config = new pulumi.Config(CONFIG_NAMESPACE);
const fleetFile = config.get("fleetFile") ?? "fleet.yaml";

/** The fleet file with the user roles its `roleSources:` bring (roles/sources.ts). */
async function load(file: string): Promise<FleetModel> {
  try {
    return await loadFleetWithRoles(file);
  } catch (err) {
    if (err instanceof UserError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

/** `~/…` → the home directory; other relative paths are relative to the project directory. */
function expandPath(path: string): string {
  return path === "~" || path.startsWith("~/") ? resolve(homedir(), path.slice(2)) : resolve(path);
}

/**
 * The SSH key per node: `fleetkit:sshPrivateKey` when set, else the file at the node's `sshKeyPath`
 * (read once per path). Always a secret Output, so the connection input never flips plain ↔ secret.
 * @throws pulumi.RunError when neither is available, naming the path and both fixes.
 */
function sshKeys(model: FleetModel): { key: (node: string) => pulumi.Output<string>; file: (node: string) => string | undefined } {
  const fromConfig = config.getSecret("sshPrivateKey");
  if (fromConfig !== undefined) {
    const key = pulumi.secret(fromConfig);
    return { key: () => key, file: () => undefined };
  }
  const byPath = new Map<string, { key: pulumi.Output<string>; file: string }>();
  for (const node of model.nodes) {
    if (byPath.has(node.sshKeyPath)) continue;
    const file = expandPath(node.sshKeyPath);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new pulumi.RunError(
        `cannot read the SSH private key ${node.sshKeyPath} (${model.file} defaults.sshKeyPath, ${(err as NodeJS.ErrnoException).code ?? "unreadable"}), ` +
          `which fleetkit uses to reach node ${node.name}. Point sshKeyPath at your key, or store the key in the stack with ` +
          `\`pulumi config set --secret fleetkit:sshPrivateKey < ~/.ssh/id_ed25519\`, and run again.`,
      );
    }
    byPath.set(node.sshKeyPath, { key: pulumi.secret(text), file });
  }
  const of = (name: string) => byPath.get(model.nodes.find((n) => n.name === name)!.sshKeyPath)!;
  return { key: (n) => of(n).key, file: (n) => of(n).file };
}

/** `fleetkit:forgetNodes`, checked: a list of node names (unknown names are warned about, not errors). */
function forgetNodes(model: FleetModel): string[] {
  const value = config.getObject<unknown>("forgetNodes") ?? [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new pulumi.RunError(`fleetkit:forgetNodes must be a list of node names, e.g. \`pulumi config set --path 'fleetkit:forgetNodes[0]' rpi3\`; got ${JSON.stringify(value)}.`);
  }
  const known = new Set(model.nodes.map((n) => n.name));
  for (const name of value) {
    if (!known.has(name)) pulumi.log.warn(`fleetkit:forgetNodes lists "${name}", which is not a node of ${model.file}; it has no effect (remove it from the config).`);
  }
  return value;
}

/**
 * The managed tailnet's config and policy (fleetkit's, merged with `fleetkit:tailnetPolicyFile`), or
 * undefined when the stack has no Tailscale API credentials.
 * @throws pulumi.RunError for bad tailnet config or a bad policy file (one paragraph, file:line:column).
 */
function tailnet(model: FleetModel) {
  const tailnetConfig = readTailnetConfig(config);
  if (!tailnetConfig) return undefined;
  let policy: TailnetPolicy;
  try {
    policy = fleetTailnetPolicy(model, tailnetConfig.tagOwners);
    if (tailnetConfig.policyFile) policy = mergeTailnetPolicy(policy, readUserPolicy(tailnetConfig.policyFile));
  } catch (err) {
    if (err instanceof UserError) throw new pulumi.RunError(err.message);
    throw err;
  }
  if (pulumi.runtime.getConfig(`${CONFIG_NAMESPACE}:tailscaleAuthKey`) !== undefined) {
    pulumi.log.warn(`fleetkit:tailscaleAuthKey is set but unused: with ${tailnetConfig.source} the stack mints each node's own auth key; remove it with \`pulumi config rm fleetkit:tailscaleAuthKey\`.`);
  }
  return { config: tailnetConfig, policy };
}

/**
 * Sets V8's `Error.stackTraceLimit` to 0 for the rest of the program, before any resource is created. The
 * SDK wraps each of its internal promises in `debuggablePromise` (@pulumi/pulumi runtime/debuggable.js),
 * which reads `new Error().stack` eagerly for a leak report nobody sees on a good run; under `pulumi up`
 * that stack is formatted through source-map-support, which the run harness loads (cmd/run/index.js). At
 * 500 nodes that was about half the program's time and a tenth of its heap (bench/program.bench.ts: under
 * the run harness 88 → 44 s). Resource source positions are unaffected: the SDK lifts the limit itself
 * while capturing them (resource.js `Resource.callsites`). The cost: an Error thrown later carries no
 * frames (user mistakes are `RunError`s, which print none anyway); set `FLEETKIT_STACK_TRACES=1` to keep
 * the default limit when chasing a fleetkit bug. (Set after the imports: some module loading reads stacks.)
 */
function limitPromiseStacks(): void {
  if (!process.env.FLEETKIT_STACK_TRACES) Error.stackTraceLimit = 0;
}

const model = await load(fleetFile);
const keys = sshKeys(model);

limitPromiseStacks();
const fleet = new Fleet(model.name, {
  fleet: model,
  bundleDir: expandPath(config.get("bundleDir") ?? ".fleetkit/bundles"),
  configSecrets: readConfigSecrets(config),
  sshPrivateKey: keys.key,
  sshKeyFile: keys.file,
  forgetNodes: forgetNodes(model),
  tailnet: tailnet(model),
});

/** Stack output: the fleet's name (fleet.yaml `fleet`). */
export const fleetName = model.name;
/** Stack output: bundle hash per node and role (what `fleet drift` compares nodes against). */
export const bundleHashes = fleet.bundleHashes;
/**
 * Stack output (secret): each node's queue token by node name, present when the fleet runs a queue. A
 * worker node's token is also on the node (its worker reads it); anyone else uses theirs with `fleet task`:
 * `FLEET_TOKEN=$(npx pulumi stack output --show-secrets queueTokens | jq -r .macbook2)`.
 */
export const queueTokens = Object.keys(fleet.queueTokens).length ? pulumi.secret(pulumi.all(fleet.queueTokens)) : undefined;
/**
 * Stack output (secret): the queue token of each person of fleet.yaml `people:` by name (`{}` when the fleet
 * names none or runs no queue: always set, as the engine warns about an undefined output). An operator's token does everything with every task, a viewer's only
 * reads (runtime/README.md); hand each person theirs:
 * `FLEET_TOKEN=$(npx pulumi stack output --show-secrets peopleTokens | jq -r .alice) npx fleet task status`.
 */
export const peopleTokens = pulumi.secret(pulumi.all(fleet.peopleTokens));
