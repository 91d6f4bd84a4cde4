/**
 * The stack's secrets: read from Pulumi secret config or minted by the stack, and handed to a role's install
 * script on stdin as `NAME=value` lines (the names of roles/types.ts `SecretName`, read by the prelude's
 * `fk_read_secrets` / `Fk-ReadSecrets`). Secrets never reach a command string, a file in the repo or a log.
 *
 * Set them with
 * ```
 * pulumi config set --secret fleetkit:tailscaleAuthKey tskey-auth-…   # not needed when the stack manages the tailnet (stacks/tailnet.ts)
 * pulumi config set --secret fleetkit:anthropicApiKey sk-ant-…        # or fleetkit:claudeOauthToken (claude setup-token)
 * pulumi config set --secret fleetkit:ntfyToken tk_…                  # optional: minted by the stack when unset
 * pulumi config set --secret fleetkit:sshPrivateKey < ~/.ssh/id_ed25519   # optional: else defaults.sshKeyPath is read
 * pulumi config set --secret fleetkit:githubToken github_pat_…       # with services.queue.github: GitHub issue tasks
 * pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem   # or, with services.queue.github.app: a GitHub App's key
 * pulumi config set --secret fleetkit:githubWebhookSecret …           # with services.queue.github.webhook: true
 * ```
 * Per-node queue tokens and the tokens of the people in fleet.yaml `people:` are always minted by the stack
 * (`random.RandomPassword`, kept secret in the state); the queue node receives only their SHA-256. Per-node
 * Tailscale auth keys are minted when the stack has Tailscale API credentials (`tailscale.TailnetKey`).
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type { Bundle, SecretName } from "../roles/types.js";

/** The Pulumi config namespace of every fleetkit key (`fleetkit:fleetFile`, `fleetkit:tailscaleAuthKey` …). */
export const CONFIG_NAMESPACE = "fleetkit";

/** Secrets a user sets with `pulumi config set --secret fleetkit:<name>`. */
export const CONFIG_SECRETS = ["tailscaleAuthKey", "anthropicApiKey", "claudeOauthToken", "ntfyToken", "githubToken", "githubAppPrivateKey", "githubWebhookSecret"] as const;
/** A secret read from config. */
export type ConfigSecretName = (typeof CONFIG_SECRETS)[number];

/** Length of a minted queue token in characters (letters and digits: about 190 bits). */
export const QUEUE_TOKEN_LENGTH = 32;
/** Random characters after `tk_` in a minted ntfy access token (ntfy's own tokens have 29, lower-case and digits). */
export const NTFY_TOKEN_RANDOM_LENGTH = 29;

/** The secret values a stack can feed to install scripts; each an Output marked secret. */
export interface StackSecrets {
  /** From config, by name; absent when not set. */
  config: Partial<Record<ConfigSecretName, pulumi.Output<string>>>;
  /** Minted per node: the bearer token of that node's worker and CLI, keyed by node name. */
  queueTokens: Record<string, pulumi.Output<string>>;
  /** Minted per person of fleet.yaml `people:` (when the fleet runs a queue): their `fleet task` token, keyed by name. */
  peopleTokens?: Record<string, pulumi.Output<string>>;
  /** Minted when `fleetkit:ntfyToken` is unset and some bundle needs it. */
  mintedNtfyToken?: pulumi.Output<string>;
  /**
   * Minted per node when the stack manages the tailnet (stacks/tailnet.ts): the node's single-use Tailscale
   * auth key, keyed by node name; used instead of the shared `fleetkit:tailscaleAuthKey`.
   */
  tailnetKeys?: Record<string, pulumi.Output<string>>;
}

/**
 * `fleetkit:githubAppPrivateKey` as it goes on stdin: the PEM (a multi-line text, set from the App's .pem file)
 * as one line of base64 (RFC 4648, with padding), which the queue role's script decodes into the key file.
 * @throws pulumi.RunError when the value is not a PEM private key (the value itself is never quoted).
 */
export function encodeAppPrivateKey(pem: string): string {
  const text = pem.replace(/\r\n/g, "\n").trim();
  if (!/^-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+\n-----END ([A-Z ]+ )?PRIVATE KEY-----$/.test(text)) {
    throw new pulumi.RunError("fleetkit:githubAppPrivateKey is not a PEM private key; set it from the .pem file GitHub generated for the App (its settings, \"Private keys\") with `pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem`.");
  }
  return Buffer.from(`${text}\n`, "utf8").toString("base64");
}

/**
 * Reads the config secrets (`fleetkit:<name>` for each of {@link CONFIG_SECRETS}) that are set. Values are
 * secret Outputs whether or not the user used `--secret`, so a value never flips between plain and secret.
 * `githubAppPrivateKey` is the one multi-line value: it becomes one line by {@link encodeAppPrivateKey}.
 * @throws pulumi.RunError when a value holds a line break: it would corrupt (or forge) stdin's
 *   `NAME=value` lines; or when `githubAppPrivateKey` is not a PEM private key.
 */
export function readConfigSecrets(config: pulumi.Config): StackSecrets["config"] {
  const out: StackSecrets["config"] = {};
  for (const name of CONFIG_SECRETS) {
    // The raw value, read without wrapping it, only to check its shape; it is wrapped as a secret below.
    const raw = pulumi.runtime.getConfig(`${config.name}:${name}`);
    if (raw === undefined) continue;
    if (name === "githubAppPrivateKey") {
      out[name] = pulumi.secret(encodeAppPrivateKey(raw));
      continue;
    }
    if (/[\r\n]/.test(raw)) {
      throw new pulumi.RunError(`fleetkit:${name} contains a line break; set it again as one line with \`pulumi config set --secret fleetkit:${name} <value>\`.`);
    }
    out[name] = pulumi.secret(raw);
  }
  return out;
}

/**
 * The one-line value of `queueTokens` and `peopleTokens` (the queue server's view of the tokens):
 * `name:sha256` pairs sorted by name, separated by single spaces, each the SHA-256 of the token as 64
 * lower-case hex digits (what `printf %s TOKEN | sha256sum` prints). The queue checks a presented token by
 * its hash, so it never needs, or keeps, the token itself.
 */
export function formatQueueTokens(tokens: Record<string, string>): string {
  // A token the engine has not produced (a preview's unknown, some test engines' empty state) hashes to
  // nothing; the queue's tokens merge refuses such a pair, so it can never reach a tokens file.
  const hash = (token: string | undefined) => (typeof token === "string" ? createHash("sha256").update(token, "utf8").digest("hex") : "");
  return Object.keys(tokens)
    .sort()
    .map((name) => `${name}:${hash(tokens[name])}`)
    .join(" ");
}

/**
 * Checks the queue's GitHub credentials against fleet.yaml `services.queue.github` (`github`, undefined when
 * unset): exactly one of a fine-grained token (`fleetkit:githubToken`) or a GitHub App (`github.app` in
 * fleet.yaml and its key `fleetkit:githubAppPrivateKey`). Nothing to check without `github`.
 * @throws pulumi.RunError naming both keys when neither or both are set, or when the App's key and
 *   fleet.yaml disagree.
 */
export function checkGitHubCredentials(github: { app?: { id: number } } | undefined, config: StackSecrets["config"]): void {
  if (!github) return;
  const token = config.githubToken !== undefined;
  const key = config.githubAppPrivateKey !== undefined;
  const both = "services.queue.github needs exactly one of a fine-grained token (secret fleetkit:githubToken) or a GitHub App (services.queue.github.app in fleet.yaml, its private key in secret fleetkit:githubAppPrivateKey)";
  if (github.app) {
    if (token) throw new pulumi.RunError(`${both}; both are set. Remove the token with \`pulumi config rm fleetkit:githubToken\`, or remove services.queue.github.app to use the token.`);
    if (!key) throw new pulumi.RunError(`${both}; services.queue.github.app (App ${github.app.id}) is set but fleetkit:githubAppPrivateKey is not. Set it with \`pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem\` (the .pem GitHub generated for the App).`);
    return;
  }
  if (key) throw new pulumi.RunError(`${both}; fleetkit:githubAppPrivateKey is set but fleet.yaml has no services.queue.github.app. Add app: { id: <App ID> } there, or remove the key with \`pulumi config rm fleetkit:githubAppPrivateKey\`.`);
  if (!token) throw new pulumi.RunError(`${both}; neither is set. Set a token with \`pulumi config set --secret fleetkit:githubToken github_pat_…\`, or see the README's GitHub section for an App.`);
}

/**
 * Thrown while building the program when a bundle needs a secret that is not configured. A
 * {@link pulumi.RunError}, so `pulumi up` prints this one paragraph and no stack trace.
 */
export class MissingSecretError extends pulumi.RunError {
  constructor(bundle: Pick<Bundle, "node" | "role" | "secrets" | "secretsMode" | "requiredSecrets">, missing: SecretName[]) {
    const keys = missing.map((s) => `fleetkit:${s}`);
    const what = bundle.secretsMode === "any" ? `one of the secrets ${keys.join(", ")}` : `the secret ${keys.join(", ")}`;
    super(
      `role ${bundle.role} on node ${bundle.node} needs ${what}, which is not set in this stack's config. ` +
        `Set it with \`pulumi config set --secret ${keys[0]} <value>\` (the value stays encrypted in Pulumi.<stack>.yaml) and run again.`,
    );
    this.name = "MissingSecretError";
  }
}

/**
 * The value of one bundle secret for a node, or undefined when the stack has none.
 * Sources: the node's minted auth key (managed tailnet), else config, for tailscaleAuthKey; config for
 * anthropicApiKey, claudeOauthToken; config or the minted token for ntfyToken; the node's minted token for
 * queueToken; the hashes of every node's minted token ({@link formatQueueTokens}) for queueTokens, of every
 * person's for peopleTokens.
 */
export function secretValue(secrets: StackSecrets, node: string, name: SecretName): pulumi.Output<string> | undefined {
  switch (name) {
    case "queueToken":
      return secrets.queueTokens[node];
    case "queueTokens":
      return Object.keys(secrets.queueTokens).length ? pulumi.all(secrets.queueTokens).apply(formatQueueTokens) : undefined;
    case "peopleTokens":
      return secrets.peopleTokens && Object.keys(secrets.peopleTokens).length ? pulumi.all(secrets.peopleTokens).apply(formatQueueTokens) : undefined;
    case "ntfyToken":
      return secrets.config.ntfyToken ?? secrets.mintedNtfyToken;
    case "tailscaleAuthKey":
      return secrets.tailnetKeys?.[node] ?? secrets.config.tailscaleAuthKey;
    default:
      return secrets.config[name];
  }
}

/**
 * The stdin of a bundle's install command: one `NAME=value` line per secret the bundle declares and the
 * stack has, in the bundle's order, as a secret Output; undefined when the bundle declares none.
 * Values are one line each: config values are checked by {@link readConfigSecrets}, minted tokens are
 * letters and digits.
 * @throws MissingSecretError when a required secret is not configured (mode `all`: any missing; mode
 *   `any`: all missing).
 */
export function secretStdin(bundle: Pick<Bundle, "node" | "role" | "secrets" | "secretsMode" | "requiredSecrets">, secrets: StackSecrets): pulumi.Output<string> | undefined {
  if (bundle.secrets.length === 0) return undefined;
  const present: [SecretName, pulumi.Output<string>][] = [];
  const missing: SecretName[] = [];
  for (const name of bundle.secrets) {
    const value = secretValue(secrets, bundle.node, name);
    if (value) present.push([name, value]);
    else missing.push(name);
  }
  if (bundle.secretsMode === "any") {
    // At least one of the alternatives (e.g. API key or OAuth token), and every required one (e.g. queueToken).
    const required = new Set(bundle.requiredSecrets ?? []);
    if (!present.some(([name]) => !required.has(name))) throw new MissingSecretError(bundle, missing.filter((n) => !required.has(n)));
    const requiredMissing = missing.filter((n) => required.has(n));
    if (requiredMissing.length) throw new MissingSecretError({ ...bundle, secretsMode: undefined }, requiredMissing);
  } else if (missing.length > 0) throw new MissingSecretError(bundle, missing);
  const lines = present.map(([name, value]) => value.apply((v) => `${name}=${v}\n`));
  return pulumi.secret(pulumi.all(lines).apply((l) => l.join("")));
}
