import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fleetRun, tempDir } from "./harness.js";
import { parseEnvFile, parseTokensFile, tokenSha256 } from "../../runtime/config.js";
import { UserError } from "../../model/errors.js";

const hash = (c: string) => c.repeat(64);
const node = { tokenSha256: hash("a"), os: "raspios", arch: "aarch64" };
const SHAPE =
  'The tokens file is JSON of the shape { "nodes": { "<node>": { "tokenSha256", "os", "arch", "tags", "budgetUsdPerSession" } }, "people": { "<person>": { "scope", "tokenSha256" } }, "ntfy": { "url", "topic", "token" } | null }; fix that field and restart the queue server.';

describe("tokens file", () => {
  it("parses a good file, filling defaults", () => {
    const f = parseTokensFile(JSON.stringify({ nodes: { pi: { ...node, budgetUsdPerSession: 5 } }, ntfy: { url: "http://orch:8091", topic: "fleet-tasks", token: "tk_x" } }), "t.json");
    expect(f).toEqual({ nodes: { pi: { ...node, tags: {}, roles: [], budgetUsdPerSession: 5 } }, people: {}, ntfy: { url: "http://orch:8091", topic: "fleet-tasks", token: "tk_x" } });
    expect(parseTokensFile(JSON.stringify({ nodes: { pi: node } }), "t.json").ntfy).toBeNull();
    const people = { alice: { scope: "operator", tokenSha256: hash("b") }, bob: { scope: "viewer", tokenSha256: hash("c") } };
    expect(parseTokensFile(JSON.stringify({ nodes: { pi: node }, people }), "t.json").people).toEqual(people);
  });

  it("keeps the SHA-256 of a token as sha256sum prints it", () => {
    expect(tokenSha256("pi-token-0123456789abcdef")).toBe(execFileSync("sha256sum", { input: "pi-token-0123456789abcdef", encoding: "utf8" }).split(" ")[0]);
  });

  it.each([
    ["no nodes", { nodes: {} }, "field nodes: at least one node is required"],
    ["a token in clear (a node)", { nodes: { pi: { ...node, token: "pi-token-0123456789abcdef" } } }, "field nodes.pi.token: the tokens file keeps only a token's SHA-256 (tokenSha256), never the token; replace token with tokenSha256"],
    ["a token in clear (a person)", { nodes: { pi: node }, people: { alice: { scope: "operator", token: "x" } } }, "field people.alice.token: the tokens file keeps only a token's SHA-256 (tokenSha256), never the token; replace token with tokenSha256 (and 1 more problem(s))"],
    ["a hash that is not 64 hex digits", { nodes: { pi: { ...node, tokenSha256: "ABC" } } }, 'field nodes.pi.tokenSha256: expected the token\'s SHA-256 as 64 lower-case hex digits (printf %s "$TOKEN" | sha256sum)'],
    ["unknown node field", { nodes: { pi: { ...node, budget: 5 } } }, 'field nodes.pi: Unrecognized key: "budget"'],
    ["bad node name", { nodes: { Pi: node } }, "field nodes.Pi: node names are lowercase letters, digits and - (as in fleet.yaml)"],
    ["bad person name", { nodes: { pi: node }, people: { Alice: { scope: "viewer", tokenSha256: hash("b") } } }, "field people.Alice: person names are lowercase letters, digits and - (as in fleet.yaml)"],
    ["a person named like a node", { nodes: { pi: node }, people: { pi: { scope: "viewer", tokenSha256: hash("b") } } }, "field people.pi: a node has the same name; a person and a node need different names"],
    ["an unknown scope", { nodes: { pi: node }, people: { alice: { scope: "admin", tokenSha256: hash("b") } } }, 'field people.alice.scope: Invalid option: expected one of "operator"|"viewer"'],
    ["negative budget", { nodes: { pi: { ...node, budgetUsdPerSession: -1 } } }, "field nodes.pi.budgetUsdPerSession: Too small: expected number to be >0"],
    ["shared token", { nodes: { pi: node, mac: { ...node, os: "macos" } } }, 'field nodes.mac.tokenSha256: the same token as node "pi"; every token has one scope, so each needs its own'],
    ["a person with a node's token", { nodes: { pi: node }, people: { alice: { scope: "operator", tokenSha256: hash("a") } } }, 'field people.alice.tokenSha256: the same token as node "pi"; every token has one scope, so each needs its own'],
    ["bad ntfy url", { nodes: { pi: node }, ntfy: { url: "orch:8091", topic: "t" } }, "field ntfy.url: expected an http:// or https:// URL"],
    ["bad ntfy topic", { nodes: { pi: node }, ntfy: { url: "http://o:1", topic: "a b" } }, "field ntfy.topic: an ntfy topic is 1-64 letters, digits, - or _"],
  ])("%s", (_n, json, msg) => {
    expect(() => parseTokensFile(JSON.stringify(json), "/etc/fleetkit/queue-tokens.json")).toThrow(new UserError(`/etc/fleetkit/queue-tokens.json: ${msg}. ${SHAPE}`));
  });

  it("names the file for bad JSON and never echoes a token", () => {
    let err: unknown;
    try {
      parseTokensFile('{"nodes": {"pi": {"tokenSha256": "secret-secret-secret-1"', "q.json");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^q\.json: not valid JSON \(/);
    expect((err as Error).message).not.toContain("secret-secret");
  });
});

describe("env file", () => {
  it("parses KEY=VALUE lines with comments, export and quotes", () => {
    expect(parseEnvFile("# claude\nexport ANTHROPIC_API_KEY='sk-ant-x'\n\nCLAUDE_CODE_OAUTH_TOKEN=\"tok\"\nEMPTY=\n", "e")).toEqual({ ANTHROPIC_API_KEY: "sk-ant-x", CLAUDE_CODE_OAUTH_TOKEN: "tok", EMPTY: "" });
  });
  it("keeps a variable named like an Object.prototype member as an own key", () => {
    const env = parseEnvFile("__proto__=x\nconstructor=y\n", "e");
    expect(Object.keys(env)).toEqual(["__proto__", "constructor"]);
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
  });
  it("names the line of a bad entry", () => {
    expect(() => parseEnvFile("A=1\nnot an assignment\n", "/etc/fleetkit/claude.env")).toThrow(
      new UserError("/etc/fleetkit/claude.env:2: expected KEY=VALUE (e.g. ANTHROPIC_API_KEY=sk-ant-…); fix or remove that line."),
    );
  });
});

describe("fleet queue serve / fleet worker: bad input exits 2 with one paragraph", () => {
  it.each([
    ["a token in clear", ["queue", "serve", "--db", "DIR/q.db", "--listen", "127.0.0.1:0", "--tokens", "DIR/bad.json"], "DIR/bad.json: field nodes.pi.token: the tokens file keeps only a token's SHA-256 (tokenSha256), never the token; replace token with tokenSha256."],
    ["missing --db", ["queue", "serve", "--listen", "127.0.0.1:0", "--tokens", "DIR/bad.json"], "fleet queue serve: --db is required."],
    ["bad --listen", ["queue", "serve", "--db", "DIR/q.db", "--listen", "8787", "--tokens", "DIR/bad.json"], '--listen must be HOST:PORT (e.g. 127.0.0.1:8787 or arch-orchestrator:8787), got "8787".'],
    ["missing tokens file", ["queue", "serve", "--db", "DIR/q.db", "--listen", "127.0.0.1:0", "--tokens", "DIR/none.json"], "cannot read tokens file DIR/none.json: ENOENT."],
    ["unknown worker flag", ["worker", "--queue", "http://127.0.0.1:1", "--token", "x"], "fleet worker: unknown option --token"],
    ["bad executor", ["worker", "--queue", "http://127.0.0.1:1", "--token-file", "DIR/bad.json", "--node", "pi", "--executor", "bash"], '--executor must be one of claude-print, agentapi, noop, got "bash".'],
  ])("%s", async (_n, args, message) => {
    const dir = tempDir();
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ nodes: { pi: { ...node, token: "pi-token-0123456789abcdef" } } }), { mode: 0o600 });
    const r = await fleetRun(args.map((a) => a.replace("DIR", dir)));
    expect(r.code).toBe(2);
    expect(r.out).toContain(message.replace("DIR", dir));
    expect(r.out).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe("fleet queue serve: bad GitHub poll flags exit 2 with one line, before anything listens", () => {
  const serve = ["queue", "serve", "--db", "DIR/q.db", "--listen", "127.0.0.1:0", "--tokens", "DIR/tokens.json"];
  const gh = ["--github-token-file", "DIR/gh.token"];
  it.each([
    ["poll without a token", [...serve, "--github-poll-repo", "acme/widgets"], "--github-webhook-secret-file, --github-poll-repo, --github-poll-seconds and --github-dispatch-label need --github-token-file or --github-app-id (the credentials the dispatched tasks use)."],
    ["a repo without owner", [...serve, ...gh, "--github-poll-repo", "widgets"], '--github-poll-repo: expected <owner>/<repo>, e.g. acme/widgets, got "widgets".'],
    ["a bad owner", [...serve, ...gh, "--github-poll-repo=-acme/widgets"], '--github-poll-repo: "-acme" is not a GitHub owner: 1-39 letters, digits or single hyphens, not at either end.'],
    ["a repo twice", [...serve, ...gh, "--github-poll-repo", "acme/widgets", "--github-poll-repo", "ACME/widgets"], "--github-poll-repo ACME/widgets is given twice (GitHub names ignore case)."],
    ["an interval under a second", [...serve, ...gh, "--github-poll-repo", "acme/widgets", "--github-poll-seconds", "0.5"], '--github-poll-seconds must be from 1 to 86400, got "0.5".'],
    ["a dispatch label nothing reads", [...serve, ...gh, "--github-dispatch-label", "go"], "--github-dispatch-label needs --github-webhook-secret-file or --github-poll-repo (the label arrives by webhook or by polling)."],
  ])("%s", async (_n, args, message) => {
    const dir = tempDir();
    writeFileSync(join(dir, "tokens.json"), JSON.stringify({ nodes: { pi: node } }), { mode: 0o600 });
    writeFileSync(join(dir, "gh.token"), "ghp_configTestToken0123\n", { mode: 0o600 });
    const r = await fleetRun(args.map((a) => a.replace("DIR", dir)));
    expect([r.code, r.out]).toEqual([2, `${message}\n`]);
  });
});
