"""The desk's websocket (`/ws/desk/`): subscriptions to streams, checked per object.

Thin on purpose: who may watch what is `selectors.may_watch`; frames are built (and their
sequence numbers taken) by `events`; this only joins groups and forwards text. The origin
is checked by `AllowedHostsOriginValidator` and the session by `AuthMiddlewareStack`
(contactcenter/asgi.py).
"""

import json
import re

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from contactcenter.desk import events, selectors

STREAM = re.compile(r"^(supervisor|agent:WK[0-9a-f]{32}|conversation:CH[0-9a-f]{32})$")
MAX_SUBSCRIPTIONS = 200
MAX_FRAME_BYTES = 4096


class DeskConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        self.streams: set[str] = set()
        # Accept, then close with our code: refused during the handshake, a browser sees
        # only 1006 and could not tell "signed out" from "network down".
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await database_sync_to_async(selectors.is_desk_user)(user):
            await self.close(code=4403)
            return
        streams = await database_sync_to_async(selectors.agent_streams)(user)
        await self._send({"type": "welcome", "user": user.username, "streams": streams})

    async def disconnect(self, code):
        for stream in list(getattr(self, "streams", ())):
            await self.channel_layer.group_discard(events.group_name(stream), self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self._error("bad_request", "Send JSON text frames of at most 4 KB.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self._error("bad_request", "The frame is not JSON.")
            return
        if not isinstance(content, dict):
            await self._error("bad_request", "The frame must be a JSON object.")
            return
        kind = content.get("type")
        if kind == "ping":
            await self._send({"type": "pong", "id": content.get("id")})
        elif kind == "subscribe":
            await self._subscribe(content.get("stream"))
        elif kind == "unsubscribe":
            await self._unsubscribe(content.get("stream"))
        else:
            await self._error("bad_request", f"Unknown frame type {kind!r}.")

    async def _subscribe(self, stream) -> None:
        if not isinstance(stream, str) or not STREAM.match(stream):
            await self._error("unknown_stream", "No such stream.", stream=stream)
            return
        if stream not in self.streams and len(self.streams) >= MAX_SUBSCRIPTIONS:
            await self._error("bad_request", "Too many subscriptions.", stream=stream)
            return
        allowed = await database_sync_to_async(selectors.may_watch)(self.scope["user"], stream)
        if not allowed:
            await self._error("forbidden", "You may not watch this stream.", stream=stream)
            return
        # Join first, then read the position: every frame after it reaches this socket.
        await self.channel_layer.group_add(events.group_name(stream), self.channel_name)
        self.streams.add(stream)
        position = await database_sync_to_async(events.stream_position)(stream)
        await self._send({"type": "subscribed", "stream": stream, **position})

    async def _unsubscribe(self, stream) -> None:
        if isinstance(stream, str) and stream in self.streams:
            await self._leave(stream)
        await self._send({"type": "unsubscribed", "stream": stream})

    async def _leave(self, stream: str) -> None:
        self.streams.discard(stream)
        await self.channel_layer.group_discard(events.group_name(stream), self.channel_name)

    async def desk_frame(self, message):
        """A frame published by `events`; `revoke` makes this socket leave a stream."""
        await self.send(text_data=message["text"])
        revoke = message.get("revoke")
        if revoke and revoke in self.streams and not await self._still_allowed(revoke):
            await self._leave(revoke)
            await self._send({"type": "revoked", "stream": revoke})

    async def _still_allowed(self, stream: str) -> bool:
        return await database_sync_to_async(selectors.may_watch)(self.scope["user"], stream)

    async def _error(self, code: str, message: str, **extra) -> None:
        await self._send({"type": "error", "code": code, "message": message, **extra})

    async def _send(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))
