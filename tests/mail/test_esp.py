"""Sending through ESP APIs: each provider's HTTP answer (mocked at the HTTP boundary with
``responses``; Amazon SES with botocore's Stubber) becomes SENT, RETRY or FAILED."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from botocore.stub import Stubber

from patron.mail import mime
from patron.mail.esp import EspTransport
from patron.mail.transports import Outcome, Outgoing

SENDGRID = "https://api.sendgrid.com/v3/mail/send"
MAILGUN_EU = "https://api.eu.mailgun.net/v3/mg.acme.example/messages"
POSTMARK = "https://api.postmarkapp.com/email"


def outgoing(to: str = "ada@example.net", key: str = "41") -> Outgoing:
    data = mime.build_message(
        from_name="Acme News",
        from_email="news@acme.example",
        to_email=to,
        subject="Spring sale — 20% off",
        html="<p>Hello <b>Ada</b></p>",
        text="Hello Ada",
        message_id="<d41@mail.acme.example>",
        reply_to="help@acme.example",
        headers=[("List-Unsubscribe", "<https://acme.example/u/x/>"), ("X-Patron-Delivery", "41")],
    )
    return Outgoing(
        key=key,
        envelope_from="bounce+abc@bounces.acme.example",
        recipients=[to],
        data=data,
        workspace_id=1,
    )


# --- SendGrid ---------------------------------------------------------------------------------


@responses.activate
def test_sendgrid_accepts_and_gets_the_parsed_message():
    responses.add(responses.POST, SENDGRID, status=202, headers={"X-Message-Id": "sg-1"})
    transport = EspTransport("sendgrid", secret="SG.key")
    (result,) = transport.send([outgoing()])
    assert result.key == "41"
    assert result.outcome == Outcome.SENT
    assert "SendGrid accepted the message" in result.reply
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer SG.key"
    body = json.loads(request.body)
    assert body["subject"] == "Spring sale — 20% off"
    assert body["from"] == {"email": "news@acme.example", "name": "Acme News"}
    reply_to = body.get("reply_to_list") or [body.get("reply_to")]
    assert reply_to == [{"email": "help@acme.example"}]
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.net"}]
    contents = {part["type"]: part["value"] for part in body["content"]}
    assert contents["text/plain"].strip() == "Hello Ada"
    assert "<b>Ada</b>" in contents["text/html"]
    assert body["headers"]["List-Unsubscribe"] == "<https://acme.example/u/x/>"
    assert body["headers"]["Message-ID"] == "<d41@mail.acme.example>"
    transport.close()


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (429, {"errors": [{"message": "too many requests"}]}, Outcome.RETRY),
        (500, {"errors": [{"message": "internal error"}]}, Outcome.RETRY),
        (503, {"errors": [{"message": "unavailable"}]}, Outcome.RETRY),
        (
            401,
            {"errors": [{"message": "The provided authorization grant is invalid"}]},
            Outcome.RETRY,
        ),
        (
            400,
            {
                "errors": [
                    {
                        "message": "Does not contain a valid address.",
                        "field": "personalizations.0.to.0.email",
                    }
                ]
            },
            Outcome.FAILED,
        ),
    ],
)
@responses.activate
def test_sendgrid_answers_map_to_outcomes_with_the_reply_kept(status, body, outcome):
    responses.add(responses.POST, SENDGRID, status=status, json=body)
    (result,) = EspTransport("sendgrid", secret="SG.key").send([outgoing()])
    assert result.outcome == outcome
    assert result.code == status
    assert body["errors"][0]["message"] in result.reply
    assert result.reply.startswith(f"SendGrid answered {status}")


@responses.activate
def test_network_trouble_is_a_retry():
    responses.add(responses.POST, SENDGRID, body=requests.ConnectionError("connection refused"))
    (result,) = EspTransport("sendgrid", secret="SG.key").send([outgoing()])
    assert result.outcome == Outcome.RETRY
    assert result.code is None
    assert "could not be reached" in result.reply and "connection refused" in result.reply


@responses.activate
def test_one_result_per_message_in_order():
    responses.add(responses.POST, SENDGRID, status=202)
    responses.add(responses.POST, SENDGRID, status=400, json={"errors": [{"message": "bad"}]})
    responses.add(responses.POST, SENDGRID, status=202)
    results = EspTransport("sendgrid", secret="SG.key").send(
        [outgoing(key="a"), outgoing(key="b"), outgoing(key="c")]
    )
    assert [(r.key, r.outcome) for r in results] == [
        ("a", Outcome.SENT),
        ("b", Outcome.FAILED),
        ("c", Outcome.SENT),
    ]


# --- Mailgun ----------------------------------------------------------------------------------


@responses.activate
def test_mailgun_eu_region_and_domain():
    responses.add(
        responses.POST,
        MAILGUN_EU,
        status=200,
        json={"id": "<mg-1@mg.acme.example>", "message": "Queued. Thank you."},
    )
    transport = EspTransport("mailgun", secret="key-mg", region="eu", domain="mg.acme.example")
    (result,) = transport.send([outgoing()])
    assert result.outcome == Outcome.SENT
    assert "<mg-1@mg.acme.example>" in result.reply
    request = responses.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    raw = request.body if isinstance(request.body, str) else request.body.decode()
    form = dict(parse_qsl(raw))
    assert form["subject"] == "Spring sale — 20% off"
    assert form["to"] == "ada@example.net"
    assert form["h:List-Unsubscribe"] == "<https://acme.example/u/x/>"
    assert form["h:Reply-To"] == "help@acme.example"


@pytest.mark.parametrize(
    ("status", "outcome"), [(400, Outcome.FAILED), (401, Outcome.RETRY), (429, Outcome.RETRY)]
)
@responses.activate
def test_mailgun_errors(status, outcome):
    responses.add(
        responses.POST,
        MAILGUN_EU,
        status=status,
        json={"message": "to parameter is not a valid address"},
    )
    transport = EspTransport("mailgun", secret="key-mg", region="eu", domain="mg.acme.example")
    (result,) = transport.send([outgoing()])
    assert (result.outcome, result.code) == (outcome, status)
    assert "to parameter is not a valid address" in result.reply


# --- Postmark ---------------------------------------------------------------------------------


@responses.activate
def test_postmark_accepts():
    responses.add(
        responses.POST,
        POSTMARK,
        status=200,
        json={
            "To": "ada@example.net",
            "SubmittedAt": "2026-12-03T12:00:00Z",
            "MessageID": "pm-1",
            "ErrorCode": 0,
            "Message": "OK",
        },
    )
    (result,) = EspTransport("postmark", secret="token").send([outgoing()])
    assert result.outcome == Outcome.SENT
    assert "pm-1" in result.reply
    request = responses.calls[0].request
    assert request.headers["X-Postmark-Server-Token"] == "token"
    body = json.loads(request.body)
    assert body["Subject"] == "Spring sale — 20% off"
    assert {"Name": "List-Unsubscribe", "Value": "<https://acme.example/u/x/>"} in body["Headers"]


@responses.activate
def test_postmark_inactive_recipient_is_failed():
    responses.add(
        responses.POST,
        POSTMARK,
        status=422,
        json={
            "ErrorCode": 406,
            "Message": "You tried to send to recipient(s) that have been marked as inactive. "
            "Found inactive addresses: ada@example.net. Inactive recipients are ones that "
            "have generated a hard bounce or a spam complaint.",
        },
    )
    (result,) = EspTransport("postmark", secret="token").send([outgoing()])
    assert result.outcome == Outcome.FAILED
    assert "marked as inactive" in result.reply


@responses.activate
def test_postmark_server_error_is_a_retry():
    responses.add(responses.POST, POSTMARK, status=500, body="Internal Server Error")
    (result,) = EspTransport("postmark", secret="token").send([outgoing()])
    assert (result.outcome, result.code) == (Outcome.RETRY, 500)
    assert "Internal Server Error" in result.reply


# --- Amazon SES (boto3: stubbed at botocore) --------------------------------------------------


def ses_transport():
    transport = EspTransport(
        "amazon_ses",
        secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        region="eu-west-1",
    )
    transport._open()
    stubber = Stubber(transport.backend.client)
    stubber.activate()
    return transport, stubber


def test_ses_sends_the_bytes_unchanged():
    transport, stubber = ses_transport()
    message = outgoing()
    stubber.add_response(
        "send_email",
        {"MessageId": "ses-1"},
        expected_params={
            "Content": {"Raw": {"Data": message.data}},
            "Destination": {"ToAddresses": ["ada@example.net"]},
        },
    )
    (result,) = transport.send([message])
    stubber.assert_no_pending_responses()
    assert result.outcome == Outcome.SENT
    assert "ses-1" in result.reply
    assert transport.backend.client.meta.region_name == "eu-west-1"
    transport.close()


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [
        ("Throttling", 400, Outcome.RETRY),
        ("TooManyRequestsException", 429, Outcome.RETRY),
        ("SendingPausedException", 400, Outcome.RETRY),
        ("InternalFailure", 500, Outcome.RETRY),
        ("MessageRejected", 400, Outcome.FAILED),
        ("BadRequestException", 400, Outcome.FAILED),
    ],
)
def test_ses_errors_map_to_outcomes(code, status, outcome):
    transport, stubber = ses_transport()
    stubber.add_client_error(
        "send_email",
        service_error_code=code,
        service_message=f"{code} happened",
        http_status_code=status,
    )
    (result,) = transport.send([outgoing()])
    assert (result.outcome, result.code) == (outcome, status)
    assert result.reply == f"Amazon SES: {code}: {code} happened"
