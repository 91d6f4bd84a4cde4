/**
 * A minimal reproduction, for the Pulumi Node.js SDK, of the cost fleetkit's program paid until it stopped
 * passing Promises to `dependsOn`: a component whose `dependsOn` is a Promise of resources, with a child
 * custom resource (inheriting the dependency through its parent), makes registering that child walk the
 * whole resource graph reachable from the Promise's resources, so N such components cost O(N²). The same
 * program with `dependsOn` as a plain array of the same resources is linear.
 *
 * Only `@pulumi/pulumi` under `pulumi.runtime.setMocks`; figures are CPU seconds of this process, Promise vs
 * array in the same run. Standalone: `npx tsx bench/dependson.bench.ts`; `npm run bench` runs it too.
 */
import * as pulumi from "@pulumi/pulumi";

/** A custom resource as generated provider SDKs write them (@pulumi/command's remote.Command among them): options merged with `pulumi.mergeOptions`. */
class Thing extends pulumi.CustomResource {
  constructor(name: string, props: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
    super("repro:index:Thing", name, props, pulumi.mergeOptions({ version: "1.0.0" }, opts ?? {}));
  }
}

class Group extends pulumi.ComponentResource {
  readonly thing: Thing;
  constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
    super("repro:index:Group", name, {}, opts);
    // The component hands its dependsOn on to its child, as fleetkit's role components did.
    this.thing = new Thing(`${name}-thing`, { value: name }, { parent: this, dependsOn: opts?.dependsOn });
    this.registerOutputs({});
  }
}

/** A root component keeping its children in a plain object, as components commonly expose them (fleetkit's Fleet.nodes). */
class Root extends pulumi.ComponentResource {
  readonly groups: Record<string, Group> = {};
  constructor(name: string) {
    super("repro:index:Root", name, {});
  }
}

/**
 * CPU seconds to register `n` groups under one root, each depending on the one before it, in one program.
 * The walk: `mergeOptions` turns the Promise into `output(promise)`, whose `isKnown` runs `containsUnknowns`
 * over the resolved resources; it follows every enumerable property (`__parentResource` up to the root, the
 * root's `groups` down to every group and its outputs), so each registration visits the whole graph.
 */
async function run(n: number, promise: boolean): Promise<number> {
  await pulumi.runtime.setMocks(
    { newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }), call: (a) => a.inputs },
    "repro",
    promise ? "promise" : "array",
    false,
  );
  const before = process.cpuUsage();
  const root = new Root("root");
  let prev: Group | undefined;
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const deps = prev ? [prev] : [];
    prev = new Group(`g${i}`, { parent: root, dependsOn: promise ? Promise.resolve(deps) : deps });
    root.groups[`g${i}`] = prev;
    all.push(new Promise((resolve) => prev!.thing.urn.apply(resolve)));
  }
  await Promise.all(all);
  const used = process.cpuUsage(before);
  await pulumi.runtime.disconnect();
  return (used.user + used.system) / 1e6;
}

/** Runs the reproduction at `sizes` and reports each line through `print`. */
export async function runDependsOnBench(print: (line: string) => void, sizes: readonly number[] = [100, 200, 400]): Promise<void> {
  for (const n of sizes) {
    const array = await run(n, false);
    const promise = await run(n, true);
    print(`${n} components: dependsOn array ${array.toFixed(2)} CPU s, dependsOn Promise ${promise.toFixed(2)} CPU s (${(promise / array).toFixed(1)}×)`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runDependsOnBench((l) => console.log(l));
