"""A local MCP server over stdio, built with the official Python SDK: the
Bridge test's agent (`sluice agent`) re-exports its tools."""

from mcp.server.mcpserver import Context, MCPServer

app = MCPServer("bridge-test-tools")


@app.tool()
async def add(a: int, b: int, ctx: Context) -> dict:
    """Add two integers, reporting progress halfway."""
    await ctx.report_progress(1, 2, "adding")
    return {"sum": a + b}


@app.tool()
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


if __name__ == "__main__":
    app.run()
