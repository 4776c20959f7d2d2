"""Marketing → Forms: building, publishing, submissions and their export; the API."""

from __future__ import annotations

import csv
import io

import pytest

from patron.capture import services
from patron.capture.models import Form
from patron.core.roles import Role
from tests.capture.conftest import valid
from tests.conftest import member
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def builder_post(**overrides):
    data = {
        "name": "Newsletter sign-up",
        "title": "Join us",
        "submit_label": "Subscribe",
        "consent_text": "",
        "consent_required": "on",
        "tags": "newsletter, web",
        "success_message": "Welcome aboard",
        "redirect_url": "",
        "notify_user": "",
        "allowed_origins": "https://www.acme.example",
        "fields-TOTAL_FORMS": "3",
        "fields-INITIAL_FORMS": "0",
        "fields-0-label": "Email",
        "fields-0-key": "email",
        "fields-0-maps_to": "contact.email",
        "fields-0-required": "on",
        "fields-0-ORDER": "1",
        "fields-1-label": "Campaign",
        "fields-1-key": "",
        "fields-1-maps_to": "",
        "fields-1-hidden": "on",
        "fields-1-source": "utm_campaign",
        "fields-1-ORDER": "3",
        "fields-2-label": "First name",
        "fields-2-key": "first_name",
        "fields-2-maps_to": "contact.first_name",
        "fields-2-ORDER": "2",
    }
    data.update(overrides)
    return data


def test_build_a_form(logged_in, workspace):
    response = logged_in.post("/forms/new/", builder_post())
    form = Form.objects.for_workspace(workspace).get()
    assert response.status_code == 302 and response["Location"] == f"/forms/{form.pk}/"
    assert [f["key"] for f in form.fields] == ["email", "first_name", "campaign"]
    assert form.fields[2]["hidden"] and form.fields[2]["source"] == "utm_campaign"
    assert form.tags == ["newsletter", "web"]
    assert form.allowed_origins == ["https://www.acme.example"]
    # Removing a field on the edit page.
    page = logged_in.get(f"/forms/{form.pk}/")
    assert page.status_code == 200 and "Join us" in page.content.decode()
    data = builder_post(**{"fields-2-DELETE": "on", "fields-INITIAL_FORMS": "3"})
    logged_in.post(f"/forms/{form.pk}/", data)
    form.refresh_from_db()
    assert [f["key"] for f in form.fields] == ["email", "campaign"]


def test_builder_errors_are_shown(logged_in, workspace, newsletter):
    data = builder_post(**{"fields-0-maps_to": "contact.first_name", "lists": [newsletter.pk]})
    response = logged_in.post("/forms/new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Two fields go to the same place" in html
    assert not Form.objects.for_workspace(workspace).exists()
    response = logged_in.post("/forms/new/", builder_post(lists=[newsletter.pk]))
    assert "Say what people agree to" in response.content.decode()


def test_publish_page_shows_the_three_ways(logged_in, signup):
    html = logged_in.get(f"/forms/{signup.pk}/publish/").content.decode()
    assert f"/f/{signup.key}/" in html
    assert f"data-patron-form=&quot;{signup.key}&quot;" in html
    assert "patron/forms.js" in html
    assert "action=&quot;http://" in html and "name=&quot;website&quot;" in html


def test_submissions_list_and_csv_export(logged_in, workspace, signup):
    services.submit_form(form=signup, data=valid(signup, first_name="=HYPERLINK(1)"))
    html = logged_in.get(f"/forms/{signup.pk}/submissions/").content.decode()
    assert "ann@example.com" in html and "Lee Ltd" in html
    response = logged_in.get(f"/forms/{signup.pk}/submissions/export/")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["submitted_at", "contact_id", "contact_email", "email"]
    assert rows[1][2] == "ann@example.com"
    assert rows[1][4] == "'=HYPERLINK(1)"  # neutralised as every export does


def test_sales_cannot_open_forms(client, workspace, signup):
    user = member(workspace, Role.SALES)
    client.login(email=user.email, password=PASSWORD)
    assert client.get("/forms/").status_code == 403
    assert client.get(f"/forms/{signup.pk}/submissions/").status_code == 403


def test_delete(logged_in, workspace, signup):
    logged_in.post(f"/forms/{signup.pk}/delete/")
    assert not Form.objects.for_workspace(workspace).exists()


def test_api_reads_forms_and_submissions(api, workspace, signup):
    services.submit_form(form=signup, data=valid(signup))
    listing = api.get("/api/v1/forms").json()
    assert [item["name"] for item in listing["items"]] == ["Demo request"]
    one = api.get(f"/api/v1/forms/{signup.pk}").json()
    assert one["key"] == signup.key and one["hosted_url"].endswith(f"/f/{signup.key}/")
    assert one["fields"][0]["maps_to"] == "contact.email"
    subs = api.get(f"/api/v1/forms/{signup.pk}/submissions").json()
    assert subs["items"][0]["values"]["email"] == "ann@example.com"
