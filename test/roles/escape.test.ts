/**
 * roles/escape.ts and renderTemplate, case by case: what each target and place makes of a value, what is
 * refused and how the refusal reads; every template's tags sit where a value can go; the triple mustaches.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import Mustache from "mustache";
import { loadFleet } from "../../model/load.js";
import { Fragment, remoteCommand, renderTemplate, sh, ps, windowsWord } from "../../roles/bundle.js";
import { commentText, escapeValue, jsString, psQuote, scanContexts, shQuote, shWord, templateTarget, yamlScalar, type ValueContext } from "../../roles/escape.js";
import { launchdPlist } from "../../roles/launchd.js";
import { withoutCommentLines } from "../../roles/wsl.js";

const TEMPLATES = new URL("../../templates/", import.meta.url).pathname;
const templateFiles = (dir = TEMPLATES): string[] =>
  readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? templateFiles(join(dir, f)) : [relative(TEMPLATES, join(dir, f))])).sort();

describe("template targets by extension", () => {
  it.each([
    ["claude/install.sh", "sh"],
    ["icecc/iceccd.service", "systemd"],
    ["ntfy/server.yml", "yaml"],
    ["tailscale/windows-install.ps1", "powershell"],
    ["agentapi/claude-onboarded.mjs", "js"],
    ["x/config.json", "js"],
    ["claude/CLAUDE.md", "text"],
  ])("%s → %s", (path, target) => {
    expect(templateTarget(path)).toBe(target);
  });

  it.each([
    ["x/com.example.plist", "template x/com.example.plist: plists are not text templates; build them from an object with launchdPlist (roles/launchd.ts)"],
    ["x/conf.ini", "template x/conf.ini: fleetkit does not know how to escape values for this file type; name it by its target (.sh, .service, .yml, .ps1, .mjs, .json, .md)"],
  ])("%s is refused", (path, message) => {
    expect(() => templateTarget(path)).toThrow(message);
  });
});

/** `text` with one `{{v}}`: its context, and what `value` becomes there (or the refusal). */
function at(target: Parameters<typeof scanContexts>[0], text: string, value: unknown): string {
  const start = text.indexOf("{{v}}");
  const ctx = scanContexts(target, text, [{ start, end: start + 5 }]).get(start)!;
  try {
    return `${ctx.kind}: ${escapeValue(target, ctx, value)}`;
  } catch (e) {
    return `${ctx.kind}: refused: ${(e as Error).message}`;
  }
}

describe("sh: the place decides the escaping", () => {
  const v = "a'b\"c $(x) `y` \\ ${z}";
  it.each([
    ["X={{v}}", v, `word: 'a'\\''b"c $(x) \`y\` \\ \${z}'`],
    ["fk_rm {{v}}/x", "/p q", "word: '/p q'"],
    ['fk_log "say {{v}}"', v, 'double: a\'b\\"c \\$(x) \\`y\\` \\\\ \\${z}'],
    ["fk_cc_want='{{v}} (Claude Code)'", v, `single: a'\\''b"c $(x) \`y\` \\ \${z}`],
    ['x="$(mktemp {{v}}/.t)"', "/d", "word: '/d'"],
    ["x=$((1 + {{v}}))", 2, "word: 2"],
    ["# node {{v}}", "a\nrm -rf /", 'comment: "a\\nrm -rf /"'],
    ["# node {{v}}", "plain name", "comment: plain name"],
    ["for a in {{v}}; do :; done", ["x y", "z"], "word: 'x y' 'z'"],
    ["cat <<'EOF'\n{{v}}\nEOF", "x", "refused: refused: no value may go here: it sits inside a here-document (<<EOF), where no quoting applies"],
    ["cat <<EOF\n$HOME {{v}}\nEOF", "x", "refused: refused: no value may go here: it sits inside a here-document (<<EOF), where no quoting applies"],
    ["x=`echo {{v}}`", "x", "refused: refused: no value may go here: it sits inside a backtick command substitution; use $(…)"],
    ["rm -rf {{v}}", "-x", 'word: refused: it begins with "-" at the start of a sh word, where a command would read it as an option'],
    ["--name={{v}}", "-x", "word: '-x'"],
    ["X={{v}}", "a\0b", "word: refused: a NUL byte cannot be part of a sh word"],
    ["X={{v}}", Number.NaN, "word: refused: NaN is not a finite number"],
    ["X={{v}}", { a: 1 }, "word: refused: expected a string or number, got object"],
  ])("%j with %j", (text, value, expected) => {
    expect(at("sh", text, value)).toBe(expected);
  });
});

describe("systemd: the directive decides", () => {
  it.each([
    ["ExecStart={{v}} --x", "/usr/bin/node", "unit: /usr/bin/node"],
    ["ExecStart=/bin/a {{v}}", "a b%c$d\"e\\f;", 'unit: "a b%%c$$d\\"e\\\\f;"'],
    ["ExecStart=/bin/a {{v}}", ";", 'unit: ";"'],
    ["ExecStart=/bin/a --x={{v}}", "-y", "unit: -y"],
    ["ExecStart=/bin/a {{v}}", "-y", 'unit: refused: it begins with "-" at the start of a word in ExecStart=, where the program would read it as an option'],
    ["ExecStart={{v}} x", "relative", "unit: refused: the command of ExecStart= must be an absolute path"],
    ["ExecStart=/bin/a {{v}}", "a\nExecStartPre=+/bin/sh", "unit: refused: a systemd unit value cannot hold the control character newline (U+000A) (a unit is read line by line)"],
    ["ExecStart=/bin/a \"{{v}}\"", "x", "unit: refused: it sits inside quotes the template wrote in ExecStart=; fleetkit quotes the value itself"],
    ["Environment=HOME={{v}}", "/home/a b$x%", 'unit: "/home/a b$x%%"'],
    ["User={{v}}", "fleet", "unit: fleet"],
    ["User={{v}}", "$(x)", "unit: refused: User= takes a user or group name (a letter or _, then letters, digits, _ or -, at most 31); systemd ignores any other User= and runs the service as root"],
    ["WorkingDirectory={{v}}", "/home/100%", "unit: /home/100%%"],
    ["WorkingDirectory={{v}}", "/home/a\\", 'unit: refused: WorkingDirectory= cannot hold a backslash or surrounding spaces (systemd takes the rest of the line as it is and joins a line ending in "\\" with the next)'],
    ["EnvironmentFile={{v}}", "relative", "unit: refused: EnvironmentFile= takes an absolute path"],
    ["ReadWritePaths={{v}}", "-/x", "unit: refused: a path in ReadWritePaths= must be absolute"],
    ["Description={{v}}", "fleet 100% up", "unit: fleet 100%% up"],
    ["Description={{v}}", "a\\", 'unit: refused: Description= cannot hold a backslash (systemd joins a line ending in "\\" with the next)'],
    ["Description={{v}}", "a\nExecStartPre=/bin/sh", "unit: refused: a systemd unit value cannot hold the control character newline (U+000A) (a unit is read line by line)"],
    ["Before={{v}}", "", "unit: "],
    ["Before=network-pre.target {{v}}", "iceccd.service x.target", "unit: iceccd.service x.target"],
    ["Before={{v}}", "x;y", 'unit: refused: Before= takes unit names separated by spaces (like iceccd.service), and "x;y" is none'],
    ["LimitNOFILE={{v}}", "x", "unit: refused: fleetkit has no escaping rule for the systemd directive LimitNOFILE=; add one to roles/escape.ts before putting a value there"],
    ["# node {{v}}", "x\\", 'comment: "x\\\\"'],
    ["[{{v}}]", "x", "refused: refused: no value may go here: it is not in the value of a Key=value line"],
  ])("%j with %j", (text, value, expected) => {
    expect(at("systemd", text, value)).toBe(expected);
  });
});

describe("YAML, PowerShell, JavaScript, text", () => {
  it.each([
    ["yaml", "base-url: {{v}}", 'x"\ny: z # c', 'yaml: "x\\"\\ny: z # c"'],
    ["yaml", "  - {{v}}", "a:b", 'yaml: "a:b"'],
    ["yaml", "# {{v}} publishes", "a\nb", 'comment: "a\\nb"'],
    ["yaml", "key: x{{v}}", "a", "refused: refused: no value may go here: a YAML value must be a whole scalar on its own (`key: {{x}}` or `- {{x}}`); build composite strings in TypeScript"],
    ["powershell", "$X = {{v}}", "a'b\u2019c", "word: 'a''b\u2019\u2019c'"],
    ["powershell", "Fk-Log 'up as {{v}}'", "it's", "single: it''s"],
    ["powershell", 'Fk-Log "up as {{v}}"', 'a"$b`c', 'double: a`"`$b``c'],
    ["powershell", "# node {{v}}", "a\r\nb", 'comment: "a\\r\\nb"'],
    ["powershell", "$X = {{v}}", "-x", 'word: refused: it begins with "-" in PowerShell code, where it would reach a native program as an option'],
    ["powershell", "$X = @'\n{{v}}\n'@", "x", "refused: refused: no value may go here: it sits inside a here-string, which no quoting can keep shut"],
    ["js", "const x = {{v}};", "a\"b\u2028c", 'js: "a\\"b\\u2028c"'],
    ["js", "// for node {{v}}", "a\u2028b", 'comment: "a\\u2028b"'],
    ["js", 'const x = "{{v}}";', "a", "refused: refused: no value may go here: it sits after a quote or comment opener on its line; a JavaScript value goes where an expression may stand (it is written as a string literal)"],
    ["text", "Address: `{{v}}`.", "a b", "text: a b"],
    ["text", "Address: `{{v}}`.", "a\n## Rules", "text: refused: a plain-text value is one line: it cannot hold the control character newline (U+000A)"],
  ] as const)("%s %j with %j", (target, text, value, expected) => {
    expect(at(target, text, value)).toBe(expected);
  });

  it.each([
    ["a", "'a'"],
    ["it's", "'it'\\''s'"],
    ["", "''"],
  ])("shQuote(%j) = %s", (s, q) => expect(shQuote(s)).toBe(q));

  it.each([
    ["-o", "-o"],
    ["UserKnownHostsFile=/a/b_c-d.e", "UserKnownHostsFile=/a/b_c-d.e"],
    ["user@host:22,%+", "user@host:22,%+"],
    ["~/key", "'~/key'"],
    ["a=~/k", "'a=~/k'"],
    ["a b", "'a b'"],
    ["it's", "'it'\\''s'"],
    ["$HOME", "'$HOME'"],
    ["*", "'*'"],
    ["", "''"],
  ])("shWord(%j) = %s", (s, w) => {
    expect(shWord(s)).toBe(w);
    // sh reads it back as one argument, unchanged.
    expect(execFileSync("/bin/sh", ["-c", `printf '%s\\0' ${w}`], { encoding: "utf8" })).toBe(`${s}\0`);
  });

  it("psQuote doubles every quote PowerShell reads as single, jsString escapes line separators, yamlScalar stays on one line", () => {
    expect(psQuote("\u2018a\u2019\u201a\u201b'")).toBe("'\u2018\u2018a\u2019\u2019\u201a\u201a\u201b\u201b'''");
    expect(jsString("\u2028\u2029")).toBe('"\\u2028\\u2029"');
    expect(yamlScalar("a\u0085b\u2028c")).toBe('"a\\u0085b\\u2028c"');
    expect([commentText("a\tb"), commentText("a\u0007b"), commentText("a\\")]).toEqual(["a\tb", '"a\\u0007b"', '"a\\\\"']);
  });
});

describe("renderTemplate", () => {
  it("names the template and variable when a value is missing or cannot go where the template puts it", () => {
    expect(() => renderTemplate("worker/token.sh", {})).toThrow("template worker/token.sh: {{tokenFile}}: the view gives it no value (a missing value would leave an empty word behind)");
    expect(() => renderTemplate("icecc/iceccd.service", { node: "n", iceccd: "/usr/sbin/iceccd", schedulerHost: "a\nb" })).toThrow(
      'template icecc/iceccd.service: {{schedulerHost}}: "a\\nb" cannot be written here: a systemd unit value cannot hold the control character newline (U+000A) (a unit is read line by line)',
    );
  });

  it("a triple mustache takes a Fragment of its own target only, and a Fragment is never escaped", () => {
    const view = { verb: "worker", dir: "/d", nodeBin: "/usr/bin", stateDir: "/s", minNodeMajor: 20, why: "tsx" };
    expect(() => renderTemplate("queue/runtime.sh", { ...view, payload: "$(id)" })).toThrow(
      "template queue/runtime.sh: {{payload}}: a triple mustache takes only a sh Fragment built by construction (roles/bundle.ts), never plain text",
    );
    const bytes = Buffer.from("x".repeat(100));
    const out = renderTemplate("queue/runtime.sh", { ...view, payload: Fragment.base64Lines(bytes) });
    const b64 = bytes.toString("base64");
    expect(out).toContain(`<<'FLEETKIT_RUNTIME'\n${b64.slice(0, 76)}\n${b64.slice(76)}\nFLEETKIT_RUNTIME\n`);
    expect(() => renderTemplate("worker/token.sh", { tokenFile: Fragment.base64Lines(Buffer.from("x")), user: "u", group: "g", configDir: "/c" })).toThrow(
      "template worker/token.sh: {{tokenFile}}: a Fragment is inserted with a triple mustache {{{…}}}, not escaped",
    );
  });

  it("every triple mustache in templates/ (each must take a Fragment built by construction)", () => {
    const raw = templateFiles().flatMap((f) => {
      const text = readFileSync(join(TEMPLATES, f), "utf8");
      const all = (spans: Mustache.TemplateSpans): string[] =>
        spans.flatMap((t) => [...(t[0] === "&" ? [`${f}: {{{${t[1]}}}}`] : []), ...(Array.isArray(t[4]) ? all(t[4] as Mustache.TemplateSpans) : [])]);
      return all(Mustache.parse(text));
    });
    expect(raw).toEqual(["firewall/windows-host.ps1: {{{rules}}}", "queue/runtime.sh: {{{payload}}}"]);
  });

  it("Fragment.psHashtables quotes every value as a PowerShell single-quoted string and refuses a key that is not an identifier", () => {
    expect(Fragment.psHashtables([{ Name: "a'b\u2019$(x)", Ports: ["3284", "8766"] }]).text).toBe("@{ Name = 'a''b\u2019\u2019$(x)'; Ports = @('3284', '8766') }");
    expect(() => Fragment.psHashtables([{ "a;b": "x" }])).toThrow('PowerShell hashtable key "a;b" is not an identifier');
  });

  it("every {{value}} of every template sits where its target can escape it (no here-document, no quotes a YAML scalar shares …)", () => {
    const problems: string[] = [];
    const checked: string[] = [];
    for (const f of templateFiles()) {
      const text = readFileSync(join(TEMPLATES, f), "utf8");
      const names: { name: string; start: number; end: number }[] = [];
      const all = (spans: Mustache.TemplateSpans) => {
        for (const t of spans) {
          if (t[0] === "name") names.push({ name: t[1], start: t[2], end: t[3] });
          if (Array.isArray(t[4])) all(t[4] as Mustache.TemplateSpans);
        }
      };
      all(Mustache.parse(text));
      if (names.length === 0) continue;
      checked.push(f);
      const contexts = scanContexts(templateTarget(f), text, names);
      for (const n of names) {
        const ctx = contexts.get(n.start) as ValueContext;
        if (ctx.kind === "refused") problems.push(`${f}: {{${n.name}}}: ${ctx.why}`);
      }
    }
    expect(problems).toEqual([]);
    expect(checked.length).toBeGreaterThan(25);
  });
});

describe("sh and ps tags for scripts built in TypeScript", () => {
  it("escape each value for its place and name the fragment when they refuse", () => {
    const v = "x'$(id)";
    expect(sh`fk_rm ${v} # about ${v}\nfk_log "kept ${v}"`).toBe(`fk_rm 'x'\\''$(id)' # about x'$(id)\nfk_log "kept x'\\$(id)"`);
    expect(ps`Fk-Forget ${v}; Fk-Log 'role ${v}'`).toBe("Fk-Forget 'x''$(id)'; Fk-Log 'role x''$(id)'");
    expect(() => sh`rm -rf ${"-x"}`).toThrow('sh fragment "rm -rf ${…}": "-x" cannot be written here: it begins with "-" at the start of a sh word, where a command would read it as an option');
  });
});

describe("around the renderer", () => {
  const mesh = loadFleet("fleet.yaml");
  const laptop = mesh.nodes.find((n) => n.name === "windows-laptop")!;

  it.each([["Debian", true], ["Ubuntu-24.04", true], ["a b", false], ["-x", false], ["%PATH%", false], ["$(x)", false], ['a"b', false], ["", false]])("a WSL distro %j on the Windows command line: %s", (distro, ok) => {
    const run = () => remoteCommand({ ...laptop, wslDistro: distro }, "wsl", "true\n");
    if (ok) expect(run()).toMatch(new RegExp(`^wsl\\.exe -d ${distro.replace(/\./g, "\\.")} -u root -e sh -c "`));
    else expect(run).toThrow(`node windows-laptop: wslDistro ${JSON.stringify(distro)} cannot be written on a Windows command line that cmd.exe and PowerShell read alike: use letters, digits, ".", "_" and "-" (not first)`);
    expect(windowsWord("Debian", "x")).toBe("Debian");
  });

  it("withoutCommentLines keeps a quoted value's line that starts with #", () => {
    expect(withoutCommentLines("#!/bin/sh\n# c\nid 'a\n# b'\n  # d\necho \"q\n#r\"\n")).toBe("#!/bin/sh\nid 'a\n# b'\necho \"q\n#r\"\n");
  });

  it("launchdPlist refuses what XML cannot carry, naming the key, and keeps -- out of its comment", () => {
    const job = { Label: "x", ProgramArguments: ["/bin/a", "b\u0001"], RunAtLoad: true, KeepAlive: true };
    expect(() => launchdPlist([], job)).toThrow('launchd plist x.ProgramArguments[1]: "b\\u0001" holds U+0001, which no XML property list can carry');
    expect(launchdPlist(["node a--b-"], { ...job, ProgramArguments: ["/bin/a"] })).toContain("<!-- node a- -b-  -->\n<plist");
  });
});
