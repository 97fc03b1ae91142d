"""The no-op baselines: one method that returns a constant, served by

- the thread-pool grpcio server (the service's type until issue 11);
- with --aio, a grpc.aio server answering on its event loop;
- with --aio-pool, a grpc.aio server handing each call to a pool of WORKERS threads, as
  the service does (so its requests arrive whole before a thread is taken).

Their QPS is the framework's own ceiling.

    python -m tests.bench.noop HOST:PORT WORKERS [--aio | --aio-pool]
"""

import asyncio
import sys
import threading
from concurrent import futures

import grpc

RESPONSE = b"\x08\x01"  # any small constant message


def serve(listen: str, workers: int) -> None:
    handler = grpc.method_handlers_generic_handler(
        "bench.Noop",
        {"Call": grpc.unary_unary_rpc_method_handler(lambda request, context: RESPONSE)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(listen)
    server.start()
    threading.Event().wait()


async def serve_aio(listen: str, workers: int = 0) -> None:
    pool = futures.ThreadPoolExecutor(max_workers=workers) if workers else None

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if pool is None:
            return RESPONSE
        return await asyncio.get_running_loop().run_in_executor(pool, lambda: RESPONSE)

    handler = grpc.method_handlers_generic_handler(
        "bench.Noop", {"Call": grpc.unary_unary_rpc_method_handler(call)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(listen)
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    if "--aio" in sys.argv:
        asyncio.run(serve_aio(sys.argv[1]))
    elif "--aio-pool" in sys.argv:
        asyncio.run(serve_aio(sys.argv[1], int(sys.argv[2])))
    else:
        serve(sys.argv[1], int(sys.argv[2]))
