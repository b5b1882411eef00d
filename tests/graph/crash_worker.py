"""Run one turn whose synthesize step hangs, so the test can kill -9 this process mid-node."""

import asyncio
import sys

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from allin.db.pool import CONNECTION_KWARGS
from graphs.assistant.context import Context
from graphs.assistant.graph import build_graph
from tests.graph.fakes import FakeDeps


class HangingModelDeps(FakeDeps):
    def chat_model(self):
        print("SYNTHESIZE", flush=True)
        sys.stdout.flush()
        import time

        time.sleep(3600)  # killed here, inside the node


async def main(url: str, thread: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, **CONNECTION_KWARGS) as conn:
        graph = build_graph(HangingModelDeps()).compile(checkpointer=AsyncPostgresSaver(conn))
        await graph.ainvoke({"messages": [HumanMessage("How fast should reviews be?", id="turn-1")]},
                            {"configurable": {"thread_id": thread}}, context=Context(user_id="u", chat_id=thread),
                            durability="sync")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
