"""Static files: the icon browsers ask for, at the root of the app and under a prefix."""

import pytest
from test_prefix import mounted
from webtest import TestApp


@pytest.mark.parametrize("prefix", ["", "/school/lab"])
def test_browsers_get_an_icon_at_favicon_ico_wherever_the_app_is_mounted(app, prefix):
    browser = TestApp(mounted(app, prefix) if prefix else app)
    icon = browser.get(prefix + "/favicon.ico", status=200)
    assert icon.content_type in ("image/vnd.microsoft.icon", "image/x-icon")
    assert icon.body[:4] == b"\0\0\1\0"  # an ICO file
    assert icon.headers["Cache-Control"] == "public, max-age=3600"
    # Pages name it, versioned under the prefix, so a browser never asks the parent app.
    home = browser.get(prefix + "/")
    link = home.html.find("link", rel="icon")["href"]
    assert link.startswith(prefix + "/static/favicon.ico?v=")
    assert browser.get(link).body == icon.body
