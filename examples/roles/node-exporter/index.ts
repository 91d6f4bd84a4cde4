/**
 * Role `node-exporter`, a user role (README "Writing a role"): the Prometheus node exporter, serving the
 * node's metrics over HTTP at `:<port>/metrics` for a Prometheus server to scrape, and nothing else.
 *
 * - Debian, Raspberry Pi OS and a Windows node's WSL distro: the `prometheus-node-exporter` package; Arch:
 *   `prometheus-node-exporter`; both run as a systemd unit of our own that shadows the package's
 *   (`/etc/systemd/system` wins over `/lib/systemd/system`), so the port is fleet.yaml's and the exporter
 *   runs as a throwaway user (`DynamicUser=yes`, systemd.exec(5)).
 * - macOS: the Homebrew formula `node_exporter`, as the LaunchDaemon `brew services` would write, as `nobody`.
 *
 * fleet.yaml settings, under `services.node-exporter` (validated by {@link settings}): `port` (default 9100,
 * the exporter's registered port) and `allowFrom` (default `[fleet]`: who may scrape, enforced by the node
 * firewall fleetkit installs for every listening role: `fleet`, `tailnet`, `anywhere` or CIDR blocks).
 */
import { z } from "zod";
import { reachSource } from "../../../model/grammar.js";
import { sh, type RoleParts } from "../../../roles/bundle.js";
import { launchdPlist } from "../../../roles/launchd.js";
import { platformFor } from "../../../roles/platform.js";
import type { RoleDefinition, RoleProbe } from "../../../roles/types.js";

/** `services.node-exporter` in fleet.yaml. */
export const settings = z
  .object({
    /** TCP port the exporter listens on (node_exporter's `--web.listen-address`). */
    port: z.number().int().min(1).max(65535).default(9100),
    /** Who may scrape: fleet, tailnet, anywhere or CIDR blocks (the node firewall enforces it). */
    allowFrom: z.array(reachSource).min(1).max(64).default(["fleet"]),
  })
  .strict();
export type Settings = z.output<typeof settings>;

const PACKAGES = { apt: ["prometheus-node-exporter"], pacman: ["prometheus-node-exporter"], brew: ["node_exporter"] };
const UNIT = "prometheus-node-exporter.service";
const LABEL = "homebrew.mxcl.node_exporter";

/** Renders the exporter for one node: package, a service listening on the configured port. Pure. */
export function render(_fleet: unknown, node: Parameters<RoleDefinition["render"]>[1], s: Settings): RoleParts {
  const p = platformFor(node);
  const listen = `--web.listen-address=:${s.port}`;
  if (p.family === "macos") {
    const prefix = p.brew!.replace(/\/bin\/brew$/, "");
    const plist = `/Library/LaunchDaemons/${LABEL}.plist`;
    return {
      packages: p.packageList(PACKAGES),
      preInstall: p.installPackages(PACKAGES),
      files: [
        {
          path: plist,
          mode: 0o644,
          owner: "root",
          kind: "launchd",
          content: launchdPlist(
            [`Rendered by fleetkit for node ${node.name}: the Prometheus node exporter (user role node-exporter).`],
            { Label: LABEL, UserName: "nobody", ProgramArguments: [`${prefix}/opt/node_exporter/bin/node_exporter`, listen], RunAtLoad: true, KeepAlive: true },
          ),
        },
      ],
      postInstall: sh`fk_launchd_daemon ${LABEL} ${plist} system`,
      preUninstall: sh`fk_launchd_remove ${LABEL} ${plist} system`,
      services: [{ name: LABEL, manager: "launchd", scope: "system" }],
    };
  }
  const unitPath = `/etc/systemd/system/${UNIT}`;
  return {
    packages: p.packageList(PACKAGES),
    preInstall: p.installPackages(PACKAGES),
    files: [
      {
        path: unitPath,
        mode: 0o644,
        owner: "root",
        kind: "systemd",
        content: [
          `# Rendered by fleetkit for node ${node.name}: the Prometheus node exporter (user role node-exporter).`,
          "# Shadows the package's unit: fleet.yaml's port, a throwaway user.",
          "[Unit]",
          "Description=Prometheus node exporter (fleetkit role node-exporter)",
          "After=network-online.target",
          "Wants=network-online.target",
          "",
          "[Service]",
          `ExecStart=/usr/bin/prometheus-node-exporter ${listen}`,
          "DynamicUser=yes",
          "Restart=on-failure",
          "",
          "[Install]",
          "WantedBy=multi-user.target",
          "",
        ].join("\n"),
      },
    ],
    postInstall: `fk_systemd_unit ${UNIT}`,
    preUninstall: sh`fk_systemd_remove ${UNIT} ${unitPath}`,
    services: [{ name: UNIT, manager: "systemd", scope: "system" }],
  };
}

/** What `fleet status` asks: `GET /metrics` on the node itself; healthy = 200 with `node_` metrics in it. */
const probe: RoleProbe<{ httpCode: number; metrics: number }> = {
  script: (fleet) => {
    const port = (fleet.services["node-exporter"] as Settings).port;
    return [
      sh`fk_ne=$(curl -s -m 3 -o /tmp/fleetkit-probe-ne.$$ -w '%{http_code}' ${`http://127.0.0.1:${port}/metrics`} 2>/dev/null) || true`,
      "fk_nen=$(grep -c '^node_' /tmp/fleetkit-probe-ne.$$ 2>/dev/null) || fk_nen=0",
      "rm -f /tmp/fleetkit-probe-ne.$$",
      "echo \"node-exporter\t${fk_ne:-000}\t${fk_nen:-0}\"",
    ];
  },
  parse: (f) => (f.length === 2 && /^\d{3}$/.test(f[0]) && /^\d+$/.test(f[1]) ? { httpCode: Number(f[0]), metrics: Number(f[1]) } : undefined),
  judge: (fact) => {
    if (!fact) return [];
    if (fact.httpCode !== 200) return [fact.httpCode === 0 ? "GET /metrics: no answer" : `GET /metrics answered ${fact.httpCode}`];
    return fact.metrics === 0 ? ["GET /metrics served no node_ metrics"] : [];
  },
};

/** The `node-exporter` role (roles/types.ts `RoleDefinition`). */
export const definition: RoleDefinition<Settings> = {
  name: "node-exporter",
  docs: "the Prometheus node exporter, serving the node's metrics on services.node-exporter.port to services.node-exporter.allowFrom",
  os: ["debian", "raspios", "arch", "macos", "windows-wsl"],
  after: [{ role: "tailscale", where: "local" }],
  settings,
  render,
  probe: probe as RoleProbe,
  listens: (_fleet, _node, s) => [{ service: "node-exporter", proto: "tcp", port: s.port, from: s.allowFrom, why: `services.node-exporter.allowFrom: ${s.allowFrom.join(", ")}` }],
};
