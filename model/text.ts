/**
 * How fleet.yaml text is shown back in a message: every message is one line on a terminal, so a value or a
 * name from the file never brings its own line break, escape sequence or bidirectional override with it,
 * and a 100,000-character value is shown by its start and its length.
 */

/**
 * Characters a terminal or a log line would act on rather than show: C0 and C1 controls and DEL, the line
 * and paragraph separators U+2028/U+2029, bidirectional controls (U+061C, U+200E/F, U+202A–E, U+2066–9),
 * zero-width characters (U+200B–D, U+2060–4), the BOM U+FEFF, and lone surrogates.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Longest part of a value or name a message shows, in characters (code points): a whole download URL with
 * its bad end fits, a 100,000-character host does not.
 */
export const SHOWN_CHARACTERS = 200;

const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** `s` with every unsafe character written as `\uXXXX` (for names and paths, shown without quotes). */
export function escapeText(s: string): string {
  return s.replace(UNSAFE, escapeChar);
}

/** The first {@link SHOWN_CHARACTERS} code points of `s`, and whether any were cut. */
function shorten(s: string): [string, boolean] {
  if (s.length <= SHOWN_CHARACTERS) return [s, false];
  const points = Array.from(s);
  return points.length <= SHOWN_CHARACTERS ? [s, false] : [points.slice(0, SHOWN_CHARACTERS).join(""), true];
}

/** A name (a key, a path segment) for a message: escaped, long ones cut with `…`. */
export function showName(s: string): string {
  const [shown, cut] = shorten(s);
  return escapeText(shown) + (cut ? "…" : "");
}

/**
 * A text value for a message: double-quoted with JSON's escapes (`\n`, `\"`, `\u001b` …) plus the unsafe
 * characters above, long ones cut as `"abc…" (100000 characters)`.
 */
export function quoteText(s: string): string {
  const [shown, cut] = shorten(s);
  const quoted = JSON.stringify(shown).replace(UNSAFE, escapeChar);
  return cut ? `${quoted.slice(0, -1)}…" (${Array.from(s).length} characters)` : quoted;
}

/**
 * What a value from the file is, for "expected …, got …": `"text"`, `number 5`, `boolean true`, `null`,
 * `a list`, `a map`, `binary data` (a `!!binary` scalar), `nothing`.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (value instanceof Uint8Array) return "binary data";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return quoteText(value);
  return `${typeof value} ${String(value)}`;
}
