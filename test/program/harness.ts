/**
 * Runs the real Pulumi program (`stacks/index.ts`) under `pulumi.runtime.setMocks` and records what the
 * Pulumi SDK sends the engine for every resource: type, name, parent, dependencies, options and inputs
 * (both decoded and in the wire form that keeps secret markers). The engine side is Pulumi's own
 * MockMonitor; we only watch its RegisterResource requests.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { vi } from "vitest";
import { programMocks } from "./mocks.js";
import { FLEET_CHILD_TYPES, FLEET_TYPE, NODE_TYPE, type FleetPlan } from "../../stacks/plan.js";

/** Pulumi's wire signature of a secret value (sdk/nodejs/runtime/rpc.ts `specialSecretSig`). */
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

/** One RegisterResource request as the SDK sent it. */
export interface Registration {
  type: string;
  name: string;
  urn: string;
  custom: boolean;
  /** Parent resource name ("" for a root resource) and type. */
  parent: string;
  parentType: string;
  /** Names of the resources the engine is told this one depends on (explicit dependsOn and inputs), sorted. */
  dependsOn: string[];
  /** Inputs decoded to plain values (secrets unwrapped). */
  inputs: Record<string, unknown>;
  /** Inputs in wire form: a secret is `{ [SIG_KEY]: SECRET_SIG, value }`. */
  wire: Record<string, unknown>;
  deleteBeforeReplace: boolean;
  retainOnDelete: boolean;
  additionalSecretOutputs: string[];
  replaceOnChanges: string[];
  /** Provider reference (`urn::id`), "" for the default provider. */
  provider: string;
}

/** True when a wire-form value is a Pulumi secret. */
export function isSecret(wire: unknown): boolean {
  return typeof wire === "object" && wire !== null && (wire as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** A wire-form value with every secret envelope replaced by its value. */
export function reveal(wire: unknown): unknown {
  if (isSecret(wire)) return reveal((wire as { value: unknown }).value);
  if (Array.isArray(wire)) return wire.map(reveal);
  if (wire && typeof wire === "object") return Object.fromEntries(Object.entries(wire).map(([k, v]) => [k, reveal(v)]));
  return wire;
}

const nameOf = (urn: string) => (urn ? urn.slice(urn.lastIndexOf("::") + 2) : "");
const typeOf = (urn: string) => {
  if (!urn) return "";
  const qualified = urn.split("::")[2];
  return qualified.slice(qualified.lastIndexOf("$") + 1);
};

export { MINTED_MARKER, mockManifest, providerOutputs, deviceLookup } from "./mocks.js";

/** Where the program runs of this test process write bundle files (the `fleetkit:bundleDir` they get unless given one). */
export const BUNDLE_DIR = mkdtempSync(join(tmpdir(), "fleetkit-bundles-"));

/** What one program run produced. */
export interface ProgramRun {
  registrations: Registration[];
  /** The program module's exports (stack outputs). */
  outputs: Record<string, unknown>;
  /** V8's `Error.stackTraceLimit` as the program left it (stacks/index.ts `limitPromiseStacks`); restored after the run. */
  stackTraceLimit: number;
  /** Registration by resource name. @throws Error when absent. */
  get(name: string): Registration;
}

/**
 * Runs `stacks/index.ts` once with the given stack config (`fleetkit:` keys; `secretKeys` are marked secret
 * like `pulumi config set --secret`), waits until every registration is done, and returns them.
 * @throws whatever the program throws (e.g. pulumi.RunError for a bad fleet file).
 */
export async function runProgram(config: Record<string, string>, secretKeys: string[] = []): Promise<ProgramRun> {
  vi.resetModules();
  await pulumi.runtime.setMocks(programMocks, "fleetkit", "dev", false);
  // Bundle files go to a temp dir, not the checkout's .fleetkit/bundles (content-addressed: runs share it).
  pulumi.runtime.setAllConfig({ "fleetkit:bundleDir": BUNDLE_DIR, ...config }, secretKeys);
  const registrations: Registration[] = [];
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterRequest, cb: unknown): Promise<void> };
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const wire = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
    const parentUrn = req.getParent();
    registrations.push({
      type: req.getType(),
      name: req.getName(),
      urn: "",
      custom: req.getCustom(),
      parent: nameOf(parentUrn),
      parentType: typeOf(parentUrn),
      dependsOn: [...new Set(req.getDependenciesList().map(nameOf))].sort(),
      inputs: reveal(wire) as Record<string, unknown>,
      wire,
      deleteBeforeReplace: req.getDeletebeforereplace(),
      retainOnDelete: req.getRetainondelete?.() ?? false,
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      replaceOnChanges: req.getReplaceonchangesList(),
      provider: req.getProvider(),
    });
    return original(req, cb);
  };
  let outputs: Record<string, unknown>;
  // The program lowers the limit for its own run; the test process keeps its frames for later failures.
  const limit = Error.stackTraceLimit;
  let stackTraceLimit = limit;
  try {
    outputs = { ...(await import("../../stacks/index.js")) };
  } finally {
    stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = limit;
    await pulumi.runtime.disconnect();
  }
  const byName = new Map(registrations.map((r) => [r.name, r]));
  return {
    registrations,
    outputs,
    stackTraceLimit,
    get(name) {
      const r = byName.get(name);
      if (!r) throw new Error(`no resource named ${name} was registered`);
      return r;
    },
  };
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getDependenciesList(): string[];
  getObject(): { toJavaScript(): unknown } | undefined;
  getDeletebeforereplace(): boolean;
  getRetainondelete?(): boolean;
  getAdditionalsecretoutputsList(): string[];
  getReplaceonchangesList(): string[];
  getProvider(): string;
}

/** A resource as compared: type, name, parent name, dependency names. */
export interface Shape {
  type: string;
  name: string;
  parent: string;
  dependsOn: string[];
}

export const byName = (a: Shape, b: Shape) => a.name.localeCompare(b.name);
export const shape = (r: Registration): Shape => ({ type: r.type, name: r.name, parent: r.parent, dependsOn: r.dependsOn });

/**
 * The resources a plan stands for, with parents by the program's rules: the Fleet at the root, Nodes
 * under it, a node's copy and role components under their Node, minted secrets (plan.ts FLEET_CHILD_TYPES) and the tailnet's
 * provider and policy under the Fleet, everything else under its role component. Sorted by name.
 */
export function expectedShapes(plan: FleetPlan): Shape[] {
  const out: Shape[] = [{ type: FLEET_TYPE, name: plan.fleet, parent: "", dependsOn: [] }];
  for (const r of plan.tailnet.resources) out.push({ ...r, parent: plan.fleet });
  for (const node of plan.nodes) {
    out.push({ type: NODE_TYPE, name: node.name, parent: plan.fleet, dependsOn: [] });
    for (const r of node.resources) out.push({ ...r, parent: node.name });
    for (const role of node.roles) {
      const [component, ...children] = role.resources;
      out.push({ ...component, parent: node.name });
      for (const c of children) out.push({ ...c, parent: FLEET_CHILD_TYPES.includes(c.type) ? plan.fleet : component.name });
    }
  }
  return out.sort(byName);
}

/** Every string in a wire-form value that is not inside a secret. */
export function plainStrings(wire: unknown, out: string[] = []): string[] {
  if (isSecret(wire)) return out;
  if (typeof wire === "string") out.push(wire);
  else if (Array.isArray(wire)) for (const v of wire) plainStrings(v, out);
  else if (wire && typeof wire === "object") for (const v of Object.values(wire)) plainStrings(v, out);
  return out;
}
