"""The image library pages (upload, list, delete), the builder's picker, and the public
address mail clients fetch images from."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import MARKETING_EDIT
from patron.mail import images
from patron.mail.models import MailImage

PICKER_LIMIT = 200


def _describe(image: MailImage) -> dict[str, object]:
    return {
        "id": image.pk,
        "name": image.name,
        "url": images.public_url(image),
        "width": image.width,
        "height": image.height,
    }


@workspace_view(MARKETING_EDIT)
def image_list(request: WorkspaceRequest) -> HttpResponse:
    """The library; POST uploads (answering JSON to the builder's picker, which asks for it)."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise images.ImageInvalid(_("Choose an image file to upload."))
            image = images.upload_image(
                request.workspace, user=request.user, file=upload, name=upload.name or ""
            )
        except images.ImageInvalid as error:
            if wants_json:
                return JsonResponse({"error": str(error)}, status=422)
            messages.error(request, str(error))
        else:
            if wants_json:
                return JsonResponse(_describe(image), status=201)
            messages.success(request, _("Image “%(name)s” uploaded.") % {"name": image.name})
        return redirect("mail_images:list")
    rows = images.images_for(request.workspace).select_related("uploaded_by")
    return render(
        request,
        "mail/image_list.html",
        {
            "images": [(image, images.public_url(image)) for image in rows],
            "max_mb": images.MAX_BYTES // (1024 * 1024),
        },
    )


@workspace_view(MARKETING_EDIT)
@require_GET
def image_picker(request: WorkspaceRequest) -> JsonResponse:
    """The newest images, for the builder's picker."""
    rows = images.images_for(request.workspace)[:PICKER_LIMIT]
    return JsonResponse({"images": [_describe(image) for image in rows]})


@workspace_view(MARKETING_EDIT)
@require_POST
def image_delete(request: WorkspaceRequest, image_id: int) -> HttpResponse:
    image = get_object_or_404(images.images_for(request.workspace), pk=image_id)
    images.delete_image(image)
    messages.success(
        request,
        _("Image “%(name)s” deleted. Mail that used it no longer shows it.") % {"name": image.name},
    )
    return redirect("mail_images:list")


def public_image(request: HttpRequest, image_key: str, filename: str) -> FileResponse:
    """Public, without a session: the random key is the only way in."""
    image = MailImage.objects.unscoped().filter(key=image_key).first()
    if image is None:
        raise Http404
    try:
        handle = image.file.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    response = FileResponse(handle, content_type=image.content_type)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
