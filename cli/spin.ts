/**
 * A spinner on long steps of the operator's verbs (probing many nodes, downloading artifacts, Pulumi's
 * preview): zx's `spinner`, shown only when stderr is a terminal and the verb prints text (never with
 * `--json`, never into a pipe or a CI log), so piped and machine-read output is exactly what it was.
 */
import { spinner } from "zx";

/**
 * Runs `step`, with zx's spinner and `title` on stderr while it runs when stderr is a TTY and `quiet` is
 * false (e.g. `--json`). Resolves or rejects as `step` does.
 */
export async function withSpinner<T>(title: string, quiet: boolean, step: () => Promise<T>): Promise<T> {
  if (quiet || !process.stderr.isTTY) return step();
  return spinner(title, step);
}
