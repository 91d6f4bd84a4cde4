/**
 * The grammars of fleet.yaml strings that reach a script, a unit, a plist, a config file or a command line:
 * each is a zod string schema with a length bound checked first (aborting, so a 100,000-character value costs
 * one comparison and gives one message) and one anchored regular expression. The expressions are ECMA-262
 * without flags, so `fleet.schema.json` carries the same `pattern` and `maxLength` for editors.
 *
 * Nothing here quotes: templates quote every value for their target by construction (roles/). A grammar is
 * the second wall — a value outside it never reaches a template — and the first place a user hears about a
 * typo, as `file:line:col field: expected …, got …`.
 */
import { z } from "zod";

/**
 * One character of printable text: anything but C0/C1 control characters (NUL, ESC, CR, LF, TAB, DEL …),
 * the line and paragraph separators U+2028/U+2029, bidirectional controls (U+061C, U+200E/F, U+202A–E,
 * U+2066–9, e.g. the RTL override U+202E), zero-width characters (U+200B–D, U+2060–4), the BOM U+FEFF and
 * lone surrogates. A surrogate pair (an emoji) is one character: without the `u` flag the second
 * alternative takes it, with it the first does.
 */
const PRINTABLE = "(?:[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2069\\ufeff\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff])";

/** A DNS label (RFC 1123 §2.1): letters, digits and inner hyphens, at most 63 characters. */
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const LOWER_LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
/** A host name label as hosts files and mDNS write them: also inner underscores. */
const HOST_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?";
const OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;
/** RFC 4291 §2.2 text forms without an embedded IPv4 part (zod's `ipv6` expression). */
const H16 = "[0-9a-fA-F]{1,4}";
const IPV6 =
  `(?:(?:${H16}:){7}${H16}|(?:${H16}:){1,7}:|(?:${H16}:){1,6}:${H16}|(?:${H16}:){1,5}(?::${H16}){1,2}|(?:${H16}:){1,4}(?::${H16}){1,3}|` +
  `(?:${H16}:){1,3}(?::${H16}){1,4}|(?:${H16}:){1,2}(?::${H16}){1,5}|${H16}:(?::${H16}){1,6}|:(?:(?::${H16}){1,7}|:))`;
/** A host name that is not an IPv4 address in disguise (RFC 1123 §2.1: a name is not all digits and dots). */
const HOST_NAME = `(?![0-9.]+$)${HOST_LABEL}(?:\\.${HOST_LABEL})*`;
/** A TCP port 1–65535. */
const PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";
/** The authority of an http(s) URL: a DNS name, an IPv4 address or a bracketed IPv6 address, then a port. */
const AUTHORITY = `(?:(?![0-9.]+(?::|/|$))${LABEL}(?:\\.${LABEL})*|${IPV4}|\\[${IPV6}\\])(?::${PORT})?`;
/**
 * A URL path character: RFC 3986 unreserved, percent-encoded octets, `+ , = : @`. The other sub-delims
 * (`! $ & ' ( ) * ;`) are left out: no download or ntfy URL needs them, and every one means something to sh.
 */
const PCHAR = "(?:[A-Za-z0-9._~+,=:@-]|%[0-9A-Fa-f]{2})";

/** The placeholders an artifact URL may hold (roles/platform.ts `artifactUrl` substitutes exactly these). */
export const ARTIFACT_URL_PLACEHOLDERS = ["version", "os", "goarch", "arch"] as const;
const PLACEHOLDER = `\\{(?:${ARTIFACT_URL_PLACEHOLDERS.join("|")})\\}`;

function grammar(pattern: string, expected: string, maxLength: number) {
  return z
    .string()
    .max(maxLength, { message: expected, abort: true })
    .regex(new RegExp(`^${pattern}$`), expected);
}

/** A node or profile name (and the fleet's): one lower-case DNS label, so it is also a Tailscale hostname. */
export const nodeName = grammar(LOWER_LABEL, "a lower-case hostname label (a-z, 0-9, '-')", 63);

/**
 * An SSH address: an IPv4 address, an IPv6 address, or a host name (letters, digits, inner `-` and `_`,
 * dots; at most 253 characters, RFC 1035 §2.3.4). It never starts with `-`, which ssh would read as an option.
 */
export const hostName = grammar(`(?:${IPV4}|${IPV6}|${HOST_NAME})`, "a hostname, Tailscale name or IP address", 253);

/** The tailnet's MagicDNS suffix: lower-case DNS labels joined by dots, at most 253 characters (`tail1234.ts.net`). */
export const tailnetName = grammar(`${LOWER_LABEL}(?:\\.${LOWER_LABEL})+`, "a DNS name of lower-case labels joined by dots, like tail1234.ts.net", 253);

/** A POSIX user name as useradd(8) takes it (NAME_REGEX's default, at most 32 characters). */
export const posixUser = grammar("[a-z_][a-z0-9_-]{0,31}", "a POSIX user name (a-z, 0-9, '_', '-')", 32);

/** A WSL distribution name as `wsl.exe -d` takes it (`Debian`, `Ubuntu-24.04`). */
export const wslDistroName = grammar("[A-Za-z0-9][A-Za-z0-9._-]{0,63}", "a WSL distribution name (letters, digits, '.', '_', '-')", 64);

/** An exact npm version (`2.1.331`): what `npm install -g @anthropic-ai/claude-code@<version>` pins. */
export const exactVersion = grammar("(?:0|[1-9][0-9]{0,8})\\.(?:0|[1-9][0-9]{0,8})\\.(?:0|[1-9][0-9]{0,8})", "an exact version like 2.0.14", 32);

/**
 * A semantic version (semver.org 2.0.0, the expression it publishes), optionally `v`-prefixed as GitHub
 * release tags are: `v0.10.0`, `1.90.6`, `1.2.3-rc.1+build.5`.
 */
export const semanticVersion = grammar(
  "v?(?:0|[1-9][0-9]*)\\.(?:0|[1-9][0-9]*)\\.(?:0|[1-9][0-9]*)" +
    "(?:-(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?" +
    "(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?",
  "a semantic version like 1.90.6 or v0.10.0",
  64,
);

/**
 * An artifact download URL template: http or https (the file is verified against its pinned sha256, which
 * is what makes a plain-http LAN mirror safe), a host, an optional port, a path and query of URL
 * characters, and no `{…}` but {@link ARTIFACT_URL_PLACEHOLDERS}.
 */
export const artifactUrl = grammar(
  `https?://${AUTHORITY}(?:/(?:${PCHAR}|${PLACEHOLDER})*)*(?:\\?(?:${PCHAR}|[/?&]|${PLACEHOLDER})*)?`,
  `an http(s) URL whose only {…} are ${ARTIFACT_URL_PLACEHOLDERS.map((p) => `{${p}}`).join(", ")}`,
  2048,
);

/**
 * ntfy's `base-url`: http or https, a host and an optional port, no path (ntfy's `serve` refuses a path:
 * "hosting ntfy on a sub-path is not supported", cmd/serve.go).
 */
export const ntfyBaseUrl = grammar(`https?://${AUTHORITY}`, "an http(s) URL of a host and an optional port, no path (like https://ntfy.example.org)", 2048);

/** An ntfy topic (ntfy allows `[-_A-Za-z0-9]{1,64}`), not starting with `-`, which a command line would read as an option. */
export const ntfyTopic = grammar("[A-Za-z0-9_][A-Za-z0-9_-]{0,63}", "an ntfy topic name (letters, digits, '_', '-')", 64);

/** ntfy's `upstream-base-url`: http or https, a host, an optional path, no trailing `/` (cmd/serve.go). */
export const ntfyUpstreamUrl = grammar(`https?://${AUTHORITY}(?:/${PCHAR}+)*`, "an http(s) URL without a trailing '/' (like https://ntfy.sh)", 2048);

/**
 * An OCI image reference, the grammar of distribution/reference (`reference.go`): `[domain[:port]/]path`
 * with lower-case path components, then a tag (`:v2.14.0`), a digest (`@sha256:<64 hex>`) or both. A bare
 * name is refused: the image is pinned. Digests are the OCI image spec's registered sha256 and sha512.
 */
export const imageReference = grammar(
  `(?:(?:${LABEL}(?:\\.${LABEL})*|\\[${IPV6}\\])(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` +
    `(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:@(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}))?|@(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}))`,
  "an image reference with a tag or digest, like binwiederhier/ntfy:v2.14.0 or binwiederhier/ntfy@sha256:<64 hex>",
  512,
);

/** A file path on the machine that runs `pulumi up`: printable text, at most 4096 bytes' worth (PATH_MAX). */
export const localPath = grammar(`${PRINTABLE}+`, "a file path (printable text)", 4096);

/**
 * A Claude Code permission rule (settings.json `permissions.allow`, code.claude.com/docs "Permission rule
 * syntax"): a tool name (`Edit`, `mcp__github__get_issue`), optionally with a specifier of printable text in
 * parentheses (`Bash(npm run test:*)`, `WebFetch(domain:example.com)`).
 */
export const permissionRule = grammar(
  `[A-Za-z][A-Za-z0-9_-]*(?:\\(${PRINTABLE}+\\))?`,
  "a permission rule like Edit or Bash(npm run test:*)",
  512,
);

/** A sandbox network domain (settings.json `sandbox.network.allowedDomains`): a DNS name, `*.` for subdomains. */
export const domainGlob = grammar(`(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*`, "a domain like github.com or *.example.com", 253);

/** A node tag's key: letters, digits, '.', '_', '-' (no '=', which `fleet task --tag key=value` splits on). */
export const tagKey = grammar("[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?", "a tag key (letters, digits, '.', '_', '-')", 63);

/** A node tag's value: printable text, at most 256 characters (it may be empty). */
export const tagValue = grammar(`${PRINTABLE}*`, "a tag value (printable text)", 256);

/** A GitHub label name: 1-50 characters of printable text (GitHub's limit on a label's name). */
export const githubLabel = grammar(`${PRINTABLE}{1,50}`, "a GitHub label name: 1-50 printable characters", 100);

/**
 * A GitHub repository as `owner/repo`: the owner a login (1-39 letters, digits and single inner hyphens,
 * GitHub's sign-up rule), the name 1-100 of letters, digits, `.`, `_`, `-`, never `.` or `..` (what GitHub keeps
 * of a repository name). The runtime's `parseRepoRef` (runtime/api.ts) takes the same.
 */
export const githubRepo = grammar(
  "[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/(?!\\.{1,2}$)[A-Za-z0-9._-]{1,100}",
  "a GitHub repository as owner/repo, like acme/widgets",
  140,
);

/**
 * Who may reach ntfy: `fleet`, `tailnet`, `anywhere`, or a CIDR block (IPv4 octets ≤ 255 with a prefix
 * ≤ 32, or IPv6 with a prefix ≤ 128).
 */
export const reachSource = grammar(
  `(?:fleet|tailnet|anywhere|${IPV4}/(?:3[0-2]|[12]?[0-9])|${IPV6}/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))`,
  "fleet, tailnet, anywhere or a CIDR block like 192.168.1.0/24 or fd00::/8",
  64,
);
