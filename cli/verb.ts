/**
 * The flag parser every `fleet` verb shares (cli/, the operator's verbs and the node-side queue and worker): node:util `parseArgs`, strict,
 * with the same `--help`, unknown-flag message and exit codes for each verb.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UserError } from "../model/errors.js";

/** What one `fleet` verb accepts: its name (for messages), usage text and flags. */
export interface VerbSpec<O extends NonNullable<ParseArgsConfig["options"]>> {
  /** The verb as typed, e.g. `logs` (messages start `fleet logs: …`). */
  verb: string;
  /** The whole usage text, printed by `--help` and after every flag mistake. */
  usage: string;
  /** The verb's flags (node:util parseArgs options); `--help`/`-h` is added. */
  options: O;
  /** Whether words that are not flags are allowed (default true); `false` refuses each as an unexpected argument. */
  positionals?: boolean;
  /** Appended to the unknown-option message, e.g. ` (put the command after --)`. */
  unknownHint?: string;
  /** The message for an unexpected word when `positionals` is false (default: `unexpected argument "WORD"`). */
  unexpected?: (word: string) => string;
}

/** A verb's parsed command line: flag values, words before `--`, and the words after it (`fleet exec … -- CMD`). */
export interface VerbArgs<V> {
  values: V;
  positionals: string[];
  /** Words after a `--` (the option terminator); empty when there was none. */
  rest: string[];
}

type VerbValues<O extends NonNullable<ParseArgsConfig["options"]>> = ReturnType<typeof parseArgs<{ options: O & { help: { type: "boolean"; short: "h" } }; strict: true; allowPositionals: true; tokens: true }>>["values"];

/**
 * The one flag parser of the `fleet` verbs: node:util `parseArgs`, strict. `--help`/`-h` prints the usage
 * on stdout and returns null (the verb then exits 0) before anything else is checked. Every mistake is a
 * {@link UserError} (exit 2) that starts `fleet VERB:`, names the flag or word, and ends with the usage:
 * `unknown option --x`, `option --fleet needs a value`, `unexpected argument "x"`.
 */
export function parseVerb<O extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], spec: VerbSpec<O>): VerbArgs<VerbValues<O>> | null {
  const options = { ...spec.options, help: { type: "boolean", short: "h" } } as O & { help: { type: "boolean"; short: "h" } };
  const fail = (what: string) => new UserError(`fleet ${spec.verb}: ${what}\n${spec.usage.trimEnd()}\n`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const quotedWord = /'([^']*)'/.exec(e.message)?.[1] ?? "";
    // --help wins over a mistake, but only as a flag: after `--` it is a word of the command (`exec … -- grep -h`).
    const flags = argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv;
    if (flags.includes("--help") || flags.includes("-h")) return printUsage(spec.usage);
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw fail(`unknown option ${quotedWord}${spec.unknownHint ?? ""}`);
    if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const flag = quotedWord.split(" ")[0]!;
      throw fail(options[flag.replace(/^-+/, "")]?.type === "boolean" ? `option ${flag} takes no value` : `option ${flag} needs a value`);
    }
    throw fail(e.message);
  }
  if ((parsed.values as { help?: boolean }).help) return printUsage(spec.usage);
  const end = parsed.tokens.findIndex((t) => t.kind === "option-terminator");
  const before = parsed.tokens.filter((t, i) => t.kind === "positional" && (end < 0 || i < end)).map((t) => (t as { value: string }).value);
  const rest = end < 0 ? [] : parsed.tokens.slice(end + 1).filter((t) => t.kind === "positional").map((t) => (t as { value: string }).value);
  if (spec.positionals === false && before.length + rest.length > 0) {
    const word = before[0] ?? rest[0]!;
    throw fail(spec.unexpected ? spec.unexpected(word) : `unexpected argument "${word}"`);
  }
  return { values: parsed.values as VerbValues<O>, positionals: before, rest };
}

function printUsage(usage: string): null {
  process.stdout.write(usage.endsWith("\n") ? usage : `${usage}\n`);
  return null;
}
