from channels.generic.websocket import AsyncJsonWebsocketConsumer


class PingConsumer(AsyncJsonWebsocketConsumer):
    """Liveness of the websocket stack for signed-in users: echoes `ping` with `pong`.

    It joins a channel-layer group so that a round trip through Redis can be checked too.
    """

    group = "ping"

    async def connect(self):
        if not self.scope["user"].is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong", "id": content.get("id")})
        else:
            await self.send_json({"type": "error", "code": "unknown_type"})

    async def broadcast(self, event):
        await self.send_json({"type": "broadcast", "payload": event.get("payload")})
