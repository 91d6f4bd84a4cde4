/**
 * `fleet schema [--write | --check]`: prints fleet.schema.json, writes it next to package.json, or checks
 * that the committed file matches the zod schema (exit 1 when stale).
 */
import { parseVerb } from "./verb.js";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fleetJsonSchemaText } from "../model/json-schema.js";

/** Path of the committed schema file. */
export const SCHEMA_PATH = fileURLToPath(new URL("../fleet.schema.json", import.meta.url));

const USAGE = "usage: fleet schema [--write | --check]\n  prints the JSON Schema of fleet.yaml; --write updates fleet.schema.json; --check exits 1 when it is stale\n";

export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "schema", usage: USAGE, options: { write: { type: "boolean" }, check: { type: "boolean" } } });
  if (!parsed) return 0;
  const { values: args } = parsed;
  const text = fleetJsonSchemaText();
  if (args.write) {
    const tmp = `${SCHEMA_PATH}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, SCHEMA_PATH);
    process.stdout.write(`wrote ${SCHEMA_PATH}\n`);
    return 0;
  }
  if (args.check) {
    let current = "";
    try {
      current = readFileSync(SCHEMA_PATH, "utf8");
    } catch {
      /* missing counts as stale */
    }
    if (current !== text) {
      process.stderr.write("fleet.schema.json is stale: run `npm run schema` (fleet schema --write) and commit it.\n");
      return 1;
    }
    process.stdout.write("fleet.schema.json is up to date\n");
    return 0;
  }
  process.stdout.write(text);
  return 0;
}
