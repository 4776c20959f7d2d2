"""Public pages of campaign mail: the message as a web page ("view in browser")."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from patron.crm.models import Contact
from patron.mail import ab_tests, pipeline, tokens
from patron.mail.campaigns import template_source
from patron.mail.models import Campaign, Delivery
from patron.mail.rendering import TemplateError, compile_template

# What a delivered message may do when opened as a page: show itself, no scripts, no forms.
MESSAGE_POLICY = (
    "sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation; "
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src *"
)


def _not_found(request: HttpRequest) -> HttpResponse:
    response = render(request, "mail/view_not_found.html", status=404)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@require_GET
def view_in_browser(request: HttpRequest, token: str) -> HttpResponse:
    """The message a recipient got, rendered again from its delivery (token kind "view")."""
    values = tokens.unsign("view", token)
    if values is None or len(values) != 2:
        return _not_found(request)
    workspace_id, delivery_id = values
    delivery = Delivery.objects.for_workspace(workspace_id).filter(pk=delivery_id).first()
    if delivery is None:
        return _not_found(request)
    campaign = (
        Campaign.objects.for_workspace(workspace_id)
        .select_related("workspace", "sender")
        .get(pk=delivery.campaign_id)
    )
    contact = (
        Contact.objects.for_workspace(workspace_id)
        .select_related("company", "owner")
        .filter(pk=delivery.contact_id)
        .first()
    )
    if contact is None:
        return _not_found(request)
    # An A/B test's variant shows its own subject and content.
    try:
        campaign = ab_tests.variant_campaign(
            campaign, ab_tests.content_index(campaign, delivery.variant)
        )
        compiled = compile_template(template_source(campaign))
    except (TemplateError, ab_tests.AbInvalid):
        return _not_found(request)
    compiled = pipeline.with_preheader(compiled, campaign.preheader)
    segments = pipeline.segments_of(campaign, contact)
    context = pipeline.recipient_context(
        campaign, contact, delivery_id=delivery.pk, segments=segments
    )
    html = compiled.render(context).html
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = MESSAGE_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Cache-Control"] = "private, no-store"
    return response
