// @needs sshd ssh ssh-keygen
/**
 * `fleet add-machine`: the golden file (a node appended, every comment and the layout kept), refusals with
 * the schema's own message leaving the file untouched, platform detection from probe output, and
 * `--probe` over real SSH against this machine's test sshd.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFleet } from "../../model/load.js";
import { addNodeToFleetText, appendNode, parsePlatformProbe, run as addMachine } from "../../cli/add-machine.js";
import { UserError } from "../../model/errors.js";
import { startSshd, type TestSshd } from "./sshd.js";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const before = readFileSync(new URL("add-machine.before.yaml", FIXTURES), "utf8");
const after = readFileSync(new URL("add-machine.after.yaml", FIXTURES), "utf8");
const LAB1 = { host: "lab1.tail-golden.ts.net", os: "debian", arch: "x86_64", profile: "compiler" };

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "fleet-add-machine-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the CLI verb in-process with stdin not a terminal; returns its exit code (UserErrors as the CLI maps them) and output. */
async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const [w, we] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  process.stdout.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stderr.write;
  try {
    return { code: await addMachine(argv), out: chunks.join("") };
  } catch (err) {
    if (err instanceof UserError) return { code: err.exitCode, out: chunks.join("") + err.message };
    throw err;
  } finally {
    process.stdout.write = w;
    process.stderr.write = we;
  }
}

describe("appendNode (golden file)", () => {
  it("appends the node after the last one, keeping every other byte", () => {
    expect(appendNode(before, "lab1", LAB1)).toBe(after);
    // The golden file is the original with exactly the new entry spliced in after the commented-out node.
    const k = before.indexOf("  #   host: pi2\n") + "  #   host: pi2\n".length;
    const entry = "\n  lab1:\n    host: lab1.tail-golden.ts.net\n    os: debian\n    arch: x86_64\n    profile: compiler\n";
    expect(after).toBe(before.slice(0, k) + entry + before.slice(k));
  });

  it("writes lists in flow style like the file, and validates as a fleet", () => {
    const { text, fleet } = addNodeToFleetText(before, "f.yaml", "lab2", { host: "lab2", os: "arch", arch: "x86_64", roles: ["iceccd"] });
    expect(text.endsWith("  lab2:\n    host: lab2\n    os: arch\n    arch: x86_64\n    roles: [iceccd]\n\n# Services keep their defaults.\n")).toBe(true);
    expect(fleet.nodes.map((n) => n.name)).toEqual(["sched", "pi1", "lab2"]);
  });

  it.each([
    ["one flow map per line", "nodes:\n  a: { host: a, os: debian, arch: x86_64, roles: [iceccd] }\n  b: { host: b, os: debian, arch: x86_64 }\n", "", "    roles: [iceccd]\n"],
    ["flow maps with blank lines", "nodes:\n  a: { host: a, os: debian, arch: x86_64, roles: [iceccd] }\n\n  b: { host: b, os: debian, arch: x86_64 }\n", "\n", "    roles: [iceccd]\n"],
    // No flow list anywhere in the file: the new node's list is a block list too.
    ["block maps, comments between, no blank line", "nodes:\n  a:\n    host: a\n  # b is next\n  b:\n    host: b\n", "", "    roles:\n      - iceccd\n"],
  ])("follows the layout of %s", (_what, nodes, gap, roles) => {
    const head = "fleet: s\n";
    expect(appendNode(head + nodes, "c", { host: "c", os: "debian", arch: "x86_64", roles: ["iceccd"] })).toBe(
      `${head}${nodes}${gap}  c:\n    host: c\n    os: debian\n    arch: x86_64\n${roles}`,
    );
  });

  it.each([
    [
      "an OS the schema does not know",
      "lab3",
      { host: "lab3", os: "ubuntu", arch: "x86_64", profile: "compiler" },
      'fleet add-machine: node "lab3" was not added (f.yaml is unchanged); with it the file would be invalid:\nf.yaml:39:9 nodes.lab3.os: expected one of macos|debian|raspios|arch|windows-wsl, got "ubuntu"\n1 problem in f.yaml; fix it and run again.',
    ],
    [
      "a 32-bit Pi",
      "lab3",
      { host: "lab3", os: "raspios", arch: "armv7l", profile: "compiler" },
      'fleet add-machine: node "lab3" was not added (f.yaml is unchanged); with it the file would be invalid:\nf.yaml:40:11 nodes.lab3.arch: expected one of x86_64|aarch64, got "armv7l"\n1 problem in f.yaml; fix it and run again.',
    ],
    [
      "a host already in the fleet",
      "lab3",
      { host: "pi1", os: "raspios", arch: "aarch64", profile: "compiler" },
      'fleet add-machine: node "lab3" was not added (f.yaml is unchanged); with it the file would be invalid:\nf.yaml:38:11 nodes.lab3.host: host "pi1" is already used by node pi1; every node needs its own address\n1 problem in f.yaml; fix it and run again.',
    ],
    ["an existing name", "pi1", { host: "x", os: "debian", arch: "x86_64" }, 'fleet add-machine: a node named "pi1" already exists (line 28); pick another name or edit that entry.'],
    [
      "a bad name",
      "Lab_3",
      { host: "lab3", os: "debian", arch: "x86_64", profile: "compiler" },
      "fleet add-machine: node \"Lab_3\" was not added (f.yaml is unchanged); with it the file would be invalid:\nf.yaml:37:3 nodes.Lab_3: invalid name \"Lab_3\": expected a lower-case hostname label (a-z, 0-9, '-')\n1 problem in f.yaml; fix it and run again.",
    ],
  ])("refuses %s with the schema's message", (_what, name, entry, message) => {
    expect(() => addNodeToFleetText(before, "f.yaml", name, entry)).toThrow(message);
  });
});

describe("fleet add-machine (CLI)", () => {
  it("writes the file (temp + rename, nothing left behind) and prints the pulumi up to run", async () => {
    const file = join(work, "cli.yaml");
    writeFileSync(file, before);
    const r = await cli(["--fleet", file, "--name", "lab1", "--host", LAB1.host, "--os", "debian", "--arch", "x86_64", "--profile", "compiler"]);
    expect(r.code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(after);
    expect(readdirSync(work)).toEqual(["cli.yaml"]);
    expect(r.out.replace(/\x1b\[[0-9;]*m/g, "")).toContain(`added node lab1 (debian/x86_64, profile compiler) to ${file}\nProvision it with:\n  pulumi up --stack golden\n`);
  });

  it("a Raspberry Pi headless agent in one command: budget, compile jobs and tags from flags", async () => {
    const file = join(work, "agent.yaml");
    writeFileSync(file, before);
    const r = await cli(["--fleet", file, "--name", "rpi9", "--host", "rpi9", "--os", "raspios", "--arch", "aarch64", "--roles", "claude,agentapi,iceccd", "--budget", "7.5", "--max-jobs", "4", "--tags", "site=garage,gpu=false", "--tags", "storage=nvme"]);
    expect(r.out.replace(/\x1b\[[0-9;]*m/g, "")).toContain("added node rpi9 (raspios/aarch64, roles claude, agentapi, iceccd)");
    expect(r.code).toBe(0);
    expect(readFileSync(file, "utf8")).toContain(
      "\n  rpi9:\n    host: rpi9\n    os: raspios\n    arch: aarch64\n    roles: [claude, agentapi, iceccd]\n    budgetUsdPerSession: 7.5\n    iceccMaxJobs: 4\n    tags:\n      site: garage\n      gpu: \"false\"\n      storage: nvme\n",
    );
    const node = loadFleet(file).nodes.find((n) => n.name === "rpi9")!;
    expect([node.budgetUsdPerSession, node.iceccMaxJobs, node.tags]).toEqual([7.5, 4, { site: "garage", gpu: "false", storage: "nvme" }]);
  });

  it.each([
    [["--name", "lab4", "--host", "lab4", "--os", "debian", "--arch", "x86_64", "--roles", "claude"], 2, "fleet add-machine: --budget USD is required: lab4 runs Claude (claude) and "],
    [["--name", "lab4", "--host", "lab4", "--os", "debian", "--arch", "x86_64", "--roles", "claude", "--budget", "five"], 2, 'fleet add-machine: --budget expects a positive number of USD per session, got "five".'],
    [["--name", "lab4", "--host", "lab4", "--os", "debian", "--arch", "x86_64", "--roles", "iceccd", "--max-jobs", "2.5"], 2, 'fleet add-machine: --max-jobs expects a whole number of jobs, got "2.5".'],
    [["--name", "lab4", "--host", "lab4", "--os", "debian", "--arch", "x86_64", "--roles", "iceccd", "--tags", "garage"], 2, 'fleet add-machine: --tags expects key=value pairs like site=garage,gpu=true, got "garage".'],
    [["--name", "lab4", "--host", "lab4", "--os", "debian", "--arch", "x86_64", "--roles", "iceccd", "--tags", "site!=x"], 2, "nodes.lab4.tags"],
    [["--name", "lab4", "--host", "lab4", "--os", "debian", "--arch", "x86_64", "--roles", "iceccd,ntfy"], 2, "nodes.lab4: role ntfy runs as a Docker container"],
    [["--name", "lab4", "--host", "lab4", "--os", "debian", "--profile", "compiler"], 2, "fleet add-machine: --arch is required (no terminal to ask on)."],
    [["--name", "lab4", "--host", "lab4", "--os", "debian", "--arch", "x86_64"], 2, "fleet add-machine: --profile (or --roles) is required (no terminal to ask on)."],
    [["lab4"], 2, 'fleet add-machine: unexpected argument "lab4" (answers are flags, e.g. --name lab4)'],
  ])("refuses %j with exit %i and leaves the file as it was", async (args, code, message) => {
    const file = join(work, "refuse.yaml");
    writeFileSync(file, before);
    const r = await cli(["--fleet", file, ...args]);
    expect(r.code).toBe(code);
    expect(r.out).toContain(message);
    expect(readFileSync(file, "utf8")).toBe(before);
  });
});

describe("parsePlatformProbe", () => {
  const posix = (lines: string) => `FK-POSIX\n${lines}\nWSL_DISTRO_NAME=\n`;
  it.each([
    ["Debian on x86_64", posix('UNAME_S=Linux\nUNAME_M=x86_64\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian'), { os: "debian", arch: "x86_64", description: "Debian GNU/Linux 12 (bookworm), x86_64" }],
    ["Raspberry Pi OS 64-bit (says debian, has rpi-issue)", posix('UNAME_S=Linux\nUNAME_M=aarch64\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nRPI_ISSUE=1'), { os: "raspios", arch: "aarch64", description: "Debian GNU/Linux 12 (bookworm), aarch64" }],
    ["old Raspbian, 32-bit (passed on for the schema to refuse)", posix('UNAME_S=Linux\nUNAME_M=armv7l\nPRETTY_NAME="Raspbian GNU/Linux 11 (bullseye)"\nID=raspbian'), { os: "raspios", arch: "armv7l", description: "Raspbian GNU/Linux 11 (bullseye), armv7l" }],
    ["Arch Linux ARM", posix('UNAME_S=Linux\nUNAME_M=aarch64\nPRETTY_NAME="Arch Linux ARM"\nID=archarm'), { os: "arch", arch: "aarch64", description: "Arch Linux ARM, aarch64" }],
    ["Ubuntu (passed on for the schema to refuse)", posix('UNAME_S=Linux\nUNAME_M=x86_64\nPRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nID_LIKE=debian'), { os: "ubuntu", arch: "x86_64", description: "Ubuntu 24.04 LTS, x86_64" }],
    ["macOS on Apple silicon", posix("UNAME_S=Darwin\nUNAME_M=arm64\nMACOS_VERSION=15.1"), { os: "macos", arch: "aarch64", description: "macOS 15.1, aarch64" }],
    ["a shell inside WSL", "FK-POSIX\nUNAME_S=Linux\nUNAME_M=x86_64\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nWSL=1\nWSL_DISTRO_NAME=Debian\n", { os: "windows-wsl", arch: "x86_64", wslDistro: "Debian", description: "Debian GNU/Linux 12 (bookworm) in WSL, x86_64" }],
    ["Windows cmd.exe", "FK-WIN AMD64\r\n", { os: "windows-wsl", arch: "x86_64", description: "Windows (AMD64)" }],
  ])("%s", (_what, out, expected) => {
    expect(parsePlatformProbe(out)).toEqual(expected);
  });

  it("output from neither probe is not understood", () => {
    expect(parsePlatformProbe("'echo' is not recognized as an internal or external command")).toBeUndefined();
  });
});

describe("fleet add-machine --probe over real SSH (this machine's test sshd)", () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
    process.env.FLEET_KNOWN_HOSTS = sshd.knownHosts;
  });
  afterAll(async () => {
    await sshd?.stop();
    delete process.env.FLEET_KNOWN_HOSTS;
  });

  it("detects this Debian x86_64 machine and writes the golden entry", async () => {
    const osRelease = readFileSync("/etc/os-release", "utf8");
    expect(osRelease).toMatch(/^ID=debian$/m); // what the expected entry below assumes
    const connect = (text: string) =>
      text.replace("  user: fleet ", `  user: ${sshd.user} `).replace("  sshPort: 22\n", `  sshPort: ${sshd.port}\n  sshKeyPath: ${sshd.keyPath}\n`);
    const file = join(work, "probe.yaml");
    writeFileSync(file, connect(before));
    const r = await cli(["--fleet", file, "--name", "lab1", "--host", "127.0.0.1", "--probe", "--profile", "compiler"]);
    expect(r.out).toContain("probe: 127.0.0.1 runs Debian GNU/Linux 12 (bookworm), x86_64");
    expect(r.code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(connect(after).replace(LAB1.host, "127.0.0.1"));
  });

  it("an unreachable machine is refused with exit 2 and the file is untouched", async () => {
    const file = join(work, "probe-offline.yaml");
    writeFileSync(file, before.replace("  sshPort: 22\n", "  sshPort: 1\n"));
    const r = await cli(["--fleet", file, "--name", "lab1", "--host", "127.0.0.1", "--probe", "--profile", "compiler"]);
    expect(r.code).toBe(2);
    expect(r.out).toContain("fleet add-machine --probe: cannot reach fleet@127.0.0.1:1 (offline: ssh: connect to host 127.0.0.1 port 1: Connection refused).");
    expect(readFileSync(file, "utf8")).toBe(before.replace("  sshPort: 22\n", "  sshPort: 1\n"));
  });
});

describe("fleet add-machine on a terminal (prompts through a real pseudo-terminal, util-linux script)", () => {
  /** Runs the CLI under `script` (a pty), answering each prompt when it appears; resolves with exit code and output. */
  function interactive(file: string, answers: [prompt: string, answer: string][]): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve) => {
      const child = spawn("script", ["-qec", `node_modules/.bin/tsx cli/fleet.ts add-machine --fleet ${file}`, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let next = 0;
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        while (next < answers.length && out.includes(answers[next][0])) child.stdin.write(answers[next++][1] + "\n");
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, out: out.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "") });
      });
    });
  }

  it("asks for each missing answer and writes the golden entry", async () => {
    const file = join(work, "tty.yaml");
    writeFileSync(file, before);
    const r = await interactive(file, [
      ["node name", "lab1"],
      ["SSH address of lab1", LAB1.host],
      ["operating system (macos, debian, raspios, arch, windows-wsl)", "debian"],
      ["CPU architecture (x86_64, aarch64)", "x86_64"],
      ["profile, or roles separated by commas (builder, compiler)", "compiler"],
    ]);
    expect(r.out).toContain("added node lab1 (debian/x86_64, profile compiler)");
    expect(r.code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(after);
  });

  it("refuses an invalid answer with the schema's message (exit 2) and leaves the file as it was", async () => {
    const file = join(work, "tty-bad.yaml");
    writeFileSync(file, before);
    const r = await interactive(file, [
      ["node name", "lab1"],
      ["SSH address of lab1", "lab1"],
      ["operating system", "ubuntu"],
      ["CPU architecture", "x86_64"],
      ["profile, or roles", "compiler"],
    ]);
    expect(r.out).toContain(`nodes.lab1.os: expected one of macos|debian|raspios|arch|windows-wsl, got "ubuntu"`);
    expect(r.code).toBe(2);
    expect(readFileSync(file, "utf8")).toBe(before);
  });
});
