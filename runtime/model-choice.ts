/**
 * Model choice for tasks submitted with model `auto`: the 3-tier heuristic of remote-tasks'
 * `analyze-complexity.sh` (../shared/reference/remote-tasks.md, "Model Selection Heuristics").
 */

/** Claude model aliases a task may name (`claude --model` accepts these aliases). */
export const MODELS = ["haiku", "sonnet", "opus"] as const;
/** A concrete model alias. */
export type Model = (typeof MODELS)[number];

/** Keywords that make a task complex (opus), matched as whole words, case-insensitive. */
const OPUS_PATTERNS: Array<[RegExp, string]> = [
  [/\bsecurity\b/i, "security"],
  [/\barchitecture\b/i, "architecture"],
  [/\balgorithms?\b/i, "algorithm"],
  [/\bdesign\s+patterns?\b/i, "design pattern"],
  [/\baudit\b/i, "audit"],
  [/\bcritical\b/i, "critical"],
  [/\bsensitive\b/i, "sensitive"],
];

/** Keywords that make a task moderate (sonnet), matched at word starts (`refactor` matches `refactoring`). */
const SONNET_PATTERNS: Array<[RegExp, string]> = [
  [/\brefactor/i, "refactor"],
  [/\btest/i, "test"],
  [/\bdebug/i, "debug"],
  [/\bdocument/i, "document"],
  [/\bmigrat/i, "migrate"],
  [/\bcomplex/i, "complex"],
  [/\bdesign/i, "design"],
  [/\bimplement\b.*\bfeature/is, "implement … feature"],
  [/\boptimi[sz]/i, "optimize"],
];

/** Word count above which a task is at least moderate (remote-tasks: "word count > 20"). */
export const SONNET_WORD_LIMIT = 20;

/**
 * Chooses a model for a prompt: opus when an opus keyword occurs, else sonnet when a sonnet keyword occurs or
 * the prompt has more than {@link SONNET_WORD_LIMIT} words, else haiku. Pure; never throws.
 * @returns the model and a one-line reason naming the trigger (stored with the task).
 */
export function chooseModel(prompt: string): { model: Model; reason: string } {
  for (const [re, name] of OPUS_PATTERNS) if (re.test(prompt)) return { model: "opus", reason: `keyword "${name}"` };
  for (const [re, name] of SONNET_PATTERNS) if (re.test(prompt)) return { model: "sonnet", reason: `keyword "${name}"` };
  const words = prompt.trim().split(/\s+/).filter(Boolean).length;
  if (words > SONNET_WORD_LIMIT) return { model: "sonnet", reason: `${words} words (more than ${SONNET_WORD_LIMIT})` };
  return { model: "haiku", reason: `no complexity keyword, ${words} word${words === 1 ? "" : "s"}` };
}

/**
 * Resolves a task's requested model: `auto` goes through {@link chooseModel}; a named model is kept with the
 * reason "requested".
 */
export function resolveModel(requested: "auto" | Model, prompt: string): { model: Model; reason: string } {
  return requested === "auto" ? chooseModel(prompt) : { model: requested, reason: "requested" };
}
