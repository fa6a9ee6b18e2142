"""FormEncode schemas for every form, with messages a person can act on."""

import datetime
import json
import re
import zoneinfo

from formencode import FancyValidator, ForEach, Invalid, Schema, validators

from . import rules

# Paths the app or a front server may need at the top level: never queue ids.
RESERVED_QUEUE_IDS = frozenset(
    """
    static api admin about help new create queues queue login logout sign-in sign-out
    signin signout account settings health healthz status robots favicon www app
    assets media docs board serve console ticket tickets take-a-number
    """.split()
)

QUEUE_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,18})[a-z0-9]$")


class QueueId(FancyValidator):
    """3–20 characters: lowercase letters, digits and '-'; not a reserved word."""

    strip = True
    messages = {
        "format": (
            "Use 3 to 20 characters: lowercase letters, digits and '-' (not at the start or end)."
        ),
        "reserved": "'%(queue_id)s' is reserved; choose another name.",
    }

    def _convert_to_python(self, value, state):
        return str(value).strip().lower()

    def _validate_python(self, value, state):
        if not QUEUE_ID_PATTERN.match(value):
            raise Invalid(self.message("format", state), value, state)
        if value in RESERVED_QUEUE_IDS:
            raise Invalid(self.message("reserved", state, queue_id=value), value, state)


def _text(max_length, **kwargs):
    return validators.UnicodeString(
        not_empty=True,
        strip=True,
        max=max_length,
        messages={
            "empty": "Please fill this in.",
            "missing": "Please fill this in.",
            "tooLong": "At most %(max)i characters.",
        },
        **kwargs,
    )


class _Form(Schema):
    allow_extra_fields = True
    filter_extra_fields = True


class EmptyForm(_Form):
    """A button: nothing to fill in but the CSRF token."""


class CreateQueueForm(_Form):
    queue_id = QueueId(
        not_empty=True,
        messages={"empty": "Choose a name for the link.", "missing": "Choose a name for the link."},
    )
    title = _text(80)
    password = validators.UnicodeString(
        not_empty=True,
        min=8,
        max=200,
        messages={
            "empty": "Choose a password of at least 8 characters.",
            "missing": "Choose a password of at least 8 characters.",
            "tooShort": "Use at least %(min)i characters.",
            "tooLong": "At most %(max)i characters.",
        },
    )
    name = _text(40)


class SignInForm(_Form):
    password = validators.UnicodeString(
        not_empty=True,
        max=200,
        messages={
            "empty": "Enter the queue's password or your staff code.",
            "missing": "Enter the queue's password or your staff code.",
        },
    )
    name = _text(40)


class StaffForm(_Form):
    name = _text(40)


class StatusForm(_Form):
    status = validators.OneOf(rules.QUEUE_STATUSES, not_empty=True)


class OptionsForm(_Form):
    announcement = validators.UnicodeString(
        strip=True, max=200, if_missing="", messages={"tooLong": "At most %(max)i characters."}
    )
    max_waiting = validators.Int(
        min=1,
        max=100_000,
        if_empty=None,
        if_missing=None,
        messages={
            "integer": "Enter a whole number, or leave it empty for no limit.",
            "tooLow": "At least %(min)s.",
            "tooHigh": "At most %(max)s.",
        },
    )
    no_show_policy = validators.OneOf([rules.NO_SHOW_END, rules.NO_SHOW_REQUEUE], not_empty=True)


class TimeOfDay(FancyValidator):
    """'09:00' to a ``datetime.time``."""

    messages = {"format": "Use hours and minutes, like 09:00."}

    def _convert_to_python(self, value, state):
        try:
            return datetime.time.fromisoformat(str(value).strip())
        except ValueError:
            raise Invalid(self.message("format", state), value, state) from None

    def _convert_from_python(self, value, state):
        return value.strftime("%H:%M")


class TimeZone(FancyValidator):
    messages = {"unknown": "Unknown time zone; use a name like Europe/London."}

    def _convert_to_python(self, value, state):
        value = str(value).strip()
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise Invalid(self.message("unknown", state), value, state) from None
        return value


class HoursForm(_Form):
    """Opening hours: the days, the times, the zone; or always open."""

    always_open = validators.StringBool(if_missing=False)
    days = ForEach(validators.Int(min=0, max=6), convert_to_list=True, if_missing=[])
    opens = TimeOfDay(if_missing=None, if_empty=None)
    closes = TimeOfDay(if_missing=None, if_empty=None)
    timezone = TimeZone(not_empty=True, messages={"empty": "Choose a time zone."})

    def _validate_python(self, values, state):
        if values["always_open"]:
            return
        errors = {}
        if not values["days"]:
            errors["days"] = "Choose at least one day, or choose always open."
        if values["opens"] is None:
            errors["opens"] = "When does it open?"
        if values["closes"] is None:
            errors["closes"] = "When does it close?"
        elif values["opens"] is not None and values["closes"] <= values["opens"]:
            errors["closes"] = "Closing time must come after opening time."
        if errors:
            raise Invalid("Check the opening hours.", values, state, error_dict=errors)


def hours_json(values):
    """Opening hours from HoursForm as the store keeps them, or None for always open."""
    if values["always_open"]:
        return None
    return json.dumps(
        {
            "days": values["days"],
            "opens": values["opens"].strftime("%H:%M"),
            "closes": values["closes"].strftime("%H:%M"),
        }
    )


def validate(schema, params):
    """``(values, errors)``: converted values, or a dict of messages per field.

    ``params`` is a form (a MultiDict: a field that takes several values, such
    as the days of the opening hours, gets them all; any other its last one)
    or a plain dict (a JSON body).
    """
    if hasattr(params, "getall"):
        params = {
            key: params.getall(key) if isinstance(schema.fields.get(key), ForEach) else params[key]
            for key in params
        }
    try:
        return schema.to_python(dict(params)), {}
    except Invalid as error:
        errors = error.unpack_errors()
        return {}, errors if isinstance(errors, dict) else {"form": str(errors)}
