/**
 * Shell fragments that query, restart and show logs of one {@link BundleService} with the right service
 * manager: systemd (system or `--user` units; also inside a Windows node's WSL distro), launchd
 * (LaunchDaemons in the `system` domain, LaunchAgents in `gui/<uid>`) or Docker. The services themselves
 * come from the rendered role bundles, never from a list kept here. Fragments run as root on the node
 * (they are started with the bundles' own `remoteCommand`).
 *
 * Sources: systemctl(1) `is-active`, `show -p LoadState`, `--machine=USER@ --user`; launchctl(1) `print`,
 * `kickstart -k`; docker inspect/restart/logs reference.
 */
import { shQuote } from "../roles/bundle.js";
import type { Bundle, BundleService } from "../roles/types.js";
import type { FleetNode } from "../model/fleet.js";
import { parse as parsePlist } from "plist";

/** A service's state, normalised across managers. `missing` = the manager does not know the service. */
export type ServiceState = "active" | "activating" | "inactive" | "failed" | "missing" | "unknown";

export const SERVICE_STATES: readonly ServiceState[] = ["active", "activating", "inactive", "failed", "missing", "unknown"];

function systemctl(svc: BundleService, node: FleetNode): string {
  return svc.scope === "user" ? `systemctl --machine=${shQuote(node.user + "@")} --user` : "systemctl";
}

function launchdDomain(svc: BundleService, node: FleetNode): string {
  return svc.scope === "user" ? `gui/$(id -u ${shQuote(node.user)})` : "system";
}

/**
 * A POSIX sh fragment that prints exactly one {@link ServiceState} word for `svc` on stdout and always
 * exits 0.
 */
export function serviceStateScript(svc: BundleService, node: FleetNode): string {
  const name = shQuote(svc.name);
  switch (svc.manager) {
    case "systemd": {
      const sc = systemctl(svc, node);
      return [
        `if [ "$(${sc} show -p LoadState --value ${name} 2>/dev/null)" = not-found ]; then echo missing; else`,
        `  case "$(${sc} is-active ${name} 2>/dev/null)" in`,
        `    active|reloading) echo active ;; activating) echo activating ;; failed) echo failed ;;`,
        `    inactive|deactivating) echo inactive ;; *) echo unknown ;;`,
        `  esac`,
        `fi`,
      ].join("\n");
    }
    case "launchd": {
      const target = `${launchdDomain(svc, node)}/${svc.name}`;
      return [
        `if ! fk_lp=$(launchctl print "${target}" 2>/dev/null); then echo missing; else`,
        `  case "$(printf '%s\\n' "$fk_lp" | sed -n 's/^[[:space:]]*state = //p' | head -n1)" in`,
        `    running) echo active ;; spawn\\ scheduled|xpcproxy) echo activating ;; *) echo inactive ;;`,
        `  esac`,
        `fi`,
      ].join("\n");
    }
    case "docker":
      return [
        `case "$(docker inspect -f '{{.State.Status}}' ${name} 2>/dev/null || echo missing)" in`,
        `  running) echo active ;; restarting) echo activating ;; dead) echo failed ;; missing) echo missing ;;`,
        `  exited|created|paused|removing) echo inactive ;; *) echo unknown ;;`,
        `esac`,
      ].join("\n");
  }
}

/** A POSIX sh fragment that restarts `svc` (starts it when stopped). Exits non-zero when the manager fails. */
export function serviceRestartScript(svc: BundleService, node: FleetNode): string {
  const name = shQuote(svc.name);
  switch (svc.manager) {
    case "systemd":
      return `${systemctl(svc, node)} restart ${name}`;
    case "launchd":
      // kickstart -k kills a running job and starts it again; a job that is not loaded cannot be kicked.
      return `launchctl kickstart -k "${launchdDomain(svc, node)}/${svc.name}"`;
    case "docker":
      return `docker restart ${name} >/dev/null`;
  }
}

/** Log files named by a launchd plist among the bundle's files (StandardOutPath / StandardErrorPath). */
export function launchdLogPaths(bundle: Bundle, svc: BundleService): string[] {
  const paths = new Set<string>();
  for (const f of bundle.files) {
    if (f.kind !== "launchd") continue;
    const plist = parsePlist(f.content) as Record<string, unknown>;
    if (plist.Label !== svc.name) continue;
    for (const key of ["StandardOutPath", "StandardErrorPath"]) {
      const v = plist[key];
      if (typeof v === "string") paths.add(v);
    }
  }
  return [...paths];
}

/**
 * A POSIX sh fragment that prints the last `lines` log lines of `svc` and, with `follow`, keeps
 * streaming. systemd: the journal of the unit; launchd: the plist's log files (macOS has no per-job
 * journal); docker: `docker logs`.
 */
export function serviceLogsScript(bundle: Bundle, svc: BundleService, node: FleetNode, opts: { lines: number; follow: boolean }): string {
  const n = String(opts.lines);
  const f = opts.follow ? " -f" : "";
  switch (svc.manager) {
    case "systemd":
      return svc.scope === "user"
        ? `journalctl --no-pager -n ${n}${f} _SYSTEMD_USER_UNIT=${shQuote(svc.name)} _UID="$(id -u ${shQuote(node.user)})"`
        : `journalctl --no-pager -n ${n}${f} -u ${shQuote(svc.name)}`;
    case "launchd": {
      const paths = launchdLogPaths(bundle, svc);
      if (paths.length === 0) return `echo ${shQuote(`fleet logs: the launchd job ${svc.name} writes no log file (no StandardOutPath/StandardErrorPath in its plist)`)} >&2; exit 1`;
      return `tail -n ${n}${opts.follow ? " -F" : ""} ${paths.map(shQuote).join(" ")}`;
    }
    case "docker":
      return `docker logs --tail ${n}${f} ${shQuote(svc.name)}`;
  }
}
