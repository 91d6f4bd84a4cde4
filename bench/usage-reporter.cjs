/**
 * Loaded with `node --require` into a measured process (bench/program.bench.ts): at exit it writes the
 * process's own CPU seconds (user + system), wall seconds since it started and peak resident memory in
 * bytes (getrusage's ru_maxrss, through process.resourceUsage(), which Node gives in KiB) as JSON to the
 * file named by FLEETKIT_USAGE_FILE.
 */
"use strict";
const { writeFileSync } = require("node:fs");

const file = process.env.FLEETKIT_USAGE_FILE;
if (file) {
  process.on("exit", () => {
    const cpu = process.cpuUsage();
    const usage = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ cpuSeconds: (cpu.user + cpu.system) / 1e6, wallSeconds: process.uptime(), maxRssBytes: usage.maxRSS * 1024 }));
  });
}
