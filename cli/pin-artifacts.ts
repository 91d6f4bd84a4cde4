/**
 * `fleet pin-artifacts`: pins the sha256 of every artifact the fleet downloads (fleet.yaml `artifacts:`,
 * today AgentAPI's release binaries and Tailscale's static tarballs) for every platform a node needs it on.
 * Without a pin an install stops and says how to pin by hand; this verb does it for the whole fleet:
 * it renders the bundles (their `downloads` say which URL each node fetches), downloads each missing
 * (artifact, platform) once, hashes it while streaming, and adds `artifacts.<name>.sha256.<platform>` to
 * the fleet file, keeping every other byte (yaml-edit.ts). The new file is validated as a whole fleet
 * before it replaces the old one (atomically); a failed download pins nothing for that platform, says why,
 * and the run exits 1 after writing the pins that did succeed.
 *
 * Trust: a pin records what the URL serves at that moment (over HTTPS), so later downloads must match it
 * byte for byte; compare it with the vendor's published checksums where they exist.
 * `--check` downloads nothing and exits 1 when a pin is missing (for CI); `--verify` also re-downloads the
 * pinned ones and exits 1 on a mismatch (a changed upstream file, or a wrong pin), which it never overwrites.
 */
import { parseVerb } from "./verb.js";
import { withSpinner } from "./spin.js";
import { createHash } from "node:crypto";
import { parseDocument } from "yaml";
import { FleetError, parseFleet, readFleetText } from "../model/load.js";
import { parseFleetWithRoles } from "../roles/sources.js";
import { renderFleetBundles } from "../roles/index.js";
import type { Fleet } from "../model/fleet.js";
import type { ArtifactName, Bundle, BundleDownload } from "../roles/types.js";
import type { PlatformKey } from "../model/schema.js";
import { UserError } from "../model/errors.js";
import { insertIntoMap, writeFileAtomic } from "./yaml-edit.js";

/** One (artifact, platform) the fleet downloads, with the nodes that download it. */
export interface ArtifactPin extends BundleDownload {
  /** Nodes whose installs fetch this file, in fleet order. */
  nodes: string[];
}

/**
 * Every (artifact, platform) the fleet's bundles download, once each, sorted by artifact name, then
 * platform key. `sha256` is fleet.yaml's pin (undefined = missing). `rendered`: the fleet's bundles, when the
 * caller has them already. Pure.
 */
export function artifactPins(fleet: Fleet, rendered: Map<string, Bundle[]> = renderFleetBundles(fleet)): ArtifactPin[] {
  const byKey = new Map<string, ArtifactPin>();
  for (const bundles of rendered.values()) {
    for (const b of bundles) {
      for (const d of b.downloads ?? []) {
        const k = `${d.artifact} ${d.platform}`;
        const pin = byKey.get(k);
        if (pin) {
          if (!pin.nodes.includes(b.node)) pin.nodes.push(b.node);
        } else byKey.set(k, { ...d, nodes: [b.node] });
      }
    }
  }
  return [...byKey.values()].sort((a, b) => a.artifact.localeCompare(b.artifact) || a.platform.localeCompare(b.platform));
}

/** A downloaded file's sha256 (lowercase hex) and size in bytes. */
export interface Digest {
  sha256: string;
  bytes: number;
}

/**
 * Downloads `url` (redirects followed, as GitHub release assets need) and returns its sha256, hashing while
 * it streams (nothing is kept on disk or in memory). Uses Node's built-in fetch (undici).
 * @throws Error with the URL and the HTTP status, the network error, or the timeout (`timeoutSeconds`,
 *   for the whole download).
 */
export async function downloadDigest(url: string, timeoutSeconds: number): Promise<Digest> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: "follow", signal: AbortSignal.timeout(timeoutSeconds * 1000) });
  } catch (err) {
    throw new Error(`cannot download ${url}: ${describe(err, timeoutSeconds)}`);
  }
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""} from ${url}`);
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.byteLength;
    }
  } catch (err) {
    throw new Error(`download of ${url} broke off after ${bytes} bytes: ${describe(err, timeoutSeconds)}`);
  }
  return { sha256: hash.digest("hex"), bytes };
}

function describe(err: unknown, timeoutSeconds: number): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  if (e.name === "TimeoutError") return `no complete answer within ${timeoutSeconds} s`;
  return e.cause?.message ?? e.cause?.code ?? e.message;
}

/**
 * `source` with `artifacts.<artifact>.sha256.<platform>: <sha256>` added for each pin, creating the
 * `artifacts.<artifact>` entry (with its version and URL) when the file relies on the default. Pure.
 */
export function addPinsToFleetText(source: string, pins: { artifact: ArtifactName; platform: PlatformKey; sha256: string; version: string; urlTemplate: string }[]): string {
  let text = source;
  for (const p of pins) {
    text = parseDocument(text).hasIn(["artifacts", p.artifact])
      ? insertIntoMap(text, ["artifacts", p.artifact, "sha256"], p.platform, p.sha256)
      : insertIntoMap(text, ["artifacts"], p.artifact, { version: p.version, url: p.urlTemplate, sha256: { [p.platform]: p.sha256 } });
  }
  return text;
}

const USAGE = `usage: fleet pin-artifacts [--fleet FILE] [--check | --verify] [--timeout S]
  Downloads each artifact a node of the fleet needs (artifacts.agentapi, artifacts.tailscale) and whose
  sha256 fleet.yaml does not pin yet, once per platform, and adds the sha256 to the fleet file (comments
  and layout kept). Compare the pins with the vendor's published checksums where they exist.
  --fleet FILE   fleet file (default fleet.yaml)
  --check        download nothing: list what is missing, exit 1 if anything is
  --verify       also download the pinned ones and compare (exit 1 on a mismatch; a pin is never replaced)
  --timeout S    per download, default 300
Exit codes: 0 everything pinned, 1 a download failed, a pin is missing (--check) or differs (--verify), 2 bad input.
`;

/** CLI entry: see {@link USAGE}. Returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseVerb(argv, { verb: "pin-artifacts", usage: USAGE, options: { fleet: { type: "string", default: "fleet.yaml" }, timeout: { type: "string", default: "300" }, check: { type: "boolean" }, verify: { type: "boolean" } }, positionals: false });
  if (!parsed) return 0;
  const { values: args } = parsed;
  if (args.check && args.verify) throw new UserError(`fleet pin-artifacts: --check and --verify exclude each other (--check downloads nothing).\n${USAGE}`);
  const timeout = Number(args.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UserError(`fleet pin-artifacts: --timeout must be a positive number of seconds, got "${args.timeout}".`);
  const file: string = args.fleet;
  const source = readFleetText(file);
  const fleet = await parseFleetWithRoles(source, file);
  const pins = artifactPins(fleet);
  const label = (p: ArtifactPin) => `${p.artifact} ${p.version} ${p.platform}`;
  const width = Math.max(0, ...pins.map((p) => label(p).length));
  const say = (p: ArtifactPin, what: string) => process.stdout.write(`  ${label(p).padEnd(width)}  ${what}\n`);
  if (!pins.length) {
    process.stdout.write(`${file}: no node downloads a pinned artifact (no agentapi role, no Debian or Raspberry Pi OS tailscale); nothing to pin.\n`);
    return 0;
  }

  const missing = pins.filter((p) => p.sha256 === undefined);
  if (args.check) {
    for (const p of pins) say(p, p.sha256 === undefined ? `MISSING (nodes ${p.nodes.join(", ")})` : "pinned");
    process.stdout.write(missing.length ? `${missing.length} of ${pins.length} not pinned: run fleet pin-artifacts --fleet ${file}\n` : `all ${pins.length} pinned\n`);
    return missing.length ? 1 : 0;
  }

  const toFetch = args.verify ? pins : missing;
  const results = await withSpinner(`downloading ${toFetch.length} artifact(s) to hash them`, false, () =>
    Promise.all(toFetch.map(async (p) => ({ p, r: await downloadDigest(p.url, timeout).then((d) => ({ d }), (e: Error) => ({ e })) }))),
  );
  const found = new Map(results.map(({ p, r }) => [p, r]));
  const added: { artifact: ArtifactName; platform: PlatformKey; sha256: string; version: string; urlTemplate: string }[] = [];
  let failures = 0;
  for (const p of pins) {
    const r = found.get(p);
    if (!r) {
      say(p, "already pinned");
      continue;
    }
    if ("e" in r) {
      failures++;
      say(p, `FAILED: ${r.e.message}`);
      continue;
    }
    if (p.sha256 === undefined) {
      added.push({ artifact: p.artifact, platform: p.platform, sha256: r.d.sha256, version: p.version, urlTemplate: fleet.artifacts[p.artifact].url });
      say(p, `pinned ${r.d.sha256} (${r.d.bytes} bytes from ${p.url})`);
    } else if (p.sha256 === r.d.sha256) {
      say(p, "already pinned, verified");
    } else {
      failures++;
      say(p, `MISMATCH: ${file} pins ${p.sha256}, ${p.url} now serves ${r.d.sha256} (${r.d.bytes} bytes); the pin is kept: find out why before changing it`);
    }
  }

  if (added.length) {
    const text = addPinsToFleetText(source, added);
    let check: Fleet;
    try {
      check = parseFleet(text, file, { userRoles: fleet.userRoles ?? [] });
    } catch (err) {
      if (err instanceof FleetError) throw new Error(`fleet pin-artifacts: the pinned file would not be valid (a fleetkit bug; ${file} is unchanged):\n${err.message}`);
      throw err;
    }
    for (const a of added) {
      if (check.artifacts[a.artifact].sha256[a.platform] !== a.sha256) throw new Error(`fleet pin-artifacts: ${a.artifact} ${a.platform} did not land in the file (a fleetkit bug; ${file} is unchanged)`);
    }
    writeFileAtomic(file, text);
    process.stdout.write(`wrote ${added.length} sha256 to ${file}${failures ? `; ${failures} failed (see above), run again once they download` : ""}\n`);
  } else {
    process.stdout.write(failures ? `${file} unchanged; ${failures} failed (see above)\n` : `${file} unchanged: everything pinned\n`);
  }
  return failures ? 1 : 0;
}
