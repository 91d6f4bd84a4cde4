import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import { fleetJsonSchema, fleetJsonSchemaText } from "../../model/json-schema.js";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";

describe("the real fleets", () => {
  it("fleet.yaml is the nine-machine agent mesh with the reference's budget caps", () => {
    const fleet = loadFleet("fleet.yaml");
    expect(fleet.nodes.map((n) => [n.name, n.os, n.arch, n.budgetUsdPerSession, n.wslDistro ?? null])).toEqual([
      ["arch-orchestrator", "arch", "x86_64", 20, null],
      ["macbook1", "macos", "x86_64", 10, null],
      ["imac", "macos", "x86_64", 10, null],
      ["macbook2", "macos", "x86_64", 5, null],
      ["rpi1", "raspios", "aarch64", 5, null],
      ["rpi2", "raspios", "aarch64", 5, null],
      ["rpi3", "raspios", "aarch64", 5, null],
      ["windows-desktop", "windows-wsl", "x86_64", 5, "Debian"],
      ["windows-laptop", "windows-wsl", "x86_64", 5, "Debian"],
    ]);
    const orchestrator = fleet.nodes[0];
    expect(orchestrator.roles).toEqual(["tailscale", "claude", "icecc-scheduler", "iceccd", "toolchains", "agentapi", "ntfy", "queue", "worker"]);
    expect(fleet.nodes.filter((n) => n.roles.includes("worker")).map((n) => n.name)).toEqual([
      "arch-orchestrator", "macbook1", "imac", "rpi1", "rpi2", "rpi3",
    ]);
  });

  it.each([
    ["examples/remote-tasks.fleet.yaml", "remote-tasks", ["macbook-air", "macbook-pro", "raspberrypi"]],
    ["examples/shared-fs-queue.fleet.yaml", "shared-fs-queue", ["control-node", "pi-node-1", "pi-node-2"]],
  ])("%s loads", (file, name, nodes) => {
    const fleet = loadFleet(file);
    expect(fleet.name).toBe(name);
    expect(fleet.nodes.map((n) => n.name)).toEqual(nodes);
  });

  it("the remote-tasks Pi hosts ntfy on 8091", () => {
    const fleet = loadFleet("examples/remote-tasks.fleet.yaml");
    expect(fleet.nodes.find((n) => n.roles.includes("ntfy"))?.name).toBe("raspberrypi");
    expect(fleet.services.ntfy.port).toBe(8091);
  });

  it("fleet.schema.json is generated from the zod schema (run `npm run schema` when this fails)", () => {
    expect(readFileSync("fleet.schema.json", "utf8")).toBe(fleetJsonSchemaText());
  });

  it.each(["fleet.yaml", "examples/remote-tasks.fleet.yaml", "examples/shared-fs-queue.fleet.yaml"])("%s references the schema for editors", (file) => {
    expect(readFileSync(file, "utf8").split("\n")[0]).toMatch(/^# yaml-language-server: \$schema=(\.\/|\.\.\/)fleet\.schema\.json$/);
  });

  // What an editor does with fleet.schema.json (yaml-language-server validates with a draft 2020-12 validator).
  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(fleetJsonSchema());
  it.each(["fleet.yaml", "examples/remote-tasks.fleet.yaml", "examples/shared-fs-queue.fleet.yaml", "examples/monitoring.fleet.yaml"])(
    "%s is valid against fleet.schema.json, user roles and their settings included",
    (file) => {
      validate(parse(readFileSync(file, "utf8")));
      expect(validate.errors ?? []).toEqual([]);
    },
  );

  it.each([
    ["a role that is no label", "roles: [Node_Exporter]", "/nodes/n/roles/0"],
    ["a services block that is no map", "services: { node-exporter: 9100 }", "/services/node-exporter"],
  ])("fleet.schema.json still refuses %s", (_what, line, path) => {
    const text = `fleet: f\ndefaults: {}\n${line.startsWith("services") ? line + "\nnodes: { n: { host: n, os: debian, arch: x86_64, roles: [tailscale] } }" : `nodes: { n: { host: n, os: debian, arch: x86_64, ${line} } }`}\n`;
    expect(validate(parse(text))).toBe(false);
    expect(validate.errors!.map((e) => e.instancePath)).toContain(path);
  });
});
