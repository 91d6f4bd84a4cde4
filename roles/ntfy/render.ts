/**
 * Role `ntfy`: the fleet's notification server (remote-tasks.md ran it with docker compose on a Pi, port 8091).
 *
 * Split of work: this bundle prepares the host — `<configDir>/ntfy/server.yml` and the data directory
 * `<stateDir>/ntfy` (cache and auth databases) — and the Pulumi component creates the container through a
 * `docker.Provider` whose host is {@link ntfyDockerHost}, from the pure {@link ntfyContainer} spec. The
 * bundle runs first; when it changes the config of a running container it restarts it (ntfy reads its
 * config only at start).
 *
 * Access (FIELD-NOTES: ntfy's default is read-write for everyone): `auth-file` + `auth-default-access:
 * deny-all`, and a declared publisher account (`auth-users`, `auth-access`, `auth-tokens`: ntfy ≥ 2.14's
 * config provisioning, docs.ntfy.sh/config "Users via the config" / "Tokens via the config") that may only
 * write the fleet's topic. Its access token is the Pulumi secret `ntfyToken` (`tk_` + 29 lower-case letters
 * or digits, the format `ntfy token add` mints), arriving on stdin and written only into the 0600 server.yml;
 * the queue role hands the same token to workers. The publisher's password hash is a bcrypt-format value that
 * no known password matches: the account is usable with its token only. People who subscribe get accounts
 * with `docker exec -it ntfy ntfy user add …` (kept in the auth database across deploys).
 *
 * Needs ntfy 2.14 or newer for those three keys (fleet.yaml's default image is v2.14.0).
 *
 * Keys checked against ntfy's server.yml reference: base-url, listen-http, cache-file, cache-duration,
 * attachment-cache-dir, behind-proxy, upstream-base-url, auth-file, auth-default-access, enable-login,
 * enable-signup, auth-users, auth-access, auth-tokens.
 */
import type { Fleet, FleetNode } from "../../model/fleet.js";
import { renderTemplate, sh, type RoleParts } from "../bundle.js";
import { platformFor } from "../platform.js";
import { isTailnetAddress } from "../reach.js";
import { sshClientArgs } from "../ssh.js";

/** Name of the ntfy container (and of the service in the bundle). */
export const NTFY_CONTAINER = "ntfy";
/** The account workers publish as. */
export const NTFY_PUBLISHER = "fleetkit-publisher";
/**
 * bcrypt-format password hash (`$2a$10$` + 53 characters of bcrypt's alphabet) that is not the hash of any
 * known password: the publisher account cannot log in with a password, only with its access token.
 */
export const NTFY_LOCKED_HASH = "$2a$10$" + "fleetkitPublisherLogsInWithItsAccessTokenOnly.NoPassw";

/** Base URL of the ntfy server inside the tailnet: `http://<node host>:<services.ntfy.port>`. */
export function ntfyUrl(fleet: Fleet, node: FleetNode): string {
  return `http://${node.host}:${fleet.services.ntfy.port}`;
}

/** The Docker engine address for `docker.Provider`: `ssh://<user>@<host>` (`:<port>` when not 22). */
export function ntfyDockerHost(node: FleetNode): string {
  return `ssh://${node.user}@${node.host}${node.sshPort === 22 ? "" : `:${node.sshPort}`}`;
}

/**
 * The options Docker's SSH transport hands the local `ssh` client (`docker.Provider` `sshOpts`): roles/ssh.ts
 * `sshClientArgs` without `-p`, since user, host and port travel in {@link ntfyDockerHost}. `keyFile` is the
 * private key file, undefined = ssh-agent.
 * Recorded in every stack's state: a changed list is a provider diff on every ntfy node.
 */
export function ntfyDockerSshOpts(node: FleetNode, keyFile?: string): string[] {
  return sshClientArgs(node, { keyFile, port: false });
}

/** Host directories of the ntfy role on `node`: its config (mounted at /etc/ntfy) and data (/var/lib/ntfy). */
export function ntfyDirs(node: FleetNode): { configDir: string; dataDir: string } {
  const p = platformFor(node);
  return { configDir: `${p.configDir}/ntfy`, dataDir: `${p.stateDir}/ntfy` };
}

/** What the Pulumi component needs to create the ntfy container; see {@link ntfyContainer}. */
export interface NtfyContainerSpec {
  /** Pinned image from fleet.yaml `services.ntfy.image`. */
  image: string;
  name: string;
  /**
   * ntfy listens on 80 inside; the host publishes `services.ntfy.port`, on `ip` when set (@pulumi/docker
   * `ports[].ip`): the node's tailnet address when fleet.yaml's `host` is one and `services.ntfy.allowFrom`
   * names only `fleet` and `tailnet` (everyone allowed comes over the tailnet). Otherwise Docker publishes on
   * every address and the role's firewall chain `ntfy-forward` (roles/firewall.ts) keeps out whoever
   * `services.ntfy.allowFrom` does not name: the tailnet address behind a MagicDNS name is not known here.
   */
  ports: { internal: number; external: number; ip?: string }[];
  /**
   * Bind mounts. The config is mounted as a directory, not as the file: server.yml is replaced by rename,
   * and a file bind mount would keep showing the container the old inode.
   */
  volumes: { hostPath: string; containerPath: string; readOnly: boolean }[];
  command: string[];
  restart: "unless-stopped";
  /** `GET` answers `{"healthy":true}` when ntfy is up (ntfy's /v1/health). */
  healthUrl: string;
}

/** Whether the ntfy container publishes its port on the node's tailnet address only (see {@link NtfyContainerSpec}). */
export function ntfyBindsTailnet(fleet: Fleet, node: FleetNode): boolean {
  return isTailnetAddress(node.host) && fleet.services.ntfy.allowFrom.every((f) => f === "fleet" || f === "tailnet");
}

/** The container spec for the ntfy node. Pure. */
export function ntfyContainer(fleet: Fleet, node: FleetNode): NtfyContainerSpec {
  const { configDir, dataDir } = ntfyDirs(node);
  return {
    image: fleet.services.ntfy.image,
    name: NTFY_CONTAINER,
    ports: [{ internal: 80, external: fleet.services.ntfy.port, ...(ntfyBindsTailnet(fleet, node) ? { ip: node.host } : {}) }],
    volumes: [
      { hostPath: configDir, containerPath: "/etc/ntfy", readOnly: true },
      { hostPath: dataDir, containerPath: "/var/lib/ntfy", readOnly: false },
    ],
    command: ["serve"],
    restart: "unless-stopped",
    healthUrl: `${ntfyUrl(fleet, node)}/v1/health`,
  };
}

/** The public part of server.yml (everything but the token) for `node`. Pure. */
export function ntfyServerYaml(fleet: Fleet, node: FleetNode): string {
  const s = fleet.services.ntfy;
  return renderTemplate("ntfy/server.yml", {
    node: node.name,
    dataDir: ntfyDirs(node).dataDir,
    baseUrl: s.baseUrl ?? ntfyUrl(fleet, node),
    upstreamBaseUrl: s.upstreamBaseUrl,
    topic: s.topic,
    publisher: NTFY_PUBLISHER,
    // Whole scalars: the template's YAML escaping quotes each value, so composite ones are built here.
    authUser: `${NTFY_PUBLISHER}:${NTFY_LOCKED_HASH}:user`,
    authAccess: `${NTFY_PUBLISHER}:${s.topic}:write-only`,
  });
}

/** Renders the ntfy role for one node (see the module docstring). Pure. */
export function renderNtfy(fleet: Fleet, node: FleetNode): RoleParts {
  const p = platformFor(node);
  const { configDir, dataDir } = ntfyDirs(node);
  const publicFile = `${configDir}/server.public.yml`;
  const configFile = `${configDir}/server.yml`;
  const view = { user: node.user, configDir, dataDir, publicFile, configFile, publisher: NTFY_PUBLISHER, container: NTFY_CONTAINER, rootGroup: p.rootGroup };
  return {
    packages: [],
    preInstall: renderTemplate("ntfy/install.sh", view).trimEnd(),
    files: [{ path: publicFile, mode: 0o644, owner: "root", kind: "yaml", content: ntfyServerYaml(fleet, node) }],
    postInstall: renderTemplate("ntfy/configure.sh", view).trimEnd(),
    postUninstall: [sh`fk_rm ${configFile}`, sh`fk_log "kept ntfy's cache and user database in ${dataDir}"`].join("\n"),
    services: [{ name: NTFY_CONTAINER, manager: "docker", scope: "system" }],
    secrets: ["ntfyToken"],
  };
}
