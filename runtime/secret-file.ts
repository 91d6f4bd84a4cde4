/**
 * Reading a secret (a token, the tokens file, an env file) from a file, never from a command line. Apart from
 * runtime/config.ts (zod, for the tokens file) so that `fleet task` reads its token without loading zod.
 */
import { readFileSync, statSync } from "node:fs";
import { UserError } from "../model/errors.js";

/**
 * Reads a file holding a secret (a token or env file). Warns on stderr when group or others may read it
 * (it should be mode 0600). Throws {@link UserError} when it is missing or empty.
 */
export function readSecretFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
    const mode = statSync(file).mode & 0o077;
    if (mode !== 0) process.stderr.write(`fleet: warning: ${what} ${file} is readable by group or others; run: chmod 600 ${file}\n`);
  } catch (err) {
    throw new UserError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}. Check the path (it is created by the queue/worker role, mode 0600).`);
  }
  if (!text.trim()) throw new UserError(`${what} ${file} is empty; it must hold the secret.`);
  return text;
}
