from django.core.exceptions import ValidationError
from django.db import models

from routing.errors import RoutingError


def full_clean(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """Django's model validation, raised as a RoutingError that names the first field."""
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as error:
        raise as_routing_error(error) from error


def as_routing_error(error: ValidationError) -> RoutingError:
    if hasattr(error, "error_dict"):
        field, messages = next(iter(error.message_dict.items()))
        name = None if field == "__all__" else field
        text = f"{field}: {messages[0]}" if name else messages[0]
        return RoutingError(20001, text, name)
    return RoutingError(20001, error.messages[0], None)
