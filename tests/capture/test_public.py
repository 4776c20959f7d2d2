"""The public endpoints: hosted page, embed description, JSON submissions."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from patron.capture import services
from patron.capture.models import FormSubmission
from patron.crm.models import Contact
from tests.capture.conftest import valid

pytestmark = pytest.mark.django_db


def api_url(form):
    return f"/api/v1/forms/{form.key}/submissions"


def post_json(client, form, data, **headers):
    return client.post(
        api_url(form), json.dumps(data), content_type="application/json", headers=headers
    )


def nothing_saved(workspace):
    return not (
        Contact.objects.for_workspace(workspace).exists()
        or FormSubmission.objects.for_workspace(workspace).exists()
    )


def test_hosted_page_shows_the_form_with_hidden_values_from_the_url(client: Client, signup):
    response = client.get(f"/f/{signup.key}/?utm_source=newsletter")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="utm_source" value="newsletter"' in html
    assert 'name="website"' in html and 'name="_ts"' in html
    assert "Yes, send me the Acme newsletter." in html
    assert response.headers["X-Robots-Tag"] == "noindex"


def test_hosted_post_saves_and_thanks(client: Client, workspace, signup):
    response = client.post(f"/f/{signup.key}/", valid(signup))
    # Sent, then shown the thank-you at an address of its own: a reload sends nothing.
    assert response.status_code == 302 and response["Location"].startswith(
        f"/f/{signup.key}/?sent="
    )
    thanks = client.get(response["Location"])
    assert "Thank you! We received your message." in thanks.content.decode()
    assert client.get(response["Location"]).status_code == 200
    assert Contact.objects.for_workspace(workspace).get().email == "ann@example.com"
    assert FormSubmission.objects.for_workspace(workspace).count() == 1
    # A forged or foreign mark shows the form again.
    token = response["Location"].split("sent=")[1]
    for bad in (token[:-2] + "xx", "1", ""):
        page = client.get(f"/f/{signup.key}/?sent={bad}").content.decode()
        assert "Thank you!" not in page and 'name="email"' in page


def test_hosted_post_redirects_when_asked(client: Client, signup):
    services.update_form(form=signup, redirect_url="https://www.acme.example/thanks")
    response = client.post(f"/f/{signup.key}/", valid(signup))
    assert response.status_code == 302
    assert response["Location"] == "https://www.acme.example/thanks"


def test_hosted_post_with_errors_keeps_values_and_shows_messages(client, workspace, signup):
    response = client.post(f"/f/{signup.key}/", valid(signup, email="ann@", first_name="Ann"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a valid email address, like name@example.com." in html
    assert 'value="Ann"' in html and 'value="ann@"' in html
    assert nothing_saved(workspace)


def test_plain_html_without_a_token_gets_the_page_back_to_send_again(client, workspace, signup):
    data = valid(signup)
    del data["_ts"]
    response = client.post(
        f"/f/{signup.key}/", data, headers={"Origin": "https://www.acme.example"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please check your details and send the form again." in html
    assert 'value="Lee Ltd"' in html
    assert nothing_saved(workspace)


def test_foreign_origin_is_refused_on_the_hosted_page(client, workspace, signup):
    response = client.post(
        f"/f/{signup.key}/", valid(signup), headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "may not be sent from https://evil.example" in response.content.decode()
    assert nothing_saved(workspace)


def test_unknown_form_is_404(client):
    assert client.get("/f/nope-nope/").status_code == 404
    assert client.post("/api/v1/forms/nope-nope/submissions", {}).status_code == 404


def test_embed_description_answers_cors_only_to_allowed_sites(client, signup):
    response = client.get(
        f"/f/{signup.key}/embed.json", headers={"Origin": "https://www.acme.example"}
    )
    body = response.json()
    assert response["Access-Control-Allow-Origin"] == "https://www.acme.example"
    assert [field["key"] for field in body["fields"]][:2] == ["email", "first_name"]
    assert body["fields"][0]["type"] == "email"
    assert body["action"].endswith(api_url(signup))
    services.check_guard(form=signup, data={"_ts": body["token"]}, ip_address="192.0.2.1")
    foreign = client.get(f"/f/{signup.key}/embed.json", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign


def test_api_submission_json(client, workspace, signup):
    response = post_json(
        client,
        signup,
        {**valid(signup), "_page": "https://www.acme.example/pricing", "_visitor": "abc"},
        Origin="https://www.acme.example",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    submission = FormSubmission.objects.for_workspace(workspace).get()
    assert body == {
        "id": submission.pk,
        "contact_id": submission.contact_id,
        "message": "Thank you! We received your message.",
        "redirect_url": "",
        "download_url": "",
        "download_name": "",
    }
    assert response["Access-Control-Allow-Origin"] == "https://www.acme.example"
    assert submission.page_url == "https://www.acme.example/pricing"
    assert submission.visitor_id == "abc"


def test_api_preflight(client, signup):
    response = client.options(api_url(signup), headers={"Origin": "https://www.acme.example"})
    assert response.status_code == 204
    assert response["Access-Control-Allow-Methods"] == "POST"
    assert response["Access-Control-Allow-Headers"] == "Content-Type"
    foreign = client.options(api_url(signup), headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign


@pytest.mark.parametrize(
    ("changes", "status", "code", "field", "message"),
    [
        ({"email": None}, 422, "invalid", "email", "Email is required."),
        ({"email": "not-an-email"}, 422, "invalid", "email", "Enter a valid email address"),
        ({"website": "http://spam.example"}, 400, "honeypot", None, "meant to stay empty"),
        ({"_ts": ""}, 400, "token", None, "not loaded from its page"),
    ],
)
def test_api_refusals(client, workspace, signup, changes, status, code, field, message):
    data = {key: value for key, value in {**valid(signup), **changes}.items() if value is not None}
    response = post_json(client, signup, data)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    if field:
        assert message in error["fields"][field][0]
    else:
        assert message in error["message"]
    assert nothing_saved(workspace)


def test_api_too_fast(client, workspace, signup, settings):
    settings.FORMS_MIN_FILL_SECONDS = 3
    response = post_json(client, signup, valid(signup))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_fast"
    assert nothing_saved(workspace)


def test_api_oversized_payload(client, workspace, signup, settings):
    settings.FORMS_MAX_BODY_BYTES = 1000
    response = post_json(client, signup, valid(signup, first_name="A" * 2000))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert nothing_saved(workspace)


def test_api_foreign_origin(client, workspace, signup):
    response = post_json(client, signup, valid(signup), Origin="https://evil.example")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin"
    assert nothing_saved(workspace)


def test_api_rate_limit(client, workspace, signup, settings):
    settings.FORMS_RATE_LIMIT = 2
    for n in range(2):
        assert (
            post_json(client, signup, valid(signup, email=f"p{n}@example.com")).status_code == 201
        )
    response = post_json(client, signup, valid(signup, email="p3@example.com"))
    assert response.status_code == 429
    assert "Too many forms" in response.json()["error"]["message"]
    assert Contact.objects.for_workspace(workspace).count() == 2


def test_api_not_json(client, signup):
    response = client.post(api_url(signup), "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
