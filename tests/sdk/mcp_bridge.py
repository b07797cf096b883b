"""The official MCP Python SDK against the gateway's MCP server
(`/internal/v1/mcp`): the initialize handshake, tools/list, tools/call with
progress, a tool error, invalid arguments, a call cancelled by the client's
timeout, and the high-level Client in its default (auto) mode, which
discovers the stateless 2026-07-28 revision. The agent
`a1` serves the command tools of tests/it/bridge.rs and, as `py_*`, the
tools of tests/sdk/mcp_stdio_server.py.

Usage: mcp_bridge.py <MCP endpoint URL>
"""

import asyncio
import sys

import httpx2
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

URL = sys.argv[1]
AUTH = {"authorization": "Bearer sk-test"}


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "text", None) is not None)


async def with_session() -> None:
    async with httpx2.AsyncClient(headers=AUTH) as http:
        async with streamable_http_client(URL, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.protocol_version == "2025-11-25", init
                names = sorted(t.name for t in (await session.list_tools()).tools)
                assert names == ["a1__count", "a1__echo", "a1__fail", "a1__py_add", "a1__py_shout", "a1__slow"], names

                progress = []

                async def on_progress(p, total, message):
                    progress.append((p, total, message))

                # Re-exported from the stdio MCP server, with its progress.
                added = await session.call_tool("a1__py_add", {"a": 2, "b": 40}, progress_callback=on_progress)
                assert not added.is_error, added
                assert "42" in text_of(added), added
                assert progress == [(1.0, 2.0, "adding")], progress
                shout = await session.call_tool("a1__py_shout", {"text": "hi"})
                assert "HI" in text_of(shout), shout

                # A command tool: its output lines, then the result.
                echo = await session.call_tool("a1__echo", {"text": "yo"})
                assert not echo.is_error
                assert text_of(echo).startswith('{"text":"yo"}\ndone\n'), text_of(echo)
                assert echo.structured_content["exit_code"] == 0, echo

                # A failing tool is a result with is_error (the model sees it).
                failed = await session.call_tool("a1__fail", {})
                assert failed.is_error and "broken" in text_of(failed), failed

                # Invalid arguments and unknown tools: protocol errors.
                for name, args in [("a1__echo", {"text": 5}), ("a1__nope", {})]:
                    try:
                        await session.call_tool(name, args)
                    except MCPError as e:
                        assert e.error.code == -32602, e
                    else:
                        raise AssertionError(f"{name} {args} was accepted")

                # The client gives up after a second: the call is cancelled
                # (the test then checks the tool's process is gone).
                try:
                    await session.call_tool("a1__slow", {}, read_timeout_seconds=1.0, progress_callback=on_progress)
                except MCPError:
                    pass
                else:
                    raise AssertionError("slow returned")


async def with_client() -> None:
    """The default client discovers the stateless revision (no handshake)."""
    async with httpx2.AsyncClient(headers=AUTH) as http:
        async with Client(streamable_http_client(URL, http_client=http)) as client:
            assert client.protocol_version == "2026-07-28", client.protocol_version
            tools = await client.list_tools()
            assert "a1__py_shout" in [t.name for t in tools.tools]
            shout = await client.call_tool("a1__py_shout", {"text": "auto"})
            assert "AUTO" in text_of(shout), shout
            progress = []

            async def on_progress(p, total, message):
                progress.append((p, total, message))

            added = await client.call_tool("a1__py_add", {"a": 1, "b": 1}, progress_callback=on_progress)
            assert "2" in text_of(added) and progress == [(1.0, 2.0, "adding")], (added, progress)
            try:
                await client.call_tool("a1__echo", {"text": 5})
            except MCPError as e:
                assert e.error.code == -32602, e
            else:
                raise AssertionError("invalid arguments were accepted")
            # Cancelling on this revision is closing the call's stream.
            try:
                await client.call_tool("a1__slow", {}, read_timeout_seconds=1.0)
            except MCPError:
                pass
            else:
                raise AssertionError("slow returned")


async def main() -> None:
    await with_session()
    await with_client()
    print("ok")


asyncio.run(main())
