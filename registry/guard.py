"""Running a plugin's code so that nothing it raises can take the framework down.

Plugin code runs at import (the entry point's module), at registration
(``ldns_register_components``), when a component's module is imported or its class is built,
and in lifecycle hooks. Whatever it raises there, :class:`SystemExit` and
:class:`KeyboardInterrupt` included, is the plugin's failure and is reported with the plugin's
name and distribution: a plugin calling ``sys.exit`` at import must not make every command exit
silently.

A real interruption is not the plugin's: when SIGINT (Ctrl-C) or SIGTERM arrives while plugin code
runs, the exception the signal handler raises propagates as usual, so Ctrl-C during discovery
still stops the program and the runner's own handlers still act. That is told apart from a
``raise KeyboardInterrupt`` in the plugin by relaying the installed handlers for the duration of
the call and noting whether one ran.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Callable

from ldns_framework.errors import shorten

#: Echoed error text is cut to this many characters: a plugin's message may be huge.
MESSAGE_LIMIT = 300
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def describe(exc: BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """``Type: message`` on one line, at most about ``limit`` characters, whatever was raised."""
    if isinstance(exc, SystemExit):
        text = f"sys.exit({exc.code!r}) called"
    else:
        try:
            text = str(exc).strip()
        except Exception:  # noqa: BLE001 - a plugin's exception whose __str__ raises still gets reported
            text = "<unprintable message>"
    return shorten(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, limit)


class PluginCall:
    """Context manager around one piece of plugin code; keeps what it raised in ``error``.

    ``with PluginCall() as call: module = entry_point.load()`` then ``call.error`` is None or the
    exception, which did not propagate. An exception raised while a SIGINT/SIGTERM handler ran
    propagates (see the module docstring).
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._signalled = False
        self._relays: dict[int, tuple[Callable[..., Any], Callable[[int, FrameType | None], Any]]] = {}

    def __enter__(self) -> "PluginCall":
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for signum in _SIGNALS:
                previous = signal.getsignal(signum)
                if callable(previous):
                    relay = self._relay(previous)
                    signal.signal(signum, relay)
                    self._relays[signum] = (previous, relay)
        return self

    def _relay(self, handler: Callable[..., Any]) -> Callable[[int, FrameType | None], Any]:
        def relay(signum: int, frame: FrameType | None) -> Any:
            self._signalled = True
            return handler(signum, frame)

        return relay

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        for signum, (previous, relay) in self._relays.items():
            if signal.getsignal(signum) is relay:  # a handler the plugin installed itself stays
                signal.signal(signum, previous)
        if exc is None or self._signalled:
            return False
        self.error = exc
        return True
