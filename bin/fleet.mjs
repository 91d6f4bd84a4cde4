#!/usr/bin/env node
// Entry point for `npx fleet …`. Runs the compiled CLI (dist/fleet.js, built by `npm install` through the
// `prepare` script, bin/build-cli.mjs) when it is there and no source it was built from (dist/inputs.json)
// changed since: starting takes a bare Node start plus the verb's own modules. Otherwise, e.g. in a checkout
// without `npm install` or right after editing a source, it loads the TypeScript sources through tsx's
// loader, silently: the result is the same, only slower to start (about 0.2-1 s more, compiling each call),
// and a line on stderr about it would be one more line every caller (tests, scripts, `--json` users) filters.
import { readFileSync, statSync } from "node:fs";

const root = new URL("../", import.meta.url);

/** Whether dist/ holds a bundle at least as new as every source it was built from. */
function compiledIsCurrent() {
  try {
    const built = statSync(new URL("dist/fleet.js", root)).mtimeMs;
    const inputs = JSON.parse(readFileSync(new URL("dist/inputs.json", root), "utf8"));
    return inputs.every((file) => statSync(new URL(file, root)).mtimeMs <= built);
  } catch {
    return false; // not built, or a source was removed: the sources are the truth
  }
}

let cli;
if (compiledIsCurrent()) {
  cli = await import("../dist/fleet.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  cli = await import("../cli/fleet.ts");
}
cli.runCli();
