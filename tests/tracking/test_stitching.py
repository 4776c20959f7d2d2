"""Identity stitching: a visitor becomes a known contact, with their earlier visits."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from patron.activity.models import Event
from patron.activity.services import record
from patron.crm.touches import Touch, record_touches
from patron.tracking import stitching
from patron.tracking.models import VisitorLink
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def view(workspace, visitor, url, *, referrer="", minutes_ago=0, **utm):
    properties = {"url": url, **{f"utm_{k}": v for k, v in utm.items()}}
    if referrer:
        properties["referrer"] = referrer
    return record(
        workspace=workspace,
        kind="page.viewed",
        visitor_id=visitor,
        properties=properties,
        occurred_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_stitching_gives_the_visitors_earlier_events_to_the_contact(workspace):
    contact = ContactFactory(workspace=workspace)
    first = view(workspace, "device-a-001", "https://acme.example/?utm_source=ads&utm_medium=cpc",
                 minutes_ago=30, source="ads", medium="cpc")  # fmt: skip
    second = view(workspace, "device-a-001", "https://acme.example/pricing", minutes_ago=20)
    other = view(workspace, "device-z-999", "https://acme.example/", minutes_ago=10)

    moved = stitching.stitch_visitor(
        workspace_id=workspace.pk, visitor_id="device-a-001", contact_id=contact.pk, method="form"
    )

    assert moved == 2
    events = Event.objects.for_workspace(workspace)
    assert events.get(pk=first.pk).contact_id == contact.pk
    assert events.get(pk=second.pk).contact_id == contact.pk
    assert events.get(pk=other.pk).contact_id is None  # another visitor stays anonymous
    link = VisitorLink.objects.for_workspace(workspace).get(visitor_id="device-a-001")
    assert (link.contact_id, link.method) == (contact.pk, "form")
    identified = events.get(kind="web.identified")
    assert identified.contact_id == contact.pk
    assert identified.properties == {"method": "form", "events_moved": 2}
    contact.refresh_from_db()
    assert (contact.first_touch_source, contact.first_touch_medium) == ("ads", "cpc")
    assert contact.first_touch_landing_url.endswith("utm_medium=cpc")


def test_many_devices_become_one_contact(workspace):
    contact = ContactFactory(workspace=workspace)
    view(workspace, "laptop-0001", "https://acme.example/a")
    view(workspace, "phone-00001", "https://acme.example/b")
    for visitor in ("laptop-0001", "phone-00001"):
        stitching.stitch_visitor(
            workspace_id=workspace.pk, visitor_id=visitor, contact_id=contact.pk, method="form"
        )
    links = VisitorLink.objects.for_workspace(workspace).filter(contact=contact)
    assert set(links.values_list("visitor_id", flat=True)) == {"laptop-0001", "phone-00001"}
    views = Event.objects.for_workspace(workspace).filter(kind="page.viewed")
    assert set(views.values_list("contact_id", flat=True)) == {contact.pk}


def test_stitching_again_records_nothing_new(workspace):
    contact = ContactFactory(workspace=workspace)
    for _ in range(2):
        stitching.stitch_visitor(
            workspace_id=workspace.pk,
            visitor_id="same-device",
            contact_id=contact.pk,
            method="form",
        )
    assert Event.objects.for_workspace(workspace).filter(kind="web.identified").count() == 1
    assert VisitorLink.objects.for_workspace(workspace).count() == 1


def test_a_shared_device_follows_the_newest_identification(workspace):
    ada, bo = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    view(workspace, "shared-pc-01", "https://acme.example/a", minutes_ago=5)
    stitching.stitch_visitor(
        workspace_id=workspace.pk, visitor_id="shared-pc-01", contact_id=ada.pk, method="form"
    )
    later = view(workspace, "shared-pc-01", "https://acme.example/b")
    stitching.stitch_visitor(
        workspace_id=workspace.pk, visitor_id="shared-pc-01", contact_id=bo.pk, method="identify"
    )
    assert VisitorLink.objects.for_workspace(workspace).get().contact_id == bo.pk
    # What was already Ada's stays hers; the anonymous view went to Bo.
    views = Event.objects.for_workspace(workspace).filter(kind="page.viewed")
    assert views.exclude(pk=later.pk).get().contact_id == ada.pk
    assert views.get(pk=later.pk).contact_id == bo.pk


def test_first_touch_is_kept_and_last_touch_follows_the_newest(workspace):
    contact = ContactFactory(workspace=workspace)
    now = timezone.now()
    first = Touch(source="newsletter", medium="email", landing_url="https://a/1", at=now)
    record_touches(workspace=workspace, contact_id=contact.pk, first=first, last=first)
    later = Touch(source="google", medium="cpc", campaign="spring", at=now + timedelta(hours=1))
    record_touches(workspace=workspace, contact_id=contact.pk, first=later, last=later)
    older = Touch(source="bing", at=now - timedelta(days=1))
    assert not record_touches(workspace=workspace, contact_id=contact.pk, first=older, last=older)
    contact.refresh_from_db()
    assert (contact.first_touch_source, contact.first_touch_medium) == ("newsletter", "email")
    assert contact.first_touch_at == now
    assert (contact.last_touch_source, contact.last_touch_campaign) == ("google", "spring")
    assert contact.last_touch_at == now + timedelta(hours=1)


def test_a_referrer_from_another_site_is_a_touch_but_the_sites_own_pages_are_not():
    touch = stitching.touch_of(
        {"url": "https://acme.example/x", "referrer": "https://www.google.com/search?q=acme"}
    )
    assert touch is not None
    assert (touch.source, touch.medium, touch.referrer) == (
        "www.google.com",
        "referral",
        "https://www.google.com/search?q=acme",
    )
    assert (
        stitching.touch_of({"url": "https://acme.example/x", "referrer": "https://acme.example/"})
        is None
    )
    assert stitching.touch_of({"url": "https://acme.example/x"}) is None


def test_an_email_reference_is_signed_for_one_workspace_and_expires(workspace):
    contact = ContactFactory(workspace=workspace)
    token = stitching.sign_reference(workspace_id=workspace.pk, contact_id=contact.pk)
    assert stitching.read_reference(token) == (workspace.pk, contact.pk)
    assert stitching.read_reference(token[:-2] + "AA") is None
    old = stitching.sign_reference(
        workspace_id=workspace.pk, contact_id=contact.pk, now=time.time() - 7200
    )
    assert stitching.read_reference(old) is None
    other = WorkspaceFactory()
    assert (
        stitching.stitch_reference(workspace_id=other.pk, visitor_id="visitor-01", token=token)
        is None
    )
    assert not VisitorLink.objects.unscoped().exists()
    assert (
        stitching.stitch_reference(workspace_id=workspace.pk, visitor_id="visitor-01", token=token)
        == contact.pk
    )


def test_identify_from_a_page_never_creates_a_contact_but_the_api_does(workspace):
    assert (
        stitching.identify_visitor(
            workspace_id=workspace.pk, visitor_id="visitor-02", email="nobody@acme.example"
        )
        is None
    )
    identified = stitching.identify_visitor(
        workspace_id=workspace.pk, visitor_id="visitor-02", email="Nobody@acme.example",
        create=True, source="API",
    )  # fmt: skip
    assert identified is not None and identified.created
    link = VisitorLink.objects.for_workspace(workspace).get()
    assert (link.contact.email, link.method) == ("nobody@acme.example", "api")


def test_a_form_submission_with_a_visitor_id_stitches(workspace, settings):
    from django.core.cache import cache

    from patron.capture.services import RequestDetails, create_form, submit_form

    settings.FORMS_MIN_FILL_SECONDS = 0
    cache.clear()
    form = create_form(
        workspace=workspace,
        name="Contact us",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email"}],
    )
    view(workspace, "browser-123", "https://acme.example/?utm_source=fair", source="fair")
    submission = submit_form(
        form=form,
        data={"email": "ada@acme.example"},
        details=RequestDetails(visitor_id="browser-123"),
    )
    viewed = Event.objects.for_workspace(workspace).get(kind="page.viewed")
    assert viewed.contact_id == submission.contact_id
    contact = submission.contact
    contact.refresh_from_db()
    assert contact.first_touch_source == "fair"


def test_a_merge_keeps_the_earlier_first_touch_and_the_later_last_touch(workspace):
    from patron.crm.merge import merge_contacts

    now = timezone.now()
    primary = ContactFactory(workspace=workspace)
    other = ContactFactory(workspace=workspace)
    record_touches(workspace=workspace, contact_id=primary.pk,
                   first=Touch(source="ads", at=now), last=Touch(source="ads", at=now))  # fmt: skip
    early = Touch(source="fair", at=now - timedelta(days=3))
    record_touches(workspace=workspace, contact_id=other.pk, first=early, last=early)
    primary.refresh_from_db()
    other.refresh_from_db()
    merged = merge_contacts(primary=primary, other=other)
    merged.refresh_from_db()
    assert (merged.first_touch_source, merged.first_touch_at) == ("fair", early.at)
    assert merged.last_touch_source == "ads"
