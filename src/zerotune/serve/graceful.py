"""uvicorn's server, with a shutdown that answers every request a client has already sent.

uvicorn's own shutdown closes the listening socket and each keep-alive connection that has no
request in progress, then waits for the others. Under load a client sends its next request the
moment the previous answer arrives, so at that instant such a request is often in the server's
socket, unread, and closing the connection resets it; a client that has just connected is in the
listening socket's queue, its request sent, and closing that socket resets it too. Either way the
client loses a request it sent. Every /predict backend is exposed to this; it showed first with
ONNX files. Here, when the server stops:

- connections queued on the listening socket are taken before it closes, so that a later client is
  refused before it can send anything rather than reset after it has;
- every answer from then on carries ``Connection: close``, so no client sends another request on
  its connection;
- a connection with no request in progress stays open for `IDLE_GRACE_SECONDS`, so that a request
  already on its way is read and answered; then uvicorn's own shutdown runs.
"""

from __future__ import annotations

import asyncio
import functools
import socket

import uvicorn

IDLE_GRACE_SECONDS = 0.5  # a request sent just before the stop reaches a local server well within this


class GracefulServer(uvicorn.Server):
    """A `uvicorn.Server` for `app` (keyword arguments as `uvicorn.Config`'s) whose shutdown loses no request."""

    def __init__(self, app, **config):
        self.stopping = False
        super().__init__(uvicorn.Config(self._closing_when_stopping(app), **config))

    def _closing_when_stopping(self, app):
        """`app`, whose answers say ``Connection: close`` once the server stops."""

        async def closing(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)

            async def send_closing(message):
                if message["type"] == "http.response.start" and self.stopping:
                    message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
                await send(message)

            return await app(scope, receive, send_closing)

        return closing

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stopping = True
        await self._stop_listening(sockets or [])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IDLE_GRACE_SECONDS
        while self.server_state.connections and loop.time() < deadline:  # busy ones close after their answer
            await asyncio.sleep(0.01)
        await super().shutdown(sockets)  # closes the idle rest, waits for requests in progress, then the app

    async def _stop_listening(self, sockets: list[socket.socket]) -> None:
        """Take the connections queued on the listening sockets, then close them."""
        loop, taken = asyncio.get_running_loop(), []
        protocol = functools.partial(self.config.http_protocol_class, config=self.config,  # as uvicorn makes them
                                     server_state=self.server_state, app_state=self.lifespan.state)
        for sock in sockets:
            sock.setblocking(False)
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:  # BlockingIOError: the queue is empty
                    break
                conn.setblocking(False)
                taken.append(loop.connect_accepted_socket(protocol, conn))
        for server in self.servers:  # no await since the last accept: no client joined the queue unseen
            server.close()
        await asyncio.gather(*taken, return_exceptions=True)
