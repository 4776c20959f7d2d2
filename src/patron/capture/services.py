"""Forms: defining them, guarding their public endpoints, and taking submissions in.

``submit_form`` validates everything first (required fields, email format, the
custom fields' own rules, lengths, consent) and only then writes, in one
transaction: the contact found by email or created (a blank value never wipes
a known one), the company, the tags, the list subscriptions with their consent
record (pending with a confirmation email on a double opt-in list), the
submission row, the ``form.submitted`` event, the owner's notification, and the
follow-up the form asks for (a deal in the chosen stage, or a ticket of the chosen
priority, through the CRM's services). A refusal at any point, a failed
follow-up included, leaves nothing behind. A form that delivers a file answers
with a signed download link (``patron.capture.downloads``), optionally mailed.

Spam protection needs no outside service (``check_guard``): a honeypot field
people never see, a signed timestamp issued with the form (sent sooner than
``FORMS_MIN_FILL_SECONDS`` or later than ``FORMS_MAX_AGE_SECONDS`` is refused),
a per-IP rate limit kept in Django's cache, a size limit on the request, and
for browsers an ``Origin`` check against the form's allowed sites.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.audience import lists
from patron.audience.models import ConsentSource, MailingList
from patron.capture.models import DownloadFile, FollowUp, Form, FormSubmission, LandingPage
from patron.core.models import Membership, User, Workspace
from patron.core.services import notify
from patron.crm import custom_fields
from patron.crm import services as crm
from patron.crm.models import (
    Company,
    Contact,
    CustomField,
    CustomFieldObject,
    Stage,
    TicketPriority,
)

# Contact fields a form may fill, with their length limits (the model's).
CONTACT_TARGETS: dict[str, int] = {
    "email": 254,
    "first_name": 100,
    "last_name": 100,
    "phone": 50,
    "mobile_phone": 50,
    "job_title": 150,
    "street": 200,
    "postal_code": 20,
    "city": 100,
    "region": 100,
    "country": 100,
}
COMPANY_NAME_LIMIT = 200
# A value kept only with the submission (a UTM parameter, a product of interest).
UNMAPPED_LIMIT = 2000
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
# Names the public endpoints use for their own purposes; no field may take them.
HONEYPOT = "website"
TOKEN = "_ts"  # noqa: S105 - the name of a form field
CONSENT = "consent"
VISITOR = "_visitor"
PAGE_URL = "_page"
RESERVED_KEYS = {HONEYPOT, TOKEN, CONSENT, VISITOR, PAGE_URL}
MAX_FIELDS = 50
MAX_TAGS = 20
TOKEN_SALT = "patron.capture.form-token"  # noqa: S105 - a signing namespace, not a secret


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


# --- Errors ---------------------------------------------------------------------------


class FormInvalid(ValueError):
    """A form definition was refused; ``errors`` maps a field (or ``fields.<n>``) to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{key}: {message}" for key, message in self.errors.items()))


class SubmissionInvalid(ValueError):
    """What a person sent does not pass; ``errors`` maps each form field key to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(_("Please correct the fields marked below."))


class FollowUpFailed(Exception):
    """The deal or ticket a form opens could not be created; the submission was not saved."""


class SubmissionRefused(Exception):
    """The request itself is refused (spam protection); ``code`` says which check, ``status``
    the HTTP status the endpoints answer."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# --- Definitions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    value: str  # "contact.email", "company.name", "custom.tier" or ""
    label: str
    custom: CustomField | None = None


def targets(workspace: Workspace | int) -> list[Target]:
    """Where a form field's value can go, for the builder's choices."""
    from patron.crm.models import Contact as ContactModel

    result = [Target("", _("Keep with the submission only"))]
    for name in CONTACT_TARGETS:
        label = str(getattr(ContactModel._meta.get_field(name), "verbose_name", name))
        result.append(Target(f"contact.{name}", _("Contact: %(field)s") % {"field": label}))
    result.append(Target("company.name", _("Company: name")))
    for definition in crm.field_definitions(workspace, CustomFieldObject.CONTACT):
        result.append(
            Target(
                f"custom.{definition.key}",
                _("Custom: %(field)s") % {"field": definition.label},
                definition,
            )
        )
    return result


def _clean_fields(workspace: Workspace, raw: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by_value = {target.value: target for target in targets(workspace)}
    cleaned: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    keys: set[str] = set()
    mapped: set[str] = set()
    for position, item in enumerate(raw):
        where = f"fields.{position}"
        key = str(item.get("key") or "").strip()
        label = " ".join(str(item.get("label") or "").split())
        maps_to = str(item.get("maps_to") or "")
        hidden = bool(item.get("hidden"))
        if not KEY_PATTERN.match(key):
            errors[where] = _(
                "Give each field a key of lower-case letters, digits and _ (e.g. first_name)."
            )
            continue
        if key in RESERVED_KEYS:
            errors[where] = _("The key “%(key)s” is used by the form itself; choose another.") % {
                "key": key
            }
            continue
        if key in keys:
            errors[where] = _("Two fields have the key “%(key)s”.") % {"key": key}
            continue
        if not label or len(label) > 200:
            errors[where] = _("Give the field “%(key)s” a label of up to 200 characters.") % {
                "key": key
            }
            continue
        if maps_to not in by_value:
            errors[where] = _("Choose where the field “%(key)s” goes.") % {"key": key}
            continue
        if maps_to and maps_to in mapped:
            errors[where] = _("Two fields go to the same place (%(target)s).") % {
                "target": by_value[maps_to].label
            }
            continue
        source = str(item.get("source") or "").strip()
        if source and not re.match(r"^[A-Za-z0-9_.-]{1,50}$", source):
            errors[where] = _("A URL parameter name has letters, digits, _, . and - only.")
            continue
        keys.add(key)
        if maps_to:
            mapped.add(maps_to)
        cleaned.append(
            {
                "key": key,
                "label": label,
                "maps_to": maps_to,
                "required": bool(item.get("required")) and not hidden,
                "hidden": hidden,
                "placeholder": str(item.get("placeholder") or "").strip()[:200],
                "default": str(item.get("default") or "").strip()[:UNMAPPED_LIMIT],
                "source": source,
            }
        )
    if len(cleaned) > MAX_FIELDS:
        errors["fields"] = _("Keep a form to %(limit)d fields.") % {"limit": MAX_FIELDS}
    email = next((f for f in cleaned if f["maps_to"] == "contact.email"), None)
    if not errors and (email is None or email["hidden"]):
        errors["fields"] = _("A form needs a visible field that goes to the contact's email.")
    if errors:
        raise FormInvalid(errors)
    email["required"] = True  # type: ignore[index]  # a submission is about someone
    return cleaned


def _clean_origins(raw: Iterable[str]) -> list[str]:
    origins: list[str] = []
    for item in raw:
        text = item.strip().rstrip("/").lower()
        if not text:
            continue
        parts = urlsplit(text)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path or parts.query:
            raise FormInvalid(
                {
                    "allowed_origins": _(
                        "“%(origin)s” is not a site address: write it as https://www.example.com."
                    )
                    % {"origin": item.strip()}
                }
            )
        if text not in origins:
            origins.append(text)
    return origins


def _clean_tags(raw: Iterable[str]) -> list[str]:
    tags: list[str] = []
    for item in raw:
        name = " ".join(item.split())
        if not name:
            continue
        if len(name) > crm.MAX_TAG_LENGTH:
            raise FormInvalid(
                {"tags": _("A tag has at most %(max)d characters.") % {"max": crm.MAX_TAG_LENGTH}}
            )
        if name.lower() not in {tag.lower() for tag in tags}:
            tags.append(name)
    if len(tags) > MAX_TAGS:
        raise FormInvalid({"tags": _("Apply at most %(max)d tags.") % {"max": MAX_TAGS}})
    return tags


def _clean(workspace: Workspace, values: dict[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    """Check a form's values (the ones given); returns them cleaned and the lists, if given."""
    errors: dict[str, str] = {}
    if "name" in values:
        values["name"] = " ".join(str(values["name"]).split())
        if not values["name"] or len(values["name"]) > 100:
            errors["name"] = _("Give the form a name of up to 100 characters.")
    if "fields" in values:
        values["fields"] = _clean_fields(workspace, values["fields"])
    if "allowed_origins" in values:
        values["allowed_origins"] = _clean_origins(values["allowed_origins"])
    if "tags" in values:
        values["tags"] = _clean_tags(values["tags"])
    if values.get("redirect_url"):
        try:
            URLValidator(schemes=["http", "https"])(values["redirect_url"])
        except ValidationError:
            errors["redirect_url"] = _("Enter a web address starting with http:// or https://.")
    if "submit_label" in values:
        values["submit_label"] = str(values["submit_label"]).strip()[:60] or _("Send")
    user = values.get("notify_user")
    if (
        user is not None
        and not Membership.objects.for_workspace(workspace)
        .filter(user=user, is_active=True)
        .exists()
    ):
        errors["notify_user"] = _("Choose a member of this workspace.")
    _clean_follow_up(workspace, values, errors)
    chosen = values.pop("lists", None)
    if chosen is not None:
        chosen = list(chosen)
        if any(item.workspace_id != workspace.pk for item in chosen):
            errors["lists"] = _("A list is not part of this workspace.")
    if errors:
        raise FormInvalid(errors)
    return values, chosen


def _clean_follow_up(workspace: Workspace, values: dict[str, Any], errors: dict[str, str]) -> None:
    """The gated file and the follow-up settings, checked in place."""
    from patron.capture.downloads import MAX_DAYS

    file = values.get("download_file")
    if file is not None and (
        not isinstance(file, DownloadFile) or file.workspace_id != workspace.pk
    ):
        errors["download_file"] = _("Choose a file of this workspace's download library.")
    if "download_days" in values:
        try:
            days = int(values["download_days"])
        except (TypeError, ValueError):
            days = 0
        if not 1 <= days <= MAX_DAYS:
            errors["download_days"] = _("A download link works for 1 to %(max)d days.") % {
                "max": MAX_DAYS
            }
        else:
            values["download_days"] = days
    if "follow_up" in values:
        values["follow_up"] = values["follow_up"] or ""
        if values["follow_up"] not in FollowUp.values:
            errors["follow_up"] = _("Choose what else the form does.")
    stage = values.get("deal_stage")
    if stage is not None and (not isinstance(stage, Stage) or stage.workspace_id != workspace.pk):
        errors["deal_stage"] = _("Choose a stage of this workspace's pipelines.")
    if "ticket_priority" in values:
        values["ticket_priority"] = values["ticket_priority"] or TicketPriority.NORMAL
        if values["ticket_priority"] not in TicketPriority.values:
            errors["ticket_priority"] = _("Choose a ticket priority.")


FORM_VALUES = {
    "name",
    "title",
    "fields",
    "submit_label",
    "consent_text",
    "consent_required",
    "lists",
    "tags",
    "success_message",
    "redirect_url",
    "notify_user",
    "allowed_origins",
    "download_file",
    "download_days",
    "email_download",
    "follow_up",
    "deal_stage",
    "ticket_priority",
}


def _check_download_reaches(form: Form) -> None:
    """A file behind a redirect would never be seen: it must then go by email."""
    if form.download_file_id is not None and form.redirect_url and not form.email_download:
        raise FormInvalid(
            {
                "redirect_url": _(
                    "People sent to another page never see the download link. Email the link "
                    "too, or leave the redirect empty."
                )
            }
        )


def _check_lists_have_consent(form: Form, chosen: list[MailingList]) -> None:
    if chosen and not form.consent_text.strip():
        raise FormInvalid(
            {"consent_text": _("Say what people agree to (the consent text) to subscribe them.")}
        )


@transaction.atomic
def create_form(*, workspace: Workspace, created_by: User | None = None, **values: Any) -> Form:
    """A new form; ``fields`` is a list of {key, label, maps_to, required, hidden, placeholder,
    default, source}. Raises FormInvalid with per-field messages."""
    unknown = set(values) - FORM_VALUES
    if unknown:
        raise TypeError(f"Unknown form values: {', '.join(sorted(unknown))}")
    values.setdefault("fields", [])
    values.setdefault("name", "")
    values, chosen = _clean(workspace, values)
    form = Form(workspace=workspace, created_by=created_by, **values)
    _check_lists_have_consent(form, chosen or [])
    _check_download_reaches(form)
    form.save()
    if chosen:
        form.lists.set(chosen)
    return form


@transaction.atomic
def update_form(*, form: Form, actor: User | None = None, **values: Any) -> Form:
    """Change the given values of a form."""
    unknown = set(values) - FORM_VALUES
    if unknown:
        raise TypeError(f"Unknown form values: {', '.join(sorted(unknown))}")
    values, chosen = _clean(form.workspace, values)
    for name, value in values.items():
        setattr(form, name, value)
    _check_lists_have_consent(form, chosen if chosen is not None else list(form.lists.all()))
    _check_download_reaches(form)
    form.updated_at = timezone.now()
    form.save()
    if chosen is not None:
        form.lists.set(chosen)
    return form


@transaction.atomic
def delete_form(*, form: Form, actor: User | None = None) -> None:
    """Delete a form with its submissions (the contacts and their events stay)."""
    form.delete()


# --- The guard ------------------------------------------------------------------------


def issue_token(form: Form, *, now: float | None = None) -> str:
    """The signed moment the form was handed out, sent back with the submission."""
    moment = int((time.time() if now is None else now) * 1000)
    return signing.dumps({"f": form.pk, "t": moment}, salt=TOKEN_SALT)


def _check_token(form: Form, token: str, now: float) -> None:
    try:
        payload = signing.loads(token, salt=TOKEN_SALT)
        form_id, issued = int(payload["f"]), int(payload["t"]) / 1000
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise SubmissionRefused(
            "token",
            _("This form was not loaded from its page. Open the page again and send the form."),
        ) from None
    if form_id != form.pk:
        raise SubmissionRefused(
            "token", _("This form's security field belongs to another form. Reload the page.")
        )
    age = now - issued
    if age < _setting("FORMS_MIN_FILL_SECONDS", 3):
        raise SubmissionRefused(
            "too_fast",
            _(
                "The form was sent too quickly after the page opened. Wait a moment and send it "
                "again."
            ),
            429,
        )
    if age > _setting("FORMS_MAX_AGE_SECONDS", 86400):
        raise SubmissionRefused(
            "stale",
            _(
                "The page was open too long and the form expired. Reload the page and send it "
                "again."
            ),
        )


def origin_allowed(form: Form, origin: str, own_origin: str = "") -> bool:
    """Whether a browser on ``origin`` may load and send the form: one of the form's allowed
    sites, or Patron itself (its configured address, or ``own_origin``, the one serving)."""
    origin = origin.rstrip("/").lower()
    base = urlsplit(settings.BASE_URL)
    own = {f"{base.scheme}://{base.netloc}".lower(), own_origin.lower()}
    return origin in own or origin in form.allowed_origins


def request_origin(headers: Mapping[str, str]) -> str:
    """The site a browser request came from: Origin, else the scheme and host of Referer."""
    origin = headers.get("Origin", "")
    if origin and origin != "null":
        return origin
    referer = urlsplit(headers.get("Referer", ""))
    if referer.scheme and referer.netloc:
        return f"{referer.scheme}://{referer.netloc}"
    return origin


def check_rate(ip_address: str | None) -> None:
    """Count one submission attempt for the address; refuse beyond the limit."""
    limit = int(_setting("FORMS_RATE_LIMIT", 20))
    window = int(_setting("FORMS_RATE_WINDOW_SECONDS", 600))
    cache_key = f"patron:forms:rate:{ip_address or 'unknown'}"
    cache.add(cache_key, 0, timeout=window)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=window)
        count = 1
    if count > limit:
        raise SubmissionRefused(
            "rate_limited",
            _("Too many forms were sent from your address. Please try again in a few minutes."),
            429,
        )


def check_guard(
    *,
    form: Form,
    data: Mapping[str, Any],
    ip_address: str | None,
    origin: str = "",
    own_origin: str = "",
    now: float | None = None,
) -> None:
    """Every spam check except the size limit (the endpoints check the body before parsing).

    ``origin`` is the browser's site (empty for server-to-server calls, which a
    browser-side origin check cannot concern).
    """
    if origin and not origin_allowed(form, origin, own_origin):
        raise SubmissionRefused(
            "origin",
            _(
                "This form may not be sent from %(origin)s. Add the site to the form's allowed "
                "sites."
            )
            % {"origin": origin},
            403,
        )
    check_rate(ip_address)
    if str(data.get(HONEYPOT) or "").strip():
        raise SubmissionRefused(
            "honeypot", _("The form could not be sent: a field meant to stay empty was filled.")
        )
    _check_token(form, str(data.get(TOKEN) or ""), time.time() if now is None else now)


# --- Submissions ----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestDetails:
    """Where a submission came from."""

    ip_address: str | None = None
    user_agent: str = ""
    page_url: str = ""
    referrer: str = ""
    visitor_id: str = ""


@dataclass
class Cleaned:
    contact: dict[str, str] = field(default_factory=dict)
    company_name: str = ""
    custom: dict[str, Any] = field(default_factory=dict)
    # Every accepted value by form field key, as stored on the submission.
    values: dict[str, Any] = field(default_factory=dict)
    consent: bool = False


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value).strip()


def _truthy(value: Any) -> bool:
    return _text(value).lower() in {"1", "true", "yes", "on", "y"}


def clean_submission(form: Form, data: Mapping[str, Any]) -> Cleaned:
    """Every value checked against the form; raises SubmissionInvalid with all the errors.

    Keys the form does not have are ignored (a submit button's name, say).
    """
    custom_defs = {
        d.key: d for d in crm.field_definitions(form.workspace_id, CustomFieldObject.CONTACT)
    }
    result = Cleaned()
    errors: dict[str, str] = {}
    for spec in form.fields:
        key, target = spec["key"], spec["maps_to"]
        raw = data.get(key)
        if spec.get("hidden") and raw in (None, ""):
            raw = spec.get("default", "")
        if target.startswith("custom."):
            definition = custom_defs.get(target.removeprefix("custom."))
            if definition is None:
                continue  # the custom field was deleted since: nothing to save it in
            if isinstance(raw, list | tuple) and definition.field_type != "multi_select":
                raw = raw[0] if raw else ""
            try:
                value = custom_fields.normalise(definition, raw)
            except ValueError as exc:
                errors[key] = str(exc)
                continue
            if value is None:
                if spec.get("required"):
                    errors[key] = _("%(label)s is required.") % {"label": spec["label"]}
                continue
            result.custom[definition.key] = value
            result.values[key] = value
            continue
        text = _text(raw)
        if not text:
            if spec.get("required"):
                errors[key] = _("%(label)s is required.") % {"label": spec["label"]}
            continue
        if target.startswith("contact."):
            name = target.removeprefix("contact.")
            limit = CONTACT_TARGETS[name]
        elif target == "company.name":
            limit = COMPANY_NAME_LIMIT
        else:
            limit = UNMAPPED_LIMIT
        if len(text) > limit:
            errors[key] = _("Keep %(label)s to %(limit)d characters.") % {
                "label": spec["label"],
                "limit": limit,
            }
            continue
        if target == "contact.email":
            text = text.lower()
            try:
                EmailValidator()(text)
            except ValidationError:
                errors[key] = _("Enter a valid email address, like name@example.com.")
                continue
        if target.startswith("contact."):
            result.contact[target.removeprefix("contact.")] = text
        elif target == "company.name":
            result.company_name = text
        result.values[key] = text
    result.consent = bool(form.consent_text.strip()) and _truthy(data.get(CONSENT))
    if form.consent_text.strip() and form.consent_required and not result.consent:
        errors[CONSENT] = _("Tick the box to agree, or the form cannot be sent.")
    if errors:
        raise SubmissionInvalid(errors)
    return result


def _company(workspace: Workspace, name: str) -> Company:
    existing = (
        Company.objects.for_workspace(workspace)
        .annotate(lower_name=Lower("name"))
        .filter(lower_name=name.lower())
        .order_by("id")
        .first()
    )
    return existing or crm.create_company(workspace=workspace, name=name)


def _contact(form: Form, cleaned: Cleaned, actor: User | None = None) -> tuple[Contact, bool]:
    workspace = form.workspace
    values: dict[str, Any] = dict(cleaned.contact)
    existing = crm.find_contact_by_email(workspace, values["email"])
    if existing is None:
        if cleaned.company_name:
            values["company"] = _company(workspace, cleaned.company_name)
        try:
            contact = crm.create_contact(
                workspace=workspace,
                source=f"Form: {form.name}"[:100],
                custom=cleaned.custom,
                **values,
            )
            return contact, True
        except crm.DuplicateContact as exc:  # created meanwhile by another request
            existing = exc.existing
    # A known person: what they sent now wins, but an empty field never wipes a value.
    values.pop("email", None)
    if cleaned.company_name and existing.company_id is None:
        values["company"] = _company(workspace, cleaned.company_name)
    crm.update_contact(contact=existing, custom=cleaned.custom or None, **values)
    return existing, False


def _event_properties(form: Form, cleaned: Cleaned, details: RequestDetails) -> dict[str, Any]:
    properties: dict[str, Any] = {"form_id": form.pk, "form": form.name}
    if details.page_url:
        properties["url"] = details.page_url[:2000]
    if details.referrer:
        properties["referrer"] = details.referrer[:2000]
    # Values kept only with the submission (UTM, product interest) go into the event as
    # they are, so that segments, scoring and attribution can use them.
    for spec in form.fields:
        if not spec["maps_to"] and spec["key"] in cleaned.values:
            properties[spec["key"]] = cleaned.values[spec["key"]]
    return properties


def submit_form(
    *,
    form: Form,
    data: Mapping[str, Any],
    details: RequestDetails | None = None,
    landing_page: LandingPage | None = None,
) -> FormSubmission:
    """Take in one submission (already past ``check_guard``); raises SubmissionInvalid, or
    FollowUpFailed when the deal or ticket could not be opened (nothing is saved then).

    ``landing_page`` is the page of this workspace the form was sent from, if any.
    """
    details = details or RequestDetails()
    if landing_page is not None and landing_page.workspace_id != form.workspace_id:
        landing_page = None
    cleaned = clean_submission(form, data)
    workspace = form.workspace
    chosen_lists = list(form.lists.all()) if cleaned.consent else []
    with transaction.atomic():
        contact, created = _contact(form, cleaned)
        if form.tags:
            crm.add_tags(record_=contact, names=form.tags)
        submission = FormSubmission.objects.create(
            workspace=workspace,
            form=form,
            contact=contact,
            values=cleaned.values,
            consent_given=cleaned.consent,
            page_url=details.page_url[:2000],
            referrer=details.referrer[:2000],
            ip_address=details.ip_address,
            user_agent=details.user_agent[:500],
            visitor_id=details.visitor_id[:64],
            landing_page=landing_page,
        )
        consent = lists.Consent(
            source=ConsentSource.FORM,
            consent_text=form.consent_text,
            ip_address=details.ip_address,
            user_agent=details.user_agent[:500],
            details={"form_id": form.pk, "form": form.name, "submission_id": submission.pk},
        )
        for mailing_list in chosen_lists:
            lists.subscribe(mailing_list=mailing_list, contact=contact, consent=consent)
        properties = _event_properties(form, cleaned, details)
        if landing_page is not None:
            properties["landing_page"] = landing_page.pk
        record(
            workspace=workspace,
            kind="form.submitted",
            contact_id=contact.pk,
            visitor_id=submission.visitor_id,
            source=("capture.form_submission", submission.pk),
            properties=properties,
        )
        if submission.visitor_id:
            # The page's earlier anonymous visits become the contact's (identity stitching).
            from patron.tracking.stitching import Method, stitch_visitor

            stitch_visitor(
                workspace_id=workspace.pk,
                visitor_id=submission.visitor_id,
                contact_id=contact.pk,
                method=Method.FORM,
            )
        _notify_owner(form, contact, created)
        _follow_up(form, contact, submission)
        if form.download_file_id is not None and form.email_download:
            from patron.capture import downloads

            downloads.email_download_later(
                submission=submission, url=downloads.download_url(submission)
            )
    return submission


def _follow_up(form: Form, contact: Contact, submission: FormSubmission) -> None:
    """Open the deal or ticket the form asks for (raises FollowUpFailed to undo it all)."""
    from patron.crm import tickets

    if form.follow_up not in (FollowUp.DEAL, FollowUp.TICKET):
        return
    name = f"{form.name}: {contact}"[:200]
    try:
        if form.follow_up == FollowUp.DEAL:
            stage = form.deal_stage
            crm.create_deal(
                workspace=form.workspace,
                name=name,
                stage=stage,
                contacts=[contact],
                source=f"Form: {form.name}"[:100],
            )
        else:
            lines = [
                f"{spec['label']}: {submission.values[spec['key']]}"
                for spec in form.fields
                if spec["key"] in submission.values
            ]
            tickets.open_ticket(
                workspace=form.workspace,
                subject=name,
                description="\n".join(lines),
                contact=contact,
                priority=form.ticket_priority or TicketPriority.NORMAL,
                channel="web",
            )
    except (ValueError, crm.CrossWorkspaceReference) as exc:
        raise FollowUpFailed(str(exc)) from exc


def thank_you(form: Form, submission: FormSubmission) -> dict[str, str]:
    """What a person sees after sending: the message, the redirect, the download link."""
    from patron.capture import downloads

    return {
        "message": form.success_message,
        "redirect_url": form.redirect_url,
        "download_url": downloads.download_url(submission)
        if form.download_file_id is not None
        else "",
        "download_name": form.download_file.name if form.download_file is not None else "",
    }


def _notify_owner(form: Form, contact: Contact, created: bool) -> None:
    user = form.notify_user
    if user is None:
        return
    if (
        not Membership.objects.for_workspace(form.workspace_id)
        .filter(user=user, is_active=True)
        .exists()
    ):
        return
    text = (
        _("New contact %(contact)s sent the form “%(form)s”.")
        if created
        else _("%(contact)s sent the form “%(form)s”.")
    ) % {"contact": str(contact), "form": form.name}
    notify(
        workspace=form.workspace,
        user=user,
        text=text,
        url=reverse("capture:form_submissions", args=[form.pk]),
    )


# --- Reads ----------------------------------------------------------------------------


def public_form(key: str) -> Form | None:
    """The form behind a public key (any workspace: the key is the credential)."""
    return (
        Form.objects.unscoped().select_related("workspace", "download_file").filter(key=key).first()
    )


def submissions(form: Form) -> Any:
    return (
        FormSubmission.objects.for_workspace(form.workspace_id)
        .filter(form=form)
        .select_related("contact")
        .order_by("-submitted_at", "-id")
    )


def initial_values(form: Form, params: Mapping[str, str]) -> dict[str, str]:
    """Hidden fields' values for a page: the URL parameter named by ``source``, else the
    default."""
    values: dict[str, str] = {}
    for spec in form.fields:
        if spec.get("hidden"):
            source = spec.get("source") or ""
            values[spec["key"]] = str(params.get(source, "") if source else "")[
                :UNMAPPED_LIMIT
            ] or spec.get("default", "")
    return values


def embed_description(form: Form, *, action: str) -> dict[str, Any]:
    """What the snippet needs to draw the form: fields, texts and a fresh token."""
    custom_defs = {
        d.key: d for d in crm.field_definitions(form.workspace_id, CustomFieldObject.CONTACT)
    }
    fields = []
    for spec in form.fields:
        item = {
            key: spec.get(key, "")
            for key in ("key", "label", "required", "hidden", "placeholder", "default", "source")
        }
        item["type"], item["options"] = input_type(spec, custom_defs)
        fields.append(item)
    return {
        "action": action,
        "title": form.title,
        "fields": fields,
        "submit_label": form.submit_label,
        "consent_text": form.consent_text,
        "consent_required": form.consent_required,
        "token": issue_token(form),
        "honeypot": HONEYPOT,
    }


def input_type(
    spec: Mapping[str, Any], custom_defs: Mapping[str, CustomField]
) -> tuple[str, list[str]]:
    """The HTML input a field is drawn with, and its options for a select."""
    if spec.get("hidden"):
        return "hidden", []
    target = spec.get("maps_to", "")
    if target == "contact.email":
        return "email", []
    if target in {"contact.phone", "contact.mobile_phone"}:
        return "tel", []
    if target.startswith("custom."):
        definition = custom_defs.get(target.removeprefix("custom."))
        if definition is not None:
            kind = str(definition.field_type)
            if kind == "single_select":
                return "select", list(definition.options)
            mapping = {
                "long_text": "textarea",
                "number": "number",
                "money": "number",
                "date": "date",
                "boolean": "checkbox",
                "url": "url",
                "email": "email",
                "phone": "tel",
            }
            return mapping.get(kind, "text"), []
    return "text", []


def move_submissions(workspace_id: int, from_contact_id: int, to_contact_id: int) -> None:
    """A merge: the merged-away contact's form submissions are the kept contact's."""
    FormSubmission.objects.for_workspace(workspace_id).filter(contact_id=from_contact_id).update(
        contact_id=to_contact_id
    )
