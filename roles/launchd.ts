/**
 * launchd property lists built from objects, never from text templates: the `plist` package writes every
 * string as XML character data (escaping `&`, `<`, `>` and carriage returns), so a value can never close
 * its `<string>` or open a `<key>`. What XML 1.0 cannot carry at all (most control characters, U+FFFE,
 * U+FFFF, lone surrogates) is refused with the key path of the value.
 *
 * Keys are the launchd.plist(5) ones fleetkit's LaunchDaemons use; the file name is `<Label>.plist` in
 * /Library/LaunchDaemons, and `launchctl bootstrap system <file>` loads it (roles' fk_launchd_daemon).
 */
import { build } from "plist";
import { commentText } from "./escape.js";

/** One LaunchDaemon job: the subset of launchd.plist(5) keys fleetkit writes, in the order they appear. */
export interface LaunchdJob {
  /** Unique job name; also the plist's file name without `.plist`. */
  Label: string;
  /** User the job runs as (root when absent). */
  UserName?: string;
  /** argv of the program; element 0 is the executable's absolute path. */
  ProgramArguments: string[];
  WorkingDirectory?: string;
  EnvironmentVariables?: Record<string, string>;
  RunAtLoad: boolean;
  KeepAlive: boolean;
  /** Seconds between SIGTERM and SIGKILL when launchd stops the job. */
  ExitTimeOut?: number;
  /** Run the job again every this many seconds (a job that runs and exits, not a daemon). */
  StartInterval?: number;
  StandardOutPath?: string;
  StandardErrorPath?: string;
}

/** Characters XML 1.0 does not allow in a document, not even escaped (XML 1.0 §2.2 Char). */
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkXml(value: unknown, path: string): void {
  if (typeof value === "string") {
    const m = NOT_XML.exec(value);
    if (m) throw new Error(`launchd plist ${path}: ${JSON.stringify(value.slice(0, 80))} holds U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}, which no XML property list can carry`);
  } else if (Array.isArray(value)) value.forEach((v, i) => checkXml(v, `${path}[${i}]`));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) {
    checkXml(k, `${path} key`);
    checkXml(v, `${path}.${k}`);
  }
}

/**
 * The XML plist of `job` with `comment` (lines of prose; values in it are shown on one line, like any
 * template comment) as an XML comment before `<plist>`. Text ending in a newline.
 * @throws Error naming the key when a string holds a character XML cannot represent.
 */
export function launchdPlist(comment: string[], job: LaunchdJob): string {
  checkXml(job, job.Label);
  // An XML comment may not contain "--" nor end in "-" (XML 1.0 §2.5).
  const text = comment.map((l) => commentText(l).replace(/-(?=-)/g, "- ").replace(/-$/, "- ")).join("\n     ");
  const defined = Object.fromEntries(Object.entries(job).filter(([, v]) => v !== undefined));
  const xml = build(defined as Parameters<typeof build>[0], { pretty: true, indent: "  " });
  const at = xml.indexOf("<plist");
  return `${xml.slice(0, at)}<!-- ${text} -->\n${xml.slice(at)}\n`;
}
