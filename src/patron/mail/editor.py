"""The content editor component: what its template include needs, and reading its form.

Any page that edits an object with the content fields (``format``, ``body``,
``blocks``, ``text``, ``subject``, ``preheader``) includes
``mail/_content_editor.html`` inside its ``<form>`` with ``editor`` from
``editor_context()``, and reads the posted values with ``content_from_post()``
before handing them to ``templates_service.clean_content()`` (or a service
that calls it). The preview, checks and plain-text endpoints are shared
(``email_templates:preview`` / ``checks`` / ``text``): they read the same
form fields and need no saved object. See docs/architecture.md.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import QueryDict
from django.urls import reverse

from patron.core.models import Workspace
from patron.mail import blocks as builder
from patron.mail import templates_service
from patron.mail.rendering import HTML, MJML


def editor_context(
    workspace: Workspace,
    obj: Any,
    *,
    errors: dict[str, str] | None = None,
    invalid_block: int = 0,
) -> dict[str, Any]:
    """The ``editor`` variable of ``mail/_content_editor.html`` for ``obj``."""
    from patron.audience.models import Segment

    built = builder.is_built(obj.blocks)
    return {
        "obj": obj,
        "built": built,
        "document": json.dumps(obj.blocks if built else {}),
        "schema": builder.builder_schema(),
        "merge_tags": templates_service.merge_tags(workspace),
        "segments": [
            {"id": pk, "name": name}
            for pk, name in Segment.objects.for_workspace(workspace)
            .order_by("name")
            .values_list("pk", "name")
        ],
        "formats": [(MJML, "MJML"), (HTML, "HTML")],
        "preview_url": reverse("email_templates:preview"),
        "checks_url": reverse("email_templates:checks"),
        "text_url": reverse("email_templates:text"),
        "source_url": reverse("email_templates:source"),
        "contacts_url": reverse("email_templates:contacts"),
        "images_url": reverse("mail_images:picker"),
        "upload_url": reverse("mail_images:list"),
        "errors": errors or {},
        "invalid_block": invalid_block,
    }


def content_from_post(data: QueryDict) -> dict[str, Any]:
    """The content fields posted by the component (``blocks`` parsed from its JSON).

    In builder mode the body is not read: the server writes it from the blocks.
    """
    values: dict[str, Any] = {
        name: data.get(name, "") for name in ("subject", "preheader", "text") if name in data
    }
    raw = data.get("blocks", "").strip()
    if raw:
        try:
            values["blocks"] = json.loads(raw)
        except ValueError:
            values["blocks"] = {"invalid": True}  # refused by clean_content with a message
    else:
        values["blocks"] = {}
        if "body" in data:
            values["body"] = data.get("body", "")
        if "format" in data:
            values["format"] = data.get("format", "")
    return values
