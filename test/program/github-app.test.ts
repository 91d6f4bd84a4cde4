/**
 * The queue's GitHub credentials through the real program (stacks/index.ts under mocks): a GitHub App
 * (fleet.yaml `services.queue.github.app`, its PEM in secret config `fleetkit:githubAppPrivateKey`) reaches the
 * queue's install only on stdin, as a secret, one line of base64; exactly one of the token and the App is
 * required, with one error naming both keys; and the unit tests of the key's encoding.
 */
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { parseDocument } from "yaml";
import { describe, expect, it } from "vitest";
import { checkGitHubCredentials, encodeAppPrivateKey } from "../../stacks/secrets.js";
import { isSecret, runProgram } from "./harness.js";
import { writeFleet } from "./fleets.js";

const PEM = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
/** A line from the middle of the key: must appear nowhere but inside a secret. */
const KEY_LINE = PEM.split("\n")[4]!;
const BASE = {
  "fleetkit:tailscaleAuthKey": "tskey-auth-x",
  "fleetkit:anthropicApiKey": "sk-ant-x",
  "fleetkit:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
};

/** examples/remote-tasks.fleet.yaml with `services.queue.github` set to `github`. */
function withGithub(github: Record<string, unknown>): string {
  const doc = parseDocument(readFileSync("examples/remote-tasks.fleet.yaml", "utf8"));
  doc.setIn(["services", "queue", "github"], doc.createNode(github));
  return writeFleet(doc.toString());
}

const run = (file: string, secrets: Record<string, string>) => {
  const config = { "fleetkit:fleetFile": file, ...BASE, ...secrets };
  return runProgram(config, Object.keys({ ...BASE, ...secrets }));
};

describe("a GitHub App for the queue, through the program", () => {
  it("the App's key reaches only the queue's install, on stdin, as a secret: one line of base64 of the PEM; the unit names the App", async () => {
    const program = await run(withGithub({ app: { id: 123456, installationId: 7890 } }), { "fleetkit:githubAppPrivateKey": PEM });
    const queue = program.get("raspberrypi-queue-install");
    expect(isSecret(queue.wire.stdin)).toBe(true);
    const line = String(queue.inputs.stdin).split("\n").find((l) => l.startsWith("githubAppPrivateKey="))!;
    expect(Buffer.from(line.slice("githubAppPrivateKey=".length), "base64").toString("utf8")).toBe(PEM);
    expect(String(queue.inputs.stdin)).not.toContain("githubToken=");
    // Nowhere else: no other resource's inputs, and never the command line.
    const elsewhere = program.registrations.filter((r) => r.name !== queue.name).map((r) => JSON.stringify(r.inputs));
    expect(elsewhere.filter((t) => t.includes(KEY_LINE) || t.includes(line.slice(30, 90)))).toEqual([]);
    expect(String(queue.inputs.create)).not.toContain(line.slice(30, 90));
  });

  it.each([
    ["a token and no App", { apiUrl: "https://api.github.com" }, { "fleetkit:githubToken": "github_pat_x" }, null],
    ["an App and its key", { app: { id: 5 } }, { "fleetkit:githubAppPrivateKey": PEM }, null],
    [
      "neither",
      {},
      {},
      "services.queue.github needs exactly one of a fine-grained token (secret fleetkit:githubToken) or a GitHub App (services.queue.github.app in fleet.yaml, its private key in secret fleetkit:githubAppPrivateKey); neither is set. Set a token with `pulumi config set --secret fleetkit:githubToken github_pat_…`, or see the README's GitHub section for an App.",
    ],
    [
      "both",
      { app: { id: 5 } },
      { "fleetkit:githubAppPrivateKey": PEM, "fleetkit:githubToken": "github_pat_x" },
      "services.queue.github needs exactly one of a fine-grained token (secret fleetkit:githubToken) or a GitHub App (services.queue.github.app in fleet.yaml, its private key in secret fleetkit:githubAppPrivateKey); both are set. Remove the token with `pulumi config rm fleetkit:githubToken`, or remove services.queue.github.app to use the token.",
    ],
    [
      "the App without its key",
      { app: { id: 5 } },
      {},
      "services.queue.github needs exactly one of a fine-grained token (secret fleetkit:githubToken) or a GitHub App (services.queue.github.app in fleet.yaml, its private key in secret fleetkit:githubAppPrivateKey); services.queue.github.app (App 5) is set but fleetkit:githubAppPrivateKey is not. Set it with `pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem` (the .pem GitHub generated for the App).",
    ],
    [
      "the key without the App",
      {},
      { "fleetkit:githubAppPrivateKey": PEM },
      "services.queue.github needs exactly one of a fine-grained token (secret fleetkit:githubToken) or a GitHub App (services.queue.github.app in fleet.yaml, its private key in secret fleetkit:githubAppPrivateKey); fleetkit:githubAppPrivateKey is set but fleet.yaml has no services.queue.github.app. Add app: { id: <App ID> } there, or remove the key with `pulumi config rm fleetkit:githubAppPrivateKey`.",
    ],
  ])("%s: %s", async (_what, github, secrets, error) => {
    const result = run(withGithub(github), secrets);
    if (error === null) return void (await expect(result).resolves.toBeDefined());
    const err = await result.then(() => null, (e: unknown) => e);
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect((err as Error).message).toBe(error);
  });

  it("a key that is not a PEM private key: one RunError, the value never quoted", async () => {
    const err = await run(withGithub({ app: { id: 5 } }), { "fleetkit:githubAppPrivateKey": "ghp_notAKeyMARKER" }).then(() => null, (e: unknown) => e);
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect((err as Error).message).toBe(
      'fleetkit:githubAppPrivateKey is not a PEM private key; set it from the .pem file GitHub generated for the App (its settings, "Private keys") with `pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem`.',
    );
  });
});

describe("encodeAppPrivateKey", () => {
  it.each([
    ["a PKCS#1 PEM", PEM, PEM],
    ["with CRLF line ends and no final newline", PEM.trim().replaceAll("\n", "\r\n"), PEM],
    ["with blank lines around it", `\n\n${PEM}\n\n`, PEM],
  ])("%s → base64 of the PEM with LF line ends and one final newline", (_what, input, pem) => {
    const out = encodeAppPrivateKey(input);
    expect(out).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(out, "base64").toString("utf8")).toBe(pem);
  });

  it.each([["not a key"], ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"], ["-----BEGIN RSA PRIVATE KEY-----\nnot;base64\n-----END RSA PRIVATE KEY-----"]])("refuses %j", (text) => {
    expect(() => encodeAppPrivateKey(text)).toThrow(/^fleetkit:githubAppPrivateKey is not a PEM private key/);
  });
});

describe("checkGitHubCredentials", () => {
  it("checks nothing without services.queue.github", () => {
    expect(() => checkGitHubCredentials(undefined, { githubToken: pulumi.secret("x"), githubAppPrivateKey: pulumi.secret("y") })).not.toThrow();
  });
});
