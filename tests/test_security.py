"""CSRF, safe GETs, headers, cookies and error pages."""

import http.client
import urllib.parse

import pytest
from support import create_queue, take_number, waiting
from webob import Request


def test_post_without_csrf_token_is_refused(browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    customer.get("/cet236")
    page = customer.post("/cet236/take", {}, status=403)
    assert "This form has expired" in page
    assert waiting(browser) == 0


def test_post_with_another_browsers_csrf_token_is_refused(browser, new_browser):
    console = create_queue(browser)
    token = console.html.find("input", attrs={"name": "csrf_token"})["value"]
    attacker = new_browser()
    attacker.post("/cet236/serve/next", {"csrf_token": token}, status=403)
    attacker.post("/", {"csrf_token": token, "queue_id": "x"}, status=403)


def test_get_is_safe_to_repeat(browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    for _ in range(3):
        customer.get("/cet236")
        browser.get("/cet236/serve")
    assert waiting(browser) == 0


def test_state_changing_paths_refuse_get(browser):
    create_queue(browser)
    for path in ("/cet236/take", "/cet236/serve/next", "/cet236/sign-in", "/cet236/sign-out"):
        response = browser.get(path, status=405)
        assert response.headers["Allow"] == "POST"


def test_every_response_carries_security_headers(browser):
    create_queue(browser)
    for path, status in (
        ("/", 200),
        ("/cet236", 200),
        ("/nosuch", 404),
        ("/static/style.css", 200),
    ):
        headers = browser.get(path, status=status).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in headers


def test_over_https_cookies_are_secure_and_hsts_is_sent(new_browser):
    secure = new_browser(extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "example.org"})
    console = create_queue(secure)
    assert console.headers["Strict-Transport-Security"] == "max-age=31536000"
    response = secure.get("/cet236").forms[0].submit()
    assert response.location.startswith("https://example.org/cet236/ticket/")
    for cookie in response.headers.getall("Set-Cookie"):
        assert "; secure" in cookie.lower()


def test_session_cookie_is_signed_and_tampering_signs_you_out(browser, new_browser):
    create_queue(browser)
    cookie = browser.cookies["tan_session"]
    forged = new_browser()
    forged.set_cookie("tan_session", cookie[:-4] + ("AAAA" if cookie[-4:] != "AAAA" else "BBBB"))
    assert "Sign in" in forged.get("/cet236/serve")


def test_bad_form_encoding_is_a_400_not_a_traceback(browser):
    token = browser.get("/").forms[0]["csrf_token"].value
    body = f"csrf_token={token}&queue_id=%FF%FE&title=x&password=12345678&name=x".encode()
    response = browser.post(
        "/", body, content_type="application/x-www-form-urlencoded; charset=utf-8", status=400
    )
    assert "Use 3 to 20 characters" in response


def test_unknown_paths_are_404_pages(browser):
    for path in ("/a/b/c/d", "/UPPER", "/static/nope.css", "/static/../setup.py"):
        page = browser.get(path, status=404)
        assert "Not found" in page.html.title.get_text()


def test_static_files_are_cached_and_versioned(browser):
    page = browser.get("/")
    href = page.html.find("link", rel="stylesheet")["href"]
    assert href.startswith("/static/style.css?v=")
    css = browser.get(href)
    assert css.content_type == "text/css"
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    plain = browser.get("/static/style.css")
    assert plain.headers["Cache-Control"] == "public, max-age=3600"
    since = plain.headers["Last-Modified"]
    assert browser.get("/static/style.css", headers={"If-Modified-Since": since}, status=304)


def test_ticket_page_does_not_create_a_ticket_for_a_crawler(app, browser, new_browser):
    create_queue(browser)
    ticket = take_number(new_browser())
    new_browser().get(ticket.request.path)
    assert app.store.db.execute("select count(*) from tickets").fetchone()[0] == 1


def _csrf_token(browser):
    return browser.get("/").forms[0]["csrf_token"].value


def test_a_csrf_token_that_is_not_ascii_is_refused_like_a_wrong_one(browser):
    for body in (b"csrf_token=%C3%A9", b"csrf_token=%FF%FE", "csrf_token=é".encode()):
        page = browser.post("/", body, content_type="application/x-www-form-urlencoded", status=403)
        assert "This form has expired" in page


def test_a_multipart_form_without_a_boundary_is_a_400(browser):
    token = _csrf_token(browser)
    for content_type in ("multipart/form-data", "multipart/form-data; boundary="):
        body = f"csrf_token={token}".encode()
        page = browser.request("/", method="POST", body=body, content_type=content_type, status=400)
        assert "The form could not be read" in page
        assert page.headers["X-Frame-Options"] == "DENY"


def test_a_file_sent_in_a_form_is_a_400(browser):
    token = _csrf_token(browser)
    fields = {"csrf_token": token, "queue_id": "lab", "password": "12345678", "name": "x"}
    page = browser.post("/", fields, upload_files=[("title", "hostname", b"box\n")], status=400)
    assert "This form takes no files." in page
    # The same fields without the file make the queue: multipart itself is fine.
    browser.post("/", dict(fields, title="Lab"), content_type="multipart/form-data", status=303)


def _get_raw(app, path, query=""):
    """GET a path of raw bytes, as a server puts them in PATH_INFO (latin-1)."""
    request = Request.blank("/")
    request.environ["PATH_INFO"] = path.decode("latin-1")
    request.environ["QUERY_STRING"] = query
    return request.get_response(app)


def test_an_address_that_is_not_utf8_is_a_400_with_the_security_headers(app, caplog):
    for path, query in (
        (b"/\xff", ""),
        (b"/static/..\xc0\xafapp.ini", ""),
        (b"/cet236/\xff/take", ""),
        (b"/static/style.css", "v=\xff"),
        (b"/", "queue_id=\xff"),
    ):
        response = _get_raw(app, path, query)
        assert response.status_int == 400, (path, query)
        assert "This address is not valid UTF-8." in response.text
        assert response.headers["X-Frame-Options"] == "DENY"
    api = _get_raw(app, b"/api/v1/tickets/\xff")
    assert api.status_int == 400
    assert api.json == {
        "error": {"code": "bad_request", "message": "This address is not valid UTF-8."}
    }
    assert "Traceback" not in caplog.text and not caplog.records


def test_the_error_log_line_survives_an_address_that_is_not_utf8(app, caplog, monkeypatch):
    def broken(req):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.controllers["owner"], "home", broken)
    response = _get_raw(app, b"/", "q=\xff\xfe")
    assert response.status_int == 400  # the query is refused before any controller
    request = Request.blank("/?q=%C3%A9")
    response = request.get_response(app)
    assert response.status_int == 500
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "error answering GET '/?q=" in caplog.text


def test_revoking_a_servicer_id_too_long_for_the_database_is_a_404(browser):
    create_queue(browser)
    token = browser.get("/cet236/manage").forms[0]["csrf_token"].value
    for servicer_id in ("99999999999999999999", "9" * 19, "1" + "0" * 30):
        browser.post(
            f"/cet236/manage/servicers/{servicer_id}/revoke", {"csrf_token": token}, status=404
        )
    # An id that fits but is nobody's changes nothing.
    browser.post("/cet236/manage/servicers/999999999999999999/revoke", {"csrf_token": token})


@pytest.mark.slow
def test_the_issues_curl_attacks_get_4xx_from_a_real_server(server, server_stays_healthy):
    """As the issue's curl commands sent them: through waitress, nothing logged."""
    netloc = urllib.parse.urlsplit(server.url).netloc
    form = "application/x-www-form-urlencoded"
    for method, path, body, content_type, status in (
        ("GET", "/%ff", None, None, 400),
        ("GET", "/static/..%c0%afapp.ini", None, None, 400),
        ("POST", "/", b"csrf_token=%C3%A9", form, 403),
        ("POST", "/api/v1/queues", b"x", "multipart/form-data", 400),
        ("POST", "/", b"x", "multipart/form-data", 400),
        ("DELETE", "/api/v1/queues/lab/servicers/99999999999999999999", None, None, 404),
    ):
        conn = http.client.HTTPConnection(netloc, timeout=10)
        conn.request(method, path, body, {"Content-Type": content_type} if content_type else {})
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == status, (method, path)
        assert response.getheader("X-Frame-Options") == "DENY", (method, path)
