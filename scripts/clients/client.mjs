// One real MCP client against malomo-mcp, for scripts/client-matrix.sh.
//
//   node client.mjs http URL [BEARER]      official TypeScript SDK, Streamable HTTP
//                                          (with BEARER: `Authorization: Bearer BEARER`)
//   node client.mjs stdio COMMAND [ARG...] official TypeScript SDK over a child's
//                                          stdin/stdout (the stdio binary, mcp-remote)
//
// Each connects, lists the tools, and calls list_all_malomo_orders for the
// sandbox's demo customer, checking that her order comes back. Prints one
// line on success; exits 1 with the reason otherwise.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const DEMO_EMAIL = "sarah.smith@example.com";
const [mode, target, ...rest] = process.argv.slice(2);

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

function transport() {
  if (mode === "http" && target) {
    const headers = rest[0] ? { Authorization: `Bearer ${rest[0]}` } : {};
    return new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
  }
  if (mode === "stdio" && target) {
    // Inherit the environment (mcp-remote's config dir, RUST_LOG), keep the
    // child's stderr apart from the protocol.
    return new StdioClientTransport({ command: target, args: rest, env: process.env, stderr: "inherit" });
  }
  fail("usage: client.mjs http URL [BEARER] | client.mjs stdio COMMAND [ARG...]");
}

const timer = setTimeout(() => fail("no answer within 90 s"), 90_000);
const client = new Client({ name: "malomo-mcp-client-matrix", version: "1.0.0" });
const link = transport();
try {
  await client.connect(link);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  if (!names.includes("list_all_malomo_orders")) fail(`tools/list lacks list_all_malomo_orders: ${names}`);
  const result = await client.callTool({
    name: "list_all_malomo_orders",
    arguments: { customer_email: DEMO_EMAIL },
  });
  if (result.isError) fail(`list_all_malomo_orders failed: ${JSON.stringify(result.content)}`);
  const items = result.structuredContent?.items ?? [];
  const hers = items.filter((o) => o.email === DEMO_EMAIL || o.customer?.email === DEMO_EMAIL);
  if (hers.length === 0 || hers.length !== items.length) {
    fail(`expected only ${DEMO_EMAIL}'s orders, got ${JSON.stringify(items).slice(0, 300)}`);
  }
  const version = client.getServerVersion();
  console.log(
    `ok: ${names.length} tools, ${hers.length} orders of ${DEMO_EMAIL} (server ${version?.name} ${version?.version})`,
  );
  if (link instanceof StreamableHTTPClientTransport) await link.terminateSession();
  await client.close();
} catch (error) {
  fail(error?.stack ?? String(error));
}
clearTimeout(timer);
