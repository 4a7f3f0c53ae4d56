from channels.generic.websocket import AsyncJsonWebsocketConsumer


class PingConsumer(AsyncJsonWebsocketConsumer):
    """Liveness of the websocket stack for signed-in users: echoes `ping` with `pong`.

    It joins a per-user channel-layer group (never one group for everybody: fan-out cost
    grows with group size), so that a round trip through Redis can be checked too.
    """

    @staticmethod
    def group_for(user_id: int) -> str:
        return f"ping.user.{user_id}"

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = self.group_for(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong", "id": content.get("id")})
        else:
            await self.send_json({"type": "error", "code": "unknown_type"})

    async def broadcast(self, event):
        await self.send_json({"type": "broadcast", "payload": event.get("payload")})
