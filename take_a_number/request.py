"""The request: WebOb's, reading an urlencoded form without cgi.FieldStorage."""

import urllib.parse

import webob
from webob.multidict import MultiDict

# A form body read into memory at once; a longer one is left to WebOb.
MAX_FORM_BYTES = 1 << 20


class UnreadableForm(Exception):
    """A form body the app cannot read: a broken multipart body, or a file in it."""


class Request(webob.Request):
    """WebOb's request, reading the body of an urlencoded form with parse_qsl.

    WebOb parses every form through cgi.FieldStorage, which is made for
    multipart uploads and takes longer than the rest of taking a number.
    Every form of the app is urlencoded; anything else goes to WebOb, and
    a form WebOb cannot read, or one with a file, raises UnreadableForm.
    """

    @property
    def POST(self):
        if (
            self.method != "POST"
            or self.content_type != "application/x-www-form-urlencoded"
            or (self.content_length or 0) > MAX_FORM_BYTES  # WebOb spools it to a file
        ):
            return self._webob_form()
        form = self.environ.get("take_a_number.form")
        if form is None:
            length = self.content_length
            if length is not None and not self.is_body_seekable:
                # Read once, as is: WebOb would first copy it to be seekable.
                body = self.body = self.body_file_raw.read(length)
            else:
                body = self.body
            # Bytes that are not UTF-8 become U+FFFD, as WebOb makes them:
            # the form's validation then says what is wrong with the field.
            pairs = urllib.parse.parse_qsl(
                body.decode("utf-8", "replace"), keep_blank_values=True, errors="replace"
            )
            form = self.environ["take_a_number.form"] = MultiDict(pairs)
        return form

    def _webob_form(self):
        try:
            form = super().POST
        except ValueError as error:  # cgi: a multipart body without a (valid) boundary
            raise UnreadableForm("The form could not be read; send it urlencoded.") from error
        if not all(isinstance(value, str) for value in form.values()):
            raise UnreadableForm("This form takes no files.")
        return form
