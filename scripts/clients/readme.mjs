// Runs the client configurations that README.md's "Connecting a client"
// section gives as JSON (Claude Desktop, Cursor, VS Code) against a running
// malomo-mcp, exactly as written except for the placeholders:
//
//   node readme.mjs README URL BIN
//
// `http://127.0.0.1:8080` and `<token>` become the running server's base
// and token, `/path/to/malomo-mcp` the binary BIN, `${input:ID}` (a VS Code
// input declared in the same snippet) the token, and `npx -y
// mcp-remote@VERSION` the mcp-remote installed here, whose version must be
// VERSION. Prints one line per snippet; exits 1 if any fails.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

import { exercise, main } from "./exercise.mjs";

const [readme, url, bin] = process.argv.slice(2);
const base = url.slice(0, url.indexOf("/mcp/"));
const token = url.slice(url.indexOf("/mcp/") + "/mcp/".length);
const require = createRequire(import.meta.url);
const remoteVersion = require("mcp-remote/package.json").version;
const remoteBin = new URL("./node_modules/.bin/mcp-remote", import.meta.url).pathname;

/// The ```json blocks of the README section on clients.
function snippets() {
  const text = readFileSync(readme, "utf8");
  const start = text.indexOf("## Connecting a client");
  const end = text.indexOf("\n## ", start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]));
}

function fill(value, inputs) {
  return value
    .replaceAll("http://127.0.0.1:8080", base)
    .replaceAll("<token>", token)
    .replaceAll("/path/to/malomo-mcp", bin)
    .replace(/\$\{input:([^}]+)\}/g, (_, id) => {
      if (!inputs.has(id)) throw new Error(`\${input:${id}} is not declared in "inputs"`);
      return token;
    });
}

function transport(server, inputs) {
  if (server.url) {
    const headers = Object.fromEntries(
      Object.entries(server.headers ?? {}).map(([k, v]) => [k, fill(v, inputs)]),
    );
    return new StreamableHTTPClientTransport(new URL(fill(server.url, inputs)), { requestInit: { headers } });
  }
  let command = fill(server.command, inputs);
  let args = (server.args ?? []).map((a) => fill(a, inputs));
  if (command === "npx") {
    const [yes, pkg, ...rest] = args;
    if (yes !== "-y" || pkg !== `mcp-remote@${remoteVersion}`) {
      throw new Error(`npx ${args.join(" ")}: expected -y mcp-remote@${remoteVersion} (the version the matrix runs)`);
    }
    [command, args] = [remoteBin, rest];
  }
  const env = { ...process.env };
  for (const [k, v] of Object.entries(server.env ?? {})) env[k] = fill(v, inputs);
  return new StdioClientTransport({ command, args, env, stderr: "inherit" });
}

await main(async () => {
  const found = snippets();
  if (found.length === 0) throw new Error("no JSON snippet in README's client section");
  const lines = [];
  for (const [index, snippet] of found.entries()) {
    const servers = snippet.mcpServers ?? snippet.servers;
    if (!servers?.malomo) throw new Error(`snippet ${index + 1}: no mcpServers.malomo / servers.malomo`);
    const inputs = new Set((snippet.inputs ?? []).map((i) => i.id));
    const server = servers.malomo;
    const what = server.url ? `${server.type ?? "url"} ${server.url}` : `${server.command} ${(server.args ?? []).join(" ")}`;
    try {
      lines.push(`snippet ${index + 1} (${what}): ${await exercise(transport(server, inputs))}`);
    } catch (error) {
      throw new Error(`snippet ${index + 1} (${what}): ${error?.message ?? error}`);
    }
  }
  return `${found.length} README snippets\n${lines.join("\n")}`;
});
