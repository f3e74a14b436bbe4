// One real MCP client against malomo-mcp, for scripts/client-matrix.sh.
//
//   node client.mjs http URL [BEARER]      official TypeScript SDK, Streamable HTTP
//                                          (with BEARER: `Authorization: Bearer BEARER`)
//   node client.mjs stdio COMMAND [ARG...] official TypeScript SDK over a child's
//                                          stdin/stdout (the stdio binary, mcp-remote)
//
// Each connects, lists the tools, and calls list_all_malomo_orders for the
// sandbox's demo customer, checking that her orders come back. Prints one
// line on success; exits 1 with the reason otherwise.

import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

import { exercise, main } from "./exercise.mjs";

const [mode, target, ...rest] = process.argv.slice(2);

function transport() {
  if (mode === "http" && target) {
    const headers = rest[0] ? { Authorization: `Bearer ${rest[0]}` } : {};
    return new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
  }
  if (mode === "stdio" && target) {
    // Inherit the environment (mcp-remote's config dir, RUST_LOG); the
    // child's stderr stays apart from the protocol.
    return new StdioClientTransport({ command: target, args: rest, env: process.env, stderr: "inherit" });
  }
  throw new Error("usage: client.mjs http URL [BEARER] | client.mjs stdio COMMAND [ARG...]");
}

await main(() => exercise(transport()));
