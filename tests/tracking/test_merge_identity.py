"""A merge keeps what the apps above the CRM know of the merged-away contact."""

from __future__ import annotations

import pytest

from patron.capture.models import FormSubmission
from patron.capture.services import create_form, submit_form
from patron.crm import merge
from patron.crm.models import Contact
from patron.tracking.models import VisitorLink
from patron.tracking.stitching import stitch_visitor
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_a_merge_moves_the_visitor_links_and_form_submissions(workspace, settings):
    settings.FORMS_MIN_FILL_SECONDS = 0
    kept = ContactFactory(workspace=workspace, first_name="Ann", email="ann@x.test")
    other = ContactFactory(workspace=workspace, first_name="Ann", email="ann.work@x.test")
    stitch_visitor(
        workspace_id=workspace.pk, visitor_id="phone", contact_id=other.pk, method="form"
    )
    stitch_visitor(
        workspace_id=workspace.pk, visitor_id="laptop", contact_id=kept.pk, method="form"
    )
    form = create_form(
        workspace=workspace,
        name="Contact us",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email"}],
        consent_required=False,
    )
    submission = submit_form(form=form, data={"email": "ann.work@x.test"})
    assert submission.contact_id == other.pk

    merge.merge_contacts(primary=kept, other=other)

    assert not Contact.objects.for_workspace(workspace).filter(pk=other.pk).exists()
    links = VisitorLink.objects.for_workspace(workspace).order_by("visitor_id")
    assert [(link.visitor_id, link.contact_id) for link in links] == [
        ("laptop", kept.pk),
        ("phone", kept.pk),
    ]
    assert FormSubmission.objects.for_workspace(workspace).get().contact_id == kept.pk
    # Identifying the phone again as the kept contact adds no second link.
    stitch_visitor(
        workspace_id=workspace.pk, visitor_id="phone", contact_id=kept.pk, method="identify"
    )
    assert VisitorLink.objects.for_workspace(workspace).filter(contact_id=kept.pk).count() == 2
