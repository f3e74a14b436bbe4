// What every client of the matrix does once connected: list the tools and
// find the sandbox demo customer's orders. Shared by client.mjs and
// readme.mjs.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export const DEMO_EMAIL = "sarah.smith@example.com";

/// Connects over `link`, checks, closes; resolves to a one-line summary or
/// rejects with the reason.
export async function exercise(link) {
  const client = new Client({ name: "malomo-mcp-client-matrix", version: "1.0.0" });
  await client.connect(link);
  try {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    if (!names.includes("list_all_malomo_orders")) {
      throw new Error(`tools/list lacks list_all_malomo_orders: ${names}`);
    }
    const result = await client.callTool({
      name: "list_all_malomo_orders",
      arguments: { customer_email: DEMO_EMAIL },
    });
    if (result.isError) throw new Error(`list_all_malomo_orders failed: ${JSON.stringify(result.content)}`);
    const items = result.structuredContent?.items ?? [];
    const hers = items.filter((o) => o.email === DEMO_EMAIL || o.customer?.email === DEMO_EMAIL);
    if (hers.length === 0 || hers.length !== items.length) {
      throw new Error(`expected only ${DEMO_EMAIL}'s orders, got ${JSON.stringify(items).slice(0, 300)}`);
    }
    // A tool error reaches the caller as a result the model can read, not
    // as a thrown output-schema mismatch (the SDK checks structuredContent
    // against the tool's output schema even on errors).
    const missing = await client.callTool({
      name: "get_single_malomo_order_by_id",
      arguments: { id: "no_such_order" },
    });
    const said = JSON.stringify(missing.content ?? []);
    if (!missing.isError || !said.includes("404")) {
      throw new Error(`a missing order should be a tool error naming 404, got ${JSON.stringify(missing).slice(0, 300)}`);
    }
    const version = client.getServerVersion();
    if (link instanceof StreamableHTTPClientTransport) await link.terminateSession();
    return `${names.length} tools, ${hers.length} orders of ${DEMO_EMAIL} (server ${version?.name} ${version?.version})`;
  } finally {
    await client.close();
  }
}

/// Runs `body`, printing its summary, or the failure and exit code 1; gives
/// up after 90 s.
export async function main(body) {
  const timer = setTimeout(() => {
    console.error("FAIL: no answer within 90 s");
    process.exit(1);
  }, 90_000);
  try {
    console.log(`ok: ${await body()}`);
  } catch (error) {
    console.error(`FAIL: ${error?.stack ?? String(error)}`);
    process.exit(1);
  }
  clearTimeout(timer);
}
