"""Form definitions and submissions: what a valid submission writes, and what is refused."""

from __future__ import annotations

import time

import pytest

from patron.activity.models import Event
from patron.audience.models import ConsentRecord, Subscription
from patron.capture import services
from patron.capture.models import Form, FormSubmission
from patron.core.models import Notification
from patron.crm.models import Company, Contact
from patron.crm.services import create_contact
from patron.mail.models import OutboxMessage
from tests.capture.conftest import FIELDS, valid
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def counts(workspace):
    return (
        Contact.objects.for_workspace(workspace).count(),
        FormSubmission.objects.for_workspace(workspace).count(),
        Subscription.objects.for_workspace(workspace).count(),
        Event.objects.for_workspace(workspace).filter(kind="form.submitted").count(),
        Company.objects.for_workspace(workspace).count(),
    )


# --- Definitions -------------------------------------------------------------------------


def test_a_form_needs_a_visible_email_field(workspace):
    with pytest.raises(services.FormInvalid) as exc:
        services.create_form(
            workspace=workspace,
            name="No email",
            fields=[{"key": "name", "label": "Name", "maps_to": "contact.first_name"}],
        )
    assert "contact's email" in exc.value.errors["fields"]
    assert not Form.objects.for_workspace(workspace).exists()


def test_definition_errors_name_the_field(workspace):
    bad = [
        *FIELDS[:2],
        {"key": "email", "label": "Again", "maps_to": ""},
        {"key": "website", "label": "Site", "maps_to": ""},
        {"key": "x", "label": "X", "maps_to": "contact.password"},
    ]
    with pytest.raises(services.FormInvalid) as exc:
        services.create_form(workspace=workspace, name="Bad", fields=bad)
    assert "Two fields have the key “email”" in exc.value.errors["fields.2"]
    assert "used by the form itself" in exc.value.errors["fields.3"]
    assert "Choose where" in exc.value.errors["fields.4"]


def test_lists_need_consent_text_and_origins_are_checked(workspace, newsletter):
    with pytest.raises(services.FormInvalid) as exc:
        services.create_form(workspace=workspace, name="F", fields=FIELDS[:1], lists=[newsletter])
    assert "consent text" in exc.value.errors["consent_text"]
    with pytest.raises(services.FormInvalid) as exc:
        services.create_form(
            workspace=workspace, name="F", fields=FIELDS[:1], allowed_origins=["www.acme.example"]
        )
    assert "https://www.example.com" in exc.value.errors["allowed_origins"]


def test_lists_of_another_workspace_are_refused(workspace):
    from patron.audience import lists

    other = lists.create_list(workspace=WorkspaceFactory(), name="Theirs")
    with pytest.raises(services.FormInvalid) as exc:
        services.create_form(
            workspace=workspace, name="F", fields=FIELDS[:1], consent_text="ok", lists=[other]
        )
    assert "not part of this workspace" in exc.value.errors["lists"]


# --- A valid submission -------------------------------------------------------------------


def test_a_new_contact_with_everything_the_form_does(workspace, owner, signup, newsletter):
    submission = services.submit_form(
        form=signup,
        data=valid(signup, unknown_key="ignored"),
        details=services.RequestDetails(
            ip_address="203.0.113.9",
            user_agent="Firefox",
            page_url="https://www.acme.example/demo?utm_source=ads",
            visitor_id="v-123",
        ),
    )
    contact = submission.contact
    assert (contact.email, contact.first_name, contact.last_name) == (
        "ann@example.com",
        "Ann",
        "Lee",
    )
    assert contact.company.name == "Lee Ltd"
    assert contact.custom == {"seats": 12}
    assert contact.source == "Form: Demo request"
    assert sorted(contact.tags.values_list("name", flat=True)) == ["demo", "website"]
    assert submission.values == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "company": "Lee Ltd",
        "seats": 12,
        "utm_source": "direct",
    }
    assert submission.visitor_id == "v-123" and submission.consent_given
    subscription = Subscription.objects.for_workspace(workspace).get(contact=contact)
    assert (subscription.mailing_list, subscription.status) == (newsletter, "subscribed")
    consent = ConsentRecord.objects.for_workspace(workspace).get(contact=contact)
    assert consent.source == "form"
    assert consent.consent_text == "Yes, send me the Acme newsletter."
    assert consent.ip_address == "203.0.113.9"
    assert consent.details["submission_id"] == submission.pk
    event = Event.objects.for_workspace(workspace).get(kind="form.submitted")
    assert event.contact_id == contact.pk and event.visitor_id == "v-123"
    assert event.properties == {
        "form_id": signup.pk,
        "form": "Demo request",
        "url": "https://www.acme.example/demo?utm_source=ads",
        "utm_source": "direct",
    }
    note = Notification.objects.for_workspace(workspace).get(user=owner)
    assert "New contact" in note.text and "Demo request" in note.text
    assert note.url == f"/forms/{signup.pk}/submissions/"


def test_an_existing_contact_is_updated_never_wiped(workspace, signup):
    company = Company.objects.create(workspace=workspace, name="Old Co")
    known = create_contact(
        workspace=workspace,
        email="ann@example.com",
        first_name="Annie",
        last_name="Lee-Smith",
        phone="+44 1",
        company=company,
        custom={"seats": 3},
    )
    data = valid(signup, first_name="Ann", last_name="", company="New Co", seats="")
    submission = services.submit_form(form=signup, data=data)
    known.refresh_from_db()
    assert submission.contact_id == known.pk
    assert known.first_name == "Ann"  # what they sent now wins
    assert known.last_name == "Lee-Smith"  # a blank never wipes
    assert known.phone == "+44 1"
    assert known.company == company  # an existing company is kept
    assert known.custom == {"seats": 3}
    assert Contact.objects.for_workspace(workspace).count() == 1


def test_double_opt_in_list_stays_pending_and_the_confirmation_goes_out(
    workspace, signup, double_list, django_capture_on_commit_callbacks
):
    services.update_form(form=signup, lists=[double_list])
    with django_capture_on_commit_callbacks(execute=True):
        submission = services.submit_form(form=signup, data=valid(signup))
    subscription = Subscription.objects.for_workspace(workspace).get(contact=submission.contact)
    assert subscription.status == "pending"
    message = OutboxMessage.objects.get()
    assert message.to == ["ann@example.com"]
    assert "Please confirm your subscription to Product news" in message.subject


def test_without_consent_the_form_can_be_sent_when_optional_but_subscribes_nobody(
    workspace, signup
):
    services.update_form(form=signup, consent_required=False)
    submission = services.submit_form(form=signup, data=valid(signup, consent=""))
    assert not submission.consent_given
    assert not Subscription.objects.for_workspace(workspace).exists()


# --- Refusals: clear messages, nothing saved -------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"email": ""}, "email", "Email is required."),
        ({"email": "ann@"}, "email", "Enter a valid email address"),
        ({"seats": "a dozen"}, "seats", "Enter a number."),
        ({"first_name": "x" * 101}, "first_name", "Keep First name to 100 characters."),
        ({"consent": ""}, "consent", "Tick the box to agree"),
    ],
)
def test_invalid_values_are_refused_with_nothing_saved(workspace, signup, changes, key, message):
    before = counts(workspace)
    with pytest.raises(services.SubmissionInvalid) as exc:
        services.submit_form(form=signup, data=valid(signup, **changes))
    assert message in exc.value.errors[key]
    assert counts(workspace) == before


def test_every_error_is_reported_at_once(signup):
    with pytest.raises(services.SubmissionInvalid) as exc:
        services.submit_form(form=signup, data={"seats": "many"})
    assert set(exc.value.errors) == {"email", "seats", "consent"}


def test_a_failure_after_the_first_write_rolls_everything_back(workspace, signup, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "record", broken)
    before = counts(workspace)
    with pytest.raises(RuntimeError):
        services.submit_form(form=signup, data=valid(signup))
    assert counts(workspace) == before


# --- The guard --------------------------------------------------------------------------


def guard(form, data, *, origin="", ip="198.51.100.1", now=None):
    services.check_guard(form=form, data=data, ip_address=ip, origin=origin, now=now)


def test_the_guard_lets_a_real_person_through(signup, settings):
    guard(signup, valid(signup), origin="https://www.acme.example")
    guard(signup, valid(signup), origin=settings.BASE_URL)  # Patron's own page


@pytest.mark.parametrize(
    ("make", "code", "status"),
    [
        (lambda form: valid(form, website="http://spam.example"), "honeypot", 400),
        (lambda form: valid(form, _ts=""), "token", 400),
        (lambda form: valid(form, _ts="forged:value"), "token", 400),
        (
            lambda form: valid(form, _ts=services.issue_token(form, now=time.time() - 2 * 86400)),
            "stale",
            400,
        ),
    ],
)
def test_the_guard_refuses(signup, make, code, status):
    with pytest.raises(services.SubmissionRefused) as exc:
        guard(signup, make(signup))
    assert (exc.value.code, exc.value.status) == (code, status)
    assert exc.value.message


def test_too_fast(signup, settings):
    settings.FORMS_MIN_FILL_SECONDS = 3
    with pytest.raises(services.SubmissionRefused) as exc:
        guard(signup, valid(signup))
    assert exc.value.code == "too_fast" and "too quickly" in exc.value.message
    token = services.issue_token(signup, now=time.time() - 5)
    guard(signup, valid(signup, _ts=token))


def test_a_token_of_another_form_is_refused(workspace, signup):
    other = services.create_form(workspace=workspace, name="Other", fields=FIELDS[:1])
    with pytest.raises(services.SubmissionRefused) as exc:
        guard(signup, valid(signup, _ts=services.issue_token(other)))
    assert exc.value.code == "token"


def test_foreign_origin(signup):
    with pytest.raises(services.SubmissionRefused) as exc:
        guard(signup, valid(signup), origin="https://evil.example")
    assert (exc.value.code, exc.value.status) == ("origin", 403)
    assert "https://evil.example" in exc.value.message


def test_rate_limit_per_address(signup, settings):
    settings.FORMS_RATE_LIMIT = 3
    for _ in range(3):
        guard(signup, valid(signup), ip="192.0.2.7")
    with pytest.raises(services.SubmissionRefused) as exc:
        guard(signup, valid(signup), ip="192.0.2.7")
    assert (exc.value.code, exc.value.status) == ("rate_limited", 429)
    guard(signup, valid(signup), ip="192.0.2.8")  # another address is not affected


def test_hidden_fields_take_url_parameters_then_defaults(signup):
    assert services.initial_values(signup, {"utm_source": "newsletter"}) == {
        "utm_source": "newsletter"
    }
    assert services.initial_values(signup, {}) == {"utm_source": "direct"}
