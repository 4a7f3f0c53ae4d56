"""The visible strings the agent desktop's JavaScript needs, translated on the server.

The desk view renders `desk_text()` with `json_script`; `static/js/desk.js` never hard-codes
visible English. Placeholders use Python's `%(name)s` form and are filled in by the script,
so translators see the usual gettext placeholders. Static labels (headings, form labels,
dialogs) live in `templates/desk/index.html` itself.
"""

from django.utils.translation import gettext_lazy as _

DESK_TEXT = {
    # Connection indicator
    "status_connecting": _("Connecting…"),
    "status_live": _("Live"),
    "status_offline": _("Offline: reconnecting…"),
    # Errors and notices
    "error_network": _("The server could not be reached. Check your connection."),
    "error_generic": _("The server answered with an error (%(status)s)."),
    "error_with_code": _("%(message)s (error %(code)s)"),
    "error_stream": _("Live updates: %(message)s"),
    "error_signed_out": _("You were signed out. Reload the page to sign in again."),
    "error_no_role": _("Your account has no desk role any more. Reload the page."),
    "loading": _("Loading…"),
    "sending": _("Sending…"),
    "activity_changed": _("You are now %(activity)s."),
    "transferred": _("The conversation was transferred."),
    "completed": _("The conversation is complete."),
    "conversation_gone": _("This conversation is no longer yours."),
    "wrapup_saved": _("Wrap-up saved. Complete the conversation to free your capacity."),
    "notes_required": _("This disposition needs notes."),
    "notes_required_hint": _("(required)"),
    "pick_target": _("Pick a queue or an agent."),
    "pick_disposition": _("Pick a disposition."),
    "fill_placeholders": _("Fill in every template field."),
    "empty_message": _("Write a message or attach a file."),
    # Offers
    "offer_queue": _("Queue: %(queue)s"),
    "offer_waiting": _("Waiting %(time)s"),
    "offer_countdown": _("%(seconds)s s"),
    "offer_countdown_label": _("%(seconds)s seconds left to answer"),
    "offer_expired": _("Expired"),
    "accept": _("Accept"),
    "reject": _("Reject"),
    "accept_label": _("Accept the conversation with %(customer)s"),
    "reject_label": _("Reject the conversation with %(customer)s"),
    "no_queue": _("No queue"),
    # Durations
    "duration_seconds": _("%(seconds)s s"),
    "duration_minutes": _("%(minutes)s min"),
    "duration_hours": _("%(hours)s h %(minutes)s min"),
    # Conversation list
    "no_conversations": _("No conversations yet. Set yourself Available to receive offers."),
    "unread_label": _("%(count)s unread"),
    "wrapping": _("Wrapping up"),
    "no_messages_preview": _("No messages yet"),
    "attachment_preview": _("Attachment"),
    "unknown_customer": _("Unknown customer"),
    "new_message_from": _("New message from %(customer)s: %(body)s"),
    # Conversation view
    "pick_conversation": _("Pick a conversation on the left, or accept an offer."),
    "monitoring": _("Read-only: you are monitoring this conversation."),
    "readonly": _("Read-only: this conversation is not yours to answer."),
    "queue_label": _("Queue: %(queue)s"),
    "window_open_until": _("Reply window open until %(time)s"),
    "window_closed": _(
        "The 24-hour reply window is closed: only an approved template can be sent."
    ),
    "no_history": _("No messages in this conversation yet."),
    "private_note": _("Private note"),
    "private_note_by": _("Private note · %(author)s"),
    "system_note": _("Private note · system"),
    "attachment": _("Attachment: %(name)s"),
    "attachment_typed": _("Attachment: %(name)s (%(type)s)"),
    "image_from": _("Image sent by %(author)s"),
    "author_customer": _("Customer"),
    "author_bot": _("Bot"),
    "author_agent": _("Agent"),
    "author_system": _("System"),
    "error_detail": _("Error %(code)s: %(message)s"),
    "error_no_code": _("Not delivered: %(message)s"),
    # Delivery statuses
    "status_accepted": _("Accepted"),
    "status_scheduled": _("Scheduled"),
    "status_queued": _("Queued"),
    "status_sending": _("Sending"),
    "status_sent": _("Sent"),
    "status_delivered": _("Delivered"),
    "status_read": _("Read"),
    "status_failed": _("Failed"),
    "status_undelivered": _("Undelivered"),
    "status_canceled": _("Canceled"),
    "status_received": _("Received"),
    "status_receiving": _("Receiving"),
    # Composer
    "encoding_summary": _("%(encoding)s · %(segments)s · %(characters)s"),
    "segments_one": _("%(count)s segment"),
    "segments_other": _("%(count)s segments"),
    "characters_one": _("%(count)s character"),
    "characters_other": _("%(count)s characters"),
    "smart_encoding": _("Smart encoding will send: %(summary)s"),
    "smart_preview": _("As sent: %(body)s"),
    "canned_placeholder": _("Insert a canned response…"),
    "canned_suggestions": _("Canned responses matching %(shortcut)s"),
    "remove_attachment": _("Remove the attachment"),
    "attached": _("Attached: %(name)s"),
    "template_placeholder": _("Pick a template…"),
    "template_field": _("Value for {{%(name)s}}"),
    # Transfer and wrap-up
    "transfer_queues": _("Queues"),
    "transfer_agents": _("Agents"),
    "transfer_queue_option": _("%(name)s (%(waiting)s waiting)"),
    "transfer_agent_option": _("%(name)s · %(activity)s"),
    "transfer_none": _("No transfer targets."),
    "disposition_placeholder": _("Pick a disposition…"),
    "notes_required_marker": _("%(label)s (notes required)"),
    # Capacity
    "capacity_item": _("%(channel)s: %(assigned)s of %(capacity)s"),
    # Channels
    "channel_sms": _("SMS"),
    "channel_whatsapp": _("WhatsApp"),
    "channel_messenger": _("Messenger"),
    "channel_chat": _("Chat"),
}


def desk_text() -> dict[str, str]:
    """`DESK_TEXT` in the active language, as plain strings for `json_script`."""
    return {key: str(value) for key, value in DESK_TEXT.items()}
