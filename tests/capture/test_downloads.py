"""Gated content: the download library, signed expiring links, the download events."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.test import Client

from patron.activity.models import Event
from patron.capture import downloads, services
from patron.capture.models import DownloadFile
from patron.mail import tokens
from tests.capture.conftest import valid

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_workspace(db):
    from tests.factories import WorkspaceFactory

    return WorkspaceFactory(name="Other", slug="other")


PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def ebook(workspace, owner):
    return downloads.upload_file(
        workspace=workspace, file=io.BytesIO(PDF), name="CRM guide.pdf", uploaded_by=owner
    )


@pytest.fixture
def gated(signup, ebook):
    return services.update_form(form=signup, download_file=ebook, download_days=3)


def submit(form, **extra):
    return services.submit_form(form=form, data=valid(form, **extra))


# --- The library --------------------------------------------------------------------------


def test_upload_keeps_the_file_under_a_random_name_with_its_checked_type(ebook):
    assert ebook.name == "CRM guide.pdf"
    assert ebook.content_type == "application/pdf"
    assert ebook.size == len(PDF)
    assert "guide" not in ebook.file.name  # the stored name says nothing
    with ebook.file.open("rb") as stored:
        assert stored.read() == PDF


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("setup.exe", b"MZ\x90\x00", "cannot be offered for download"),
        ("guide.pdf", b"<html><script>alert(1)</script>", "not really a PDF"),
        ("guide.pdf", b"", "empty"),
        ("notes.txt", b"\xff\xfe\x00bad", "UTF-8"),
        ("no-extension", b"%PDF-1.4", "cannot be offered"),
    ],
)
def test_upload_refuses_what_it_cannot_offer(workspace, name, data, message):
    with pytest.raises(downloads.FileInvalid, match=message):
        downloads.upload_file(workspace=workspace, file=io.BytesIO(data), name=name)
    assert not DownloadFile.objects.for_workspace(workspace).exists()


def test_upload_refuses_files_over_the_size_limit(workspace, settings):
    settings.DOWNLOADS_MAX_BYTES = 1024
    with pytest.raises(downloads.FileInvalid, match="larger than"):
        downloads.upload_file(
            workspace=workspace, file=io.BytesIO(b"%PDF-" + b"x" * 2000), name="big.pdf"
        )


def test_a_file_a_form_delivers_cannot_be_deleted(gated, ebook):
    with pytest.raises(downloads.FileInUse, match="Demo request"):
        downloads.delete_file(file=ebook)
    services.update_form(form=gated, download_file=None)
    downloads.delete_file(file=ebook)
    assert not DownloadFile.objects.for_workspace(ebook.workspace_id).exists()


def test_a_form_refuses_another_workspaces_file(signup, other_workspace):
    foreign = downloads.upload_file(
        workspace=other_workspace, file=io.BytesIO(PDF), name="theirs.pdf"
    )
    with pytest.raises(services.FormInvalid) as caught:
        services.update_form(form=signup, download_file=foreign)
    assert "download_file" in caught.value.errors


@pytest.mark.parametrize("days", [0, 366, "x"])
def test_link_lifetime_is_one_day_to_a_year(signup, days):
    with pytest.raises(services.FormInvalid) as caught:
        services.update_form(form=signup, download_days=days)
    assert "download_days" in caught.value.errors


# --- Links --------------------------------------------------------------------------------


def test_the_thank_you_carries_a_signed_link_that_expires_after_the_forms_days(gated):
    submission = submit(gated)
    thanks = services.thank_you(gated, submission)
    assert thanks["download_url"].startswith("http") and "/d/" in thanks["download_url"]
    assert thanks["download_name"] == "CRM guide.pdf"
    token = thanks["download_url"].rsplit("/", 1)[1]
    grant = downloads.read_token(token)
    assert (grant.file_id, grant.contact_id, grant.form_id) == (
        gated.download_file_id,
        submission.contact_id,
        gated.pk,
    )
    assert abs(grant.expires_at - (time.time() + 3 * 86400)) < 60
    # Just before the end it works; after it, it is expired (and names the form).
    downloads.read_token(token, now=grant.expires_at - 1)
    with pytest.raises(downloads.LinkInvalid) as caught:
        downloads.read_token(token, now=grant.expires_at + 1)
    assert caught.value.expired and caught.value.form_id == gated.pk


def test_a_form_without_a_file_gives_no_link(signup):
    submission = submit(signup)
    assert services.thank_you(signup, submission)["download_url"] == ""


def test_tampered_cut_and_foreign_tokens_are_invalid_not_expired(gated):
    token = downloads.download_token(submit(gated))
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    # A token of another kind with the same values (an unsubscribe link, say) opens nothing.
    grant = downloads.read_token(token)
    foreign = tokens.sign("unsub", *tokens.unsign("download", token))
    longer = tokens.sign(
        "download", grant.workspace_id, grant.file_id, grant.contact_id, grant.form_id,
        grant.expires_at + 10**6, 7,
    )  # fmt: skip
    for bad in (changed, token[:-3], foreign, longer, "", "not-a-token"):
        with pytest.raises(downloads.LinkInvalid) as caught:
            downloads.read_token(bad)
        assert not caught.value.expired


def test_each_download_records_one_event_with_the_file_and_the_form(gated, client: Client):
    submission = submit(gated)
    url = services.thank_you(gated, submission)["download_url"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    for expected in (1, 2):
        response = client.get("/" + path)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == PDF
        assert response["Content-Disposition"].startswith('attachment; filename="crm-guide.pdf"')
        assert response["Content-Type"] == "application/pdf"
        assert response["X-Content-Type-Options"] == "nosniff"
        events = Event.objects.for_workspace(gated.workspace).filter(kind="file.downloaded")
        assert events.count() == expected
    event = events.first()
    assert event.contact_id == submission.contact_id
    assert event.properties == {
        "file_id": gated.download_file_id,
        "file": "CRM guide.pdf",
        "form_id": gated.pk,
        "form": "Demo request",
    }


def test_expired_link_page_says_so_and_offers_the_form_again(gated, client: Client):
    submission = submit(gated)
    token = downloads.download_token(submission, now=time.time() - 10 * 86400)
    response = client.get(f"/d/{token}")
    assert response.status_code == 410
    html = response.content.decode()
    assert "This download link has expired" in html
    assert f'href="/f/{gated.key}/"' in html
    assert not Event.objects.for_workspace(gated.workspace).filter(kind="file.downloaded").exists()


def test_tampered_link_page_says_it_does_not_work(gated, client: Client):
    token = downloads.download_token(submit(gated))
    response = client.get(f"/d/{token[:-2]}xx")
    assert response.status_code == 404
    assert "This download link does not work" in response.content.decode()
    assert not Event.objects.for_workspace(gated.workspace).filter(kind="file.downloaded").exists()


def test_the_link_is_emailed_when_the_form_says_so(gated, django_capture_on_commit_callbacks):
    from patron.mail.models import OutboxMessage

    services.update_form(form=gated, email_download=True)
    with django_capture_on_commit_callbacks(execute=True):
        submission = submit(gated)
    message = OutboxMessage.objects.get()
    assert message.to == ["ann@example.com"]
    assert message.subject == "Your download: CRM guide.pdf"
    assert gated.success_message in message.text_body
    url = next(word for word in message.text_body.split() if "/d/" in word)
    grant = downloads.read_token(url.rsplit("/", 1)[1])
    assert grant.contact_id == submission.contact_id


def test_no_email_goes_to_a_suppressed_address(gated, django_capture_on_commit_callbacks):
    from patron.audience.suppression import suppress_address
    from patron.mail.models import OutboxMessage

    services.update_form(form=gated, email_download=True)
    suppress_address(workspace=gated.workspace, email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        submit(gated)
    assert len(callbacks) == 1  # the email was due, and the gate held it back
    assert not OutboxMessage.objects.exists()


def test_the_api_answer_has_the_download_link(gated, client: Client):
    response = client.post(
        f"/api/v1/forms/{gated.key}/submissions",
        json.dumps(valid(gated)),
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert "/d/" in body["download_url"] and body["download_name"] == "CRM guide.pdf"
    downloads.read_token(body["download_url"].rsplit("/", 1)[1])


def test_the_hosted_page_shows_the_download_button(gated, client: Client):
    response = client.post(f"/f/{gated.key}/", valid(gated), follow=True)
    assert response.redirect_chain[0][1] == 302
    html = response.content.decode()
    assert 'id="download-link"' in html and "CRM guide.pdf" in html
    assert "The link works for 3 days." in html


def test_a_redirect_hides_the_link_so_it_must_then_be_emailed(
    gated, django_capture_on_commit_callbacks
):
    with pytest.raises(services.FormInvalid) as caught:
        services.update_form(form=gated, redirect_url="https://www.acme.example/thanks")
    assert "redirect_url" in caught.value.errors
    gated.refresh_from_db()
    assert gated.redirect_url == ""
    services.update_form(
        form=gated, redirect_url="https://www.acme.example/thanks", email_download=True
    )
    from patron.mail.models import OutboxMessage

    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(f"/f/{gated.key}/", valid(gated))
    assert response.status_code == 302
    assert "/d/" in OutboxMessage.objects.get().text_body


def test_the_library_page_uploads_refuses_and_guards_files_in_use(logged_in, workspace, gated):
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile("tool.exe", b"MZ\x90\x00", content_type="application/pdf")
    response = logged_in.post("/downloads/", {"file": bad}, follow=True)
    assert "cannot be offered for download" in response.content.decode()
    assert DownloadFile.objects.for_workspace(workspace).count() == 1
    good = SimpleUploadedFile("Price list.pdf", PDF, content_type="application/octet-stream")
    response = logged_in.post("/downloads/", {"file": good}, follow=True)
    html = response.content.decode()
    assert "“Price list.pdf” uploaded." in html and 'data-file="Price list.pdf"' in html
    uploaded = DownloadFile.objects.for_workspace(workspace).get(name="Price list.pdf")
    assert uploaded.content_type == "application/pdf"  # from the content, not the browser
    response = logged_in.post(f"/downloads/{gated.download_file_id}/delete/", follow=True)
    assert "Forms still deliver this file: Demo request" in response.content.decode()
    response = logged_in.post(f"/downloads/{uploaded.pk}/delete/", follow=True)
    assert "“Price list.pdf” deleted." in response.content.decode()
    assert DownloadFile.objects.for_workspace(workspace).count() == 1
