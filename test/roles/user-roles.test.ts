/**
 * User roles (fleet.yaml `roleSources:`, roles/sources.ts): the shipped example (examples/roles/node-exporter
 * used by examples/monitoring.fleet.yaml) through the real CLI, a throwaway role written into a temp dir and
 * planned, and every way a role can break the contract — each a located error, exit 2.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FleetError } from "../../model/load.js";
import { renderNodeBundles } from "../../roles/index.js";
import { nodeReach } from "../../roles/reach.js";
import { loadFleetWithRoles, parseFleetWithRoles } from "../../roles/sources.js";
import { BUILTIN_PROBES, parseProbe, probeTable } from "../../cli/probe.js";

const REPO = new URL("../../", import.meta.url).pathname;

function fleetCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO, "bin/fleet.mjs"), ...args], { encoding: "utf8", cwd: REPO });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A fresh temp dir holding `files` (path → text) and a package.json making it an ES module package (what
 * README "Writing a role" asks of a role folder outside the checkout); each test gets its own, so ESM's
 * module cache never serves a stale role.
 */
function tempTree(files: Record<string, string>, modulePackage = true): string {
  const dir = mkdtempSync(join(tmpdir(), "fleetkit-user-role-"));
  if (modulePackage) writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const FLEET = (roles: string, extra = "") => `fleet: lab
roleSources: [./roles.local]
defaults:
  user: fleet
${extra}nodes:
  box:
    host: box
    os: debian
    arch: x86_64
    roles: [${roles}]
`;

/** A user role with no imports at all: what a user outside the checkout writes first. */
const HELLO = `export const definition = {
  name: "hello",
  docs: "a file saying hello",
  os: ["debian", "arch"],
  after: [],
  render: (fleet, node) => ({
    files: [{ path: "/etc/hello.txt", mode: 0o644, owner: "root", kind: "text", content: \`hello from \${node.name} in \${fleet.name}\\n\` }],
    packages: [],
    services: [],
  }),
};
`;

describe("the example user role node-exporter (examples/monitoring.fleet.yaml)", () => {
  it("plans through the real CLI: one NodeExporter component per node, after the node's Tailscale (its bundle in each node's copy but the Windows PC's)", () => {
    const r = fleetCli(["plan", "--fleet", "examples/monitoring.fleet.yaml"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const rows = r.stdout.split("\n").filter((l) => l.startsWith("  node-exporter "));
    expect(rows.map((l) => l.trim().replace(/ [0-9a-f]{12} /, " HASH ").replace(/\s+/g, " "))).toEqual(
      ["nas", "pi-garage", "arch-desk", "macbook", "gaming-pc"].map((n) => `node-exporter HASH NodeExporter + Command after ${n}-tailscale-install`),
    );
    const nodes = r.stdout.split("\n").filter((l) => / ssh /.test(l) && !l.startsWith(" "));
    expect(nodes.map((l) => [l.split(" ")[0], l.endsWith("  bundles: CopyToRemote")])).toEqual(
      ["nas", "pi-garage", "arch-desk", "macbook", "gaming-pc"].map((n) => [n, n !== "gaming-pc"]),
    );
    expect(r.stdout).toContain("node-exporter relies on node firewalls only");
  });

  it("renders per OS family: the package and a shadowing unit on Linux (in the distro on Windows), the formula and a LaunchDaemon on macOS", async () => {
    const fleet = await loadFleetWithRoles(join(REPO, "examples/monitoring.fleet.yaml"));
    const rows = fleet.nodes.map((n) => {
      const b = renderNodeBundles(fleet, n).find((x) => x.role === "node-exporter")!;
      const service = b.files.find((f) => (f.kind === "systemd" || f.kind === "launchd") && !f.path.includes("firewall"))!;
      return [n.name, b.target, service.path, b.services.map((s) => s.name).join(), b.install.split("\n").at(-2)];
    });
    expect(rows).toEqual([
      ["nas", "node", "/etc/systemd/system/prometheus-node-exporter.service", "prometheus-node-exporter.service", expect.stringMatching(/^fk_finish node-exporter [0-9a-f]{64} prometheus-node-exporter$/)],
      ["pi-garage", "node", "/etc/systemd/system/prometheus-node-exporter.service", "prometheus-node-exporter.service", expect.stringMatching(/ prometheus-node-exporter$/)],
      ["arch-desk", "node", "/etc/systemd/system/prometheus-node-exporter.service", "prometheus-node-exporter.service", expect.stringMatching(/ prometheus-node-exporter$/)],
      ["macbook", "node", "/Library/LaunchDaemons/homebrew.mxcl.node_exporter.plist", "homebrew.mxcl.node_exporter", expect.stringMatching(/ node_exporter$/)],
      ["gaming-pc", "wsl", "/etc/systemd/system/prometheus-node-exporter.service", "prometheus-node-exporter.service", expect.stringMatching(/ prometheus-node-exporter$/)],
    ]);
    const nas = fleet.nodes[0]!;
    expect(renderNodeBundles(fleet, nas).find((b) => b.role === "node-exporter")!.files.find((f) => f.path === "/etc/systemd/system/prometheus-node-exporter.service")!.content).toContain(
      "ExecStart=/usr/bin/prometheus-node-exporter --web.listen-address=:9100\n",
    );
  });

  it("its port is in the fleet's allow-list (services.node-exporter.allowFrom: [fleet]) and its firewall loads before the package starts it", async () => {
    const fleet = await loadFleetWithRoles(join(REPO, "examples/monitoring.fleet.yaml"));
    const nas = fleet.nodes[0]!;
    expect(nodeReach(fleet, nas).filter((r) => r.role === "node-exporter")).toEqual([
      { role: "node-exporter", service: "node-exporter", node: "nas", proto: "tcp", port: 9100, fromNodes: fleet.nodes.map((n) => n.name), fromCidrs: [], open: false, why: "services.node-exporter.allowFrom: fleet" },
    ]);
    const install = renderNodeBundles(fleet, nas).find((b) => b.role === "node-exporter")!.install;
    expect(install.indexOf("/usr/local/lib/fleetkit/firewall/node-exporter.sh")).toBeGreaterThan(0);
    expect(install.indexOf("firewall/node-exporter.sh")).toBeLessThan(install.indexOf("fk_apt_install prometheus-node-exporter"));
  });

  it("its probe is the role's own: parsed only with the fleet's probe table, judged by the role", async () => {
    const fleet = await loadFleetWithRoles(join(REPO, "examples/monitoring.fleet.yaml"));
    const table = probeTable(fleet);
    expect([...table.keys()].sort()).toEqual(["node-exporter", "tailscale"]);
    const out = "fk-probe 1\nnode-exporter\t200\t312\nfk-probe-end\n";
    expect(parseProbe(out, table).checks).toEqual({ "node-exporter": { httpCode: 200, metrics: 312 } });
    expect(parseProbe(out, BUILTIN_PROBES).unparsed).toEqual(["node-exporter\t200\t312"]);
    const judge = table.get("node-exporter")!.probe.judge;
    expect([judge({ httpCode: 200, metrics: 312 }), judge({ httpCode: 0, metrics: 0 }), judge({ httpCode: 200, metrics: 0 }), judge(undefined)]).toEqual([
      [],
      ["GET /metrics: no answer"],
      ["GET /metrics served no node_ metrics"],
      [],
    ]);
  });
});

describe("a throwaway user role in a temp dir", () => {
  it("is planned by the real CLI like a built-in role, and reaches the bundle the node gets", async () => {
    const dir = tempTree({ "fleet.yaml": FLEET("hello"), "roles.local/hello/index.ts": HELLO });
    const r = fleetCli(["plan", "--fleet", join(dir, "fleet.yaml")]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.split("\n").filter((l) => l.includes("hello")).map((l) => l.trim().replace(/ [0-9a-f]{12} /, " HASH ").replace(/\s+/g, " "))).toEqual([
      "hello HASH Hello + Command",
    ]);
    const fleet = await loadFleetWithRoles(join(dir, "fleet.yaml"));
    const [bundle] = renderNodeBundles(fleet, fleet.nodes[0]!);
    expect(bundle!.files).toEqual([{ path: "/etc/hello.txt", mode: 0o644, owner: "root", kind: "text", content: "hello from box in lab\n" }]);
    expect(bundle!.install).toContain("fk_put '/etc/hello.txt' 0644 'root' 'root' <<'");
  });

  const cases: [string, Record<string, string>, string[]][] = [
    ["no render function", { "roles.local/hello/index.ts": HELLO.replace(/render: [^]*?\}\),\n/, "") }, [
      "F:2:15 roleSources.0: ./roles.local/hello/index.ts: definition.render: expected a function (fleet, node, settings) => RoleParts, got nothing",
    ]],
    ["an OS fleetkit does not know", { "roles.local/hello/index.ts": HELLO.replace('os: ["debian", "arch"]', 'os: ["debian", "freebsd"]') }, [
      "F:2:15 roleSources.0: ./roles.local/hello/index.ts: definition.os: expected a non-empty list of macos|debian|raspios|arch|windows-wsl, got a list",
    ]],
    ["the name of a built-in role", { "roles.local/iceccd/index.ts": HELLO.replace('name: "hello"', 'name: "iceccd"') }, [
      "F:2:15 roleSources.0: role folder ./roles.local/iceccd has the name of the built-in role iceccd; rename the folder (user roles cannot replace built-in ones)",
    ]],
    ["a name other than its folder's", { "roles.local/hello/index.ts": HELLO.replace('name: "hello"', 'name: "howdy"') }, [
      "F:2:15 roleSources.0: ./roles.local/hello/index.ts: definition.name: expected \"hello\" (the folder's name), got \"howdy\"",
    ]],
    ["a dependency on a role nobody defines", { "roles.local/hello/index.ts": HELLO.replace("after: []", 'after: [{ role: "grafana", where: "fleet" }]') }, [
      "F:2:15 roleSources.0: ./roles.local/hello/index.ts: definition.after[0]: expected { role: <a built-in or user role other than hello>, where: local|fleet }, got a map",
    ]],
    ["a probe record the probe itself prints", { "roles.local/hello/index.ts": HELLO.replace("after: [],", 'after: [], probe: { record: "disk", script: () => [], parse: () => 1, judge: () => [] },') }, [
      "F:2:15 roleSources.0: ./roles.local/hello/index.ts: definition.probe.record: \"disk\" is a record the probe itself prints; name the record after the role (the default)",
    ]],
    ["Pulumi children", { "roles.local/hello/index.ts": HELLO.replace("after: [],", "after: [], children: () => [],") }, [
      "F:2:15 roleSources.0: ./roles.local/hello/index.ts: definition.children: user roles are their install command only; remove `children`",
    ]],
    ["a syntax error", { "roles.local/hello/index.ts": "export const definition = {\n" }, []],
    ["no definition export", { "roles.local/hello/index.ts": "export const role = 1;\n" }, [
      "F:2:15 roleSources.0: ./roles.local/hello/index.ts: exports no `definition` (export const definition: RoleDefinition = { … })",
    ]],
    ["a folder without any role", { "roles.local/README": "nothing here\n" }, []],
  ];
  it.each(cases)("that breaks the contract (%s) is a located error at its roleSources entry", async (_what, files, expected) => {
    const dir = tempTree({ "fleet.yaml": FLEET("hello"), ...files });
    const err = await parseFleetWithRoles(FLEET("hello"), join(dir, "fleet.yaml")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetError);
    const lines = (err as FleetError).problems.map((p) => `F:${p.line}:${p.col} ${p.field}: ${p.message}`);
    if (expected.length) expect(lines).toEqual(expected);
    else expect(lines).toEqual([expect.stringMatching(/^F:2:15 roleSources\.0: (\.\/roles\.local\/hello\/index\.ts: cannot be loaded: |role source .*roles\.local has no index\.ts and no subfolder with one)/)]);
  });

  it("that breaks the contract stops the CLI with exit 2 and the located line, no stack trace", () => {
    const dir = tempTree({ "fleet.yaml": FLEET("hello"), "roles.local/hello/index.ts": HELLO.replace(/render: [^]*?\}\),\n/, "") });
    const r = fleetCli(["plan", "--fleet", join(dir, "fleet.yaml")]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")[0]).toBe(`${join(dir, "fleet.yaml")}:2:15 roleSources.0: ./roles.local/hello/index.ts: definition.render: expected a function (fleet, node, settings) => RoleParts, got nothing`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("outside an ES module package cannot be loaded by the CLI, and the error says what to add", () => {
    const dir = tempTree({ "fleet.yaml": FLEET("hello"), "roles.local/hello/index.ts": HELLO }, false);
    const r = fleetCli(["plan", "--fleet", join(dir, "fleet.yaml")]);
    expect(r.status).toBe(2);
    expect(r.stderr.split("\n")[0]).toMatch(
      new RegExp(`^${join(dir, "fleet.yaml")}:2:15 roleSources\\.0: \\./roles\\.local/hello/index\\.ts: cannot be loaded: .*; a role is an ES module: put a package\\.json with \\{"type": "module"\\} in ${join(dir, "roles.local")} \\(or above\\)$`),
    );
  });

  it("names user roles in an unknown role's message and suggestion, and checks the OSes the role declares", async () => {
    const dir = tempTree({ "fleet.yaml": "", "roles.local/hello/index.ts": HELLO });
    const problems = async (text: string) =>
      ((await parseFleetWithRoles(text, join(dir, "fleet.yaml")).catch((e: unknown) => e)) as FleetError).problems.map((p) => `F:${p.line}:${p.col} ${p.field}: ${p.message}`);
    expect(await problems(FLEET("helo"))).toEqual([
      'F:10:13 nodes.box.roles.0: expected one of tailscale|claude|icecc-scheduler|iceccd|toolchains|agentapi|ntfy|queue|worker|hello, got "helo" (did you mean hello?)',
    ]);
    expect(await problems(FLEET("hello").replace("os: debian", "os: macos"))).toEqual([
      "F:8:9 nodes.box.os: role hello is not supported on macos; it runs on debian|arch (move the role to another node or remove it)",
    ]);
  });

  it("whose listens returns a source outside the grammar is refused before anything renders", async () => {
    const role = HELLO.replace("after: [],", 'after: [], listens: () => [{ service: "hello", proto: "tcp", port: 7000, from: ["10.0.0.0/8; flush ruleset"], why: "x" }],');
    const dir = tempTree({ "fleet.yaml": "", "roles.local/hello/index.ts": role });
    const fleet = await parseFleetWithRoles(FLEET("hello"), join(dir, "fleet.yaml"));
    expect(() => renderNodeBundles(fleet, fleet.nodes[0]!)).toThrow(
      'role hello: listens() on node box returned a source that is not fleet, tailnet, anywhere or a CIDR block: "10.0.0.0/8; flush ruleset"; fix the role\'s index.ts',
    );
  });

  it("takes its settings from services.<role>, validated by the role's own schema with located errors", async () => {
    const role = `import { z } from "${join(REPO, "node_modules/zod/index.js")}";
${HELLO.replace('after: [],', 'after: [], settings: z.object({ greeting: z.string().max(20).default("hello") }).strict(),').replace("hello from", "${settings.greeting} from").replace("render: (fleet, node)", "render: (fleet, node, settings)")}`;
    const dir = tempTree({ "fleet.yaml": "", "roles.local/hello/index.ts": role });
    const file = join(dir, "fleet.yaml");
    const fleet = await parseFleetWithRoles(FLEET("hello", "services:\n  hello: { greeting: moin }\n"), file);
    expect(renderNodeBundles(fleet, fleet.nodes[0]!)[0]!.files[0]!.content).toBe("moin from box in lab\n");
    const byDefault = await parseFleetWithRoles(FLEET("hello"), file);
    expect(renderNodeBundles(byDefault, byDefault.nodes[0]!)[0]!.files[0]!.content).toBe("hello from box in lab\n");
    const err = (await parseFleetWithRoles(FLEET("hello", "services:\n  hello: { greting: moin }\n"), file).catch((e: unknown) => e)) as FleetError;
    expect(err.problems.map((p) => `F:${p.line}:${p.col} ${p.field}: ${p.message}`)).toEqual([
      'F:6:12 services.hello.greting: unknown field "greting" (did you mean greeting?); allowed here: greeting',
    ]);
  });
});
