#!/usr/bin/env node
// fleetkit runtime entry on a node, rendered by the queue and worker roles: `node fleet.mjs queue serve …` and
// `node fleet.mjs worker …` run the same verb modules as `npx fleet queue|worker` in the repository. tsx (pinned in
// package.json beside this file) loads the TypeScript sources; user mistakes print one paragraph and exit 2.
import { register } from "tsx/esm/api";

register();
const verbs = { queue: "./runtime/cli/queue.ts", worker: "./runtime/cli/worker.ts" };
const [verb, ...rest] = process.argv.slice(2);
const modulePath = verbs[verb];
if (!modulePath) {
  process.stderr.write(`fleet: this node's runtime runs only: ${Object.keys(verbs).join(", ")} (got ${verb ? `"${verb}"` : "nothing"})\n`);
  process.exit(2);
}
let mod;
try {
  mod = await import(modulePath);
} catch (err) {
  process.stderr.write(`fleet: the ${verb} runtime is not installed on this node (${err.code ?? err.message}); re-run the role's install\n`);
  process.exit(2);
}
const { UserError } = await import("./model/errors.ts");
mod.run(rest).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UserError) {
      process.stderr.write(err.message.endsWith("\n") ? err.message : err.message + "\n");
      process.exit(err.exitCode);
    }
    process.stderr.write(`fleet: internal error (please report): ${err.stack ?? err}\n`);
    process.exit(1);
  },
);
