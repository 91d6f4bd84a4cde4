/**
 * The hostile fleet files of hostile.test.ts: a valid base fleet in which every string that reaches a script
 * is set, the injections, the fields they go into with where each problem is reported and what its grammar
 * expects, and the grammar-edge and structure cases with their exact problem lines.
 */
import type { Fleet } from "../../model/fleet.js";

/** A valid fleet in which every string that reaches a script is set explicitly, one per line. */
export const BASE = `fleet: hostile
tailnet: tail1234.ts.net
defaults:
  user: fleet
  sshKeyPath: ~/.ssh/id_ed25519
  budgetUsdPerSession: 5
  claude:
    version: 2.1.331
    allow: [Edit, "Bash(npm test)"]
    allowedDomains: ["*.com", github.com]
services:
  ntfy:
    image: binwiederhier/ntfy:v2.14.0
    topic: fleet-tasks
    baseUrl: https://ntfy.example.org
    upstreamBaseUrl: https://ntfy.sh
    allowFrom: [fleet, 192.168.1.0/24]
  queue:
    github:
      dispatchLabel: fleet-dispatch
      poll:
        repos: [acme/widgets, acme/gadgets]
artifacts:
  agentapi:
    version: v0.10.0
    url: https://github.com/coder/agentapi/releases/download/{version}/agentapi-{os}-{goarch}
  tailscale:
    version: 1.90.6
    url: https://pkgs.tailscale.com/stable/tailscale_{version}_{goarch}.tgz
profiles:
  agent: [tailscale, claude, agentapi, iceccd, worker]
nodes:
  hub:
    host: hub.example.org
    bootstrapHost: 192.168.1.10
    os: debian
    arch: x86_64
    user: fleet
    roles: [tailscale, claude, icecc-scheduler, iceccd, ntfy, queue, worker]
    docker: true
    tags: { gpu: gtx980 }
  win:
    host: win
    os: windows-wsl
    arch: x86_64
    wslDistro: Debian
    profile: agent
`;

/** `text` with the line `from` (whole, unique) replaced by `to`. */
export function withLine(text: string, from: string, to: string): string {
  const lines = text.split("\n");
  const i = lines.indexOf(from);
  if (i < 0 || lines.indexOf(from, i + 1) >= 0) throw new Error(`fixture: line "${from}" is not in the base fleet exactly once`);
  lines[i] = to;
  return lines.join("\n");
}

/** A YAML double-quoted scalar for `s`: every character outside printable ASCII as `\uXXXX`. */
export const yamlQuote = (s: string) =>
  `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}"`;

// ─── Table 1: every injection in every field that reaches a script ───────────────────────────────────────

/**
 * One injection: its raw text, where it goes (after a valid value, or before it for an option-like `-`),
 * and how a message shows it inside quotes (JSON escapes) and in a field path (`\uXXXX`).
 */
export interface Injection {
  name: string;
  raw: string;
  at: "end" | "start";
  quoted: string;
  inName: string;
  /** A control or invisible character: refused even by the printable-text grammars. */
  control: boolean;
}
export const INJECTIONS: Injection[] = [
  { name: "$(…)", raw: "$(id)", at: "end", quoted: "$(id)", inName: "$(id)", control: false },
  { name: "backticks", raw: "`id`", at: "end", quoted: "`id`", inName: "`id`", control: false },
  { name: ";", raw: ";id", at: "end", quoted: ";id", inName: ";id", control: false },
  { name: "newline", raw: "\nExecStartPre=+/bin/id", at: "end", quoted: "\\nExecStartPre=+/bin/id", inName: "\\u000aExecStartPre=+/bin/id", control: true },
  { name: '"', raw: '"x', at: "end", quoted: '\\"x', inName: '"x', control: false },
  { name: "'", raw: "'x", at: "end", quoted: "'x", inName: "'x", control: false },
  { name: "% (systemd specifier)", raw: "%n", at: "end", quoted: "%n", inName: "%n", control: false },
  { name: "< & (plist)", raw: "</string>&", at: "end", quoted: "</string>&", inName: "</string>&", control: false },
  { name: ": (YAML)", raw: ": x", at: "end", quoted: ": x", inName: ": x", control: false },
  { name: "# (YAML)", raw: " #x", at: "end", quoted: " #x", inName: " #x", control: false },
  { name: "NUL", raw: "\u0000", at: "end", quoted: "\\u0000", inName: "\\u0000", control: true },
  { name: "ESC", raw: "\u001b[31m", at: "end", quoted: "\\u001b[31m", inName: "\\u001b[31m", control: true },
  { name: "CR", raw: "\r", at: "end", quoted: "\\r", inName: "\\u000d", control: true },
  { name: "U+2028", raw: "\u2028", at: "end", quoted: "\\u2028", inName: "\\u2028", control: true },
  { name: "RTL override", raw: "\u202e", at: "end", quoted: "\\u202e", inName: "\\u202e", control: true },
  { name: "leading -", raw: "-", at: "start", quoted: "-", inName: "-", control: false },
];

/**
 * A field whose value reaches a script: the base line it replaces, the line with a value in it, the valid
 * value the injection is added to, where the problem is reported and what the field's grammar expects.
 * `key` fields are map keys (node, profile, tag names); their message is "invalid name …".
 */
export interface Field {
  field: string;
  from: string;
  to: (quoted: string) => string;
  ok: string;
  at: string;
  expected: string;
  key?: boolean;
  /** Printable text by grammar: only control characters are refused; `read` finds the value in the model. */
  printable?: (fleet: Fleet) => unknown;
}
export const STRICT: Field[] = [
  { field: "fleet", from: "fleet: hostile", to: (v) => `fleet: ${v}`, ok: "hostile", at: "F:1:8", expected: "a lower-case hostname label (a-z, 0-9, '-')" },
  { field: "tailnet", from: "tailnet: tail1234.ts.net", to: (v) => `tailnet: ${v}`, ok: "tail1234.ts.net", at: "F:2:10", expected: "a DNS name of lower-case labels joined by dots, like tail1234.ts.net" },
  { field: "defaults.user", from: "  user: fleet", to: (v) => `  user: ${v}`, ok: "fleet", at: "F:4:9", expected: "a POSIX user name (a-z, 0-9, '_', '-')" },
  { field: "defaults.claude.version", from: "    version: 2.1.331", to: (v) => `    version: ${v}`, ok: "2.1.331", at: "F:8:14", expected: "an exact version like 2.0.14" },
  { field: "defaults.claude.allow.0", from: '    allow: [Edit, "Bash(npm test)"]', to: (v) => `    allow: [${v}, "Bash(npm test)"]`, ok: "Edit", at: "F:9:13", expected: "a permission rule like Edit or Bash(npm run test:*)" },
  { field: "defaults.claude.allowedDomains.1", from: '    allowedDomains: ["*.com", github.com]', to: (v) => `    allowedDomains: ["*.com", ${v}]`, ok: "github.com", at: "F:10:31", expected: "a domain like github.com or *.example.com" },
  { field: "services.ntfy.image", from: "    image: binwiederhier/ntfy:v2.14.0", to: (v) => `    image: ${v}`, ok: "binwiederhier/ntfy:v2.14.0", at: "F:13:12", expected: "an image reference with a tag or digest, like binwiederhier/ntfy:v2.14.0 or binwiederhier/ntfy@sha256:<64 hex>" },
  { field: "services.ntfy.topic", from: "    topic: fleet-tasks", to: (v) => `    topic: ${v}`, ok: "fleet-tasks", at: "F:14:12", expected: "an ntfy topic name (letters, digits, '_', '-')" },
  { field: "services.ntfy.baseUrl", from: "    baseUrl: https://ntfy.example.org", to: (v) => `    baseUrl: ${v}`, ok: "https://ntfy.example.org", at: "F:15:14", expected: "an http(s) URL of a host and an optional port, no path (like https://ntfy.example.org)" },
  { field: "services.ntfy.upstreamBaseUrl", from: "    upstreamBaseUrl: https://ntfy.sh", to: (v) => `    upstreamBaseUrl: ${v}`, ok: "https://ntfy.sh", at: "F:16:22", expected: "an http(s) URL without a trailing '/' (like https://ntfy.sh)" },
  { field: "services.ntfy.allowFrom.1", from: "    allowFrom: [fleet, 192.168.1.0/24]", to: (v) => `    allowFrom: [fleet, ${v}]`, ok: "192.168.1.0/24", at: "F:17:24", expected: "fleet, tailnet, anywhere or a CIDR block like 192.168.1.0/24 or fd00::/8" },
  { field: "artifacts.agentapi.version", from: "    version: v0.10.0", to: (v) => `    version: ${v}`, ok: "v0.10.0", at: "F:25:14", expected: "a semantic version like 1.90.6 or v0.10.0" },
  {
    field: "artifacts.agentapi.url",
    from: "    url: https://github.com/coder/agentapi/releases/download/{version}/agentapi-{os}-{goarch}",
    to: (v) => `    url: ${v}`,
    ok: "https://github.com/coder/agentapi/releases/download/{version}/agentapi-{os}-{goarch}",
    at: "F:26:10",
    expected: "an http(s) URL whose only {…} are {version}, {os}, {goarch}, {arch}",
  },
  { field: "artifacts.tailscale.version", from: "    version: 1.90.6", to: (v) => `    version: ${v}`, ok: "1.90.6", at: "F:28:14", expected: "a semantic version like 1.90.6 or v0.10.0" },
  {
    field: "artifacts.tailscale.url",
    from: "    url: https://pkgs.tailscale.com/stable/tailscale_{version}_{goarch}.tgz",
    to: (v) => `    url: ${v}`,
    ok: "https://pkgs.tailscale.com/stable/tailscale_{version}_{goarch}.tgz",
    at: "F:29:10",
    expected: "an http(s) URL whose only {…} are {version}, {os}, {goarch}, {arch}",
  },
  {
    field: "services.queue.github.poll.repos.1",
    from: "        repos: [acme/widgets, acme/gadgets]",
    to: (v) => `        repos: [acme/widgets, ${v}]`,
    ok: "acme/gadgets",
    at: "F:22:31",
    expected: "a GitHub repository as owner/repo, like acme/widgets",
  },
  { field: "nodes.hub.host", from: "    host: hub.example.org", to: (v) => `    host: ${v}`, ok: "hub.example.org", at: "F:34:11", expected: "a hostname, Tailscale name or IP address" },
  { field: "nodes.hub.bootstrapHost", from: "    bootstrapHost: 192.168.1.10", to: (v) => `    bootstrapHost: ${v}`, ok: "192.168.1.10", at: "F:35:20", expected: "a hostname, Tailscale name or IP address" },
  { field: "nodes.hub.user", from: "    user: fleet", to: (v) => `    user: ${v}`, ok: "fleet", at: "F:38:11", expected: "a POSIX user name (a-z, 0-9, '_', '-')" },
  { field: "nodes.win.wslDistro", from: "    wslDistro: Debian", to: (v) => `    wslDistro: ${v}`, ok: "Debian", at: "F:46:16", expected: "a WSL distribution name (letters, digits, '.', '_', '-')" },
  { field: "nodes.", from: "  hub:", to: (v) => `  ${v}:`, ok: "hub", at: "F:33:3", expected: "a lower-case hostname label (a-z, 0-9, '-')", key: true },
  { field: "profiles.", from: "  agent: [tailscale, claude, agentapi, iceccd, worker]", to: (v) => `  ${v}: [tailscale, claude, agentapi, iceccd, worker]`, ok: "agent", at: "F:31:3", expected: "a lower-case hostname label (a-z, 0-9, '-')", key: true },
  { field: "nodes.hub.tags.", from: "    tags: { gpu: gtx980 }", to: (v) => `    tags: { ${v}: gtx980 }`, ok: "gpu", at: "F:41:13", expected: "a tag key (letters, digits, '.', '_', '-')", key: true },
];
export const PRINTABLE: Field[] = [
  {
    field: "services.queue.github.dispatchLabel",
    from: "      dispatchLabel: fleet-dispatch",
    to: (v) => `      dispatchLabel: ${v}`,
    ok: "fleet-dispatch",
    at: "F:20:22",
    expected: "a GitHub label name: 1-50 printable characters",
    printable: (f) => f.services.queue.github?.dispatchLabel,
  },
  { field: "defaults.sshKeyPath", from: "  sshKeyPath: ~/.ssh/id_ed25519", to: (v) => `  sshKeyPath: ${v}`, ok: "~/.ssh/id_ed25519", at: "F:5:15", expected: "a file path (printable text)", printable: (f) => f.nodes[0]!.sshKeyPath },
  { field: "nodes.hub.tags.gpu", from: "    tags: { gpu: gtx980 }", to: (v) => `    tags: { gpu: ${v} }`, ok: "gtx980", at: "F:41:18", expected: "a tag value (printable text)", printable: (f) => f.nodes[0]!.tags.gpu },
];
/** A permission rule's specifier is printable text inside the parentheses: the injection goes inside. */
export const SPECIFIER: Field = {
  field: "defaults.claude.allow.1",
  from: '    allow: [Edit, "Bash(npm test)"]',
  to: (v) => `    allow: [Edit, ${v}]`,
  ok: "Bash(npm test)",
  at: "F:9:19",
  expected: "a permission rule like Edit or Bash(npm run test:*)",
  printable: (f) => f.claude!.allow[1],
};

/**
 * `ok` with the injection `text` added: before or after it, or (`inside`, for a permission rule's specifier)
 * just inside its parentheses.
 */
function place(ok: string, i: Injection, text: string, inside: boolean): string {
  if (!inside) return i.at === "start" ? text + ok : ok + text;
  const open = ok.indexOf("(") + 1;
  return i.at === "start" ? ok.slice(0, open) + text + ok.slice(open) : `${ok.slice(0, -1)}${text})`;
}
/** The hostile value of field value `ok` with injection `i`. */
export const inject = (ok: string, i: Injection, inside = false) => place(ok, i, i.raw, inside);
/** How a message shows that value: inside quotes, or as part of a field path. */
export const shown = (ok: string, i: Injection, how: "quoted" | "inName", inside = false) => place(ok, i, i[how], inside);

// ─── Table 2: grammar edges, wrong types, structure ──────────────────────────────────────────────────────

export const line = (from: string, to: string) => (s: string) => withLine(s, from, to);
export const HOST = "    host: hub.example.org";
export const TAILNET = "tailnet: tail1234.ts.net";
export const IMAGE = "    image: binwiederhier/ntfy:v2.14.0";
export const TS_VERSION = "    version: 1.90.6";
export const TS_URL = "    url: https://pkgs.tailscale.com/stable/tailscale_{version}_{goarch}.tgz";
export const BASE_URL = "    baseUrl: https://ntfy.example.org";
export const ALLOW_FROM = "    allowFrom: [fleet, 192.168.1.0/24]";
export const TAGS = "    tags: { gpu: gtx980 }";
export const PROFILE = "    profile: agent";
export const ALLOWED_DOMAINS = '    allowedDomains: ["*.com", github.com]';
export const POLL_REPOS = "        repos: [acme/widgets, acme/gadgets]";
export const POLL = "      poll:";

/** `edit` turns BASE into the hostile file; `expected` is every problem line. */
export const EDGES: { name: string; edit: (s: string) => string; expected: string[] }[] = [
  // services.queue.github.poll: owner/repo grammar, each once, a bounded interval
  { name: "poll repo without owner", edit: line(POLL_REPOS, "        repos: [widgets]"), expected: ['F:22:17 services.queue.github.poll.repos.0: expected a GitHub repository as owner/repo, like acme/widgets, got "widgets"'] },
  { name: "poll repo as URL", edit: line(POLL_REPOS, "        repos: [https://github.com/acme/widgets]"), expected: ['F:22:17 services.queue.github.poll.repos.0: expected a GitHub repository as owner/repo, like acme/widgets, got "https://github.com/acme/widgets"'] },
  { name: "poll repo ..", edit: line(POLL_REPOS, "        repos: [acme/..]"), expected: ['F:22:17 services.queue.github.poll.repos.0: expected a GitHub repository as owner/repo, like acme/widgets, got "acme/.."'] },
  { name: "poll owner double hyphen", edit: line(POLL_REPOS, "        repos: [ac--me/widgets]"), expected: ['F:22:17 services.queue.github.poll.repos.0: expected a GitHub repository as owner/repo, like acme/widgets, got "ac--me/widgets"'] },
  { name: "poll repo twice (case)", edit: line(POLL_REPOS, "        repos: [acme/widgets, Acme/Widgets]"), expected: ["F:22:31 services.queue.github.poll.repos.1: repository Acme/Widgets is already listed (item 0; GitHub names ignore case); list each repository once"] },
  { name: "poll repos empty", edit: line(POLL_REPOS, "        repos: []"), expected: ["F:22:16 services.queue.github.poll.repos: expected a list of ≥ 1 items, got a list"] },
  { name: "poll interval too short", edit: line(POLL_REPOS, "        repos: [acme/widgets]\n        intervalSeconds: 5"), expected: ["F:23:26 services.queue.github.poll.intervalSeconds: expected a number ≥ 10, got number 5"] },
  { name: "poll interval as text", edit: line(POLL_REPOS, "        repos: [acme/widgets]\n        intervalSeconds: 60s"), expected: ['F:23:26 services.queue.github.poll.intervalSeconds: expected a number, got "60s"'] },
  { name: "poll unknown key", edit: line(POLL, "      poll:\n        repo: acme/widgets"), expected: ['F:22:9 services.queue.github.poll.repo: unknown field "repo" (did you mean repos?); allowed here: repos, intervalSeconds'] },
  // tailnet: a DNS name
  { name: "tailnet upper case", edit: line(TAILNET, "tailnet: Tail1234.ts.net"), expected: ['F:2:10 tailnet: expected a DNS name of lower-case labels joined by dots, like tail1234.ts.net, got "Tail1234.ts.net"'] },
  { name: "tailnet one label", edit: line(TAILNET, "tailnet: tailnet"), expected: ['F:2:10 tailnet: expected a DNS name of lower-case labels joined by dots, like tail1234.ts.net, got "tailnet"'] },
  { name: "tailnet trailing dot", edit: line(TAILNET, "tailnet: tail1234.ts.net."), expected: ['F:2:10 tailnet: expected a DNS name of lower-case labels joined by dots, like tail1234.ts.net, got "tail1234.ts.net."'] },
  { name: "tailnet label of 64", edit: line(TAILNET, `tailnet: ${"a".repeat(64)}.ts.net`), expected: [`F:2:10 tailnet: expected a DNS name of lower-case labels joined by dots, like tail1234.ts.net, got "${"a".repeat(64)}.ts.net"`] },
  { name: "tailnet of 254", edit: line(TAILNET, `tailnet: ${"a.".repeat(126)}ab`), expected: [`F:2:10 tailnet: expected a DNS name of lower-case labels joined by dots, like tail1234.ts.net of at most 253 characters, got "${"a.".repeat(100)}…" (254 characters)`] },
  // host: never an option, bounded, IP octets
  { name: "host of 100,000 characters", edit: line(HOST, `    host: ${"a".repeat(100_000)}`), expected: [`F:34:11 nodes.hub.host: expected a hostname, Tailscale name or IP address of at most 253 characters, got "${"a".repeat(200)}…" (100000 characters)`] },
  { name: "host -oProxyCommand", edit: line(HOST, "    host: -oProxyCommand=id"), expected: ['F:34:11 nodes.hub.host: expected a hostname, Tailscale name or IP address, got "-oProxyCommand=id"'] },
  { name: "host IPv4 octet 256", edit: line(HOST, "    host: 10.0.0.256"), expected: ['F:34:11 nodes.hub.host: expected a hostname, Tailscale name or IP address, got "10.0.0.256"'] },
  { name: "host trailing -", edit: line(HOST, "    host: hub-"), expected: ['F:34:11 nodes.hub.host: expected a hostname, Tailscale name or IP address, got "hub-"'] },
  { name: "host with a user", edit: line(HOST, "    host: root@hub"), expected: ['F:34:11 nodes.hub.host: expected a hostname, Tailscale name or IP address, got "root@hub"'] },
  // image: the OCI reference grammar, pinned
  { name: "image without tag", edit: line(IMAGE, "    image: binwiederhier/ntfy"), expected: ['F:13:12 services.ntfy.image: expected an image reference with a tag or digest, like binwiederhier/ntfy:v2.14.0 or binwiederhier/ntfy@sha256:<64 hex>, got "binwiederhier/ntfy"'] },
  { name: "image upper-case path", edit: line(IMAGE, "    image: binwiederhier/Ntfy:v2.14.0"), expected: ['F:13:12 services.ntfy.image: expected an image reference with a tag or digest, like binwiederhier/ntfy:v2.14.0 or binwiederhier/ntfy@sha256:<64 hex>, got "binwiederhier/Ntfy:v2.14.0"'] },
  { name: "image short digest", edit: line(IMAGE, "    image: binwiederhier/ntfy@sha256:abc"), expected: ['F:13:12 services.ntfy.image: expected an image reference with a tag or digest, like binwiederhier/ntfy:v2.14.0 or binwiederhier/ntfy@sha256:<64 hex>, got "binwiederhier/ntfy@sha256:abc"'] },
  { name: "image tag of 129", edit: line(IMAGE, `    image: ntfy:${"t".repeat(129)}`), expected: [`F:13:12 services.ntfy.image: expected an image reference with a tag or digest, like binwiederhier/ntfy:v2.14.0 or binwiederhier/ntfy@sha256:<64 hex>, got "ntfy:${"t".repeat(129)}"`] },
  // artifact version and URL
  { name: "version two parts", edit: line(TS_VERSION, '    version: "1.90"'), expected: ['F:28:14 artifacts.tailscale.version: expected a semantic version like 1.90.6 or v0.10.0, got "1.90"'] },
  { name: "version latest", edit: line(TS_VERSION, "    version: latest"), expected: ['F:28:14 artifacts.tailscale.version: expected a semantic version like 1.90.6 or v0.10.0, got "latest"'] },
  { name: "version leading zero", edit: line(TS_VERSION, "    version: 01.90.6"), expected: ['F:28:14 artifacts.tailscale.version: expected a semantic version like 1.90.6 or v0.10.0, got "01.90.6"'] },
  { name: "version a number", edit: line(TS_VERSION, "    version: 1.5"), expected: ["F:28:14 artifacts.tailscale.version: expected a string, got number 1.5"] },
  { name: "url unknown placeholder", edit: line(TS_URL, "    url: https://pkgs.tailscale.com/stable/tailscale_{version}_{cpu}.tgz"), expected: ['F:29:10 artifacts.tailscale.url: expected an http(s) URL whose only {…} are {version}, {os}, {goarch}, {arch}, got "https://pkgs.tailscale.com/stable/tailscale_{version}_{cpu}.tgz"'] },
  { name: "url unclosed placeholder", edit: line(TS_URL, "    url: https://pkgs.tailscale.com/{version"), expected: ['F:29:10 artifacts.tailscale.url: expected an http(s) URL whose only {…} are {version}, {os}, {goarch}, {arch}, got "https://pkgs.tailscale.com/{version"'] },
  { name: "url ftp", edit: line(TS_URL, "    url: ftp://pkgs.tailscale.com/t.tgz"), expected: ['F:29:10 artifacts.tailscale.url: expected an http(s) URL whose only {…} are {version}, {os}, {goarch}, {arch}, got "ftp://pkgs.tailscale.com/t.tgz"'] },
  { name: "url bad percent", edit: line(TS_URL, "    url: https://pkgs.tailscale.com/a%zz"), expected: ['F:29:10 artifacts.tailscale.url: expected an http(s) URL whose only {…} are {version}, {os}, {goarch}, {arch}, got "https://pkgs.tailscale.com/a%zz"'] },
  { name: "url with credentials", edit: line(TS_URL, "    url: https://user:pw@pkgs.tailscale.com/t.tgz"), expected: ['F:29:10 artifacts.tailscale.url: expected an http(s) URL whose only {…} are {version}, {os}, {goarch}, {arch}, got "https://user:pw@pkgs.tailscale.com/t.tgz"'] },
  // ntfy URLs (ntfy's serve refuses a base-url path and an upstream-base-url ending in /)
  { name: "baseUrl with a path", edit: line(BASE_URL, "    baseUrl: https://ntfy.example.org/ntfy"), expected: ['F:15:14 services.ntfy.baseUrl: expected an http(s) URL of a host and an optional port, no path (like https://ntfy.example.org), got "https://ntfy.example.org/ntfy"'] },
  { name: "baseUrl port 70000", edit: line(BASE_URL, "    baseUrl: https://ntfy.example.org:70000"), expected: ['F:15:14 services.ntfy.baseUrl: expected an http(s) URL of a host and an optional port, no path (like https://ntfy.example.org), got "https://ntfy.example.org:70000"'] },
  { name: "baseUrl javascript:", edit: line(BASE_URL, "    baseUrl: javascript:alert(1)"), expected: ['F:15:14 services.ntfy.baseUrl: expected an http(s) URL of a host and an optional port, no path (like https://ntfy.example.org), got "javascript:alert(1)"'] },
  { name: "upstreamBaseUrl trailing /", edit: line("    upstreamBaseUrl: https://ntfy.sh", "    upstreamBaseUrl: https://ntfy.sh/"), expected: ['F:16:22 services.ntfy.upstreamBaseUrl: expected an http(s) URL without a trailing \'/\' (like https://ntfy.sh), got "https://ntfy.sh/"'] },
  // allowFrom: CIDRs validated
  ...[
    ["octet 256", "256.1.1.0/24", 24],
    ["prefix 33", "10.0.0.0/33", 24],
    ["no prefix", "10.0.0.1", 24],
    ["IPv6 prefix 129", "fd00::/129", 24],
    ["IPv6 two ::", "fd00::1::/64", 24],
    ["a host name", "example.org/24", 24],
  ].map(([name, cidr, col]) => ({
    name: `allowFrom ${name}`,
    edit: line(ALLOW_FROM, `    allowFrom: [fleet, ${cidr}]`),
    expected: [`F:17:${col} services.ntfy.allowFrom.1: expected fleet, tailnet, anywhere or a CIDR block like 192.168.1.0/24 or fd00::/8, got "${cidr}"`],
  })),
  { name: "allowFrom empty", edit: line(ALLOW_FROM, "    allowFrom: []"), expected: ["F:17:16 services.ntfy.allowFrom: expected a list of ≥ 1 items, got a list"] },
  // Claude settings
  { name: "allowedDomains bare *", edit: line(ALLOWED_DOMAINS, '    allowedDomains: ["*"]'), expected: ['F:10:22 defaults.claude.allowedDomains.0: expected a domain like github.com or *.example.com, got "*"'] },
  { name: "allowedDomains *.*", edit: line(ALLOWED_DOMAINS, '    allowedDomains: ["*.*.com"]'), expected: ['F:10:22 defaults.claude.allowedDomains.0: expected a domain like github.com or *.example.com, got "*.*.com"'] },
  { name: "allow unclosed (", edit: line('    allow: [Edit, "Bash(npm test)"]', '    allow: ["Bash(npm test"]'), expected: ['F:9:13 defaults.claude.allow.0: expected a permission rule like Edit or Bash(npm run test:*), got "Bash(npm test"'] },
  { name: "claude version 100,000 digits", edit: line("    version: 2.1.331", `    version: "2.1.${"3".repeat(100_000)}"`), expected: [`F:8:14 defaults.claude.version: expected an exact version like 2.0.14 of at most 32 characters, got "2.1.${"3".repeat(196)}…" (100004 characters)`] },
  // names, users, tags, paths: bounded
  { name: "user of 33", edit: line("  user: fleet", `  user: ${"u".repeat(33)}`), expected: [`F:4:9 defaults.user: expected a POSIX user name (a-z, 0-9, '_', '-') of at most 32 characters, got "${"u".repeat(33)}"`] },
  { name: "wslDistro leading -", edit: line("    wslDistro: Debian", "    wslDistro: -Debian"), expected: ['F:46:16 nodes.win.wslDistro: expected a WSL distribution name (letters, digits, \'.\', \'_\', \'-\'), got "-Debian"'] },
  { name: "tag value of 257", edit: line(TAGS, `    tags: { gpu: ${"g".repeat(257)} }`), expected: [`F:41:18 nodes.hub.tags.gpu: expected a tag value (printable text) of at most 256 characters, got "${"g".repeat(200)}…" (257 characters)`] },
  { name: "tag key with =", edit: line(TAGS, '    tags: { "gpu=1": x }'), expected: ['F:41:13 nodes.hub.tags.gpu=1: invalid name "gpu=1": expected a tag key (letters, digits, \'.\', \'_\', \'-\')'] },
  { name: "sshKeyPath of 4097", edit: line("  sshKeyPath: ~/.ssh/id_ed25519", `  sshKeyPath: /${"k".repeat(4096)}`), expected: [`F:5:15 defaults.sshKeyPath: expected a file path (printable text) of at most 4096 characters, got "/${"k".repeat(199)}…" (4097 characters)`] },
  // wrong types: the type, never "is required"
  { name: "sshPort a string", edit: line("  user: fleet", '  user: fleet\n  sshPort: "22"'), expected: ['F:5:12 defaults.sshPort: expected a number, got "22"'] },
  { name: "budget a list", edit: line("  budgetUsdPerSession: 5", "  budgetUsdPerSession: [5]"), expected: ["F:6:24 defaults.budgetUsdPerSession: expected a number, got a list"] },
  { name: "budget NaN", edit: line("  budgetUsdPerSession: 5", "  budgetUsdPerSession: .nan"), expected: ["F:6:24 defaults.budgetUsdPerSession: expected a number, got number NaN"] },
  { name: "host a number", edit: line(HOST, "    host: 5"), expected: ["F:34:11 nodes.hub.host: expected a string, got number 5"] },
  { name: "host null", edit: line(HOST, "    host:"), expected: ["F:34:10 nodes.hub.host: expected a string, got null"] },
  { name: "host binary", edit: line(HOST, "    host: !!binary aGVsbG8="), expected: ["F:34:20 nodes.hub.host: expected a string, got binary data"] },
  { name: "docker a string", edit: line("    docker: true", "    docker: yes"), expected: ['F:40:13 nodes.hub.docker: expected a boolean, got "yes"'] },
  { name: "tags a list", edit: line(TAGS, "    tags: [gpu]"), expected: ["F:41:11 nodes.hub.tags: expected a map, got a list"] },
  { name: "allowFrom a number", edit: line(ALLOW_FROM, "    allowFrom: [fleet, 5]"), expected: ["F:17:24 services.ntfy.allowFrom.1: expected a string, got number 5"] },
  // prototype keys: never looked up on plain objects, never dropped
  ...["__proto__", "toString", "constructor", "hasOwnProperty", "valueOf"].map((name) => ({
    name: `profile: ${name}`,
    edit: line(PROFILE, `    profile: ${name}`),
    expected: [`F:47:14 nodes.win.profile: expected one of agent, got "${name}"`],
  })),
  { name: "a node named __proto__", edit: line("  win:", "  __proto__:"), expected: ['F:42:3 nodes.__proto__: "__proto__" cannot be a name or field (JavaScript reads it as an object\'s prototype); rename it'] },
  { name: "a profile named __proto__", edit: line("  agent: [tailscale, claude, agentapi, iceccd, worker]", "  agent: [tailscale, claude, agentapi, iceccd, worker]\n  __proto__: [iceccd]"), expected: ['F:32:3 profiles.__proto__: "__proto__" cannot be a name or field (JavaScript reads it as an object\'s prototype); rename it'] },
  { name: "a tag named __proto__", edit: line(TAGS, "    tags: { __proto__: x }"), expected: ['F:41:13 nodes.hub.tags.__proto__: "__proto__" cannot be a name or field (JavaScript reads it as an object\'s prototype); rename it'] },
  { name: "a field named __proto__", edit: line("  ntfy:", "  ntfy:\n    __proto__: { port: 1 }"), expected: ['F:13:5 services.ntfy.__proto__: "__proto__" cannot be a name or field (JavaScript reads it as an object\'s prototype); rename it'] },
  { name: "an unknown field named with ESC", edit: line("    docker: true", '    docker: true\n    "\\e[2Jx": 1'), expected: ['F:41:5 nodes.hub.\\u001b[2Jx: unknown field "\\u001b[2Jx"; allowed here: host, bootstrapHost, os, arch, user, sshPort, profile, roles, budgetUsdPerSession, iceccMaxJobs, wslDistro, docker, builder, tags'] },
  // YAML structure
  {
    name: "alias bomb",
    edit: (s) => `${s}x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n${Array.from({ length: 9 }, (_, i) => `x${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(", ")}]`).join("\n")}\n`,
    expected: ["F:52:45 x4.7: aliases expand the document past 100000 values here (an alias bomb?); write the values out instead of aliasing them"],
  },
  { name: "alias without anchor", edit: line(HOST, "    host: *nowhere"), expected: ["F:34:11 nodes.hub.host: alias *nowhere has no anchor &nowhere before it; define the anchor first or write the value out"] },
  { name: "alias inside its anchor", edit: line(TAGS, "    tags: &t { gpu: *t }"), expected: ["F:41:21 nodes.hub.tags.gpu: alias *t is inside the value it names (a value cannot contain itself); write the value out"] },
  { name: "nesting 100 deep", edit: line(TAGS, `    tags: { gpu: ${"[".repeat(100)}${"]".repeat(100)} }`), expected: ["F:41:78 nodes.hub.tags.gpu.0.0.0.0.0.0.0.0.…: values nested more than 64 levels deep (fleet.yaml nests 5); flatten this value"] },
  { name: "nesting 200,000 deep", edit: line(TAGS, `    tags: { gpu: ${"[".repeat(200_000)}${"]".repeat(200_000)} }`), expected: ["F:41:78 (yaml): values nested more than 64 levels deep (fleet.yaml nests 5); flatten this value"] },
  { name: "a key twice", edit: line("    docker: true", "    docker: true\n    docker: false"), expected: ["F:41:5 (yaml): a key appears twice in one map (node names and fields must be unique)"] },
  { name: "a list as a key", edit: line("    docker: true", "    docker: true\n    ? [a, b]\n    : x"), expected: ["F:41:7 nodes.hub: a list or a map is used as a key here; keys are plain names"] },
  { name: "two documents", edit: (s) => `${s}---\nfleet: other\n`, expected: ["F:48:1 (yaml): a second YAML document starts here (a `---` line); a fleet file is one document"] },
  { name: "1,001 nodes", edit: (s) => s + Array.from({ length: 999 }, (_, i) => `  n${i}: { host: n${i}, os: debian, arch: x86_64, roles: [iceccd] }`).join("\n") + "\n", expected: ["F:32:1 nodes: 1001 nodes; one fleet file declares at most 1000 (split the machines into several fleets, one fleet file and Pulumi stack each)"] },
  { name: "a 10 MB text", edit: (s) => s + `# ${"x".repeat(10 * 1024 * 1024)}\n`, expected: ["F:1:1 (file): the fleet file is 10486950 bytes; a fleet file is at most 1048576 bytes (1 MiB; 1,000 nodes take about 100 KiB): is --fleet the right file?"] },
];

