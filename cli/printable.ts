/**
 * Text from the queue made safe for a terminal. Prompts, results, errors, presence messages and the queue's
 * own error messages are written by whoever submitted or ran a task; printed raw, an ESC sequence in them
 * moves the cursor, clears the screen, retitles the terminal or (OSC 52) writes the clipboard, and a Unicode
 * bidi control reorders what the reader sees ("Trojan Source", CVE-2021-42574).
 */

/** C0 controls, DEL, C1 controls, and the Unicode bidi controls (LRM, RLM, ALM, LRE…RLO, LRI…PDI). */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\t": "\\t", "\r": "\\r" };

/**
 * Returns `text` with every control character shown as a visible escape: `\n`, `\t`, `\r` by name, other C0
 * and DEL as `\xHH`, C1 and bidi controls as `\uHHHH`. With `multiLine`, newlines and tabs are kept as they
 * are (results and errors span lines); carriage returns are still escaped (they overwrite a line). Used for
 * every human-readable line `fleet task` prints, on a terminal and into a pipe alike; `--json` output is
 * exact JSON instead.
 */
export function printable(text: string, multiLine = false): string {
  return text.replace(UNSAFE, (c) => {
    if (multiLine && (c === "\n" || c === "\t")) return c;
    const named = Object.hasOwn(NAMED, c) ? NAMED[c] : undefined;
    if (named) return named;
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
