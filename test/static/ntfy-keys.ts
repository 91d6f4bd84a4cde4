/**
 * The keys ntfy documents for its server.yml.
 *
 * Source: ntfy's documentation, docs/config.md, section "Config options" (the table of every option,
 * https://docs.ntfy.sh/config/#config-options; read from github.com/binwiederhier/ntfy at commit
 * 00af52411c6ab936c29f6e9c554621ac298307bf), plus the declarative auth keys documented from ntfy 2.14 in
 * the same page's "Access control" / "Users via the config" / "Access tokens" sections (binwiederhier/ntfy
 * commits 2578236d8d156b1608afe9ad33a41187f5949eec and 8f930acfb84c6def413ae22493eced592ea9b6a3: "the
 * `auth-users` config option", "the `auth-access` option", "the `auth-tokens` config option").
 * ntfy accepts every key with underscores instead of dashes as well (same page: "cache_duration and
 * cache-duration are both supported"); {@link isDocumentedNtfyKey} normalises that.
 */
export const NTFY_DOCUMENTED_KEYS: ReadonlySet<string> = new Set([
  // "Config options" table, in the page's order
  "base-url", "listen-http", "listen-https", "listen-unix", "listen-unix-mode", "key-file", "cert-file",
  "firebase-key-file", "cache-file", "cache-duration", "cache-startup-queries", "cache-batch-size",
  "cache-batch-timeout", "auth-file", "auth-default-access", "behind-proxy", "attachment-cache-dir",
  "attachment-total-size-limit", "attachment-file-size-limit", "attachment-expiry-duration",
  "smtp-sender-addr", "smtp-sender-user", "smtp-sender-pass", "smtp-sender-from", "smtp-server-listen",
  "smtp-server-domain", "smtp-server-addr-prefix", "keepalive-interval", "manager-interval",
  "global-topic-limit", "upstream-base-url", "visitor-attachment-total-size-limit",
  "visitor-attachment-daily-bandwidth-limit", "visitor-email-limit-burst", "visitor-email-limit-replenish",
  "visitor-request-limit-burst", "visitor-request-limit-replenish", "visitor-request-limit-exempt-hosts",
  "visitor-subscription-limit", "web-root", "enable-signup", "enable-login", "enable-reservations",
  "stripe-secret-key", "stripe-webhook-key",
  // "Log level" section of the same page (hot-reloadable `log-level`)
  "log-level",
  // ntfy 2.14: users, ACL entries and tokens declared in server.yml
  "auth-users", "auth-access", "auth-tokens",
]);

/** Whether `key` (dashes or underscores) is an option ntfy documents for server.yml. */
export function isDocumentedNtfyKey(key: string): boolean {
  return NTFY_DOCUMENTED_KEYS.has(key.replace(/_/g, "-"));
}

/**
 * Top-level keys an install script appends to the ntfy config at install time (the secret part), found as
 * `printf 'KEY:` lines — the way the ntfy role writes `auth-tokens` beside the rendered public part.
 */
export function appendedYamlKeys(install: string): string[] {
  return [...install.matchAll(/printf '([a-z][a-z0-9_-]*):\\n/g)].map((m) => m[1]);
}
