"""The seed's two workflows through FastMCP's `from_openapi`, for
`cargo bench --bench context` (which starts the sandbox and passes its URL).

    python fastmcp_workflows.py OPENAPI_JSON BASE_URL API_KEY EMAIL HOOK_URL

Prints one JSON object: the bytes of every step (text blocks, what the model
reads; and the whole `CallToolResult`), the model-facing bytes of
`tools/list`, and the package versions. FastMCP passes Malomo's answers
through: lists are bare JSON arrays there, and the `Link` header that holds
the next cursor never reaches the model, so each list is asked for once with
the largest page (`limit: 100`), the best a model can do through it.
"""

import asyncio
import importlib.metadata as md
import json
import sys

import httpx2
from fastmcp import Client, FastMCP


def size(value) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def main() -> None:
    openapi_path, base_url, api_key, email, hook_url = sys.argv[1:6]
    with open(openapi_path) as f:
        spec = json.load(f)
    http = httpx2.AsyncClient(
        base_url=base_url,
        headers={
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/vnd.malomo+json; version=2",
        },
    )
    server = FastMCP.from_openapi(openapi_spec=spec, client=http, name="malomo")
    steps = []

    async with Client(server) as client:
        tools = await client.list_tools()
        catalog_model = sum(
            len(t.name.encode())
            + len((t.description or "").encode())
            + size(t.inputSchema)
            for t in tools
        )

        async def call(workflow: str, name: str, arguments: dict):
            result = await client.call_tool_mcp(name, arguments)
            if result.isError:
                raise SystemExit(f"{name}: {result.content}")
            dumped = result.model_dump(by_alias=True, exclude_none=True, mode="json")
            model = sum(len(c.get("text", "").encode()) for c in dumped.get("content", []))
            steps.append(
                {"workflow": workflow, "step": name, "model": model, "wire": size(dumped)}
            )
            if result.structuredContent is not None:
                return result.structuredContent
            return json.loads(result.content[0].text)

        def items(answer):
            if isinstance(answer, dict) and "result" in answer:
                answer = answer["result"]
            return answer if isinstance(answer, list) else [answer]

        # Workflow 1: the lost package.
        orders = items(
            await call(
                "lost package",
                "list_all_malomo_orders",
                {"customer_email": email, "limit": 100},
            )
        )
        order = orders[0]
        failed = next(s for s in order["shipments"] if s["status"] == "failure")
        events = items(
            await call(
                "lost package",
                "list_all_malomo_order_events",
                {"order_id": order["id"], "limit": 100},
            )
        )
        assert any(
            (e.get("properties") or {}).get("tracking_code") == failed["tracking_code"]
            for e in events
        ), "the timeline has the shipment"

        # Workflow 2: the webhook audit.
        hooks = items(await call("webhook audit", "list_all_malomo_webhooks", {"limit": 100}))
        if not any(
            h.get("url") == hook_url and h.get("topic") == "shipment.exception" for h in hooks
        ):
            await call(
                "webhook audit",
                "create_a_malomo_webhook",
                {"url": hook_url, "topic": "shipment.exception"},
            )

    versions = ", ".join(
        f"{name} {md.version(name)}" for name in ("fastmcp", "mcp", "httpx2")
    )
    print(
        json.dumps(
            {
                "steps": steps,
                "catalog_model": catalog_model,
                "tools": len(tools),
                "versions": f"{versions}, Python {sys.version.split()[0]}",
            }
        )
    )


asyncio.run(main())
