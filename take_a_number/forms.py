"""FormEncode schemas for every form, with messages a person can act on."""

import re

from formencode import FancyValidator, Invalid, Schema, validators

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
        messages={"empty": "Enter the queue's password.", "missing": "Enter the queue's password."},
    )
    name = _text(40)


def validate(schema, params):
    """``(values, errors)``: converted values, or a dict of messages per field."""
    try:
        return schema.to_python(dict(params)), {}
    except Invalid as error:
        errors = error.unpack_errors()
        return {}, errors if isinstance(errors, dict) else {"form": str(errors)}
