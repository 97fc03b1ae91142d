"""The authenticated principal of the RPC being handled.

The auth interceptor sets it in the worker thread that runs the handler, so a
servicer reads it with `current_principal()` and never parses metadata itself.
"""

from contextvars import ContextVar, Token

from service.auth.keys import Principal

_principal: ContextVar[Principal] = ContextVar("principal")


def current_principal() -> Principal:
    return _principal.get()


def set_principal(principal: Principal) -> Token[Principal]:
    return _principal.set(principal)


def reset_principal(token: Token[Principal]) -> None:
    _principal.reset(token)
