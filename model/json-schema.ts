/**
 * `fleet.schema.json`: the JSON Schema (draft 2020-12) of fleet.yaml as written, generated from the same
 * zod schema the loader validates with, so editor completion (yaml-language-server) and validation agree.
 */
import { z } from "zod";
import { fleetFileSchema } from "./schema.js";

/** The JSON Schema object for fleet.yaml input (defaults not required). */
export function fleetJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(fleetFileSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return {
    ...schema,
    $id: "https://fleetkit.dev/fleet.schema.json",
    title: "fleetkit fleet.yaml",
    description: "One typed description of a fleet: nodes, their OS, CPU architecture, SSH address and roles.",
  };
}

/** The exact text of fleet.schema.json (2-space JSON, trailing newline). */
export function fleetJsonSchemaText(): string {
  return JSON.stringify(fleetJsonSchema(), null, 2) + "\n";
}
