"""The image library: pictures uploaded for use in mail, served at a public address.

An upload is checked by its content, not its name: Pillow must read it as
PNG, JPEG, GIF or WebP, within ``MAX_BYTES`` and ``MAX_PIXELS``. The file is
kept in Django's default storage (the file system under MEDIA_ROOT unless
another storage is configured) under a random key, and served publicly at
``/mail-images/<key>/<name>`` by ``views_images.public_image``: mail clients
fetch images without logging in, and the key cannot be guessed.
"""

from __future__ import annotations

import secrets
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from patron.core.models import User, Workspace
from patron.mail.models import MailImage

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"),
           "GIF": ("image/gif", "gif"), "WEBP": ("image/webp", "webp")}  # fmt: skip


class ImageInvalid(ValueError):
    """An upload that is not a usable image; the message says why."""


def images_for(workspace: Workspace) -> QuerySet[MailImage]:
    return MailImage.objects.for_workspace(workspace)


def public_url(image: MailImage) -> str:
    """The absolute address mail uses (stable for the image's life)."""
    return settings.BASE_URL + reverse("mail_images:public", args=[image.key, public_name(image)])


def public_name(image: MailImage) -> str:
    extension = FORMATS.get(_format_of(image.content_type), ("", "img"))[1]
    stem = slugify(image.name.rsplit(".", 1)[0])[:60] or "image"
    return f"{stem}.{extension}"


def _format_of(content_type: str) -> str:
    return next((name for name, (kind, _e) in FORMATS.items() if kind == content_type), "")


@transaction.atomic
def upload_image(
    workspace: Workspace, *, user: User | None, file: IO[bytes], name: str
) -> MailImage:
    """Store an uploaded image; ``ImageInvalid`` says what is wrong with it."""
    data = file.read(MAX_BYTES + 1)
    if not data:
        raise ImageInvalid(_("The file is empty."))
    if len(data) > MAX_BYTES:
        raise ImageInvalid(
            _("The image is larger than %(size)s MB; make it smaller first.")
            % {"size": MAX_BYTES // (1024 * 1024)}
        )
    from io import BytesIO

    try:
        with Image.open(BytesIO(data)) as picture:
            kind = picture.format or ""
            width, height = picture.size
            if kind in FORMATS and width * height <= MAX_PIXELS:
                picture.verify()  # reads the whole file: truncated or corrupt data fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ImageInvalid(
            _("“%(name)s” is not an image we can read. Upload a PNG, JPEG, GIF or WebP file.")
            % {"name": name[:100]}
        ) from None
    if kind not in FORMATS:
        raise ImageInvalid(
            _("%(kind)s images cannot be used in mail. Upload a PNG, JPEG, GIF or WebP file.")
            % {"kind": kind or _("This kind of")}
        )
    if width * height > MAX_PIXELS:
        raise ImageInvalid(_("The image has too many pixels; make it smaller first."))
    content_type, extension = FORMATS[kind]
    clean_name = " ".join(name.split())[:150] or f"image.{extension}"
    image = MailImage(
        workspace=workspace,
        key=secrets.token_urlsafe(16),
        name=clean_name,
        width=width,
        height=height,
        size=len(data),
        content_type=content_type,
        uploaded_by=user,
    )
    image.file.save(f"upload.{extension}", ContentFile(data), save=False)
    image.save()
    return image


def delete_image(image: MailImage) -> None:
    """Remove the image and its file; mail already sent shows it no more."""
    storage, path = image.file.storage, image.file.name
    image.delete()
    if path:
        transaction.on_commit(lambda: storage.delete(path))
