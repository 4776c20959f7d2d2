"""The campaign pages: the list, a new campaign, the draft editor, and a campaign
on its way (live progress, pause, resume, cancel) and after (totals, recipients).

Every change goes through ``patron.mail.campaigns``; these views parse the form,
call one service and render. A draft is edited on one page: details, content
and audience are one form (saved together); the checks, the preview, the test
send and the send itself work on what was saved, so what is checked is what goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST
from liquid.exceptions import LiquidError

from patron.audience.audiences import (
    AudienceInvalid,
    audience_contacts,
    validate_audience,
)
from patron.audience.models import MailingList, Segment
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.paging import SeekPage
from patron.core.roles import CAMPAIGNS_MANAGE, CAMPAIGNS_SEND, CAMPAIGNS_VIEW, OUTBOX_VIEW
from patron.crm.models import Contact
from patron.mail import (
    ab_tests,
    campaigns,
    editor,
    rendering,
    senders,
    starters,
    templates_service,
)
from patron.mail.models import (
    AbMetric,
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    EmailTemplate,
    TemplateKind,
)
from patron.mail.views import sandboxed_html

PER_PAGE = 50
RECIPIENTS_PER_PAGE = 100
# While a campaign may still move on its own (the scheduler starts it, workers send it),
# its page asks for news this often.
LIVE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING)
FINISHED_STATUSES = (CampaignStatus.SENT, CampaignStatus.CANCELLED)


# --- Forms ---------------------------------------------------------------------------------


class NewCampaignForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=campaigns.NAME_LIMIT,
        help_text=gettext_lazy("For you and your team; recipients see the subject, not this."),
    )
    start = forms.ChoiceField(
        label=gettext_lazy("Start from"),
        initial="blank-builder",
        help_text=gettext_lazy(
            "A starter design or one of your marketing templates (copied: the template stays "
            "as it is). Starters and blank builder open in the block builder; blank HTML in "
            "the code view."
        ),
    )

    def __init__(self, *args: Any, workspace: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        marketing = starters.for_kind(TemplateKind.MARKETING)
        designs = [(s.key, s.name) for s in marketing if not s.key.startswith("blank")]
        blanks = [(s.key, s.name) for s in marketing if s.key.startswith("blank")]
        saved = [
            (f"template:{pk}", name)
            for pk, name in templates_service.templates_for(workspace, TemplateKind.MARKETING)
            .order_by("name", "id")
            .values_list("pk", "name")
        ]
        choices: list[tuple[str, Any]] = [
            (_("Starters"), designs),
            (_("Blank"), blanks),
        ]
        if saved:
            choices.append((_("Your templates"), saved))
        cast(forms.ChoiceField, self.fields["start"]).choices = choices


class AudienceChoice(forms.MultipleChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        widget = forms.CheckboxSelectMultiple(attrs={"class": "form-check-input audience-choice"})
        super().__init__(required=False, widget=widget, **kwargs)


class CampaignForm(forms.Form):
    """A draft's details and audience; the content comes from the content editor
    component (``editor.content_from_post``). The service checks again
    (``CampaignInvalid``); its errors land on the field they name."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=campaigns.NAME_LIMIT)
    sender = forms.TypedChoiceField(
        label=gettext_lazy("From"), coerce=int, required=False, empty_value=None
    )
    reply_to = forms.CharField(
        label=gettext_lazy("Reply-to address"),
        max_length=254,
        required=False,
        help_text=gettext_lazy("Empty: replies go to the sender address's reply-to."),
    )
    track_opens = forms.BooleanField(label=gettext_lazy("Track opens"), required=False)
    track_clicks = forms.BooleanField(label=gettext_lazy("Track clicks"), required=False)
    utm = forms.BooleanField(
        label=gettext_lazy("Add UTM parameters to web links"),
        required=False,
        help_text=gettext_lazy("So that web analytics can tell visits this campaign brought."),
    )
    utm_source = forms.CharField(label="utm_source", max_length=100, required=False)
    utm_medium = forms.CharField(label="utm_medium", max_length=100, required=False)
    utm_campaign = forms.CharField(
        label="utm_campaign",
        max_length=100,
        required=False,
        help_text=gettext_lazy("Empty: the campaign's name."),
    )
    ab_test = forms.BooleanField(
        label=gettext_lazy("Test variants on part of the audience first"),
        required=False,
        help_text=gettext_lazy(
            "Variant A is the subject, preheader and sender name of the campaign itself."
        ),
    )
    ab_share = forms.IntegerField(
        label=gettext_lazy("Test share (% of the audience)"),
        min_value=ab_tests.SHARE_RANGE[0],
        max_value=ab_tests.SHARE_RANGE[1],
        required=False,
        help_text=gettext_lazy("Split evenly between the variants; the rest gets the winner."),
    )
    ab_metric = forms.ChoiceField(
        label=gettext_lazy("Winner by"),
        choices=AbMetric.choices,
        required=False,
        help_text=gettext_lazy(
            "People's opens or clicks per delivered message, or the revenue of the deals "
            "its recipients won after it (in the workspace's currency) per delivered message."
        ),
    )
    ab_wait_hours = forms.IntegerField(
        label=gettext_lazy("Hours before the winner is chosen"),
        help_text=gettext_lazy("Up to 336 (14 days): revenue needs days, opens hours."),
        min_value=ab_tests.WAIT_RANGE[0],
        max_value=ab_tests.WAIT_RANGE[1],
        required=False,
    )
    include_lists = AudienceChoice(label=gettext_lazy("Lists"))
    include_segments = AudienceChoice(label=gettext_lazy("Segments"))
    exclude_lists = AudienceChoice(label=gettext_lazy("Lists"))
    exclude_segments = AudienceChoice(label=gettext_lazy("Segments"))

    DETAILS = ("name", "sender", "reply_to", *campaigns.TRACKING_FIELDS)
    AB_SETTINGS = ("ab_test", "ab_share", "ab_metric", "ab_wait_hours")
    # The variants after A, as field-name prefixes (variant_b_subject, ...).
    VARIANT_SLOTS = [ab_tests.letter(index).lower() for index in range(1, ab_tests.MAX_VARIANTS)]
    VARIANT_LABELS = {
        "subject": gettext_lazy("Subject of variant %(letter)s"),
        "preheader": gettext_lazy("Preheader of variant %(letter)s"),
        "from_name": gettext_lazy("Sender of variant %(letter)s"),
    }

    def __init__(self, *args: Any, workspace: Any, campaign: Campaign, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for slot in self.VARIANT_SLOTS:
            for name, label in self.VARIANT_LABELS.items():
                self.fields[f"variant_{slot}_{name}"] = forms.CharField(
                    label=label % {"letter": slot.upper()},
                    max_length=ab_tests.LIMITS[name],
                    required=False,
                    help_text=_("The name shown; the address stays.")
                    if name == "from_name"
                    else "",
                )
        templates = [("", _("Same content as A"))] + [
            (str(pk), name)
            for pk, name in EmailTemplate.objects.for_workspace(workspace)
            .filter(kind=TemplateKind.MARKETING)
            .order_by("name")
            .values_list("pk", "name")
        ]
        for slot in self.VARIANT_SLOTS:
            self.fields[f"variant_{slot}_template"] = forms.ChoiceField(
                label=_("Content of variant %(letter)s") % {"letter": slot.upper()},
                choices=templates,
                required=False,
                help_text=_("A saved template's content instead of the campaign's."),
            )
            self.fields[f"variant_{slot}_delay_hours"] = forms.IntegerField(
                label=_("Send variant %(letter)s later (hours)") % {"letter": slot.upper()},
                min_value=ab_tests.DELAY_RANGE[0],
                max_value=ab_tests.DELAY_RANGE[1],
                required=False,
                help_text=_(
                    "A send-time test: this many hours after the start. The rest then goes "
                    "at the winner's time of day."
                ),
            )
        self.fields["reply_to"].widget.input_type = "email"
        verified = list(senders.verified_identities(workspace))
        choices: list[tuple[Any, str]] = [("", _("Choose a verified sender address"))]
        choices += [(identity.pk, identity.formatted) for identity in verified]
        current = campaign.sender
        if current is not None and current.pk not in {identity.pk for identity in verified}:
            # Keep showing the saved choice; the checks say why it cannot send yet.
            choices.append((current.pk, _("%(sender)s (not verified)") % {"sender": current}))
        cast(forms.ChoiceField, self.fields["sender"]).choices = choices
        self.has_verified_sender = bool(verified)
        lists = [
            (str(pk), name)
            for pk, name in MailingList.objects.for_workspace(workspace)
            .order_by("name")
            .values_list("pk", "name")
        ]
        found_segments = [
            (str(pk), name)
            for pk, name in Segment.objects.for_workspace(workspace)
            .order_by("name")
            .values_list("pk", "name")
        ]
        for side in ("include", "exclude"):
            cast(forms.ChoiceField, self.fields[f"{side}_lists"]).choices = lists
            cast(forms.ChoiceField, self.fields[f"{side}_segments"]).choices = found_segments

    @staticmethod
    def initial_for(campaign: Campaign) -> dict[str, Any]:
        audience = campaign.audience or {}
        initial: dict[str, Any] = {
            name: getattr(campaign, name)
            for name in ("name", "reply_to", *campaigns.TRACKING_FIELDS)
        }
        initial["sender"] = campaign.sender_id
        for name in CampaignForm.AB_SETTINGS:
            initial[name] = getattr(campaign, name)
        for slot, variant in zip(
            CampaignForm.VARIANT_SLOTS, campaign.ab_variants or [], strict=False
        ):
            for name in CampaignForm.VARIANT_LABELS:
                initial[f"variant_{slot}_{name}"] = variant.get(name, "")
            initial[f"variant_{slot}_template"] = str(variant.get("template") or "")
            initial[f"variant_{slot}_delay_hours"] = variant.get("delay_hours") or None
        for side in ("include", "exclude"):
            for kind in ("lists", "segments"):
                ids = (audience.get(side) or {}).get(kind) or []
                initial[f"{side}_{kind}"] = [str(pk) for pk in ids]
        return initial

    def audience(self) -> dict[str, Any]:
        """The audience as the services take it; empty when nothing at all is ticked."""
        data = self.cleaned_data
        audience = {
            side: {
                kind: [int(pk) for pk in data.get(f"{side}_{kind}") or []]
                for kind in ("lists", "segments")
            }
            for side in ("include", "exclude")
        }
        if not any(ids for part in audience.values() for ids in part.values()):
            return {}
        return audience

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        values = {name: data[name] for name in self.DETAILS}
        values["audience"] = self.audience()
        # Left empty: kept as saved.
        values.update(
            {name: data[name] for name in self.AB_SETTINGS if data[name] not in (None, "")}
        )
        values["ab_variants"] = self.variants()
        return values

    def variants(self) -> list[dict[str, str]]:
        """The filled-in variant slots, in order (an empty slot is no variant)."""
        found = []
        for slot in self.VARIANT_SLOTS:
            variant: dict[str, Any] = {
                name: self.cleaned_data.get(f"variant_{slot}_{name}") or ""
                for name in self.VARIANT_LABELS
            }
            variant["template"] = self.cleaned_data.get(f"variant_{slot}_template") or None
            variant["delay_hours"] = self.cleaned_data.get(f"variant_{slot}_delay_hours") or None
            if any(variant.values()):
                found.append(variant)
        return found

    def variant_slots(self) -> list[tuple[str, list[Any]]]:
        """(letter, bound fields) per variant slot, for the template."""
        return [
            (
                slot.upper(),
                [
                    *(self[f"variant_{slot}_{name}"] for name in self.VARIANT_LABELS),
                    self[f"variant_{slot}_template"],
                    self[f"variant_{slot}_delay_hours"],
                ],
            )
            for slot in self.VARIANT_SLOTS
        ]

    def add_service_errors(self, exc: campaigns.CampaignInvalid) -> None:
        for field_name, message in exc.errors.items():
            if field_name in campaigns.CONTENT_FIELDS:
                continue  # shown by the content editor
            if field_name == "audience":
                self.add_error("include_lists", message)
            elif field_name == "ab_variants":
                self.add_error("ab_test", message)
            elif field_name in self.fields:
                self.add_error(field_name, message)
            else:
                self.add_error(None, message)


class ScheduleForm(forms.Form):
    NOW, AT, LOCAL = "now", "at", "local"
    when = forms.ChoiceField(
        label=gettext_lazy("When"),
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        initial=NOW,
        choices=[
            (NOW, gettext_lazy("Now")),
            (AT, gettext_lazy("At a time")),
            (LOCAL, gettext_lazy("At a time in each recipient's time zone")),
        ],
    )
    send_at = forms.DateTimeField(
        label=gettext_lazy("Date and time"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args: Any, workspace_zone: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace_zone = workspace_zone

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        when = data.get("when")
        if when in (self.AT, self.LOCAL) and not data.get("send_at"):
            self.add_error("send_at", _("Choose the date and time to send at."))
        return data

    def moment(self) -> tuple[datetime | None, bool]:
        """``(at, local_time)`` for ``schedule_campaign``.

        A time "at a time" is read in the viewer's time zone; a local-time send
        is a wall-clock time, which the services read in the workspace's zone.
        """
        when = self.cleaned_data["when"]
        if when == self.NOW:
            return None, False
        naive: datetime = self.cleaned_data["send_at"]
        if timezone.is_aware(naive):
            naive = timezone.make_naive(naive)
        if when == self.LOCAL:
            return naive.replace(tzinfo=self.workspace_zone), True
        return timezone.make_aware(naive, timezone.get_current_timezone()), False


class TestSendForm(forms.Form):
    addresses = forms.CharField(
        label=gettext_lazy("Send a test to"),
        max_length=2000,
        help_text=gettext_lazy("Up to 10 addresses, separated by commas or spaces."),
    )
    contact = forms.CharField(
        label=gettext_lazy("Merge tags as contact"),
        max_length=254,
        required=False,
        help_text=gettext_lazy("Email or name of a contact; empty: a sample person."),
    )

    def address_list(self) -> list[str]:
        return [part for part in re.split(r"[\s,;]+", self.cleaned_data["addresses"]) if part]


# --- Reading helpers -----------------------------------------------------------------------


def _campaigns(request: WorkspaceRequest) -> QuerySet[Campaign]:
    return campaigns.campaigns_for(request.workspace)


def _campaign(request: WorkspaceRequest, campaign_id: int) -> Campaign:
    campaign: Campaign = get_object_or_404(_campaigns(request), pk=campaign_id)
    return campaign


class AudienceNames:
    """Names of the workspace's lists and segments, read once for a whole page."""

    def __init__(self, workspace: Any) -> None:
        self.lists = dict(MailingList.objects.for_workspace(workspace).values_list("pk", "name"))
        self.segments = dict(Segment.objects.for_workspace(workspace).values_list("pk", "name"))

    def describe(self, audience: dict[str, Any] | None) -> str:
        if not audience:
            return ""

        def named(side: str) -> list[str]:
            part = audience.get(side) or {}
            return [self.lists.get(pk, f"#{pk}") for pk in part.get("lists") or []] + [
                self.segments.get(pk, f"#{pk}") for pk in part.get("segments") or []
            ]

        text = ", ".join(named("include"))
        excluded = named("exclude")
        if excluded:
            text += _("; except %(names)s") % {"names": ", ".join(excluded)}
        return text


def find_contact(workspace: Any, query: str) -> Contact | None:
    """The contact a person means by an email or a name: an exact address first."""
    query = " ".join(query.split())
    if not query:
        return None
    contacts = Contact.objects.for_workspace(workspace).select_related("company", "owner")
    exact = contacts.filter(email__iexact=query).first()
    if exact is not None:
        return exact
    words = query.split()
    matches = contacts
    for word in words:
        matches = matches.filter(
            Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
        )
    return matches.order_by("last_name", "first_name", "id").first()


@dataclass
class AudienceCount:
    matched: int | None = None
    error: str = ""
    empty: bool = False


def count_audience(workspace: Any, audience: dict[str, Any]) -> AudienceCount:
    """How many contacts the audience means now (before suppression and consent)."""
    if not audience:
        return AudienceCount(empty=True)
    try:
        clean = validate_audience(workspace, audience)
    except AudienceInvalid as exc:
        return AudienceCount(error=str(exc))
    return AudienceCount(matched=audience_contacts(workspace, clean).count())


def recipient_count(campaign: Campaign) -> int | None:
    """How many recipients a send would have now: the audience through the sending
    gate (suppressed, unsubscribed and address-less contacts left out)."""
    from patron.mail import pipeline

    try:
        audience = validate_audience(campaign.workspace, campaign.audience)
    except AudienceInvalid:
        return None
    return int(pipeline.recipients(campaign.workspace, audience).count())


# The parts of a campaign a check can point at, as the editor names them.
PART_LABELS = {
    "subject": gettext_lazy("Subject"),
    "body": gettext_lazy("Body"),
    "text": gettext_lazy("Plain-text part"),
    "sender": gettext_lazy("From"),
    "audience": gettext_lazy("Audience"),
    "ab_test": gettext_lazy("A/B test"),
}


@dataclass(frozen=True)
class Finding:
    """A check's problem with the name of the part it is in, for the page."""

    problem: rendering.Problem
    part: str


def _problems(campaign: Campaign) -> list[rendering.Problem]:
    return campaigns.check_campaign(campaign)


def _findings(problems: list[rendering.Problem]) -> list[Finding]:
    return [
        Finding(problem, str(PART_LABELS.get(problem.part, problem.part))) for problem in problems
    ]


def _workspace_zone(request: WorkspaceRequest) -> ZoneInfo:
    return campaigns.workspace_zone(request.workspace)


# --- Pages ---------------------------------------------------------------------------------


@workspace_view(CAMPAIGNS_VIEW)
def campaign_list(request: WorkspaceRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    # The campaigns people send, or (``?kind=automated``) the ones workflows' steps send.
    automated = request.GET.get("kind") == "automated"
    rows = _campaigns(request).select_related("created_by").filter(automated=automated)
    if status in CampaignStatus.values:
        rows = rows.filter(status=status)
    else:
        status = ""
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(subject__icontains=query))
    page = Paginator(rows.order_by("-created_at", "-id"), PER_PAGE).get_page(
        request.GET.get("page")
    )
    names = AudienceNames(request.workspace)
    items = [(campaign, names.describe(campaign.audience)) for campaign in page]
    kind = "automated" if automated else ""
    given = (("q", query), ("status", status), ("kind", kind))
    params = urlencode({key: value for key, value in given if value})
    return render(
        request,
        "mail/campaign_list.html",
        {
            "page_obj": page,
            "items": items,
            "query": query,
            "status": status,
            "statuses": CampaignStatus.choices,
            "automated": automated,
            "query_string": params,
            "can_manage": request.membership.can(CAMPAIGNS_MANAGE),
            "workspace_zone": _workspace_zone(request).key,
        },
    )


@workspace_view(CAMPAIGNS_MANAGE)
def campaign_new(request: WorkspaceRequest) -> HttpResponse:
    form = NewCampaignForm(request.POST or None, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        try:
            content = campaigns.starting_content(request.workspace, form.cleaned_data["start"])
            campaign = campaigns.create_campaign(
                request.workspace,
                user=request.user,
                values={"name": form.cleaned_data["name"], **content},
            )
        except campaigns.CampaignInvalid as exc:
            for field_name, message in exc.errors.items():
                form.add_error(field_name if field_name in form.fields else None, message)
        else:
            messages.success(
                request,
                _("Campaign “%(name)s” created. Write the content and choose the audience.")
                % {"name": campaign.name},
            )
            return redirect("campaigns:detail", campaign_id=campaign.pk)
    return render(
        request, "mail/campaign_new.html", {"form": form}, status=400 if form.errors else 200
    )


@workspace_view(CAMPAIGNS_VIEW)
def campaign_detail(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """A draft opens in the editor (for those who may edit it); any other campaign
    shows where it is: live progress while it sends, totals after."""
    campaign = _campaign(request, campaign_id)
    if campaign.status == CampaignStatus.DRAFT and request.membership.can(CAMPAIGNS_MANAGE):
        return _editor(request, campaign)
    return _status_page(request, campaign)


@workspace_view(CAMPAIGNS_MANAGE)
@require_POST
def campaign_save(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        messages.error(request, _("Only a draft can be changed."))
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    form = CampaignForm(request.POST, workspace=request.workspace, campaign=campaign)
    content = editor.content_from_post(request.POST)
    content_errors: dict[str, str] = {}
    invalid_block = 0
    if request.POST.get("action") == "to_code":
        # The one-way switch: the MJML written from the design becomes the body.
        try:
            written = templates_service.clean_content(
                request.workspace, {"blocks": content.get("blocks")}
            )
        except templates_service.TemplateInvalid as error:
            content_errors, invalid_block = error.errors, error.block
        else:
            if "body" in written:
                content.update(body=written["body"], format=written["format"])
            content["blocks"] = {}
    if form.is_valid() and not content_errors:
        try:
            campaigns.update_campaign(
                campaign, user=request.user, values={**form.values(), **content}
            )
        except campaigns.CampaignInvalid as exc:
            form.add_service_errors(exc)
            content_errors = {
                name: message
                for name, message in exc.errors.items()
                if name in campaigns.CONTENT_FIELDS
            }
        else:
            messages.success(request, _("Campaign “%(name)s” saved.") % {"name": campaign.name})
            return redirect(reverse("campaigns:detail", args=[campaign.pk]) + "#checks")
    elif not content_errors:
        try:
            templates_service.clean_content(request.workspace, content)
        except templates_service.TemplateInvalid as error:
            content_errors, invalid_block = error.errors, error.block
    return _editor(
        request,
        campaign,
        form=form,
        content=content,
        content_errors=content_errors,
        invalid_block=invalid_block,
        status=400,
    )


def _editor(
    request: WorkspaceRequest,
    campaign: Campaign,
    *,
    form: CampaignForm | None = None,
    schedule_form: ScheduleForm | None = None,
    test_form: TestSendForm | None = None,
    content: dict[str, Any] | None = None,
    content_errors: dict[str, str] | None = None,
    invalid_block: int = 0,
    status: int = 200,
) -> HttpResponse:
    # The content editor shows what was saved, or what was typed when a save failed.
    shown: Any = campaign
    if content is not None:
        typed = {name: getattr(campaign, name) for name in campaigns.CONTENT_FIELDS}
        shown = SimpleNamespace(**{**typed, **content, "pk": campaign.pk})
        if not isinstance(shown.blocks, dict):
            shown.blocks = {}
    if form is None:
        form = CampaignForm(
            initial=CampaignForm.initial_for(campaign),
            workspace=request.workspace,
            campaign=campaign,
        )
    zone = _workspace_zone(request)
    if schedule_form is None:
        schedule_form = ScheduleForm(workspace_zone=zone)
    if test_form is None:
        test_form = TestSendForm(initial={"addresses": request.user.email})
    problems = _problems(campaign)
    counted = count_audience(request.workspace, campaign.audience or {})
    return render(
        request,
        "mail/campaign_edit.html",
        {
            "campaign": campaign,
            "form": form,
            "details": [form[name] for name in CampaignForm.DETAILS],
            "editor": editor.editor_context(
                request.workspace, shown, errors=content_errors, invalid_block=invalid_block
            ),
            "audience_count": counted,
            "findings": _findings(problems),
            "blocking": [problem for problem in problems if problem.blocking],
            "schedule_form": schedule_form,
            "test_form": test_form,
            "preview": _preview_context(request, campaign, ""),
            "workspace_zone": zone.key,
            "viewer_zone": timezone.get_current_timezone_name(),
            "can_send": request.membership.can(CAMPAIGNS_SEND),
        },
        status=status,
    )


def _status_page(request: WorkspaceRequest, campaign: Campaign) -> HttpResponse:
    names = AudienceNames(request.workspace)
    return render(
        request,
        "mail/campaign_detail.html",
        {
            "campaign": campaign,
            "audience_text": names.describe(campaign.audience),
            "preview": _preview_context(request, campaign, ""),
            **_live_context(request, campaign),
        },
    )


def _live_context(request: WorkspaceRequest, campaign: Campaign) -> dict[str, Any]:
    progress = campaigns.progress(campaign)
    ab = ab_tests.state(campaign)
    testing = ab is not None and not ab.decided
    done = progress.sent + progress.failed
    percent = min(100, done * 100 // progress.total) if progress.total else 0
    if progress.status == CampaignStatus.SENT:
        percent = 100
    return {
        "campaign": campaign,
        "progress": progress,
        "status_label": CampaignStatus(progress.status).label,
        # While an A/B test waits, the rest's time depends on the winner, not on a rate.
        "eta": duration_text(progress.eta_seconds) if progress.eta_seconds and not testing else "",
        "ab": ab,
        "not_sent": max(progress.total - progress.sent - progress.failed, 0),
        "done": done,
        "percent": percent,
        "live": progress.status in LIVE_STATUSES,
        # Due, but no worker has taken it yet (the scheduler or a worker starts it).
        "starting": progress.status == CampaignStatus.SCHEDULED
        and campaign.start_at is not None
        and campaign.start_at <= timezone.now(),
        "finished": progress.status in FINISHED_STATUSES,
        # A local-time send is a wall-clock time, shown as the workspace's zone reads it.
        "workspace_zone": campaigns.workspace_zone(request.workspace).key,
        "captured": settings.EMAIL_TRANSPORT == "capture" and request.membership.can(OUTBOX_VIEW),
        "can_send": request.membership.can(CAMPAIGNS_SEND),
        "can_manage": request.membership.can(CAMPAIGNS_MANAGE),
    }


def duration_text(seconds: int) -> str:
    """ "40 seconds", "3 minutes", "2 hours 5 minutes": what a person reads at a glance."""
    if seconds < 60:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    minutes = (seconds + 59) // 60
    if minutes < 60:
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    hours, minutes = divmod(minutes, 60)
    text = ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    if minutes:
        text += " " + ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    return text


@workspace_view(CAMPAIGNS_VIEW)
def campaign_progress(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """The live part of the campaign page (status, progress, actions), polled by htmx."""
    campaign = _campaign(request, campaign_id)
    return render(request, "mail/_campaign_live.html", _live_context(request, campaign))


@workspace_view(CAMPAIGNS_VIEW)
@require_POST
def audience_count(request: WorkspaceRequest) -> HttpResponse:
    """The live count of the audience picker, as boxes are ticked."""
    form = CampaignForm(request.POST, workspace=request.workspace, campaign=Campaign())
    form.is_valid()  # only the audience fields matter here
    audience = {
        side: {
            kind: [int(pk) for pk in form.cleaned_data.get(f"{side}_{kind}") or []]
            for kind in ("lists", "segments")
        }
        for side in ("include", "exclude")
    }
    if not any(ids for part in audience.values() for ids in part.values()):
        audience = {}
    counted = count_audience(request.workspace, audience)
    if not counted.error:
        for name in ("include_lists", "include_segments", "exclude_lists", "exclude_segments"):
            if form.errors.get(name):
                counted = AudienceCount(error=" ".join(str(e) for e in form.errors[name]))
    return render(request, "mail/_campaign_audience_count.html", {"audience_count": counted})


# --- Preview -------------------------------------------------------------------------------


def _preview_context(request: WorkspaceRequest, campaign: Campaign, query: str) -> dict[str, Any]:
    contact = find_contact(request.workspace, query) if query else None
    width = request.GET.get("width", "desktop")
    context: dict[str, Any] = {
        "query": query,
        "contact": contact,
        "not_found": bool(query) and contact is None,
        "width": width if width in ("desktop", "mobile") else "desktop",
        "rendered": None,
        "problem": None,
    }
    try:
        context["rendered"] = campaigns.preview(campaign, contact)
    except rendering.TemplateError as exc:
        context["problem"] = exc.problem
    except LiquidError as exc:  # an error only rendering finds (a filter given a bad value)
        context["problem"] = str(exc)
    return context


@workspace_view(CAMPAIGNS_VIEW)
def campaign_preview(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """The preview panel: the message as a chosen contact, at desktop or mobile width."""
    campaign = _campaign(request, campaign_id)
    context = _preview_context(request, campaign, request.GET.get("contact", ""))
    context["campaign"] = campaign
    return render(request, "mail/_campaign_preview.html", context)


@xframe_options_sameorigin
@workspace_view(CAMPAIGNS_VIEW)
def campaign_preview_html(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """The rendered HTML alone, for the sandboxed iframe of the preview."""
    campaign = _campaign(request, campaign_id)
    contact = None
    contact_id = request.GET.get("contact", "")
    if contact_id.isdigit():
        contact = (
            Contact.objects.for_workspace(request.workspace)
            .select_related("company", "owner")
            .filter(pk=int(contact_id))
            .first()
        )
    try:
        html = campaigns.preview(campaign, contact).html
    except (rendering.TemplateError, LiquidError) as exc:
        problem = exc.problem if isinstance(exc, rendering.TemplateError) else exc
        response = HttpResponse(str(problem), content_type="text/plain; charset=utf-8")
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
        return response
    return sandboxed_html(html)


# --- Test send and schedule ------------------------------------------------------------------


@workspace_view(CAMPAIGNS_MANAGE)
@require_POST
def campaign_test(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    form = TestSendForm(request.POST)
    if form.is_valid():
        contact = None
        wanted = form.cleaned_data["contact"].strip()
        if wanted:
            contact = find_contact(request.workspace, wanted)
            if contact is None:
                form.add_error("contact", _("No contact matches “%(query)s”.") % {"query": wanted})
        if not form.errors:
            addresses = form.address_list()
            try:
                campaigns.send_test(
                    campaign, user=request.user, addresses=addresses, contact=contact
                )
            except campaigns.CampaignInvalid as exc:
                for field_name, message in exc.errors.items():
                    form.add_error(field_name if field_name in form.fields else None, message)
            else:
                messages.success(
                    request,
                    _("Test sent to %(addresses)s.") % {"addresses": ", ".join(addresses)},
                )
                return redirect(reverse("campaigns:detail", args=[campaign.pk]) + "#test")
    if campaign.status != CampaignStatus.DRAFT or not request.membership.can(CAMPAIGNS_MANAGE):
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    return _editor(request, campaign, test_form=form, status=400)


@workspace_view(CAMPAIGNS_SEND)
@require_POST
def campaign_schedule(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """Review, then confirm: the first post shows how many people it goes to and
    when; the second (``confirm``) schedules it."""
    campaign = _campaign(request, campaign_id)
    zone = _workspace_zone(request)
    form = ScheduleForm(request.POST, workspace_zone=zone)
    if campaign.status != CampaignStatus.DRAFT:
        messages.error(request, _("Only a draft can be sent."))
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    if not form.is_valid():
        return _editor(request, campaign, schedule_form=form, status=400)
    at, local_time = form.moment()
    if request.POST.get("confirm") != "yes":
        problems = _problems(campaign)
        return render(
            request,
            "mail/campaign_confirm.html",
            {
                "campaign": campaign,
                "form": form,
                "at": at,
                "local_time": local_time,
                "recipients": recipient_count(campaign),
                "blocking": _findings([problem for problem in problems if problem.blocking]),
                "workspace_zone": zone.key,
                "audience_text": AudienceNames(request.workspace).describe(campaign.audience),
            },
        )
    try:
        campaigns.schedule_campaign(campaign, user=request.user, at=at, local_time=local_time)
    except campaigns.CampaignInvalid as exc:
        for field_name, message in exc.errors.items():
            form.add_error("send_at" if field_name == "send_at" else None, message)
        return _editor(request, campaign, schedule_form=form, status=400)
    if at is None:
        messages.success(request, _("“%(name)s” is on its way.") % {"name": campaign.name})
    else:
        messages.success(request, _("“%(name)s” is scheduled.") % {"name": campaign.name})
    return redirect("campaigns:detail", campaign_id=campaign.pk)


def _act(request: WorkspaceRequest, campaign_id: int, action: Any, done: str) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    try:
        result = action(campaign, user=request.user)
    except campaigns.CampaignInvalid as exc:
        messages.error(request, " ".join(exc.errors.values()))
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    messages.success(request, done % {"name": campaign.name})
    return redirect("campaigns:detail", campaign_id=result.pk)


@workspace_view(CAMPAIGNS_SEND)
@require_POST
def campaign_pause(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    return _act(request, campaign_id, campaigns.pause_campaign, _("“%(name)s” is paused."))


@workspace_view(CAMPAIGNS_SEND)
@require_POST
def campaign_resume(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    return _act(request, campaign_id, campaigns.resume_campaign, _("“%(name)s” is sending again."))


@workspace_view(CAMPAIGNS_SEND)
@require_POST
def campaign_cancel(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    return _act(request, campaign_id, campaigns.cancel_campaign, _("“%(name)s” is cancelled."))


@workspace_view(CAMPAIGNS_SEND)
@require_POST
def campaign_unschedule(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    return _act(
        request,
        campaign_id,
        campaigns.unschedule_campaign,
        _("“%(name)s” is a draft again: it will not go until it is sent or scheduled anew."),
    )


@workspace_view(CAMPAIGNS_MANAGE)
@require_POST
def campaign_duplicate(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    copy = campaigns.duplicate_campaign(campaign, user=request.user)
    messages.success(request, _("“%(name)s” created as a draft.") % {"name": copy.name})
    return redirect("campaigns:detail", campaign_id=copy.pk)


@workspace_view(CAMPAIGNS_MANAGE)
@require_POST
def campaign_delete(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    try:
        campaigns.delete_campaign(campaign, user=request.user)
    except campaigns.CampaignInvalid as exc:
        messages.error(request, " ".join(exc.errors.values()))
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    messages.success(request, _("Draft “%(name)s” deleted.") % {"name": campaign.name})
    return redirect("campaigns:list")


# --- Recipients ------------------------------------------------------------------------------


@workspace_view(CAMPAIGNS_VIEW)
def campaign_recipients(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """Who the campaign went to (the recipient snapshot), and how each message fared."""
    campaign = _campaign(request, campaign_id)
    status = request.GET.get("status", "")
    query = request.GET.get("q", "").strip()
    rows = Delivery.objects.for_workspace(request.workspace).filter(campaign=campaign)
    if status in DeliveryStatus.values:
        rows = rows.filter(status=status)
    else:
        status = ""
    if query:
        rows = rows.filter(email__icontains=query)
    page = SeekPage(rows.order_by("id"), request.GET.get("page"), RECIPIENTS_PER_PAGE)
    params = urlencode({key: value for key, value in (("q", query), ("status", status)) if value})
    return render(
        request,
        "mail/campaign_recipients.html",
        {
            "campaign": campaign,
            "page_obj": page,
            "status": status,
            "query": query,
            "statuses": DeliveryStatus.choices,
            "query_string": params,
        },
    )
