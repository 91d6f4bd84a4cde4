/**
 * `fleet.schema.json`: the JSON Schema (draft 2020-12) of fleet.yaml as written, generated from the same
 * zod schema the loader validates with, so editor completion (yaml-language-server) and validation agree.
 */
import { z } from "zod";
import { fleetFileSchema, ROLE_NAMES } from "./schema.js";
import { nodeName } from "./grammar.js";

/**
 * The JSON Schema object for fleet.yaml input (defaults not required). User roles (`roleSources:`) are known
 * only once their folders load, so here a role is a built-in name (offered for completion) or any role-name
 * label, and `services:` admits one settings map per user role besides the built-in blocks; the loader
 * checks both exactly.
 */
export function fleetJsonSchema(): Record<string, unknown> {
  const schema = openToUserRoles(z.toJSONSchema(fleetFileSchema, { io: "input", unrepresentable: "any" })) as Record<string, unknown>;
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

/** `schema` with every built-in role enum widened to "a built-in role or a user role's name" and `services` open to user roles' settings. */
function openToUserRoles(schema: unknown): unknown {
  const label = z.toJSONSchema(nodeName) as Record<string, unknown>;
  const userRole = { type: "string", pattern: label.pattern, maxLength: label.maxLength, description: "a user role from a folder named under roleSources" };
  const visit = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(visit);
    if (v === null || typeof v !== "object") return v;
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.enum) && o.enum.length === ROLE_NAMES.length && ROLE_NAMES.every((r, i) => o.enum && (o.enum as unknown[])[i] === r)) {
      return { anyOf: [{ type: "string", enum: [...ROLE_NAMES] }, userRole] };
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, visit(x)]));
  };
  const out = visit(schema) as { properties: { services: Record<string, unknown> } };
  out.properties.services.additionalProperties = { type: "object", description: "the settings of a user role (roleSources), checked by the role's own schema" };
  return out;
}
