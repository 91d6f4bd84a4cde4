/**
 * Program tests: the real `stacks/index.ts` under Pulumi's mocks, for each of the three real fleets. What
 * is checked is what the Pulumi SDK sends the engine: every resource's type, name, parent and
 * dependencies, and the install commands' inputs and options.
 */
import * as pulumi from "@pulumi/pulumi";
import { gunzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import type { Fleet as FleetModel, FleetNode, RoleName } from "../../model/fleet.js";
import { RANDOM_PASSWORD_TYPE, planFleet, renderBundles, type FleetPlan } from "../../stacks/plan.js";
import { remoteCommand, remoteInvocation, sha256Hex } from "../../roles/bundle.js";
import { bundleCopyName, bundleShipping, NODE_COPY_REMOTE_PATH, ownsBundleCopy, shipHelper, shipsBundleFiles } from "../../roles/shipping.js";
import { platformFor } from "../../roles/platform.js";
import type { Bundle } from "../../roles/types.js";
import { distributionScript } from "../../roles/toolchains/component.js";
import { byName, expectedShapes, isSecret, MINTED_MARKER, mockManifest, plainStrings, runProgram, shape, type ProgramRun, type Registration } from "./harness.js";
import { REAL_FLEETS, withNode, withoutRole, withPeople, writeFleet } from "./fleets.js";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Marker values for every configured secret: none may appear outside a Pulumi secret. */
const MARK = "SECRETMARKER";
const SECRETS = {
  "fleetkit:tailscaleAuthKey": `tskey-auth-${MARK}ts`,
  "fleetkit:anthropicApiKey": `sk-ant-${MARK}ak`,
  "fleetkit:sshPrivateKey": `-----BEGIN OPENSSH PRIVATE KEY-----\n${MARK}ssh\n-----END OPENSSH PRIVATE KEY-----\n`,
};

function stackConfig(fleetFile: string, extra: Record<string, string> = {}): [Record<string, string>, string[]] {
  return [{ "fleetkit:fleetFile": fleetFile, ...SECRETS, ...extra }, Object.keys(SECRETS)];
}

async function run(fleetFile: string, extra: Record<string, string> = {}): Promise<ProgramRun> {
  return runProgram(...stackConfig(fleetFile, extra));
}

/** Resources registered by both runs whose shape or inputs differ, by name. */
function changedResources(before: ProgramRun, after: ProgramRun): string[] {
  const was = new Map(before.registrations.map((r) => [r.name, r]));
  return after.registrations
    .filter((r) => was.has(r.name))
    .filter((r) => JSON.stringify([shape(r), r.inputs]) !== JSON.stringify([shape(was.get(r.name)!), was.get(r.name)!.inputs]))
    .map((r) => r.name);
}
/** The SHA-256 (hex) of a minted token as the mocks make it: what the queue node receives instead of the token. */
const mintedSha = (resource: string) => createHash("sha256").update(`${MINTED_MARKER}${resource.replace(/-/g, "")}`).digest("hex");

/**
 * The script a command line carries: `sudo -n sh -c '…'` unquoted; on Windows decoded (gzip + base64 for
 * wsl.exe's sh, less the launcher's `rm -f "$0"` line, and for PowerShell). A wsl.exe line that takes the
 * packed script from stdin (`head -c N`, too long for the line) is decoded from `stdin`'s first N bytes.
 */
function scriptOf(commandLine: string, stdin = ""): string {
  const fromStdin = /umask 077 && head -c (\d+) \| base64 -d \| gzip -dc/.exec(commandLine);
  if (fromStdin) return gunzipSync(Buffer.from(stdin.slice(0, Number(fromStdin[1])), "base64")).toString("utf8").replace(/^rm -f "\$0"\n/, "");
  const sudo = "sudo -n sh -c '";
  if (commandLine.startsWith(sudo) && commandLine.endsWith("'")) return commandLine.slice(sudo.length, -1).replaceAll(`'\\''`, "'");
  const wsl = /echo ([A-Za-z0-9+/=]+) \| base64 -d \| gzip -dc/.exec(commandLine);
  if (wsl) return gunzipSync(Buffer.from(wsl[1]!, "base64")).toString("utf8").replace(/^rm -f "\$0"\n/, "");
  const ps = /FromBase64String\('([A-Za-z0-9+/=]+)'\)/.exec(commandLine);
  if (ps) return gunzipSync(Buffer.from(ps[1]!, "base64")).toString("utf8");
  throw new Error(`not a Windows command line: ${commandLine.slice(0, 80)}`);
}

/** The bundle directory `<role>.<hash>` a file-shipped install line names; undefined for an inline (Windows) one. */
const shippedDir = (create: unknown) => /^sudo -n sh -c 'h=[^']*;sh \$h i ([a-z0-9-]+\.[0-9a-f]{64}) /.exec(String(create))?.[1];

/**
 * The Linux/macOS copy that carries a role's bundle (`role` is `<node>-<role>`): its own `-bundle` copy or its
 * node's `-bundles` copy, and the local directory of the role's files in what that copy sends.
 */
function bundleCopy(program: ProgramRun, role: string): { copy: Registration; dir: string } {
  const copy = program.registrations.find((r) => r.name === `${role}-bundle`) ?? program.get(`${program.get(role).parent}-bundles`);
  return { copy, dir: join((copy.inputs.source as { path: string }).path, shippedDir(program.get(`${role}-install`).inputs.create)!) };
}

/** The install script a role's command runs: from its copied files (Linux, macOS) or its command line (Windows). */
function installScript(program: ProgramRun, role: string): string {
  const cmd = program.get(`${role}-install`);
  if (shippedDir(cmd.inputs.create)) return readFileSync(join(bundleCopy(program, role).dir, "install.sh"), "utf8");
  return scriptOf(String(cmd.inputs.create), String(cmd.inputs.stdin ?? ""));
}

describe.each(REAL_FLEETS)("the program for %s", (realFile) => {
  let file: string;
  let model: FleetModel;
  let bundles: Map<string, Bundle[]>;
  let plan: FleetPlan;
  let program: ProgramRun;

  beforeAll(async () => {
    file = realFile;
    model = loadFleet(file);
    bundles = renderBundles(model);
    plan = planFleet(model, {}, bundles);
    program = await run(file);
  });

  it("registers exactly the planned resources (types, names, parents, dependencies), plus the Fleet and its Nodes", () => {
    expect(program.registrations.map(shape).sort(byName)).toEqual(expectedShapes(plan));
    expect(new Set(program.registrations.map((r) => r.name)).size).toBe(program.registrations.length);
  });

  it("runs each role's install script as the command's create (re-run in place when the bundle changes) and its uninstall script as delete", () => {
    for (const node of model.nodes) {
      for (const bundle of bundles.get(node.name)!) {
        const cmd = program.get(`${node.name}-${bundle.role}-install`);
        const shipping = bundleShipping(node, bundle);
        expect(cmd.inputs.create).toBe(shipping.create);
        expect(cmd.inputs.delete).toBe(shipping.delete);
        if (!shipsBundleFiles(node)) {
          expect(cmd.inputs.create).toBe(remoteInvocation(node, bundle.target, bundle.install).command);
          expect(cmd.inputs.delete).toBe(remoteCommand(node, bundle.target, bundle.uninstall));
        }
        // No triggers and no update: a changed bundle changes `create`, an update re-runs it in place.
        expect(cmd.inputs.triggers).toBeUndefined();
        expect(cmd.inputs.update).toBeUndefined();
        expect(cmd.deleteBeforeReplace).toBe(true);
        expect(cmd.retainOnDelete).toBe(false);
        expect(cmd.inputs.addPreviousOutputInEnv).toBe(false);
      }
    }
  });

  it("copies each Linux and macOS node's role scripts in one copy, content-addressed, before each short install line runs them by hash", () => {
    let copies = 0;
    for (const node of model.nodes) {
      const carried: string[] = [];
      for (const bundle of bundles.get(node.name)!) {
        const role = `${node.name}-${bundle.role}`;
        const cmd = program.get(`${role}-install`);
        const create = String(cmd.inputs.create);
        const del = String(cmd.inputs.delete);
        if (!shipsBundleFiles(node)) {
          expect(program.registrations.filter((r) => r.name === `${role}-bundle` || r.name === `${node.name}-bundles`), role).toEqual([]);
          continue;
        }
        copies++;
        const { copy, dir } = bundleCopy(program, role);
        expect(copy.name).toBe(bundleCopyName(node, bundle.role));
        if (ownsBundleCopy(node, bundle.role)) {
          // A tailscale role joined through bootstrapHost: its own copy, dialled like its install, waiting for what it waits for.
          expect([copy.type, copy.parent, copy.inputs.remotePath]).toEqual(["command:remote:CopyToRemote", role, NODE_COPY_REMOTE_PATH]);
          expect(readdirSync((copy.inputs.source as { path: string }).path).sort()).toEqual([shipHelper(platformFor(node)).name, `${bundle.role}.${bundle.hash}`]);
          const secretInputs = (d: string) => /^(random|tailscale):/.test(program.get(d).type);
          expect(copy.dependsOn, role).toEqual(cmd.dependsOn.filter((d) => d !== `${role}-bundle` && !secretInputs(d)));
          expect(copy.inputs.connection).toEqual(cmd.inputs.connection);
        } else {
          // The node's copy: its `bundles` directory sent to ~/.fleetkit, over the node's host.
          expect([copy.type, copy.parent, copy.inputs.remotePath, (copy.inputs.source as { path: string }).path.split("/").at(-1)]).toEqual([
            "command:remote:CopyToRemote",
            node.name,
            NODE_COPY_REMOTE_PATH,
            "bundles",
          ]);
          expect((copy.inputs.connection as { host: string }).host).toBe(node.host);
          carried.push(`${bundle.role}.${bundle.hash}`);
        }
        expect(dir.endsWith(`/${bundle.role}.${bundle.hash}`)).toBe(true);
        expect(readdirSync(dir).sort()).toEqual(["install.sh", "uninstall.sh"]);
        expect(readFileSync(join(dir, "install.sh"), "utf8")).toBe(bundle.install);
        expect(readFileSync(join(dir, "uninstall.sh"), "utf8")).toBe(bundle.uninstall);
        expect(cmd.dependsOn).toContain(copy.name);
        // The lines name the bundle and its scripts' sha256, and carry none of the scripts.
        for (const line of [create, del]) {
          expect(Buffer.byteLength(line), role).toBeLessThan(2048);
          expect(line).toMatch(/^sudo -n sh -c '/);
          expect(line).toContain(`${bundle.role}.${bundle.hash}`);
          expect(line).not.toContain("#!/bin/sh");
          expect(line).not.toContain("fk_finish");
        }
        expect(create).toContain(` i ${bundle.role}.${bundle.hash} ${sha256Hex(bundle.install)} ${sha256Hex(bundle.uninstall)} ${copy.name}'`);
        expect(del).toContain(` u ${bundle.role}.${bundle.hash};`);
      }
      // The node's copy sends exactly the directories of the roles it carries.
      if (carried.length) {
        const sent = (program.get(`${node.name}-bundles`).inputs.source as { path: string }).path;
        expect(readdirSync(sent).sort(), node.name).toEqual([shipHelper(platformFor(node)).name, ...carried].sort());
        expect(readFileSync(join(sent, shipHelper(platformFor(node)).name), "utf8")).toBe(shipHelper(platformFor(node)).content);
      } else expect(program.registrations.some((r) => r.name === `${node.name}-bundles`), node.name).toBe(false);
    }
    expect(copies).toBeGreaterThan(0);
  });

  it("keeps every remote command line small and free of bundle content on Linux and macOS nodes", () => {
    const posix = new Set(model.nodes.filter(shipsBundleFiles).map((n) => n.name));
    const header = /^# fleetkit (install|uninstall): role /m;
    for (const r of program.registrations.filter((r) => r.type === "command:remote:Command")) {
      if (![...posix].some((n) => r.name.startsWith(`${n}-`))) continue;
      for (const key of ["create", "delete", "update"]) {
        const line = r.inputs[key];
        if (line === undefined) continue;
        expect(Buffer.byteLength(String(line)), `${r.name} ${key}`).toBeLessThan(4096);
        expect(String(line), `${r.name} ${key}`).not.toMatch(header);
      }
    }
  });

  it("connects to each node with its fleet.yaml settings, the key as a secret, Tailscale via bootstrapHost", () => {
    for (const node of model.nodes) {
      for (const bundle of bundles.get(node.name)!) {
        const cmd = program.get(`${node.name}-${bundle.role}-install`);
        const host = bundle.role === "tailscale" ? (node.bootstrapHost ?? node.host) : node.host;
        expect(cmd.inputs.connection).toEqual({
          host,
          port: node.sshPort,
          user: node.user,
          privateKey: SECRETS["fleetkit:sshPrivateKey"],
          perDialTimeout: node.perDialTimeoutSeconds,
          dialErrorLimit: node.dialErrorLimit,
        });
        expect(isSecret(cmd.wire.connection) || isSecret((cmd.wire.connection as Record<string, unknown>).privateKey)).toBe(true);
      }
    }
  });

  it("connects nothing but the tailscale role (and its node's copy, over the same address) to a node before its tailscale role is installed", () => {
    for (const node of model.nodes.filter((n) => n.roles.includes("tailscale"))) {
      const remote = program.registrations.filter((r) => r.name.startsWith(`${node.name}-`) && (r.type === "command:remote:Command" || r.type === "command:remote:CopyToRemote"));
      // Directly or through what it waits for (a toolchain manifest reader waits for its install).
      const waitsFor = (name: string, seen = new Set<string>()): Set<string> => {
        for (const d of program.get(name).dependsOn) if (!seen.has(d)) waitsFor(d, seen.add(d));
        return seen;
      };
      // Without bootstrapHost the node's copy carries the tailscale role's files too, so it goes first, to the address that install dials.
      const first = (name: string) => name.startsWith(`${node.name}-tailscale-`) || (!ownsBundleCopy(node, "tailscale") && name === `${node.name}-bundles`);
      for (const r of remote.filter((x) => !first(x.name))) expect([...waitsFor(r.name)], r.name).toContain(`${node.name}-tailscale-install`);
      const copy = remote.find((r) => r.name === `${node.name}-bundles`);
      if (copy && first(copy.name)) expect(copy.inputs.connection).toEqual(program.get(`${node.name}-tailscale-install`).inputs.connection);
    }
  });

  it("feeds each role exactly its secrets on stdin, as a secret, with secret outputs and stderr-only logging", () => {
    for (const node of model.nodes) {
      for (const bundle of bundles.get(node.name)!) {
        const cmd = program.get(`${node.name}-${bundle.role}-install`);
        if (bundle.secrets.length === 0) {
          // A WSL install too long for the command line (iceccd's, with the toolchain receive program) is stdin.
          expect(cmd.inputs.stdin).toBe(bundleShipping(node, bundle).stdinPrefix || undefined);
          expect(cmd.inputs.logging).toBeUndefined();
          expect(cmd.additionalSecretOutputs).toEqual(["connection"]);
          continue;
        }
        expect(isSecret(cmd.wire.stdin)).toBe(true);
        // An install too long for the command line (the queue's, with its runtime) is the start of stdin.
        const prefix = bundleShipping(node, bundle).stdinPrefix;
        expect(String(cmd.inputs.stdin).startsWith(prefix)).toBe(true);
        const names = String(cmd.inputs.stdin)
          .slice(prefix.length)
          .split("\n")
          .filter(Boolean)
          .map((l) => l.slice(0, l.indexOf("=")));
        // claude: either credential; the stack has the API key only.
        const expected = bundle.secretsMode === "any" ? bundle.secrets.filter((s) => s !== "claudeOauthToken") : bundle.secrets;
        expect(names).toEqual(expected);
        expect(cmd.inputs.logging).toBe("stderr");
        // @pulumi/command itself always adds "connection".
        expect(cmd.additionalSecretOutputs).toEqual(["stdout", "stderr", "connection"]);
      }
    }
  });

  it("never shows a secret outside a Pulumi secret: not in create/delete, inputs, or stack outputs", () => {
    const markers = [MARK, MINTED_MARKER];
    for (const r of program.registrations) {
      for (const s of plainStrings(r.wire)) for (const m of markers) expect(s, `${r.name}`).not.toContain(m);
    }
    expect(JSON.stringify(program.outputs)).not.toMatch(new RegExp(markers.join("|")));
  });

  it("exports every bundle hash as a stack output", () => {
    const expected = Object.fromEntries(plan.nodes.map((n) => [n.name, Object.fromEntries(n.roles.map((r) => [r.role, r.bundleHash]))]));
    expect(program.outputs.bundleHashes).toEqual(expected);
    expect(program.outputs.fleetName).toBe(model.name);
  });
});

describe("fleet.yaml, node by node", () => {
  let program: ProgramRun;
  let model: FleetModel;
  const node = (name: string): FleetNode => model.nodes.find((n) => n.name === name)!;
  const create = (name: string) => String(program.get(name).inputs.create);
  const script = (name: string) => installScript(program, name.replace(/-install$/, ""));

  beforeAll(async () => {
    model = loadFleet("fleet.yaml");
    program = await run("fleet.yaml");
  });

  // rpi1, written out by hand: its roles, what each waits for, and where the queue token sits.
  it.each<{ role: RoleName; type: string; dependsOn: string[] }>([
    { role: "tailscale", type: "fleetkit:role:Tailscale", dependsOn: [] },
    { role: "claude", type: "fleetkit:role:Claude", dependsOn: ["rpi1-tailscale-install"] },
    { role: "iceccd", type: "fleetkit:role:Iceccd", dependsOn: ["arch-orchestrator-icecc-scheduler-install", "rpi1-tailscale-install"] },
    { role: "agentapi", type: "fleetkit:role:Agentapi", dependsOn: ["rpi1-claude-install", "rpi1-tailscale-install"] },
    { role: "worker", type: "fleetkit:role:Worker", dependsOn: ["arch-orchestrator-queue-install", "rpi1-claude-install", "rpi1-tailscale-install"] },
  ])("rpi1 $role: a $type under the rpi1 Node, waiting for $dependsOn", ({ role, type, dependsOn }) => {
    // A dependsOn on a role component stands for all its resources: here the install command (the files travel in the node's copy).
    const component = program.get(`rpi1-${role}`);
    expect(shape(component)).toEqual({ type, name: `rpi1-${role}`, parent: "rpi1", dependsOn });
    const install = program.get(`rpi1-${role}-install`);
    const tokenDeps = role === "worker" ? ["rpi1-queue-token"] : [];
    expect(shape(install)).toEqual({ type: "command:remote:Command", name: `rpi1-${role}-install`, parent: `rpi1-${role}`, dependsOn: [...dependsOn, "rpi1-bundles", ...tokenDeps].sort() });
    // The node's copy goes first (rpi1 has no bootstrapHost: it dials the address the tailscale install dials).
    expect(shape(program.get("rpi1-bundles"))).toEqual({ type: "command:remote:CopyToRemote", name: "rpi1-bundles", parent: "rpi1", dependsOn: [] });
    expect(program.registrations.some((r) => r.name === `rpi1-${role}-bundle`)).toBe(false);
  });

  it("every node has a queue token: workers read theirs, the others (macbook2, the Windows PCs) get one for `fleet task` from the secret stack output", async () => {
    const tokens = program.registrations.filter((r) => r.type === RANDOM_PASSWORD_TYPE && r.name.endsWith("-queue-token"));
    expect(tokens.map((r) => r.name).sort()).toEqual(model.nodes.map((n) => `${n.name}-queue-token`).sort());
    for (const t of tokens) expect([t.parent, t.inputs.length, t.inputs.special]).toEqual(["agent-mesh", 32, false]);
    const queue = program.get("arch-orchestrator-queue-install");
    for (const n of model.nodes) expect(queue.dependsOn).toContain(`${n.name}-queue-token`);
    // The queue node gets each token's SHA-256, never the token: it holds no usable token of another node.
    expect(String(queue.inputs.stdin)).toContain(`macbook2:${mintedSha("macbook2-queue-token")}`);
    expect(String(queue.inputs.stdin)).not.toMatch(new RegExp(`${MINTED_MARKER}\\w*(queuetoken|persontoken)`));
    const people = program.outputs.peopleTokens as pulumi.Output<Record<string, string>>;
    expect([await pulumi.isSecret(people), await new Promise((resolve) => people.apply(resolve))]).toEqual([true, {}]);
    const output = program.outputs.queueTokens as pulumi.Output<Record<string, string>>;
    expect(await pulumi.isSecret(output)).toBe(true);
    const value = await new Promise<Record<string, string>>((resolve) => output.apply(resolve));
    expect(value).toEqual(Object.fromEntries(model.nodes.map((n) => [n.name, `${MINTED_MARKER}${n.name.replace(/-/g, "")}queuetoken`])));
  });

  it("rpi1 has only its Node, its bundle copy, role components, install commands, queue token, x86_64 toolchain receiver and aarch64 manifest reader", () => {
    const mine = program.registrations.filter((r) => r.name === "rpi1" || r.name.startsWith("rpi1-")).map((r) => r.name).sort();
    const roles = node("rpi1").roles;
    expect(roles).toEqual(["tailscale", "claude", "iceccd", "toolchains", "agentapi", "worker"]);
    const expected = ["rpi1", "rpi1-bundles", ...roles.flatMap((r) => [`rpi1-${r}`, `rpi1-${r}-install`]), "rpi1-queue-token", "rpi1-iceccd-toolchains-x86_64", "rpi1-toolchains-manifest"].sort();
    expect(mine).toEqual(expected);
    expect(program.registrations.filter((r) => r.parent === "rpi1").map((r) => r.name).sort()).toEqual(["rpi1-bundles", ...roles.map((r) => `rpi1-${r}`)].sort());
  });

  it("rpi1's iceccd points at arch-orchestrator and installs with apt, as a systemd service", () => {
    expect(create("rpi1-iceccd-install")).toMatch(/^sudo -n sh -c '/);
    const sh = script("rpi1-iceccd-install");
    expect(sh).toContain("ExecStart=/usr/sbin/iceccd --scheduler-host arch-orchestrator -N rpi1 --max-processes 4");
    expect(sh).toMatch(/^fk_apt_install icecc$/m);
    expect(sh).toMatch(/^fk_systemd_unit iceccd.service$/m);
    // The shared prelude defines helpers for every service manager; only calls count.
    expect(sh).not.toMatch(/^fk_launchd_\w+ /m);
  });

  it("arch-orchestrator installs with pacman and runs the scheduler its daemons point at", () => {
    const sh = script("arch-orchestrator-icecc-scheduler-install");
    expect(sh).toMatch(/^fk_pacman_install icecream$/m);
    expect(sh).toMatch(/^fk_systemd_unit icecc-scheduler.service$/m);
    // The scheduler listens on the Tailscale interface only, so its own node's daemon registers over the tailnet.
    expect(script("arch-orchestrator-iceccd-install")).toContain("--scheduler-host arch-orchestrator.tail-agent-mesh.ts.net -N arch-orchestrator --max-processes 8");
    expect(script("arch-orchestrator-icecc-scheduler-install")).toContain("ExecStart=/usr/bin/icecc-scheduler --port 8765 --interface tailscale0 --user-uid icecc");
  });

  it.each(["macbook1", "imac", "macbook2"])("%s runs its services with launchd and Homebrew at /usr/local (Intel), never systemd", (name) => {
    expect(node(name).roles.length).toBeGreaterThan(0);
    for (const role of node(name).roles) {
      expect(create(`${name}-${role}-install`)).toMatch(/^sudo -n sh -c '/);
      // The shared prelude defines helpers for every service manager; only calls count.
      expect(script(`${name}-${role}-install`)).not.toMatch(/^fk_systemd_\w+ /m);
    }
    const iceccd = script(`${name}-iceccd-install`);
    expect(iceccd).toMatch(/^fk_launchd_daemon org.icecc.iceccd '\/Library\/LaunchDaemons\/org.icecc.iceccd.plist' system$/m);
    expect(iceccd).toMatch(/^FK_BREW='\/usr\/local\/bin\/brew'$/m);
    expect(iceccd).toMatch(/^fk_brew_install icecream$/m);
  });

  it.each(["windows-desktop", "windows-laptop"])("%s runs Tailscale on the Windows host and every other role inside its WSL distro", (name) => {
    const n = node(name);
    for (const role of n.roles) {
      const line = create(`${name}-${role}-install`);
      const sh = scriptOf(line, String(program.get(`${name}-${role}-install`).inputs.stdin ?? ""));
      if (role === "tailscale") {
        expect(line).toMatch(/^powershell\.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "iex /);
        expect(sh).toContain("winget");
      } else {
        expect(line.startsWith(`wsl.exe -d ${n.wslDistro} -u root -e sh -c "`)).toBe(true);
        expect(sh).toMatch(/^#!\/bin\/sh\n/);
      }
    }
    const iceccd = script(`${name}-iceccd-install`);
    expect(iceccd).toMatch(/^fk_apt_install icecc$/m);
    expect(iceccd).toMatch(/^fk_systemd_unit iceccd.service$/m);
    expect(iceccd).toContain(`--scheduler-host arch-orchestrator -N ${name}`);
  });
});

describe("changes stay local", () => {
  let base: ProgramRun;
  /** Install commands as they change: on a Linux or macOS node with their node's copy (it sends a new set of directories). */
  const withCopies = (installs: string[]) => [...new Set(installs.flatMap((n) => (n.startsWith("windows-") ? [n] : [`${base.get(base.get(n).parent).parent}-bundles`, n])))].sort();
  const baseFile = "fleet.yaml";
  /** The mesh's compiling nodes, whose icecc ports admit one another (roles/reach.ts). */
  const COMPILERS = ["arch-orchestrator", "macbook1", "imac", "macbook2", "rpi1", "rpi2", "rpi3", "windows-desktop", "windows-laptop"];

  beforeAll(async () => {
    base = await run(baseFile);
  });

  it("adding a node adds only that node's resources and changes no other resource", async () => {
    const file = withNode(baseFile, "rpi4", { host: "rpi4", os: "raspios", arch: "aarch64", profile: "headless-agent", budgetUsdPerSession: 5, iceccMaxJobs: 4 });
    const after = await run(file);
    const before = new Map(base.registrations.map((r) => [r.name, r]));
    const added = after.registrations.filter((r) => !before.has(r.name));
    expect(added.length).toBeGreaterThan(1);
    for (const r of added) expect(r.name === "rpi4" || r.name.startsWith("rpi4-"), r.name).toBe(true);
    expect(after.registrations.length).toBe(base.registrations.length + added.length);
    // The queue server's bundle lists every node's facts (os, arch, tags, budget) for task matching, and its
    // stdin every node's token hash. The node firewalls learn about rpi4 too: every icecc port admits the new
    // compiler (the Windows hosts' rules are in their tailscale role), the queue's and ntfy's every fleet node.
    expect(changedResources(base, after).sort()).toEqual(withCopies([
      "windows-desktop-tailscale-install", "windows-laptop-tailscale-install", "arch-orchestrator-icecc-scheduler-install", "arch-orchestrator-ntfy-install",
      "arch-orchestrator-queue-install", ...COMPILERS.map((n) => `${n}-iceccd-install`),
    ]));
    const queue = after.get("arch-orchestrator-queue-install");
    expect(queue.dependsOn).toEqual([...before.get(queue.name)!.dependsOn, "rpi4-queue-token"].sort());
    expect(String(queue.inputs.stdin)).toContain(`rpi4:${mintedSha("rpi4-queue-token")}`);
  });

  it("people: a token each under the Fleet, their hashes on the queue's stdin, the tokens in the secret stack output peopleTokens", async () => {
    const file = withPeople(baseFile, { alice: "operator", bob: "viewer" });
    const after = await run(file);
    const before = new Map(base.registrations.map((r) => [r.name, r]));
    const added = after.registrations.filter((r) => !before.has(r.name));
    expect(added.map((r) => [r.type, r.name, r.parent, r.inputs.length, r.inputs.special])).toEqual([
      [RANDOM_PASSWORD_TYPE, "alice-person-token", "agent-mesh", 32, false],
      [RANDOM_PASSWORD_TYPE, "bob-person-token", "agent-mesh", 32, false],
    ]);
    // Only the queue learns about people (their scopes in nodes.json, their hashes on stdin).
    expect(changedResources(base, after).sort()).toEqual(withCopies(["arch-orchestrator-queue-install"]));
    const queue = after.get("arch-orchestrator-queue-install");
    expect(queue.dependsOn).toEqual([...before.get(queue.name)!.dependsOn, "alice-person-token", "bob-person-token"].sort());
    expect(isSecret(queue.wire.stdin)).toBe(true);
    const stdin = String(queue.inputs.stdin).split("\n");
    expect(stdin).toContain(`peopleTokens=alice:${mintedSha("alice-person-token")} bob:${mintedSha("bob-person-token")}`);
    expect(String(queue.inputs.stdin)).not.toMatch(new RegExp(`${MINTED_MARKER}\\w*(queuetoken|persontoken)`));
    const output = after.outputs.peopleTokens as pulumi.Output<Record<string, string>>;
    expect(await pulumi.isSecret(output)).toBe(true);
    expect(await new Promise((resolve) => output.apply(resolve))).toEqual({ alice: `${MINTED_MARKER}alicepersontoken`, bob: `${MINTED_MARKER}bobpersontoken` });
    // The plan lists the same resources the program registers.
    const plan = planFleet(loadFleet(file));
    expect(plan.nodes.find((n) => n.name === "arch-orchestrator")!.roles.find((r) => r.role === "queue")!.resources.filter((r) => r.type === RANDOM_PASSWORD_TYPE).map((r) => r.name)).toContain("alice-person-token");
  });

  it("a person named like a node is refused with the fleet file's line", async () => {
    const file = withPeople(baseFile, { rpi1: "viewer" });
    await expect(run(file)).rejects.toThrow(/people\.rpi1: "rpi1" is also a node's name; a person and a node need different names \(rename the person\)/);
  });

  it("a worker on a Windows node: its install (too long for a Windows command line) travels on stdin ahead of the token", async () => {
    const file = withNode(baseFile, "windows-pc3", { host: "windows-pc3", os: "windows-wsl", arch: "x86_64", wslDistro: "Debian", roles: ["tailscale", "claude", "worker"], budgetUsdPerSession: 5 });
    const after = await run(file);
    const model = loadFleet(file);
    const node = model.nodes.find((n) => n.name === "windows-pc3")!;
    const bundle = renderBundles(model).get("windows-pc3")!.find((b) => b.role === "worker")!;
    const cmd = after.get("windows-pc3-worker-install");
    const inv = remoteInvocation(node, "wsl", bundle.install);
    expect(inv.stdinPrefix.length).toBeGreaterThan(8191);
    expect(cmd.inputs.create).toBe(inv.command);
    expect(cmd.inputs.create).toMatch(new RegExp(`^wsl\\.exe -d Debian -u root -e sh -c "umask 077 && head -c ${inv.stdinPrefix.length} \\| base64 -d \\| gzip -dc > /tmp/fleetkit-[0-9a-f]{16}\\.sh && sh /tmp/fleetkit-[0-9a-f]{16}\\.sh"$`));
    expect(cmd.inputs.delete).toBe(remoteCommand(node, "wsl", bundle.uninstall));
    expect(isSecret(cmd.wire.stdin)).toBe(true);
    expect(cmd.inputs.stdin).toBe(`${inv.stdinPrefix}queueToken=${MINTED_MARKER}windowspc3queuetoken\n`);
    expect(gunzipSync(Buffer.from(inv.stdinPrefix, "base64")).toString("utf8")).toBe(`rm -f "$0"\n${bundle.install}`);
  });

  // Removing a compiler also closes the icecc ports of every other node to it (their firewalls change).
  const iceccFirewalls = ["windows-desktop-tailscale-install", "windows-laptop-tailscale-install", "arch-orchestrator-icecc-scheduler-install"];
  const iceccdsWithout = (gone: string) => COMPILERS.filter((n) => n !== gone).map((n) => `${n}-iceccd-install`);
  it.each<{ node: string; role: RoleName; changed: string[]; alsoGone?: string[] }>([
    // CLAUDE.md lists the node's roles, so the node's claude bundle changes with them; so do the queue's node
    // facts (the dashboard shows each node's roles and reaches its AgentAPI).
    { node: "rpi1", role: "agentapi", changed: ["rpi1-claude-install", "arch-orchestrator-queue-install"] },
    { node: "macbook2", role: "iceccd", changed: [...iceccFirewalls, "macbook2-claude-install", "arch-orchestrator-queue-install", ...iceccdsWithout("macbook2")] },
    {
      node: "windows-laptop",
      role: "iceccd",
      changed: [...iceccFirewalls, "windows-laptop-claude-install", "arch-orchestrator-queue-install", ...iceccdsWithout("windows-laptop")],
      alsoGone: ["windows-laptop-iceccd-toolchains-x86_64", "windows-laptop-iceccd-toolchains-aarch64"],
    },
  ])("removing $role from $node removes only its resources (and updates $changed)", async ({ node, role, changed, alsoGone = [] }) => {
    const after = await run(withoutRole(baseFile, node, role));
    const now = new Map(after.registrations.map((r) => [r.name, r]));
    const gone = base.registrations.filter((r) => !now.has(r.name)).map((r) => r.name).sort();
    // The node's copy stays (it sends one directory fewer: it is among the changed).
    expect(gone).toEqual([`${node}-${role}`, `${node}-${role}-install`, ...alsoGone].sort());
    expect(after.registrations.length).toBe(base.registrations.length - gone.length);
    const differing = base.registrations
      .filter((r) => now.has(r.name))
      .filter((r) => JSON.stringify([shape(r), r.inputs]) !== JSON.stringify([shape(now.get(r.name)!), now.get(r.name)!.inputs]))
      .map((r) => r.name);
    expect(differing.sort()).toEqual(withCopies(changed));
  });
});

describe("stack config", () => {
  const file = "examples/shared-fs-queue.fleet.yaml";

  it("creates the resources at V8's stack trace limit 0 (the SDK's eager promise stacks); FLEETKIT_STACK_TRACES=1 keeps the default, and the same resources", async () => {
    const saved = process.env.FLEETKIT_STACK_TRACES;
    const limited = await run(file);
    process.env.FLEETKIT_STACK_TRACES = "1";
    try {
      const kept = await run(file);
      expect([limited.stackTraceLimit, kept.stackTraceLimit]).toEqual([0, Error.stackTraceLimit]);
      expect(Error.stackTraceLimit).toBeGreaterThan(0);
      const shape = (p: ProgramRun) => p.registrations.map((r) => [r.type, r.name, r.parent, r.dependsOn.join(",")].join(" "));
      expect(shape(kept)).toEqual(shape(limited));
    } finally {
      if (saved === undefined) delete process.env.FLEETKIT_STACK_TRACES;
      else process.env.FLEETKIT_STACK_TRACES = saved;
    }
  });

  it("fleetkit:forgetNodes marks that node's resources retainOnDelete and no other node's", async () => {
    const program = await run(file, { "fleetkit:forgetNodes": JSON.stringify(["pi-node-2"]) });
    const mine = (r: Registration) => r.name.startsWith("pi-node-2-");
    const custom = program.registrations.filter((r) => r.custom);
    expect(custom.filter(mine).length).toBeGreaterThan(0);
    for (const r of custom) expect(r.retainOnDelete, r.name).toBe(mine(r));
  });

  it("without fleetkit:sshPrivateKey reads the key at defaults.sshKeyPath (~ = home), still as a secret, and gives its path to ssh", async () => {
    const home = mkdtempSync(join(tmpdir(), "fleetkit-home-"));
    mkdirSync(join(home, ".ssh"));
    writeFileSync(join(home, ".ssh", "id_ed25519"), SECRETS["fleetkit:sshPrivateKey"], { mode: 0o600 });
    const [config, secretKeys] = stackConfig("examples/remote-tasks.fleet.yaml");
    delete config["fleetkit:sshPrivateKey"];
    const savedHome = process.env.HOME;
    process.env.HOME = home;
    try {
      const program = await runProgram(config, secretKeys);
      const install = program.get("raspberrypi-ntfy-install");
      expect((install.inputs.connection as Record<string, unknown>).privateKey).toBe(SECRETS["fleetkit:sshPrivateKey"]);
      expect(plainStrings(install.wire).join("\n")).not.toContain(MARK);
      expect(JSON.parse(String(program.get("raspberrypi-ntfy-docker").inputs.sshOpts)).slice(0, 2)).toEqual(["-i", join(home, ".ssh", "id_ed25519")]);
    } finally {
      process.env.HOME = savedHome;
      rmSync(home, { recursive: true, force: true });
    }
  });

  it.each([
    ["a missing fleet file", { "fleetkit:fleetFile": "no-such-fleet.yaml" }, /no-such-fleet\.yaml:1:1 \(file\): cannot read the fleet file \(no such file\)/],
    ["a missing Tailscale auth key", { "fleetkit:tailscaleAuthKey": "" }, /role tailscale on node control-node needs the secret fleetkit:tailscaleAuthKey, which is not set in this stack's config\. Set it with `pulumi config set --secret fleetkit:tailscaleAuthKey <value>`/],
    ["no Claude credential", { "fleetkit:anthropicApiKey": "" }, /role claude on node control-node needs one of the secrets fleetkit:anthropicApiKey, fleetkit:claudeOauthToken/],
    ["no SSH key (neither config nor file)", { "fleetkit:sshPrivateKey": "", "fleetkit:fleetFile": writeFleet(readFileSync(file, "utf8").replace("user: user", "user: user\n  sshKeyPath: /nonexistent/key")) }, /cannot read the SSH private key \/nonexistent\/key \(.*defaults\.sshKeyPath, ENOENT\), which fleetkit uses to reach node control-node\. Point sshKeyPath at your key, or store the key in the stack with `pulumi config set --secret fleetkit:sshPrivateKey < ~\/\.ssh\/id_ed25519`/],
    ["a secret with a line break", { "fleetkit:anthropicApiKey": "sk-ant-1\nqueueToken=forged" }, /^fleetkit:anthropicApiKey contains a line break; set it again as one line with `pulumi config set --secret fleetkit:anthropicApiKey <value>`\.$/],
    ["a forgetNodes that is not a list", { "fleetkit:forgetNodes": JSON.stringify("pi-node-2") }, /fleetkit:forgetNodes must be a list of node names/],
  ])("stops with one clear paragraph on %s", async (_what, change, message) => {
    const [config, secretKeys] = stackConfig(file, change);
    for (const [k, v] of Object.entries(change)) if (v === "") delete config[k];
    const err = await runProgram(config, secretKeys).then(
      () => undefined,
      (e: Error) => e,
    );
    // A RunError: Pulumi prints its message without a stack trace.
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect(err?.message).toMatch(message);
  });
});

describe("ntfy on Docker over SSH (remote-tasks: the Pi hosts ntfy on 8091)", () => {
  let program: ProgramRun;
  let model: FleetModel;
  const file = "examples/remote-tasks.fleet.yaml";

  beforeAll(async () => {
    model = loadFleet(file);
    program = await run(file);
  });

  it("reaches the Pi at its bootstrap address for Tailscale only, at its tailnet name for everything else", () => {
    expect((program.get("raspberrypi-tailscale-install").inputs.connection as { host: string }).host).toBe("192.168.1.50");
    for (const role of ["claude", "queue", "worker", "ntfy"]) expect((program.get(`raspberrypi-${role}-install`).inputs.connection as { host: string }).host).toBe("raspberrypi");
  });

  it("registers the same resources with the same inputs on a second run (nothing depends on time or order)", async () => {
    const again = await run(file);
    const view = (p: ProgramRun) => p.registrations.map((r) => JSON.stringify([shape(r), r.inputs, r.deleteBeforeReplace, r.additionalSecretOutputs])).sort();
    expect(view(again)).toEqual(view(program));
  });

  it("drives the Pi's engine through a docker.Provider at ssh://matt@raspberrypi with batch-mode ssh options", () => {
    const provider = program.get("raspberrypi-ntfy-docker");
    expect(shape(provider)).toEqual({ type: "pulumi:providers:docker", name: "raspberrypi-ntfy-docker", parent: "raspberrypi-ntfy", dependsOn: ["raspberrypi-ntfy-install"] });
    expect(provider.inputs.host).toBe("ssh://matt@raspberrypi");
    // The key came from config, so ssh uses the agent: no -i.
    expect(JSON.parse(String(provider.inputs.sshOpts))).toEqual(["-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]);
  });

  it("pulls the pinned image and runs the container with the role's ports, mounts and command, after server.yml is placed", () => {
    const providerRef = (r: Registration) => r.provider.split("::").slice(0, -1).join("::");
    const image = program.get("raspberrypi-ntfy-image");
    const container = program.get("raspberrypi-ntfy-container");
    expect(image.inputs).toEqual({ name: "binwiederhier/ntfy:v2.14.0", keepLocally: true });
    expect(image.dependsOn).toEqual(["raspberrypi-ntfy-install"]);
    expect(container.dependsOn).toEqual(["raspberrypi-ntfy-image", "raspberrypi-ntfy-install"]);
    for (const r of [image, container]) expect(providerRef(r)).toMatch(/::raspberrypi-ntfy-docker$/);
    expect(container.inputs).toMatchObject({
      name: "ntfy",
      image: `sha256:${"0".repeat(64)}`,
      command: ["serve"],
      ports: [{ internal: 80, external: 8091 }],
      volumes: [
        { hostPath: "/etc/fleetkit/ntfy", containerPath: "/etc/ntfy", readOnly: true },
        { hostPath: "/var/lib/fleetkit/ntfy", containerPath: "/var/lib/ntfy", readOnly: false },
      ],
      restart: "unless-stopped",
      mustRun: true,
    });
  });

  it("mints one ntfy token and hands the same one to ntfy and the queue", () => {
    const token = `ntfyToken=tk_${MINTED_MARKER}raspberrypintfytoken\n`;
    expect(program.get("raspberrypi-ntfy-token")).toMatchObject({ type: RANDOM_PASSWORD_TYPE, parent: model.name });
    expect(program.get("raspberrypi-ntfy-token").inputs).toMatchObject({ length: 29, special: false, upper: false });
    expect(program.get("raspberrypi-ntfy-install").inputs.stdin).toBe(token);
    expect(String(program.get("raspberrypi-queue-install").inputs.stdin)).toContain(token);
  });

  it("uses fleetkit:ntfyToken instead when it is set, and mints none", async () => {
    const configured = await run(file, { "fleetkit:ntfyToken": `tk_${MARK.toLowerCase()}0000000000000000` });
    expect(configured.registrations.some((r) => r.name === "raspberrypi-ntfy-token")).toBe(false);
    expect(configured.get("raspberrypi-ntfy-install").inputs.stdin).toBe(`ntfyToken=tk_${MARK.toLowerCase()}0000000000000000\n`);
    // raspberrypi joins through bootstrapHost: its tailscale role has a copy of its own, the node's copy carries ntfy's files.
    expect(configured.get("raspberrypi-ntfy-install").dependsOn).toEqual(["raspberrypi-bundles", "raspberrypi-tailscale-bundle", "raspberrypi-tailscale-install"]);
    const plan = planFleet(loadFleet(file), { ntfyTokenFromConfig: true });
    expect(configured.registrations.map(shape).sort(byName)).toEqual(expectedShapes(plan));
  });
});

describe("toolchain tarballs (fleet.yaml: arch-orchestrator builds x86_64, rpi1 aarch64)", () => {
  let program: ProgramRun;
  let model: FleetModel;
  const node = (name: string) => model.nodes.find((n) => n.name === name)!;

  beforeAll(async () => {
    model = loadFleet("fleet.yaml");
    program = await run("fleet.yaml");
  });

  it("reads the builder's manifest after each toolchains install", () => {
    const manifest = program.get("arch-orchestrator-toolchains-manifest");
    expect(shape(manifest)).toEqual({ type: "command:remote:Command", name: "arch-orchestrator-toolchains-manifest", parent: "arch-orchestrator-toolchains", dependsOn: ["arch-orchestrator-toolchains-install"] });
    expect(manifest.inputs.create).toBe("sudo -n sh -c 'cat '\\''/opt/icecc-envs/manifest-x86_64'\\'''");
    // Its `cat` never changes, so the bundle hash re-runs it whenever the install re-ran.
    expect(manifest.inputs.triggers).toEqual([renderBundles(model).get("arch-orchestrator")!.find((b) => b.role === "toolchains")!.hash]);
  });

  it("every distribution command is short and carries no script: the receive program is a file of the iceccd bundle", () => {
    const commands = program.registrations.filter((r) => /-toolchains-(x86_64|aarch64)$/.test(r.name));
    expect(commands.length).toBe(10);
    const prelude = readFileSync("templates/common/prelude.sh", "utf8").split("\n").filter((l) => l.startsWith("fk_"));
    for (const c of commands) {
      const create = String(c.inputs.create);
      expect(Buffer.byteLength(create), c.name).toBeLessThan(4096);
      // Not even packed (WSL): every remote line fits, and no prelude helper is defined in it.
      expect(prelude.filter((l) => create.includes(l.slice(0, 12))), c.name).toEqual([]);
      expect(create).not.toMatch(/fk_put|fk_die|FK_CHANGED/);
    }
  });

  it("sends each builder's tarballs to every other Linux iceccd node, none to the Macs", () => {
    const receivers = program.registrations.filter((r) => r.type === "command:local:Command").map((r) => r.name).sort();
    expect(receivers).toEqual(
      [
        ...["rpi1", "rpi2", "rpi3", "windows-desktop", "windows-laptop"].map((n) => `${n}-iceccd-toolchains-x86_64`),
        ...["arch-orchestrator", "rpi2", "rpi3", "windows-desktop", "windows-laptop"].map((n) => `${n}-iceccd-toolchains-aarch64`),
      ].sort(),
    );
  });

  it.each([
    ["rpi1", "arch-orchestrator", "x86_64"],
    ["windows-desktop", "arch-orchestrator", "x86_64"],
    ["arch-orchestrator", "rpi1", "aarch64"],
    ["windows-desktop", "rpi1", "aarch64"],
  ] as const)("%s receives from %s's manifest (%s), re-run when the manifest changes", (name, builder, arch) => {
    const receive = program.get(`${name}-iceccd-toolchains-${arch}`);
    const manifest = mockManifest(`${builder}-toolchains-manifest`);
    expect(manifest.split("\n")[0]).toMatch(new RegExp(`^${arch} gcc ${arch} ${arch}-gcc-`));
    expect(shape(receive)).toEqual({
      type: "command:local:Command",
      name: `${name}-iceccd-toolchains-${arch}`,
      parent: `${name}-iceccd`,
      dependsOn: [`${builder}-toolchains-manifest`, `${name}-iceccd-install`].sort(),
    });
    // No triggers: the script is made from the manifest, so it changes with it (and re-runs, as an update).
    expect(receive.inputs.triggers).toBeUndefined();
    const rebuilt = manifest.replace(/ [0-9a-f]{64}\n/, ` ${"f".repeat(64)}\n`);
    expect(distributionScript(node(builder), node(name), rebuilt, { builder: {}, receiver: {} })).not.toBe(receive.inputs.create);
    expect(receive.inputs.interpreter).toEqual(["/bin/sh", "-c"]);
    expect(receive.inputs.create).toBe(distributionScript(node(builder), node(name), manifest, { builder: {}, receiver: {} }));
    expect(String(receive.inputs.create)).toContain(`'fleet@${name}' "$1"; }\nfk_tarball() {`);
    // The receive program runs as root without a script: in the WSL distro on Windows, through sudo elsewhere.
    expect(String(receive.inputs.create)).toContain(`{ r="${name === "windows-desktop" ? "wsl.exe -d Debian -u root -e" : "sudo -n"} /usr/local/lib/fleetkit/fleetkit-toolchain-receive $*";`);
    expect(String(receive.inputs.create)).toContain(`\nfk_tarball ${manifest.split("\n")[0]}\n`);
  });
});
