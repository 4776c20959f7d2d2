"""Sending through an email service provider's API (django-anymail's backends).

``EspTransport`` implements the ``Transport`` protocol of ``patron.mail.transports``
for Amazon SES, SendGrid, Mailgun and Postmark. It is handed finished messages
(the MIME bytes of ``mime.build_message``, DKIM-signed when a key applies):

- Amazon SES takes the bytes as they are (SendEmail with raw content), so our
  headers and DKIM signature arrive untouched.
- SendGrid, Mailgun and Postmark take JSON or form fields, not MIME: the message
  is parsed once and handed over as subject, from, reply-to, text, HTML and the
  extra headers (Message-ID, List-Unsubscribe, ...). The provider signs with its
  own DKIM key for the domain, so our signature is not carried.

The envelope sender (VERP) is not passed on: providers use their own return path
and report bounces through their event webhooks.

Each provider's answer becomes a ``Result``:

- SENT: accepted (queued) by the provider, with its message id in ``reply``;
- RETRY: throttling (429, SES Throttling/TooManyRequests/LimitExceeded), the
  provider's own failures (5xx), network trouble, and refused credentials
  (401/403: fixing the key must not have cost the mail);
- FAILED: the provider refused this message or recipient (other 4xx: invalid
  address, inactive recipient, validation error).
"""

from __future__ import annotations

import email
import email.policy
import warnings
from collections.abc import Iterator, Sequence
from email.message import EmailMessage as ParsedMessage
from email.utils import getaddresses
from typing import Any

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailNotSupportedWarning,
    AnymailRecipientsRefused,
)
from anymail.message import AnymailMessage
from django.utils.module_loading import import_string

from patron.mail.transports import Outcome, Outgoing, Result

PROVIDERS = ("amazon_ses", "sendgrid", "mailgun", "postmark")
PROVIDER_NAMES = {
    "amazon_ses": "Amazon SES",
    "sendgrid": "SendGrid",
    "mailgun": "Mailgun",
    "postmark": "Postmark",
}
_BACKENDS = {
    "amazon_ses": "anymail.backends.amazon_ses.EmailBackend",
    "sendgrid": "anymail.backends.sendgrid.EmailBackend",
    "mailgun": "anymail.backends.mailgun.EmailBackend",
    "postmark": "anymail.backends.postmark.EmailBackend",
}
MAILGUN_API_URLS = {"us": "https://api.mailgun.net/v3/", "eu": "https://api.eu.mailgun.net/v3/"}
# SES error codes that mean "not now", not "never".
SES_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "SendingPausedException",
        "AccountSuspendedException",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
# Headers the provider writes itself from the fields we hand over.
_STRUCTURAL = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "reply-to",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
        "sender",
        "return-path",
    }
)
REPLY_LIMIT = 1000
ACCEPTED = frozenset({"sent", "queued", "scheduled"})


class _RawMime:
    """What anymail's SES payload asks of ``message.message()``: the finished bytes.

    No part walks out (nothing to re-encode: our messages are 7-bit clean) and the
    bytes go out exactly as built, DKIM signature included.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data

    def walk(self) -> Iterator[Any]:
        return iter(())

    def as_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        return self._data


class RawAnymailMessage(AnymailMessage):
    """An AnymailMessage whose MIME form is given bytes (for providers that take MIME)."""

    def __init__(self, data: bytes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._raw = data

    def message(self, *args: Any, **kwargs: Any) -> Any:
        return _RawMime(self._raw)


def _bodies(parsed: ParsedMessage) -> tuple[str, str]:
    text = html = ""
    for part in parsed.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain" and not text:
            text = str(part.get_content())
        elif content_type == "text/html" and not html:
            html = str(part.get_content())
    return text, html


def _parsed_message(outgoing: Outgoing) -> AnymailMessage:
    """The message as the fields a JSON/form API takes: parsed once, here."""
    parsed = email.message_from_bytes(outgoing.data, policy=email.policy.default)
    assert isinstance(parsed, ParsedMessage)
    text, html = _bodies(parsed)
    reply_to = [address for _name, address in getaddresses([str(parsed.get("Reply-To", ""))])]
    headers = {
        name: str(value)
        for name, value in parsed.items()
        if name.lower() not in _STRUCTURAL and not name.lower().startswith("x-patron-workspace")
    }
    message = AnymailMessage(
        subject=str(parsed.get("Subject", "")),
        body=text,
        from_email=str(parsed.get("From", "")),
        to=list(outgoing.recipients),
        reply_to=[address for address in reply_to if address],
        headers=headers,
    )
    # The provider uses its own return path, so the VERP token travels as metadata,
    # which the provider's event webhooks send back (see ``esp_webhooks``).
    local, at, _domain = outgoing.envelope_from.rpartition("@")
    if at and local.lower().startswith("bounce+"):
        message.metadata = {"patron": local.partition("+")[2]}
    if html:
        message.attach_alternative(html, "text/html")
    return message


def _raw_message(outgoing: Outgoing) -> AnymailMessage:
    parsed = email.message_from_bytes(outgoing.data, policy=email.policy.default)
    return RawAnymailMessage(
        outgoing.data, from_email=str(parsed.get("From", "")), to=list(outgoing.recipients)
    )


def _answer_text(response: Any) -> str:
    """The body of a provider's HTTP answer (requests), or "" when there is none."""
    return str(getattr(response, "text", "") or "")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text[:REPLY_LIMIT]


def _api_failure(exc: AnymailError, provider: str) -> tuple[Outcome, int | None, str]:
    """How an error answer of the provider's API maps to an outcome, its code and text."""
    cause = exc.__cause__
    name = PROVIDER_NAMES[provider]
    # Amazon SES (boto3): ClientError carries the error code and the HTTP status.
    response = getattr(cause, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response.get("Error", {})
        code = str(error.get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        reply = _clip(f"{name}: {code}: {error.get('Message', '')}")
        transient = code in SES_TRANSIENT_CODES or (status or 0) >= 500 or status in {401, 403}
        return (Outcome.RETRY if transient else Outcome.FAILED), status, reply
    if cause is not None and response is None and not isinstance(cause, requests.HTTPError):
        # The request never got an answer: connection refused, timeout, DNS, TLS.
        return Outcome.RETRY, None, _clip(f"{name} could not be reached: {cause}")
    status = exc.status_code
    body = ""
    http_response = exc.response
    if http_response is not None and hasattr(http_response, "text"):
        body = http_response.text
    reply = _clip(f"{name} answered {status}: {body}" if status else f"{name}: {exc}")
    if status is None or status == 429 or status >= 500 or status in {401, 403}:
        return Outcome.RETRY, status, reply
    return Outcome.FAILED, status, reply


class EspTransport:
    """Sends through one provider's API with the workspace's credentials.

    ``backend`` is the anymail backend (opened on first use; ``close()`` closes it).
    """

    def __init__(
        self,
        provider: str,
        *,
        secret: str,
        region: str = "",
        access_key_id: str = "",
        domain: str = "",
    ) -> None:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}")
        self.provider = provider
        options: dict[str, Any]
        if provider == "amazon_ses":
            options = {
                "session_params": {
                    "aws_access_key_id": access_key_id,
                    "aws_secret_access_key": secret,
                    "region_name": region,
                },
                "client_params": {"config": {"retries": {"max_attempts": 1}}},
            }
        elif provider == "sendgrid":
            options = {"api_key": secret}
        elif provider == "mailgun":
            options = {
                "api_key": secret,
                "sender_domain": domain,
                "api_url": MAILGUN_API_URLS.get(region or "us", MAILGUN_API_URLS["us"]),
            }
        else:
            options = {"server_token": secret}
        with warnings.catch_warnings():
            # anymail warns that SendGrid is no longer officially supported by its
            # maintainers; the backend works, and the warning would repeat on every batch.
            warnings.simplefilter("ignore", AnymailNotSupportedWarning)
            self.backend = import_string(_BACKENDS[provider])(fail_silently=False, **options)
        self._opened = False

    def _open(self) -> None:
        if not self._opened:
            self.backend.open()
            self._opened = True

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        """One Result per message, in order; never raises for one message's trouble."""
        self._open()
        return [self._send_one(outgoing) for outgoing in messages]

    def _send_one(self, outgoing: Outgoing) -> Result:
        name = PROVIDER_NAMES[self.provider]
        try:
            message = (
                _raw_message(outgoing)
                if self.provider == "amazon_ses"
                else _parsed_message(outgoing)
            )
            self.backend.send_messages([message])
        except AnymailRecipientsRefused as exc:
            answer = _answer_text(message.anymail_status.esp_response) or str(exc)
            return Result(outgoing.key, Outcome.FAILED, None, _clip(f"{name} refused: {answer}"))
        except AnymailAPIError as exc:
            outcome, code, reply = _api_failure(exc, self.provider)
            return Result(outgoing.key, outcome, code, reply)
        except (requests.RequestException, OSError) as exc:
            return Result(
                outgoing.key, Outcome.RETRY, None, _clip(f"{name} could not be reached: {exc}")
            )
        except AnymailError as exc:  # e.g. a feature the provider does not take
            return Result(outgoing.key, Outcome.FAILED, None, _clip(f"{name}: {exc}"))
        status = message.anymail_status
        statuses = set(status.status or ())
        if statuses and not statuses & ACCEPTED:
            return Result(
                outgoing.key,
                Outcome.FAILED,
                None,
                _clip(
                    f"{name} did not accept the message ({', '.join(sorted(statuses))}): "
                    f"{_answer_text(status.esp_response)}"
                ),
            )
        return Result(
            outgoing.key,
            Outcome.SENT,
            200,
            _clip(f"{name} accepted the message (id {status.message_id})"),
        )

    def close(self) -> None:
        if self._opened:
            self.backend.close()
            self._opened = False
