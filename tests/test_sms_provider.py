"""The SMS provider backend against an HTTP server on loopback standing in for the provider (the one
thing that cannot exist here): real HTTP, real sorting of failures into retry or give up."""

import base64
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured

from ldnclinic import messaging


class Provider(BaseHTTPRequestHandler):
    status = 201
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        Provider.received.append({"path": self.path, "auth": self.headers["Authorization"], **form})
        self.send_response(Provider.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"sid": "SM123"}' if Provider.status < 400 else b'{"code": 21211}')

    def log_message(self, *args):
        pass


@pytest.fixture
def provider(settings):
    server = HTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Provider.received, Provider.status = [], 201
    settings.SMS_BACKEND = "ldnclinic.messaging.TwilioSMSBackend"
    settings.SMS_TWILIO_ACCOUNT_SID, settings.SMS_TWILIO_AUTH_TOKEN = "AC42", "secret"
    settings.SMS_FROM_NUMBER = "+15550001111"
    settings.SMS_TWILIO_BASE_URL = f"http://127.0.0.1:{server.server_port}"
    yield Provider
    server.shutdown()


def outgoing(key: str) -> messaging.Outgoing:
    return messaging.Outgoing(to="+447700900123", subject="", body="Tonight: 1.5 mg", key=key)


def test_provider_receives_the_text_with_credentials(provider):
    messaging.send_sms(outgoing("k1"))
    (sent,) = provider.received
    assert sent["path"] == "/2010-04-01/Accounts/AC42/Messages.json"
    assert (sent["To"], sent["From"], sent["Body"]) == ("+447700900123", "+15550001111", "Tonight: 1.5 mg")
    assert sent["auth"] == "Basic " + base64.b64encode(b"AC42:secret").decode()


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, messaging.PermanentSendError), (429, messaging.TransientSendError), (503, messaging.TransientSendError)],
)
def test_provider_errors_are_sorted_for_retry(provider, status, error):
    provider.status = status
    with pytest.raises(error):
        messaging.send_sms(outgoing("k2"))


def test_unreachable_provider_is_transient(settings, provider):
    settings.SMS_TWILIO_BASE_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    with pytest.raises(messaging.TransientSendError):
        messaging.send_sms(outgoing("k3"))


def test_provider_is_off_unless_configured(settings):
    settings.SMS_BACKEND = "ldnclinic.messaging.TwilioSMSBackend"
    settings.SMS_TWILIO_ACCOUNT_SID = ""
    with pytest.raises(ImproperlyConfigured, match="SMS_TWILIO_ACCOUNT_SID"):
        messaging.sms_backend()
