/**
 * Every command line fleetkit sends to a Windows node of the three real fleets (roles/bundle.ts
 * remoteInvocation over each role's install, remoteCommand over its uninstall), for the Windows tests to
 * check. An install too long for the line carries its packed script at the start of stdin (`stdin`).
 */
import { loadFleet } from "../../model/load.js";
import { renderBundle } from "../../roles/index.js";
import { remoteCommand, remoteInvocation } from "../../roles/bundle.js";
import type { ScriptTarget } from "../../roles/types.js";
import { REAL_FLEETS } from "../program/fleets.js";

/** One Windows command: `<node>/<role> install|uninstall`, where it runs, the script and the SSH command line. */
export interface WindowsCommand {
  what: string;
  target: ScriptTarget;
  script: string;
  line: string;
  /** The start of stdin (the packed script, when it does not fit the line), else "". */
  stdin: string;
}

/** In fleet file, node and role order; install before uninstall. */
export const WINDOWS_COMMANDS: WindowsCommand[] = REAL_FLEETS.flatMap((file) => {
  const fleet = loadFleet(file);
  return fleet.nodes
    .filter((n) => n.os === "windows-wsl")
    .flatMap((n) =>
      n.roles.flatMap((role) => {
        const b = renderBundle(fleet, n, role);
        const install = remoteInvocation(n, b.target, b.install);
        return [
          { what: `${n.name}/${role} install`, target: b.target, script: b.install, line: install.command, stdin: install.stdinPrefix },
          { what: `${n.name}/${role} uninstall`, target: b.target, script: b.uninstall, line: remoteCommand(n, b.target, b.uninstall), stdin: "" },
        ];
      }),
    );
});

/**
 * What wsl.exe runs inside the distro for a `wsl` command line of a node whose distro is Debian: the `sh -c`
 * argument, and the temp file it unpacks the script into.
 * @throws TypeError when `command` is not such a line (the test using it is then wrong).
 */
export function wslLauncher(command: string): { inner: string; file: string } {
  const inner = /^wsl\.exe -d Debian -u root -e sh -c "(.*)"$/.exec(command)?.[1];
  const file = inner && /> (\/tmp\/fleetkit-[0-9a-f]{16}\.sh) /.exec(inner)?.[1];
  if (!inner || !file) throw new TypeError(`not a WSL launcher command line: ${command.slice(0, 120)}`);
  return { inner, file };
}
