/**
 * "Did you mean …?" for fleet.yaml errors: known aliases first (what people call these things
 * elsewhere), then the closest spelling by edit distance or a shared prefix.
 */

/**
 * Names people write for our enum values (Raspberry Pi OS was called Raspbian until 2020). A Map: the
 * input is the user's text, and `constructor` must not find Object.prototype's.
 */
const ALIASES = new Map<string, string>(Object.entries({
  raspbian: "raspios",
  "raspberry-pi-os": "raspios",
  darwin: "macos",
  osx: "macos",
  "mac-os": "macos",
  windows: "windows-wsl",
  wsl: "windows-wsl",
  wsl2: "windows-wsl",
  archlinux: "arch",
  amd64: "x86_64",
  x64: "x86_64",
  "x86-64": "x86_64",
  arm64: "aarch64",
  armv8: "aarch64",
  icecc: "iceccd",
  icecream: "iceccd",
  scheduler: "icecc-scheduler",
  "claude-code": "claude",
}));

/** Levenshtein distance (insert, delete, substitute = 1). */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/**
 * The candidate the user most likely meant by `input`, or undefined when none is close.
 * Close = a known alias, an edit distance of at most max(2, ⌊len/3⌋), or a shared prefix of 4+ characters.
 */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const lower = input.toLowerCase();
  const alias = ALIASES.get(lower);
  if (alias && candidates.includes(alias)) return alias;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestScore) {
      bestScore = d;
      best = c;
    }
  }
  if (best !== undefined && bestScore <= Math.max(2, Math.floor(input.length / 3))) return best;
  const byPrefix = candidates.find((c) => c.length >= 4 && lower.length >= 4 && c.slice(0, 4) === lower.slice(0, 4));
  return byPrefix;
}

/** `" (did you mean X?)"` or the empty string. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const s = suggest(input, candidates);
  return s ? ` (did you mean ${s}?)` : "";
}
