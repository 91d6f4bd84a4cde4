#!/usr/bin/env node
// Entry point for `npx fleet …`: runs the TypeScript CLI through tsx's loader so users need no build step.
import { register } from "tsx/esm/api";
register();
await import("../scripts/fleet.ts");
