/**
 * Counts what a program under `pulumi.runtime.setMocks` registers, for bench/program-run.ts and
 * bench/program-floor.ts: call after `setMocks`; the returned object's `resources` and `inputBytes` (bytes of
 * each RegisterResource request's inputs as JSON of the wire form: what an engine diffs and checkpoints)
 * grow as the SDK sends requests to the mock monitor.
 */
import * as pulumi from "@pulumi/pulumi";

/** Running totals of the registrations seen. */
export interface RegistrationCounts {
  resources: number;
  inputBytes: number;
}

/** Wraps the mock monitor's RegisterResource to count requests and their input bytes. */
export function countRegistrations(): RegistrationCounts {
  const counts: RegistrationCounts = { resources: 0, inputBytes: 0 };
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: { getObject(): { toJavaScript(): unknown } | undefined }, cb: unknown): Promise<void> };
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    counts.resources++;
    counts.inputBytes += Buffer.byteLength(JSON.stringify(req.getObject()?.toJavaScript() ?? {}));
    return original(req, cb);
  };
  return counts;
}
