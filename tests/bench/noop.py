"""The no-op baseline: a grpcio server of the service's type and thread pool (or, with
--aio, a grpc.aio server) serving one method that returns a constant. Its QPS is the
framework's own ceiling.

    python -m tests.bench.noop HOST:PORT WORKERS [--aio]
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


async def serve_aio(listen: str) -> None:
    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return RESPONSE

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
    else:
        serve(sys.argv[1], int(sys.argv[2]))
