"""Issue 13 end to end through the official Python MCP SDK: Malomo's webhooks
pushed to an agent, with no polling.

Usage: events_e2e.py MALOMO_MCP_BIN

Starts `malomo-mcp sandbox` and `malomo-mcp serve` on it (loopback, port 0,
a fresh database), creates the account's event inbox with the CLI, then, once
for each protocol revision:

1. a client subscribes to `malomo://events` (2025-11-25: resources/subscribe,
   notifications on the session's GET stream; 2026-07-28: subscriptions/listen);
2. calls `subscribe_to_malomo_events {topic: "shipment.exception"}` twice: the
   first creates the webhook, the second finds it (one webhook in the end);
3. creates an order with a tracking code starting `FA` (the sandbox fails it);
4. advances the sandbox (`POST /_sandbox/tick`) until the shipment fails;
5. receives `notifications/resources/updated` within 1 s of the tick that
   made the delivery;
6. finds that order and tracking code exactly once in
   `list_all_malomo_received_events {topic: "shipment.exception"}`, also after
   more ticks (the sandbox delivers again only on failure; the inbox
   de-duplicates redeliveries, which the Rust tests replay).

Everything runs on 127.0.0.1 and every wait is bounded. Exits non-zero on the
first failed check; prints one line per check and a summary.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

import mcp_types as types
from mcp import Client

warnings.simplefilter("ignore")  # resources/subscribe is deprecated in 2026-07-28 terms

TOPIC = "shipment.exception"
URI = "malomo://events"
passed = 0


def check(condition, what):
    global passed
    if not condition:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    passed += 1
    print(f"ok: {what}")


def spawn(args, env, out_path, pattern, what):
    """Starts a process whose stdout goes to out_path; returns it and the
    first match of pattern in its output (within 60 s)."""
    out = open(out_path, "w")
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(out_path) as f:
            match = re.search(pattern, f.read())
        if match:
            return proc, match
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    with open(out_path) as f:
        print(f.read(), file=sys.stderr)
    proc.kill()
    sys.exit(f"{what} did not start")


def http_json(method, url, key, body=None):
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


class Watch:
    """Resource-updated notifications as they arrive, with their times."""

    def __init__(self):
        self.arrivals = asyncio.Queue()

    async def on_message(self, message):
        if isinstance(message, types.ResourceUpdatedNotification) and message.params.uri == URI:
            await self.arrivals.put(time.monotonic())

    def drain(self):
        while not self.arrivals.empty():
            self.arrivals.get_nowait()

    async def next_within(self, seconds):
        try:
            return await asyncio.wait_for(self.arrivals.get(), seconds)
        except asyncio.TimeoutError:
            return None


async def loop(client, watch, sandbox, key, mode, tag):
    """Steps 2 to 6 over one connected client."""
    first = await client.call_tool("subscribe_to_malomo_events", {"topic": TOPIC})
    s1 = first.structured_content or {}
    check(not first.is_error and s1.get("webhook", {}).get("topic") == TOPIC, f"[{mode}] subscribe_to_malomo_events answers the webhook")
    check("url" not in s1.get("webhook", {}), f"[{mode}] the inbox URL never reaches the model")
    again = await client.call_tool("subscribe_to_malomo_events", {"topic": TOPIC})
    s2 = again.structured_content or {}
    check(not again.is_error and s2.get("created") is False, f"[{mode}] the second call creates nothing")
    check(s2.get("webhook", {}).get("id") == s1.get("webhook", {}).get("id"), f"[{mode}] both calls name the same webhook")
    hooks = http_json("GET", f"{sandbox}/webhooks?limit=100", key)
    to_inbox = [h for h in hooks if h.get("topic") == TOPIC and "/hooks/" in h.get("url", "")]
    check(len(to_inbox) == 1, f"[{mode}] exactly one webhook delivers {TOPIC} to the inbox ({len(to_inbox)})")

    code = f"FA{tag}{int(time.time() * 1000) % 10**8:08d}"
    order = await client.call_tool(
        "create_a_malomo_order",
        {"number": f"E2E-{tag}", "email": "ada@example.com",
         "shipments": [{"carrier": "usps", "tracking_code": code}]},
    )
    order_id = (order.structured_content or {}).get("id")
    check(not order.is_error and order_id, f"[{mode}] order with tracking code {code} created")

    # The shipment fails on its fourth step; each tick moves every shipment
    # one step, and other (seeded) shipments may fail on the way.
    latency = None
    for step in range(1, 5):
        watch.drain()
        http_json("POST", f"{sandbox}/_sandbox/tick", key, {})
        ticked = time.monotonic()
        if step == 4:
            arrived = await watch.next_within(1.0)
            check(arrived is not None, f"[{mode}] notifications/resources/updated within 1 s of the failing tick")
            latency = arrived - ticked
    listed = await client.call_tool("list_all_malomo_received_events", {"topic": TOPIC, "tracking_code": code})
    items = (listed.structured_content or {}).get("items", [])
    check(not listed.is_error and len(items) == 1, f"[{mode}] the failure is listed once ({len(items)})")
    if items:
        item = items[0]
        check(item.get("order_id") == order_id and item.get("tracking_code") == code, f"[{mode}] with its order id and tracking code")
        check(item.get("status") in ("failure",), f"[{mode}] and status failure ({item.get('status')})")
    for _ in range(3):
        http_json("POST", f"{sandbox}/_sandbox/tick", key, {})
    await asyncio.sleep(0.5)
    everything = []
    cursor = None
    for _ in range(50):
        args = {"topic": TOPIC, "limit": 100}
        if cursor:
            args["next_cursor"] = cursor
        page = await client.call_tool("list_all_malomo_received_events", args)
        content = page.structured_content or {}
        everything += content.get("items", [])
        cursor = content.get("next_cursor")
        if not cursor:
            break
    mine = [i for i in everything if i.get("tracking_code") == code]
    check(len(mine) == 1, f"[{mode}] still exactly once after more ticks ({len(mine)})")
    return latency


async def legacy_mode(url, sandbox, key):
    watch = Watch()
    async with Client(url, mode="legacy", message_handler=watch.on_message) as client:
        check(str(client.protocol_version).startswith("2025-"), f"[2025-11-25] negotiated {client.protocol_version}")
        resources = (await client.list_resources()).resources
        check([str(r.uri) for r in resources] == [URI], "[2025-11-25] the server offers malomo://events")
        await client.subscribe_resource(URI)
        await asyncio.sleep(0.3)  # the session's GET stream opens
        return await loop(client, watch, sandbox, key, "2025-11-25", "1")


async def listen_mode(url, sandbox, key):
    watch = Watch()
    async with Client(url, mode="auto") as client:
        check(str(client.protocol_version) == "2026-07-28", f"[2026-07-28] negotiated {client.protocol_version}")
        async with client.listen(resource_subscriptions=[URI]) as sub:
            honored = getattr(sub, "honored", None)
            uris = list(getattr(honored, "resource_subscriptions", None) or [])
            check(URI in uris, f"[2026-07-28] subscriptions/listen acknowledged {URI}")

            async def pump():
                async for event in sub:
                    if getattr(event, "uri", None) == URI:
                        await watch.arrivals.put(time.monotonic())

            pumping = asyncio.create_task(pump())
            try:
                return await loop(client, watch, sandbox, key, "2026-07-28", "2")
            finally:
                pumping.cancel()


async def main(binary):
    tmp = tempfile.mkdtemp(prefix="malomo-events-e2e.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALOMO_")}
    env["RUST_LOG"] = "warn"
    sandbox_proc, m = spawn(
        [binary, "sandbox", "--listen", "127.0.0.1:0", "--rate-burst", "100000", "--rate-per-sec", "10000"],
        env, f"{tmp}/sandbox.out", r"listening on (http://127\.0\.0\.1:\d+)[\s\S]*secret key:\s+(\S+)", "the sandbox",
    )
    sandbox, key = m.group(1), m.group(2)
    db = f"{tmp}/events.db"
    serve_env = dict(env, MALOMO_API_KEY=key, MALOMO_BASE_URL=sandbox)
    serve_proc, m = spawn(
        [binary, "serve", "--listen", "127.0.0.1:0", "--db", db],
        serve_env, f"{tmp}/serve.out", r"(http://127\.0\.0\.1:\d+)/mcp/[A-Za-z0-9_-]+", "malomo-mcp serve",
    )
    base, url = m.group(1), m.group(0)
    try:
        created = subprocess.run(
            [binary, "servers", "inbox", "--account", "malomo", "--db", db, "--public-url", base],
            env=env, capture_output=True, text=True, timeout=60,
        )
        check(created.returncode == 0 and "/hooks/" in created.stdout, "the account's event inbox is created (CLI)")
        latencies = [
            await asyncio.wait_for(legacy_mode(url, sandbox, key), 120),
            await asyncio.wait_for(listen_mode(url, sandbox, key), 120),
        ]
        shown = ", ".join(f"{l * 1000:.0f} ms" for l in latencies if l is not None)
        print(f"tick-to-notification: {shown}")
    finally:
        for proc in (serve_proc, sandbox_proc):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"events end to end: {passed} checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
