"""Customer-service windows (REFERENCE.md 4, 5): when a business may write to a customer on
a channel that limits it.

- WhatsApp: free-form messages only within 24 h of the customer's last message; outside it
  only approved templates (Meta's 131047, Twilio's 63016).
- Messenger: 24 h after the customer's last message; a human agent may answer up to 7 days
  with the HUMAN_AGENT tag; otherwise refused (63016).
- SMS has no window.

Pure functions over the time of the customer's last inbound message; the engine checks them
when a message is created (From known) and again when it is sent (it may have waited).
"""

from datetime import datetime, timedelta

from messaging.errors import MessagingError
from messaging.models import Channel

WHATSAPP_WINDOW = timedelta(hours=24)
MESSENGER_WINDOW = timedelta(hours=24)
MESSENGER_HUMAN_AGENT_WINDOW = timedelta(days=7)
HUMAN_AGENT = "HUMAN_AGENT"
# Where a message keeps its Messenger tag (Message.tags).
TAG_KEY = "messenger_tag"
OUTSIDE_WINDOW = 63016


def window_end(channel: str, last_inbound_at: datetime | None, *, tag: str = "") -> datetime | None:
    """When free-form messages stop being allowed; None when the customer never wrote (or the
    channel has no window: check `has_window`)."""
    if last_inbound_at is None or not has_window(channel):
        return None
    if channel == Channel.MESSENGER and tag == HUMAN_AGENT:
        return last_inbound_at + MESSENGER_HUMAN_AGENT_WINDOW
    if channel == Channel.MESSENGER:
        return last_inbound_at + MESSENGER_WINDOW
    return last_inbound_at + WHATSAPP_WINDOW


def has_window(channel: str) -> bool:
    return channel in (Channel.WHATSAPP, Channel.MESSENGER)


def may_send(
    channel: str,
    last_inbound_at: datetime | None,
    now: datetime,
    *,
    template: bool = False,
    tag: str = "",
) -> bool:
    if not has_window(channel):
        return True
    if channel == Channel.WHATSAPP and template:
        return True  # approved templates open a conversation at any time
    end = window_end(channel, last_inbound_at, tag=tag)
    return end is not None and now < end


def outside_window_error(channel: str, last_inbound_at: datetime | None) -> MessagingError:
    if last_inbound_at is None:
        when = "the customer has never written to this sender"
    else:
        when = f"the customer last wrote at {last_inbound_at:%Y-%m-%d %H:%M:%S %Z}"
    if channel == Channel.WHATSAPP:
        advice = "outside the 24-hour window only an approved template (ContentSid) may be sent"
    else:
        advice = "Messenger allows 24 hours, or 7 days for a human agent with the HUMAN_AGENT tag"
    return MessagingError(OUTSIDE_WINDOW, f"Outside the customer-service window: {when}; {advice}.")
