"""Webhook addresses: only public servers, no redirects onwards."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from patron.core.outbound import (
    OutboundRefused,
    check_public_address,
    names_private_host,
    open_public_url,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
    ],
)
def test_local_and_private_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert names_private_host(url)
    with pytest.raises(OutboundRefused, match=r"private or reserved|could not be found"):
        check_public_address(url)


def test_a_name_that_resolves_to_a_private_address_is_refused_at_call_time(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    # The name looks public; its DNS answer (the outside world, stood in for here) is not.
    answers = {"hooks.example.com": "10.0.0.7", "api.example.com": "93.184.215.14"}

    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert not names_private_host("https://hooks.example.com/hook")
    with pytest.raises(OutboundRefused, match=r"resolves to 10\.0\.0\.7"):
        check_public_address("https://hooks.example.com/hook")
    check_public_address("https://api.example.com/hook")


def test_public_literals_and_other_schemes(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert not names_private_host("https://93.184.215.14/hook")
    check_public_address("https://93.184.215.14/hook")  # no DNS needed for a literal
    with pytest.raises(OutboundRefused, match="Only http and https"):
        check_public_address("ftp://93.184.215.14/")
    with pytest.raises(OutboundRefused, match="Only http and https"):
        check_public_address("file:///etc/passwd")


class _Redirecting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def redirecting_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_redirects_are_not_followed(redirecting_server, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the test server itself is on loopback
    request = urllib.request.Request(redirecting_server, data=b"{}", method="POST")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as error:
        open_public_url(request, timeout=5)
    assert error.value.code == 302


def test_allowing_private_addresses_lifts_the_rule(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert not names_private_host("http://127.0.0.1/hook")
    check_public_address("http://10.0.0.1/hook")
