"""The visible strings the supervisor console's JavaScript needs, translated on the server.

The page renders `supervisor_text()` with `json_script`; `static/js/supervisor.js` never
hard-codes visible English. Placeholders use `{name}` and are filled in by the script.
Static labels (headings, table headers, the transfer dialog) live in the template itself.
"""

from django.utils.translation import gettext_lazy as _

SUPERVISOR_TEXT = {
    # Connection indicator
    "status_connecting": _("Connecting…"),
    "status_live": _("Live"),
    "status_resyncing": _("Catching up…"),
    "status_reconnecting": _("Reconnecting…"),
    "status_offline": _("Offline: refreshing every 15 s"),
    "updated_at": _("Updated {time}"),
    # Errors and confirmations
    "error_network": _("The server could not be reached. Check your connection."),
    "error_generic": _("The server answered with an error ({status})."),
    "error_with_code": _("{message} (error {code})"),
    "error_stream": _("Live updates: {message}"),
    "error_signed_out": _("Live updates stopped: you are signed out. Reload the page to sign in."),
    "dismiss": _("Dismiss"),
    "activity_changed": _("{name} is now {activity}."),
    "transferred": _("The task was transferred."),
    # Tables
    "total": _("Total"),
    "none": "—",
    "no_queues": _("No queues in this workspace."),
    "no_agents": _("No agents in this workspace."),
    "no_tasks": _("No conversations are waiting or in progress."),
    "priority_chip": _("P{priority}: {count}"),
    "priority_full": _("Priority {priority}: {count} waiting"),
    "service_level": _("{percent} in {threshold}"),
    "seconds_short": _("{seconds} s"),
    "service_level_none": _("No answered tasks yet"),
    "agents_available_of": _("{available} available of {eligible} eligible"),
    "available": _("Available"),
    "unavailable": _("Unavailable"),
    "activity_for": _("Activity of {name}"),
    "held_of": _("Conversations held: {held} of {capacity}"),
    "held_channel": _("{channel}: {assigned} of {capacity}"),
    "monitor_label": _("Monitor the conversation with {name}"),
    "transfer_label": _("Transfer the task of {name}"),
    "monitor": _("Monitor"),
    "transfer": _("Transfer"),
    "unknown_customer": _("Unknown customer"),
    "unassigned": _("Not assigned"),
    # Task statuses
    "task_pending": _("Waiting"),
    "task_reserved": _("Offered"),
    "task_assigned": _("In progress"),
    "task_wrapping": _("Wrapping up"),
    "task_completed": _("Completed"),
    "task_canceled": _("Canceled"),
    # Channels
    "channel_sms": _("SMS"),
    "channel_whatsapp": _("WhatsApp"),
    "channel_messenger": _("Messenger"),
    "channel_default": _("Chat"),
    # Transfer dialog
    "transfer_title": _("Transfer the conversation with {name}"),
    "transfer_pick": _("Choose a queue or an agent."),
    "transfer_current_queue": _("{name} (current)"),
    "transfer_agent_option": _("{name} · {activity} · {held}/{capacity}"),
    # Monitor panel
    "monitor_title": _("Monitoring {name}"),
    "monitor_loading": _("Loading the conversation…"),
    "monitor_readonly": _("Read-only: the customer does not see you."),
    "monitor_no_messages": _("No messages yet."),
    "monitor_ended": _("This conversation is no longer live; the view has stopped updating."),
    "monitor_queue": _("Queue: {name}"),
    "monitor_agent": _("Agent: {name}"),
    "monitor_status": _("Task: {status}"),
    "author_customer": _("Customer"),
    "author_bot": _("Bot"),
    "author_agent": _("Agent"),
    "author_system": _("System"),
    "note": _("Internal note by {name}"),
    "attachment": _("Attachment ({type})"),
    "message_failed": _("Not delivered: {message}"),
    "msg_status_accepted": _("Accepted"),
    "msg_status_scheduled": _("Scheduled"),
    "msg_status_queued": _("Queued"),
    "msg_status_sending": _("Sending"),
    "msg_status_sent": _("Sent"),
    "msg_status_delivered": _("Delivered"),
    "msg_status_read": _("Read"),
    "msg_status_undelivered": _("Undelivered"),
    "msg_status_failed": _("Failed"),
    "msg_status_canceled": _("Canceled"),
    "msg_status_received": _("Received"),
    # Charts
    "chart_empty": _("No data yet"),
    "chart_wait_summary": _("Wait-time distribution (tasks answered: {total}): {items}."),
    "chart_wait_item": _("{label}: {count}"),
    "chart_volume_summary": _(
        "Messages per hour over {hours} hours: {inbound} inbound and {outbound} outbound; "
        "busiest hour {hour} with {busiest}."
    ),
    "chart_volume_empty": _("Messages per hour: none in the last {hours} hours."),
    "axis_tasks": _("Tasks"),
    "axis_wait": _("Wait time"),
    "axis_messages": _("Messages"),
    "axis_hour": _("Hour (local time)"),
    "inbound": _("Inbound"),
    "outbound": _("Outbound"),
    # Analytics
    "analytics_period": "{start} \u2013 {end}",  # the same in every language
    "analytics_empty": _("No messages in this period."),
    "analytics_loading": _("Loading…"),
    "error_count": "{code} \u00d7 {count}",  # the same in every language
    "error_unknown_code": _("no code"),
    "responded_of": _("Replied: {responded} of {recipients}"),
    "delivered_of": _("{delivered} of {sent}"),
}


def supervisor_text() -> dict[str, str]:
    """The console's strings in the active language, as plain strings for `json_script`."""
    return {key: str(value) for key, value in SUPERVISOR_TEXT.items()}
