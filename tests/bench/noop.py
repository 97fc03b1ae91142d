"""The no-op baseline: the same grpcio server type and thread pool as the service,
serving one method that returns a constant. Its QPS is the framework's own ceiling."""

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
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
