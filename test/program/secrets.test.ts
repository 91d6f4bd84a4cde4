/**
 * The stdin each role's install script gets: which secrets, in which order, and the errors for missing ones.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { formatQueueTokens, MissingSecretError, secretStdin, type StackSecrets } from "../../stacks/secrets.js";
import type { Bundle } from "../../roles/types.js";

/**
/** Resolves an Output (the shared helper of STYLE.md) and tells whether it is secret. */
async function resolve(o: pulumi.Output<string>): Promise<{ value: string; secret: boolean }> {
  const value = await new Promise<string>((r) => o.apply(r));
  return { value, secret: await pulumi.isSecret(o) };
}

const stack = (config: Partial<Record<"tailscaleAuthKey" | "anthropicApiKey" | "claudeOauthToken" | "ntfyToken", string>>, extra: Partial<StackSecrets> = {}): StackSecrets => ({
  config: Object.fromEntries(Object.entries(config).map(([k, v]) => [k, pulumi.secret(v)])),
  queueTokens: {},
  ...extra,
});

type BundleSecrets = Pick<Bundle, "node" | "role" | "secrets" | "secretsMode">;
const sha = (token: string) => createHash("sha256").update(token).digest("hex");

describe("secretStdin", () => {
  it.each<[string, BundleSecrets, StackSecrets, string]>([
    ["tailscale: its auth key", { node: "rpi1", role: "tailscale", secrets: ["tailscaleAuthKey"] }, stack({ tailscaleAuthKey: "tskey-1", anthropicApiKey: "sk-1" }), "tailscaleAuthKey=tskey-1\n"],
    ["claude with an API key", { node: "rpi1", role: "claude", secrets: ["anthropicApiKey", "claudeOauthToken"], secretsMode: "any" }, stack({ anthropicApiKey: "sk-1" }), "anthropicApiKey=sk-1\n"],
    ["claude with an OAuth token", { node: "rpi1", role: "claude", secrets: ["anthropicApiKey", "claudeOauthToken"], secretsMode: "any" }, stack({ claudeOauthToken: "oat-1" }), "claudeOauthToken=oat-1\n"],
    ["claude with both, in the bundle's order", { node: "rpi1", role: "claude", secrets: ["anthropicApiKey", "claudeOauthToken"], secretsMode: "any" }, stack({ claudeOauthToken: "oat-1", anthropicApiKey: "sk-1" }), "anthropicApiKey=sk-1\nclaudeOauthToken=oat-1\n"],
    ["a worker: its own queue token", { node: "rpi2", role: "worker", secrets: ["queueToken"] }, stack({}, { queueTokens: { rpi1: pulumi.secret("AAA"), rpi2: pulumi.secret("BBB") } }), "queueToken=BBB\n"],
    [
      "the queue: every token sorted by node, and the configured ntfy token over a minted one",
      { node: "hub", role: "queue", secrets: ["queueTokens", "ntfyToken"] },
      stack({ ntfyToken: "tk_config" }, { queueTokens: { rpi2: pulumi.secret("BBB"), hub: pulumi.secret("HHH") }, mintedNtfyToken: pulumi.secret("tk_minted") }),
      `queueTokens=hub:${sha("HHH")} rpi2:${sha("BBB")}\nntfyToken=tk_config\n`,
    ],
    [
      "the queue with people: the hashes of the nodes' and the people's tokens, never a token",
      { node: "hub", role: "queue", secrets: ["queueTokens", "peopleTokens"] },
      stack({}, { queueTokens: { hub: pulumi.secret("HHH") }, peopleTokens: { bob: pulumi.secret("BOB"), alice: pulumi.secret("ALICE") } }),
      `queueTokens=hub:${sha("HHH")}\npeopleTokens=alice:${sha("ALICE")} bob:${sha("BOB")}\n`,
    ],
    [
      "tailscale in a managed tailnet: the node's own minted key, not the pasted one",
      { node: "rpi2", role: "tailscale", secrets: ["tailscaleAuthKey"] },
      stack({ tailscaleAuthKey: "tskey-pasted" }, { tailnetKeys: { rpi1: pulumi.secret("tskey-rpi1"), rpi2: pulumi.secret("tskey-rpi2") } }),
      "tailscaleAuthKey=tskey-rpi2\n",
    ],
    ["ntfy: the minted token when config has none", { node: "hub", role: "ntfy", secrets: ["ntfyToken"] }, stack({}, { mintedNtfyToken: pulumi.secret("tk_minted") }), "ntfyToken=tk_minted\n"],
  ])("%s", async (_what, bundle, secrets, expected) => {
    const stdin = secretStdin(bundle, secrets)!;
    expect(await resolve(stdin)).toEqual({ value: expected, secret: true });
  });

  it("is undefined for a bundle without secrets", () => {
    expect(secretStdin({ node: "rpi1", role: "iceccd", secrets: [] }, stack({ tailscaleAuthKey: "x" }))).toBeUndefined();
  });

  it.each<[string, BundleSecrets, StackSecrets, string]>([
    [
      "a required secret is not configured",
      { node: "rpi1", role: "tailscale", secrets: ["tailscaleAuthKey"] },
      stack({}),
      "role tailscale on node rpi1 needs the secret fleetkit:tailscaleAuthKey, which is not set in this stack's config. Set it with `pulumi config set --secret fleetkit:tailscaleAuthKey <value>` (the value stays encrypted in Pulumi.<stack>.yaml) and run again.",
    ],
    [
      "neither Claude credential is configured",
      { node: "imac", role: "claude", secrets: ["anthropicApiKey", "claudeOauthToken"], secretsMode: "any" },
      stack({ tailscaleAuthKey: "x" }),
      "role claude on node imac needs one of the secrets fleetkit:anthropicApiKey, fleetkit:claudeOauthToken, which is not set in this stack's config. Set it with `pulumi config set --secret fleetkit:anthropicApiKey <value>` (the value stays encrypted in Pulumi.<stack>.yaml) and run again.",
    ],
  ])("throws a MissingSecretError (a RunError) when %s", (_what, bundle, secrets, message) => {
    let err: unknown;
    try {
      secretStdin(bundle, secrets);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MissingSecretError);
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect((err as Error).message).toBe(message);
  });
});

describe("formatQueueTokens", () => {
  it.each<[Record<string, string>, string]>([
    [{}, ""],
    // sha256sum of "AAA", "BBB", "CCC": the queue node gets hashes, never the tokens.
    [{ rpi1: "AAA" }, "rpi1:cb1ad2119d8fafb69566510ee712661f9f14b83385006ef92aec47f523a38358"],
    [
      { "rpi2": "BBB", "arch-orchestrator": "CCC", rpi1: "AAA" },
      "arch-orchestrator:8c55ff95a660f37cb05e644e7691e6c66593f453cb2cbaa4d64aa59b40ae8032 rpi1:cb1ad2119d8fafb69566510ee712661f9f14b83385006ef92aec47f523a38358 rpi2:dcdb704109a454784b81229d2b05f368692e758bfa33cb61d04c1b93791b0273",
    ],
    [{ rpi1: undefined as unknown as string }, "rpi1:"],
  ])("%j → %j", (tokens, line) => {
    expect(formatQueueTokens(tokens)).toBe(line);
  });
});
