/**
 * Which files an install script places, read from its `fk_put PATH MODE OWNER GROUP` calls (the only way
 * fleetkit scripts write files), and the rule for files that may hold secrets.
 */
import { preludeOf } from "./checkers.js";

/** One `fk_put` call of an install script, outside the shared prelude. */
export interface PlacedFile {
  /** Absolute path on the node. */
  path: string;
  /** Permission bits as written in the call (`0600` → 0o600). */
  mode: number;
  /**
   * `bundle`: the content follows as a quoted heredoc, i.e. it is rendered into the bundle (pure, so it
   * cannot hold a secret value); `runtime`: the content is produced on the node while the script runs
   * (from the secrets on stdin — the only input a bundle does not carry).
   */
  source: "bundle" | "runtime";
  /** The heredoc's text for `bundle` files. */
  content?: string;
}

function unquote(word: string): string {
  return word.replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
}

/** Every file the install script places with a literal path, in script order. */
export function placedFiles(install: string): PlacedFile[] {
  const body = install.slice(preludeOf(install).length);
  const out: PlacedFile[] = [];
  const lines = body.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = lines[i].match(/^\s*(?:.*\|\s*)?fk_put\s+('[^']*'|"[^"]*"|\S+)\s+([0-7]{3,4})\s/);
    if (!m) continue;
    const path = unquote(m[1]);
    if (!path.startsWith("/")) continue;
    const heredoc = lines[i].match(/<<-?\s*'(\w+)'\s*$/);
    if (heredoc) {
      const end = lines.indexOf(heredoc[1], i + 1);
      out.push({ path, mode: parseInt(m[2], 8), source: "bundle", content: lines.slice(i + 1, end).join("\n") + "\n" });
      i = end;
    } else {
      out.push({ path, mode: parseInt(m[2], 8), source: "runtime" });
    }
  }
  return out;
}

/** A file name that says it holds secrets: a word (split on `.`, `-`, `_`) env, token(s) or secret(s). */
export function secretNamed(path: string): boolean {
  const words = (path.split("/").pop() ?? "").toLowerCase().split(/[._-]/);
  return words.some((w) => ["env", "token", "tokens", "secret", "secrets"].includes(w));
}

/**
 * Secret-shaped values: the secret variables of the prelude (`FK_SECRET_x`) and the token formats of the
 * services fleetkit handles (Tailscale `tskey-…`, Anthropic `sk-ant-…`, ntfy `tk_` + 29 characters).
 */
export const SECRET_SHAPED = /FK_SECRET_|tskey-[A-Za-z0-9-]{6,}|sk-ant-[A-Za-z0-9_-]{6,}|\btk_[a-z0-9]{29}\b/;

/**
 * Why a placed file breaks the secrets rule, or null. Rule: a file whose content is produced at install
 * time (from the stdin secrets) or whose name says env/token/secret is mode 0600 — except a secret-named
 * file whose whole content is rendered in the bundle and holds nothing secret-shaped (e.g. an icecc
 * environment file, a program named for the tokens file it reads): such a file has nothing to hide.
 */
export function secretModeProblem(f: PlacedFile): string | null {
  if (f.mode === 0o600) return null;
  const mode = f.mode.toString(8).padStart(4, "0");
  if (f.source === "runtime") return `${f.path} is written at install time from the secrets on stdin but has mode ${mode}, not 0600`;
  if (secretNamed(f.path) && SECRET_SHAPED.test(f.content ?? "")) return `${f.path} is named for secrets and holds a secret-shaped value but has mode ${mode}, not 0600`;
  return null;
}

/** Whether the secrets rule looks at this file at all (it is named for secrets or written at install time). */
export function secretRuleApplies(f: PlacedFile): boolean {
  return f.source === "runtime" || secretNamed(f.path);
}
