"""Template services: create, update, duplicate, delete, starters, content rules shared
with campaigns (blocks -> body on the server, segments of the workspace only)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from patron.audience.models import Segment
from patron.core.models import AuditEntry
from patron.mail import blocks, starters, templates_service
from patron.mail.models import EmailTemplate
from patron.mail.rendering import check_template, compile_template
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def segment(workspace, name="VIP", conditions=None):
    return Segment.objects.create(
        workspace=workspace, name=name, definition={"match": "all", "conditions": conditions or []}
    )


def built(*items):
    doc = blocks.empty_document()
    doc["blocks"] = [dict(blocks.new_block(i["type"]), **i) for i in items]
    return doc


def test_create_from_blocks_generates_the_body_on_the_server(workspace, owner):
    template = templates_service.create_template(
        workspace,
        user=owner,
        values={
            "name": "  Spring   news ",
            "subject": "Hello",
            "blocks": built({"type": "heading", "text": "Spring"}, {"type": "footer"}),
            "body": "<mjml>client MJML is never taken</mjml>",
            "format": "html",
        },
    )
    assert template.name == "Spring news"
    assert template.format == "mjml"
    assert "client MJML" not in template.body and "Spring</h1>" in template.body
    assert template.blocks["blocks"][0]["type"] == "heading"
    assert AuditEntry.objects.filter(workspace=workspace, action="email_template.created").exists()


def test_code_templates_keep_their_body(workspace, owner):
    template = templates_service.create_template(
        workspace, user=owner, values={"name": "Plain", "format": "html", "body": "<p>Hi</p>"}
    )
    assert (template.format, template.body, template.blocks) == ("html", "<p>Hi</p>", {})


def test_errors_name_the_field_and_the_block(workspace, owner):
    with pytest.raises(templates_service.TemplateInvalid) as caught:
        templates_service.create_template(
            workspace,
            user=owner,
            values={"name": "", "blocks": built({"type": "button", "label": "Go", "url": "nope"})},
        )
    assert caught.value.errors["name"] == "Give the template a name."
    assert caught.value.errors["blocks"].startswith("Block 1 (Button): Link:")
    with pytest.raises(templates_service.TemplateInvalid) as caught:
        templates_service.create_template(
            workspace, user=owner, values={"name": "x", "format": "docx"}
        )
    assert "format" in caught.value.errors
    assert not EmailTemplate.objects.for_workspace(workspace).exists()


def test_dynamic_blocks_may_name_only_the_workspaces_segments(workspace, owner):
    mine = segment(workspace)
    theirs = segment(WorkspaceFactory(), "Theirs")
    template = templates_service.create_template(
        workspace,
        user=owner,
        values={"name": "Dyn", "blocks": built({"type": "text", "segment": mine.pk})},
    )
    assert blocks.referenced_segments(template.body) == {mine.pk}
    with pytest.raises(templates_service.TemplateInvalid) as caught:
        templates_service.update_template(
            template,
            user=owner,
            values={"blocks": built({"type": "text", "segment": theirs.pk})},
        )
    assert "does not exist in this workspace" in caught.value.errors["blocks"]
    # A hand-written body is held to the same rule.
    with pytest.raises(templates_service.TemplateInvalid) as caught:
        templates_service.update_template(
            template,
            user=owner,
            values={"body": f"{{% if segments contains {theirs.pk} %}}x{{% endif %}}"},
        )
    assert f"No segment {theirs.pk} in this workspace" in caught.value.errors["body"]


def test_a_new_body_by_hand_ends_the_builder_design(workspace, owner):
    template = templates_service.create_template(
        workspace, user=owner, values={"name": "B", "blocks": built({"type": "text"})}
    )
    templates_service.update_template(template, user=owner, values={"body": "<mjml></mjml>"})
    template.refresh_from_db()
    assert template.blocks == {} and template.body == "<mjml></mjml>"


def test_duplicate_and_delete(workspace, owner):
    template = templates_service.create_from_starter(workspace, user=owner, key="newsletter")
    copy = templates_service.duplicate_template(template, user=owner)
    assert copy.pk != template.pk and copy.name == "Copy of Newsletter"
    assert (copy.body, copy.blocks, copy.subject) == (
        template.body,
        template.blocks,
        template.subject,
    )
    templates_service.delete_template(template, user=owner)
    assert list(templates_service.templates_for(workspace)) == [copy]
    assert AuditEntry.objects.filter(workspace=workspace, action="email_template.deleted").exists()


def test_unknown_starter_and_fields_are_refused(workspace, owner):
    with pytest.raises(templates_service.TemplateInvalid, match="no starter"):
        templates_service.create_from_starter(workspace, user=owner, key="nope")
    with pytest.raises(templates_service.TemplateInvalid):
        templates_service.create_template(workspace, user=owner, values={"name": "x", "id": 3})


REQUIRED_STARTERS = {"newsletter", "product-announcement", "survey", "content-digest", "birthday"}
PERSONAL_STARTERS = {"welcome", "follow-up", "support-reply"}


def test_the_starter_set_is_complete():
    marketing = {s.key for s in starters.for_kind("marketing") if s.is_built}
    assert marketing >= REQUIRED_STARTERS
    personal = starters.for_kind("personal")
    assert {s.key for s in personal} == PERSONAL_STARTERS
    assert all(s.data["format"] == "html" and not s.is_built for s in personal)


@pytest.mark.parametrize("key", sorted(starters.all_starters()))
def test_every_starter_opens_and_passes_the_checks(workspace, owner, key):
    template = templates_service.create_from_starter(workspace, user=owner, key=key)
    starter = starters.get(key)
    if starter.is_built:
        # It opens in the builder: the design validates and made the body.
        assert blocks.is_built(template.blocks)
        assert template.body == blocks.blocks_to_mjml(template.blocks)
    problems = templates_service.check_content(workspace, template)
    assert [p for p in problems if p.blocking] == []
    # And with rendering's own checks on the raw source, with no sample data either.
    assert [
        p for p in check_template(templates_service.template_source(template)) if p.blocking
    ] == []


def test_marketing_starters_are_responsive_designs_with_images_and_buttons(workspace, owner):
    for key in REQUIRED_STARTERS:
        template = templates_service.create_from_starter(workspace, user=owner, key=key)
        types = [b["type"] for b in template.blocks["blocks"]]
        assert types[-1] == "footer" and {"logo", "button"} <= set(types)
        html = compile_template(templates_service.template_source(template)).html
        assert "@media only screen" in html  # MJML's responsive rules
        assert 'name="viewport"' in html


def test_template_source_places_the_preheader():
    mjml = SimpleNamespace(
        subject="S", preheader="Early <bird>", body="<mjml><mj-body></mj-body></mjml>",
        format="mjml", text="",
    )  # fmt: skip
    source = templates_service.template_source(mjml)
    assert "<mj-head><mj-preview>Early &lt;bird&gt;</mj-preview></mj-head>" in source.body
    assert "Early &lt;bird&gt;" in compile_template(source).html
    html = SimpleNamespace(
        subject="S", preheader="Soon", body="<html><body><p>x</p></body></html>", format="html",
        text="",
    )  # fmt: skip
    assert '<body><div style="display:none' in templates_service.template_source(html).body


def test_preview_renders_as_the_contact_with_their_segments(workspace, owner):
    vip = segment(workspace, conditions=[{"type": "field", "field": "first_name", "op": "eq",
                                          "value": "Ada"}])  # fmt: skip
    ada = ContactFactory(workspace=workspace, first_name="Ada", email="ada@example.org")
    bob = ContactFactory(workspace=workspace, first_name="Bob", email="bob@example.org")
    template = templates_service.create_template(
        workspace,
        user=owner,
        values={
            "name": "P",
            "subject": "Hi {{ contact.first_name }}",
            "blocks": built(
                {"type": "text", "text": "<p>Dear {{ contact.first_name }}</p>"},
                {"type": "text", "text": "<p>VIP corner</p>", "segment": vip.pk},
                {"type": "footer"},
            ),
        },
    )
    rendered, problem = templates_service.render_preview(workspace, template, ada)
    assert problem is None and rendered.subject == "Hi Ada"
    assert "Dear Ada" in rendered.html and "VIP corner" in rendered.html
    rendered, _problem = templates_service.render_preview(workspace, template, bob)
    assert "Dear Bob" in rendered.html and "VIP corner" not in rendered.html
    rendered, _problem = templates_service.render_preview(workspace, template, None)
    assert "Dear Alex" in rendered.html and "VIP corner" in rendered.html


def test_merge_tags_include_the_workspaces_custom_fields(workspace):
    from patron.crm.services import create_custom_field

    create_custom_field(workspace=workspace, object_type="contact", label="Tier", field_type="text")
    create_custom_field(
        workspace=WorkspaceFactory(), object_type="contact", label="Elsewhere", field_type="text"
    )
    groups = {
        g["label"]: [t["tag"] for t in g["tags"]] for g in templates_service.merge_tags(workspace)
    }
    assert "{{ contact.tier }}" in groups["Contact"]
    assert not any("elsewhere" in tag for tags in groups.values() for tag in tags)
    assert "{{ unsubscribe_url }}" in groups["Links and sender"]
    assert "{{ owner.name }}" in groups["Owner"]
