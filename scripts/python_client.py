"""malomo-mcp through the official Python MCP SDK (a second real client).

Usage: python_client.py MCP_URL

Connects twice, with the initialize handshake ('legacy' mode) and with
2026-07-28 'auto' negotiation (server/discover), and in each: lists the
tools, pages a list tool with its cursor, follows the lost-package workflow,
checks that bad arguments are a tool error naming the field, and renders a
prompt. Exits non-zero on the first failed check; prints a summary line.
"""

import asyncio
import logging
import sys

from mcp import Client

DEMO_EMAIL = "sarah.smith@example.com"
passed = 0
failed = 0


def check(condition, what):
    global passed, failed
    if condition:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


class SessionEndWatch(logging.Handler):
    """The SDK only logs a failed session DELETE (e.g. an answer of 202):
    count it as a failed check."""

    def emit(self, record):
        message = record.getMessage()
        if "Session termination failed" in message:
            check(False, f"the session DELETE succeeds: {message}")


logging.getLogger("mcp.client.streamable_http").addHandler(SessionEndWatch(logging.WARNING))


async def exercise(url, mode):
    async with Client(url, mode=mode) as client:
        version = str(client.protocol_version)
        expected = "2026-07-28" if mode == "auto" else "2025-"
        check(version.startswith(expected), f"[{mode}] negotiated {version}, expected {expected}...")
        tools = (await client.list_tools()).tools
        names = [t.name for t in tools]
        check(len(names) >= 20, f"[{mode}] at least 20 tools, got {len(names)}")
        check(names == sorted(names), f"[{mode}] tools/list is in a stable order")
        check("list_all_malomo_orders" in names, f"[{mode}] list_all_malomo_orders is listed")

        page1 = await client.call_tool("list_all_malomo_orders", {"limit": 2})
        s1 = page1.structured_content or {}
        check(not page1.is_error and len(s1.get("items", [])) == 2, f"[{mode}] first page of 2")
        cursor = s1.get("next_cursor")
        check(isinstance(cursor, str), f"[{mode}] a next_cursor")
        page2 = await client.call_tool("list_all_malomo_orders", {"limit": 2, "next_cursor": cursor})
        s2 = page2.structured_content or {}
        ids1 = {o["id"] for o in s1.get("items", [])}
        ids2 = {o["id"] for o in s2.get("items", [])}
        check(not page2.is_error and ids2 and not (ids1 & ids2), f"[{mode}] the cursor gives the next page")

        orders = await client.call_tool("list_all_malomo_orders", {"customer_email": DEMO_EMAIL})
        items = (orders.structured_content or {}).get("items", [])
        check(not orders.is_error and items, f"[{mode}] the demo customer's orders")
        if items:
            latest = items[0]
            statuses = [s.get("status") for s in latest.get("shipments", [])]
            check("failure" in statuses, f"[{mode}] the latest package hit a failed delivery: {statuses}")
            events = await client.call_tool("list_all_malomo_order_events", {"order_id": latest["id"]})
            check(not events.is_error and (events.structured_content or {}).get("items"), f"[{mode}] its events")

        bad = await client.call_tool("list_all_malomo_orders", {"limit": 1000})
        text = " ".join(getattr(c, "text", "") for c in bad.content)
        check(bad.is_error and "`limit`" in text, f"[{mode}] a bad argument names the field: {text}")

        prompt = await client.get_prompt("trace_lost_package", {"customer_email": DEMO_EMAIL})
        rendered = " ".join(getattr(m.content, "text", "") for m in prompt.messages)
        check(DEMO_EMAIL in rendered and "{{" not in rendered, f"[{mode}] the prompt is rendered")


async def main(url):
    for mode in ("legacy", "auto"):
        try:
            await exercise(url, mode)
        except Exception as error:  # a protocol failure fails the run, with its cause
            check(False, f"[{mode}] {type(error).__name__}: {error}")
    print(f"python-sdk: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
