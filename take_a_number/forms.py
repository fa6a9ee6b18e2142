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

# The message of a field longer than its ``max``.
TOO_LONG = {"tooLong": "At most %(max)i characters."}
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


class Text(validators.UnicodeString):
    """Text a person reads back (a name, a title): no control characters.

    A NUL, an escape or a backspace has no place in a desk's name, and
    PostgreSQL cannot store a NUL at all."""

    messages = {"control": "Please remove the control characters from this text."}
    _CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

    def _validate_python(self, value, state):
        super()._validate_python(value, state)
        if value and self._CONTROL.search(value):
            raise Invalid(self.message("control", state), value, state)


def _required(message, validator=Text, messages=None, **kwargs):
    """A field that must be filled in: ``message`` when it is empty or not sent."""
    messages = {"empty": message, "missing": message, **(messages or {})}
    return validator(not_empty=True, messages=messages, **kwargs)


def _text(max_length):
    """Text of a name or a title: stripped, then required."""
    return _required("Please fill this in.", strip=True, max=max_length, messages=TOO_LONG)


def _number_or_none(
    low, high, not_a_number, too_low="At least %(min)s.", too_high="At most %(max)s."
):
    """A whole number from ``low`` to ``high``, or None when it is empty or not sent."""
    messages = {"integer": not_a_number, "tooLow": too_low, "tooHigh": too_high}
    return validators.Int(min=low, max=high, if_empty=None, if_missing=None, messages=messages)


class _Form(Schema):
    allow_extra_fields = True
    filter_extra_fields = True


class EmptyForm(_Form):
    """A button: nothing to fill in but the CSRF token."""


# Every zone the system knows: the opening hours form offers these, and only these.
TIMEZONES = tuple(sorted(zoneinfo.available_timezones()))
_KNOWN_TIMEZONES = frozenset(TIMEZONES)


class TimeZone(FancyValidator):
    """A zone name the system knows, like Europe/London: not a folder of zones
    (America), a file that is no zone, or a path."""

    messages = {"unknown": "Unknown time zone; use a name like Europe/London."}

    def _convert_to_python(self, value, state):
        value = str(value).strip()
        if value not in _KNOWN_TIMEZONES:
            raise Invalid(self.message("unknown", state), value, state)
        return value


class BrowserTimeZone(TimeZone):
    """The zone a browser says it is in (home.js): one the system does not know, or none,
    is UTC, since a person cannot correct what their browser sent unseen."""

    if_missing = if_empty = "UTC"

    def _convert_to_python(self, value, state):
        value = str(value).strip()
        return value if value in _KNOWN_TIMEZONES else "UTC"


def _new_password():
    """A password the owner chooses: 8 to 200 characters."""
    return _required(
        "Choose a password of at least 8 characters.",
        min=8,
        max=200,
        messages={"tooShort": "Use at least %(min)i characters.", **TOO_LONG},
    )


class CreateQueueForm(_Form):
    queue_id = _required("Choose a name for the link.", QueueId)
    title = _text(80)
    password = _new_password()
    name = _text(40)
    # The queue's time zone (its statistics, its opening hours): the browser's.
    timezone = BrowserTimeZone()


class NewPasswordForm(_Form):
    """A new password for a queue (``take-a-number reset-password``)."""

    new_password = _new_password()


class ChangePasswordForm(NewPasswordForm):
    """The owner changes the queue's password: the old one, then the new one (the API)."""

    old_password = _required("Enter the queue's password as it is now.", max=200)


class ConfirmedChangePasswordForm(ChangePasswordForm):
    """The Manage page's form: the new password typed twice."""

    new_password_again = validators.UnicodeString(if_missing="")
    chained_validators = [
        validators.FieldsMatch(
            "new_password",
            "new_password_again",
            messages={"invalidNoMatch": "The two new passwords differ; type the same twice."},
        )
    ]


class SignInForm(_Form):
    """The owner signs in with the queue's password."""

    password = _required("Enter the queue's password.", max=200)
    name = _text(40)


class InvitedSignInForm(_Form):
    """A servicer signs in with the code of the invitation the owner made for them."""

    code = _required("Enter your invitation code.", max=40)


# How long an invitation may stay valid, in hours (the form offers a few).
INVITATION_HOURS = {8: "8 hours", 24: "1 day", 168: "7 days", 720: "30 days"}


class InvitationForm(_Form):
    """The owner invites a servicer: their name or desk, and how long the link works."""

    name = _text(40)
    valid_for_hours = _number_or_none(
        1,
        8760,
        "Enter a whole number of hours, or leave it empty.",
        too_low="At least %(min)s hour.",
        too_high="At most %(max)s hours (a year).",
    )


class StaffForm(_Form):
    name = _text(40)


# The largest ticket number SQLite's integers hold.
MAX_NUMBER = 2**63 - 1


class PressForm(_Form):
    """A console button's precondition: the number the console showed as the servicer's
    customer, empty for nobody (actions.Actions.press)."""

    expected_current = _number_or_none(
        1, MAX_NUMBER, "Send the number your console shows as yours, or nothing for nobody."
    )


class CallNumberForm(PressForm):
    """Call a waiting number from the console's list (``number``), with PressForm's
    precondition."""

    number = validators.Int(
        min=1,
        max=MAX_NUMBER,
        not_empty=True,
        messages={
            "empty": "Say which waiting number to call.",
            "missing": "Say which waiting number to call.",
            "integer": "Send the waiting number to call, a whole number.",
            "tooLow": "At least %(min)s.",
            "tooHigh": "At most %(max)s.",
        },
    )


class StatusForm(_Form):
    status = validators.OneOf(rules.QUEUE_STATUSES, not_empty=True)


class OptionsForm(_Form):
    announcement = Text(strip=True, max=200, if_missing="", messages=TOO_LONG)
    max_waiting = _number_or_none(
        1, 100_000, "Enter a whole number, or leave it empty for no limit."
    )
    no_show_policy = validators.OneOf([rules.NO_SHOW_END, rules.NO_SHOW_REQUEUE], not_empty=True)


TIME_OF_DAY_PATTERN = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


class TimeOfDay(FancyValidator):
    """'09:00' (hours and minutes, nothing else) to a ``datetime.time``."""

    messages = {"format": "Use hours and minutes, like 09:00."}

    def _convert_to_python(self, value, state):
        match = TIME_OF_DAY_PATTERN.match(str(value).strip())
        if not match:
            raise Invalid(self.message("format", state), value, state)
        return datetime.time(int(match[1]), int(match[2]))


class HoursForm(_Form):
    """Opening hours: the days, the times, the zone; or always open.

    A closing time before the opening time closes the next day (17:00 to
    09:00 is overnight). With always open ticked, the days and times are
    ignored, whatever they say.
    """

    always_open = validators.StringBool(if_missing=False)
    days = ForEach(validators.Int(min=0, max=6), convert_to_list=True, if_missing=[])
    opens = TimeOfDay(if_missing=None, if_empty=None)
    closes = TimeOfDay(if_missing=None, if_empty=None)
    timezone = TimeZone(not_empty=True, messages={"empty": "Choose a time zone."})

    def _convert_to_python(self, value_dict, state):
        # Always open: the hour fields are ignored, even when they would not
        # pass (a browser without JavaScript sends them as they stand).
        try:
            always_open = self.fields["always_open"].to_python(value_dict.get("always_open"))
        except Invalid:
            always_open = False  # and reported as the field's error
        if always_open:
            kept = ("always_open", "timezone")
            value_dict = {k: v for k, v in value_dict.items() if k in kept}
        return super()._convert_to_python(value_dict, state)

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
        elif values["opens"] is not None and values["closes"] == values["opens"]:
            errors["closes"] = "Closing time must differ from opening time."
        if errors:
            raise Invalid("Check the opening hours.", values, state, error_dict=errors)


DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
WHOLE_NUMBER_PATTERN = re.compile(r"[0-9]{1,18}")


class IsoDate(FancyValidator):
    """A calendar date written YYYY-MM-DD, and only so, to a ``datetime.date``."""

    not_empty = True
    if_missing = None
    messages = {
        "empty": "Use a date written YYYY-MM-DD, like 2026-03-31.",
        "format": "Use a date written YYYY-MM-DD, like 2026-03-31.",
        "no_such_date": "There is no such date.",
    }

    def _convert_to_python(self, value, state):
        if not DATE_PATTERN.fullmatch(str(value)):
            raise Invalid(self.message("format", state), value, state)
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise Invalid(self.message("no_such_date", state), value, state) from None


class WholeNumber(FancyValidator):
    """Digits only (no sign, space or other script), from ``low`` to ``high``."""

    not_empty = True

    def __init__(self, low, high, **kwargs):
        text = f"Use a whole number from {low} to {high}."
        super().__init__(low=low, high=high, messages={"empty": text, "format": text}, **kwargs)

    def _convert_to_python(self, value, state):
        text = str(value)
        if not WHOLE_NUMBER_PATTERN.fullmatch(text) or not self.low <= int(text) <= self.high:
            raise Invalid(self.message("format", state), value, state)
        return int(text)


def _date_range_check(self, values, state):
    if values["from"] and values["to"] and values["to"] < values["from"]:
        message = "The last day (to) must not come before the first (from)."
        raise Invalid(message, values, state, error_dict={"to": message})


# The days of a report or a list, inclusive, in the queue's time zone: ``from``
# and ``to`` (either may be left out). ``from`` is a Python keyword: hence type().
DateRangeForm = type(
    "DateRangeForm",
    (_Form,),
    {
        "__doc__": "The days of a report or a list: ``from`` and ``to``, inclusive.",
        "from": IsoDate(),
        "to": IsoDate(),
        "_validate_python": _date_range_check,
    },
)

# How many tickets one page of the API's list holds: when not asked, and at most.
TICKETS_PER_PAGE, MAX_TICKETS_PER_PAGE = 100, 1000
# The largest ticket number a cursor may name: 18 digits fit SQLite's integers.
MAX_TICKET_NUMBER = 10**18 - 1


class TicketListForm(DateRangeForm):
    """One page of a queue's tickets: the days, how many, and after which number."""

    limit = WholeNumber(1, MAX_TICKETS_PER_PAGE, if_missing=TICKETS_PER_PAGE)
    after = WholeNumber(0, MAX_TICKET_NUMBER, if_missing=0)


def hours_json(values):
    """Opening hours from HoursForm as the store keeps them, or None for always open."""
    if values["always_open"]:
        return None
    times = {key: values[key].strftime("%H:%M") for key in ("opens", "closes")}
    return json.dumps({"days": values["days"], **times})


def _sent(schema, form, name):
    """What a form sent for a field: every value of a ForEach field, else the last ("" if none)."""
    return form.getall(name) if isinstance(schema.fields.get(name), ForEach) else form.get(name, "")


def as_typed(schema, form):
    """A form's fields as sent, to fill it in again beside its errors: every field
    of the schema, empty when it was not sent (as a checkbox left unticked)."""
    return {name: _sent(schema, form, name) for name in schema.fields}


def validate(schema, params):
    """``(values, errors)``: converted values, or a dict of messages per field.

    ``params`` is a form (a MultiDict: a field that takes several values, such
    as the days of the opening hours, gets them all; any other its last one)
    or a plain dict (a JSON body).
    """
    if hasattr(params, "getall"):
        params = {key: _sent(schema, params, key) for key in params}
    try:
        return schema.to_python(dict(params)), {}
    except Invalid as error:
        errors = error.unpack_errors()
        return {}, errors if isinstance(errors, dict) else {"form": str(errors)}
