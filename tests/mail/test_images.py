"""The image library: uploads checked by content, dimensions read, public address for mail,
delete; the pages and the builder's picker."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from patron.mail import images
from patron.mail.models import MailImage
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def picture(kind="PNG", size=(40, 30), color="teal") -> bytes:
    data = io.BytesIO()
    Image.new("RGB", size, color).save(data, kind)
    return data.getvalue()


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_upload_reads_type_and_dimensions_from_the_content(workspace, owner, kind, content_type):
    # The name says .txt: the content decides.
    image = images.upload_image(
        workspace, user=owner, file=io.BytesIO(picture(kind)), name="holiday.txt"
    )
    assert (image.width, image.height, image.content_type) == (40, 30, content_type)
    assert image.size == len(picture(kind)) and image.uploaded_by == owner
    assert image.file.name.startswith(f"mail-images/{workspace.pk}/{image.key}.")
    with image.file.open("rb") as stored:
        assert stored.read() == picture(kind)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "is not an image we can read"),
        (b"GIF89a" + b"\x00" * 20, "is not an image we can read"),
        (picture("PNG")[:60], "is not an image we can read"),
    ],
)
def test_upload_refuses_what_is_not_an_image(workspace, owner, data, message):
    with pytest.raises(images.ImageInvalid, match=message):
        images.upload_image(workspace, user=owner, file=io.BytesIO(data), name="x.png")
    assert not MailImage.objects.for_workspace(workspace).exists()


def test_upload_refuses_other_formats_and_big_files(workspace, owner, monkeypatch):
    bmp = picture("BMP")
    with pytest.raises(images.ImageInvalid, match="BMP images cannot be used in mail"):
        images.upload_image(workspace, user=owner, file=io.BytesIO(bmp), name="x.bmp")
    monkeypatch.setattr(images, "MAX_BYTES", 100)
    with pytest.raises(images.ImageInvalid, match="larger than"):
        images.upload_image(workspace, user=owner, file=io.BytesIO(b"x" * 200), name="big.png")


def test_public_address_serves_the_image_without_logging_in(workspace, owner, settings):
    image = images.upload_image(
        workspace, user=owner, file=io.BytesIO(picture()), name="Logo Big.PNG"
    )
    url = images.public_url(image)
    assert url.startswith(settings.BASE_URL + f"/mail-images/{image.key}/logo-big.png")
    response = Client().get(url.removeprefix(settings.BASE_URL))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "immutable" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == picture()
    assert Client().get(f"/mail-images/{'x' * 22}/logo.png").status_code == 404


def test_delete_removes_row_and_file(workspace, owner, django_capture_on_commit_callbacks):
    image = images.upload_image(workspace, user=owner, file=io.BytesIO(picture()), name="a.png")
    storage, path = image.file.storage, image.file.name
    with django_capture_on_commit_callbacks(execute=True):
        images.delete_image(image)
    assert not MailImage.objects.for_workspace(workspace).exists()
    assert not storage.exists(path)


def test_library_page_uploads_lists_and_deletes(logged_in, workspace):
    upload = SimpleUploadedFile("team.jpg", picture("JPEG"), content_type="image/jpeg")
    page = logged_in.post(reverse("mail_images:list"), {"file": upload}, follow=True)
    assert "Image “team.jpg” uploaded.".encode() in page.content
    image = MailImage.objects.for_workspace(workspace).get()
    assert images.public_url(image).encode() in page.content
    bad = SimpleUploadedFile("notes.png", b"hello", content_type="image/png")
    page = logged_in.post(reverse("mail_images:list"), {"file": bad}, follow=True)
    assert "“notes.png” is not an image we can read".encode() in page.content
    page = logged_in.post(reverse("mail_images:delete", args=[image.pk]), follow=True)
    assert "Image “team.jpg” deleted.".encode() in page.content
    assert not MailImage.objects.for_workspace(workspace).exists()


def test_picker_answers_json_for_the_builder(logged_in, workspace, owner):
    images.upload_image(WorkspaceFactory(), user=None, file=io.BytesIO(picture()), name="other.png")
    upload = SimpleUploadedFile("hero.gif", picture("GIF"), content_type="image/gif")
    created = logged_in.post(
        reverse("mail_images:list"), {"file": upload}, headers={"Accept": "application/json"}
    )
    assert created.status_code == 201 and created.json()["width"] == 40
    refused = logged_in.post(
        reverse("mail_images:list"),
        {"file": SimpleUploadedFile("x.gif", b"GIF8")},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 422 and "not an image" in refused.json()["error"]
    listed = logged_in.get(reverse("mail_images:picker")).json()["images"]
    assert [item["name"] for item in listed] == ["hero.gif"]
    assert listed[0]["url"].endswith("/hero.gif")
