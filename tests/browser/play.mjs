// SPDX-License-Identifier: MIT OR Apache-2.0
// Plays an HLS playlist with hls.js in headless Chromium and prints one JSON
// line: {duration, ended, fatalErrors, currentTime, ...diagnostics}.
//
//   node play.mjs --dir <recording dir> --playlist <name.m3u8> [--rate 4] [--timeout-ms 60000]
//
// It serves the recording directory, player.html and hls.min.js (from
// node_modules) on 127.0.0.1 at a free port, and drives Debian's
// /usr/bin/chromium through playwright-core, with a fresh profile. Chromium
// may reach nothing but that server: every other request is aborted.
// Exit status: 0 when a result was printed (whatever it says), 2 on a usage
// or setup error, 3 when the page gave no result in time (a JSON line is
// still printed).

import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = "1";

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const a = { rate: 4, timeoutMs: 60000, chromium: "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === "--dir") a.dir = v;
    else if (k === "--playlist") a.playlist = v;
    else if (k === "--rate") a.rate = Number(v);
    else if (k === "--timeout-ms") a.timeoutMs = Number(v);
    else if (k === "--chromium") a.chromium = v;
    else {
      console.error(`unknown argument ${k}`);
      process.exit(2);
    }
    i++;
  }
  if (!a.dir || !a.playlist) {
    console.error("usage: node play.mjs --dir DIR --playlist NAME.m3u8 [--rate 4] [--timeout-ms 60000]");
    process.exit(2);
  }
  return a;
}

const args = parseArgs(process.argv.slice(2));
const hlsJs = path.join(here, "node_modules", "hls.js", "dist", "hls.min.js");
for (const [p, fix] of [
  [args.chromium, "apt-get install chromium (or bash scripts/install-browser-deps.sh)"],
  [hlsJs, "npm ci in tests/browser (or bash scripts/install-browser-deps.sh)"],
  [path.join(args.dir, args.playlist), "the recording is missing"],
]) {
  if (!fs.existsSync(p)) {
    console.error(`${p} not found: ${fix}`);
    process.exit(2);
  }
}

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (e) {
  console.error(`cannot load playwright-core (${e.message}): npm ci in tests/browser (or bash scripts/install-browser-deps.sh)`);
  process.exit(2);
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".m3u8": "application/vnd.apple.mpegurl",
  ".ts": "video/mp2t",
};

const served = [];
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  let file = null;
  if (url.pathname === "/" || url.pathname === "/player.html") {
    file = path.join(here, "player.html");
  } else if (url.pathname === "/hls.min.js") {
    file = hlsJs;
  } else if (url.pathname.startsWith("/rec/")) {
    // One file name, never a path out of the recording directory.
    const name = decodeURIComponent(url.pathname.slice("/rec/".length));
    if (name && !name.includes("/") && !name.includes("\\") && name !== "." && name !== "..") {
      file = path.join(args.dir, name);
    }
  }
  served.push(url.pathname);
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
    return;
  }
  const body = fs.readFileSync(file);
  res.writeHead(200, {
    "content-type": TYPES[path.extname(file)] || "application/octet-stream",
    "content-length": body.length,
    "cache-control": "no-store",
  });
  res.end(body);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
const origin = `http://127.0.0.1:${port}`;

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "liverecord-chromium-"));
let context = null;
let result = null;
let exitCode = 0;
const console_ = [];
const blocked = [];
const deadline = Date.now() + args.timeoutMs;

function cleanup() {
  try {
    fs.rmSync(profile, { recursive: true, force: true });
  } catch {}
}

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
    ],
    timeout: Math.max(1000, deadline - Date.now()),
  });
  // Nothing leaves this machine: only the local server is reachable.
  await context.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + "/")) return route.continue();
    blocked.push(u);
    return route.abort();
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => {
    if (console_.length < 50) console_.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
  const src = `${origin}/rec/${encodeURIComponent(args.playlist)}`;
  await page.goto(`${origin}/player.html?src=${encodeURIComponent(src)}&rate=${args.rate}`, {
    timeout: Math.max(1000, deadline - Date.now()),
  });
  const left = deadline - Date.now();
  try {
    await page.waitForFunction(() => window.__result !== null && window.__result !== undefined, null, {
      timeout: Math.max(1000, left),
      polling: 100,
    });
  } catch {
    // No end in time: take what the page has.
    await page.evaluate(() => window.__finish && window.__finish(false, "timeout"));
    exitCode = 3;
  }
  result = await page.evaluate(() => window.__result);
  result.browserVersion = context.browser() ? context.browser().version() : null;
} catch (e) {
  result = result || {
    duration: null,
    ended: false,
    fatalErrors: [{ type: "harness", details: String(e && e.stack || e), fatal: true }],
    currentTime: null,
  };
  exitCode = exitCode || 3;
} finally {
  if (context) {
    await Promise.race([context.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  server.close();
  server.closeAllConnections?.();
  cleanup();
}

result.console = console_;
result.blockedRequests = blocked;
result.served = served;
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(exitCode);
