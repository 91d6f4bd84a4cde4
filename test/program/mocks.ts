/**
 * The mocks the program tests (test/program/harness.ts) and the program benchmark (bench/program.bench.ts)
 * answer Pulumi's resource registrations with. No vitest import: the benchmark runs it in a plain process.
 */
import { createHash } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";

/** The values the mocks answer for minted tokens and images, so tests can look for them. */
export const MINTED_MARKER = "MINTEDSECRETMARKER";

/**
 * What a builder's manifest reader answers: the `manifest-<arch>` a build of gcc, clang and a gcc cross
 * compiler to the other arch writes (`arch compiler target file sha256`, roles/toolchains/render.ts), with
 * hashes derived from the resource name. `arch` is the builder's: an aarch64 builder's reader (`rpi1-…`)
 * answers aarch64 lines.
 */
export function mockManifest(resourceName: string, arch = resourceName.startsWith("rpi") ? "aarch64" : "x86_64"): string {
  const hex = (seed: string, length: number) => createHash("sha256").update(seed).digest("hex").slice(0, length);
  const other = arch === "x86_64" ? "aarch64" : "x86_64";
  return [
    ["gcc", arch, `${arch}-gcc`],
    ["clang", arch, `${arch}-clang`],
    ["gcc", other, `${arch}-gcc-${other}`],
  ]
    .map(([c, target, stem]) => `${arch} ${c} ${target} ${stem}-${hex(`${resourceName}-${stem}-md5`, 32)}.tar.gz ${hex(`${resourceName}-${stem}`, 64)}\n`)
    .join("");
}

/**
 * The computed outputs the real providers return on create, as the tests' engines answer them: a
 * RandomPassword's recognisable `result`, a RemoteImage's `imageId`, a remote command's stdout (a
 * builder's manifest, else the install's last line) and stderr. Merged over the echoed inputs.
 */
export function providerOutputs(type: string, name: string): Record<string, unknown> {
  if (type === "random:index/randomPassword:RandomPassword") return { result: `${MINTED_MARKER}${name.replace(/[^A-Za-z0-9]/g, "")}` };
  if (type === "docker:index/remoteImage:RemoteImage") return { imageId: `sha256:${"0".repeat(64)}` };
  if (type === "command:remote:Command") return { stdout: name.endsWith("-toolchains-manifest") ? mockManifest(name) : "fleetkit: changed", stderr: "" };
  if (type === "tailscale:index/tailnetKey:TailnetKey") return { key: `tskey-auth-${MINTED_MARKER}${name.replace(/[^A-Za-z0-9]/g, "")}` };
  return {};
}

/**
 * What the Tailscale API answers a device lookup (`tailscale:index/getDevice:getDevice`) with: a node ID
 * derived from the name asked for (`n<name without dots and dashes>CNTRL`, the shape of Tailscale's IDs).
 */
export function deviceLookup(inputs: Record<string, unknown>): Record<string, unknown> {
  const name = String(inputs.name ?? inputs.hostname);
  return { ...inputs, id: name, nodeId: `n${name.replace(/[^A-Za-z0-9]/g, "")}CNTRL`, tags: [] };
}

/** Mocks in the pulumi-eks / pulumi/examples style: every resource echoes its inputs plus {@link providerOutputs}. */
export const programMocks: pulumi.runtime.Mocks = {
  newResource(args) {
    return { id: `${args.name}_id`, state: { ...args.inputs, ...providerOutputs(args.type, args.name) } };
  },
  call(args) {
    return args.token === "tailscale:index/getDevice:getDevice" ? deviceLookup(args.inputs) : args.inputs;
  },
};
