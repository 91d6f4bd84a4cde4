#!/usr/bin/env node
// Entry point for `npx fleet …`: loads the TypeScript CLI through tsx's loader so users need no build step.
import { register } from "tsx/esm/api";

register();
const { runCli } = await import("../cli/fleet.ts");
runCli();
