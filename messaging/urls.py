from django.urls import path

from messaging.api import twilio

ACCOUNT = "2010-04-01/Accounts/<str:account_sid>"

twilio_patterns = [
    path(f"{ACCOUNT}/Messages.json", twilio.messages_collection, name="twilio-messages"),
    path(f"{ACCOUNT}/Messages/<str:sid>.json", twilio.message_instance, name="twilio-message"),
    path(
        f"{ACCOUNT}/Messages/<str:sid>/Media.json",
        twilio.message_media,
        name="twilio-message-media",
    ),
    path(
        f"{ACCOUNT}/Messages/<str:sid>/Media/<str:media_sid>.json",
        twilio.message_media_instance,
        name="twilio-message-media-instance",
    ),
    path(
        f"{ACCOUNT}/Messages/<str:sid>/Media/<str:media_sid>",
        twilio.message_media_content,
        name="twilio-message-media-content",
    ),
]
