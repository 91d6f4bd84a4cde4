#!/usr/bin/env node
// fleetkit runtime entry on a node, rendered by the queue and worker roles: `node fleet.mjs queue serve …` and
// `node fleet.mjs worker …` run the fleet CLI's own dispatcher (cli/fleet.ts `runCli`) with the verbs a
// node runs, so flags, --help, messages and exit codes are those of `npx fleet` in the repository. tsx (pinned
// in package.json beside this file) loads the TypeScript sources.
import { register } from "tsx/esm/api";

register();
const { runCli, NODE_VERBS } = await import("./cli/fleet.ts");
runCli(NODE_VERBS);
