"""Templates: compiled once (MJML, inlined CSS, Liquid), rendered per recipient, checked."""

from __future__ import annotations

import pytest

from patron.crm.models import Company, Contact
from patron.mail.rendering import (
    HTML,
    MJML,
    TemplateError,
    TemplateSource,
    check_template,
    compile_template,
    contact_context,
    html_to_text,
    link_problem,
)

FOOTER = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · {{ postal_address }}</p>'

NEWSLETTER = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hello {{ contact.first_name | default: "there" }},</mj-text>
        <mj-text>{% if company.name %}News for {{ company.name }}.{% endif %}</mj-text>
        <mj-button href="https://example.com/offer?c={{ contact.email | url_encode }}">
          See the offer
        </mj-button>
        <mj-image src="https://example.com/logo.png" alt="Northwind" />
        <mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a> · {{ postal_address }}</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>"""


def context(**contact):
    return {
        "contact": {"first_name": "", "email": "ann@example.com", **contact},
        "company": {"name": "Acme"},
        "unsubscribe_url": "https://patron.test/u/abc",
        "postal_address": "1 Harbour Road, Leith",
    }


def test_mjml_compiles_once_and_renders_per_recipient():
    compiled = compile_template(TemplateSource("Hi {{ contact.first_name }}", NEWSLETTER, MJML))
    assert "<mj-" not in compiled.html and "<table" in compiled.html
    first = compiled.render(context(first_name="Ann"))
    assert first.subject == "Hi Ann"
    assert "Hello Ann," in first.html and "News for Acme." in first.html
    assert "https://example.com/offer?c=ann%40example.com" in first.html
    # The default filter fills in for an empty name.
    assert "Hello there," in compiled.render(context()).html
    # The plain-text part is generated: text and links, no markup.
    assert "Hello Ann," in first.text and "See the offer (https://example.com/offer" in first.text
    assert "<" not in first.text and "Northwind" in first.text


def test_html_styles_are_inlined_and_block_tags_stay_inside_tables():
    body = (
        """<html><head><style>td.cell { color: #c00; }</style></head><body>
<table>
  {% for item in items %}<tr><td class="cell">{{ item }}</td></tr>{% endfor %}
</table>"""
        + FOOTER
        + "</body></html>"
    )
    compiled = compile_template(TemplateSource("Items", body, HTML))
    assert 'style="color: #c00;"' in compiled.html
    html = compiled.render({"items": ["one", "two"], **context()}).html
    # Rows repeat inside the table (not moved before it by the HTML parser).
    table = html[html.index("<table") : html.index("</table>")]
    assert table.count("<tr>") == 2 and "one" in table and "two" in table


def test_merge_values_are_escaped_in_html_not_in_subject_or_text():
    compiled = compile_template(
        TemplateSource("For {{ contact.first_name }}", "<p>{{ contact.first_name }}</p>" + FOOTER)
    )
    rendered = compiled.render(context(first_name="<script>x</script> & co"))
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert rendered.subject == "For <script>x</script> & co"
    assert "<script>x</script> & co" in rendered.text


def test_the_sandbox_stops_runaway_loops():
    compiled = compile_template(
        TemplateSource(
            "x", "{% for i in (1..100000) %}{% for j in (1..100000) %}.{% endfor %}{% endfor %}"
        )
    )
    with pytest.raises(Exception, match="loop iteration limit"):
        compiled.render({})


def test_liquid_syntax_errors_give_part_line_and_column():
    with pytest.raises(TemplateError) as error:
        compile_template(TemplateSource("ok", "<p>one</p>\n<p>{% iff x %}</p>"))
    problem = error.value.problem
    assert (problem.code, problem.part, problem.line, problem.column) == ("liquid", "body", 2, 7)
    assert "unexpected tag 'iff'" in str(problem) and "line 2, column 7" in str(problem)

    with pytest.raises(TemplateError) as error:
        compile_template(TemplateSource("Hi {{ contact.name ", "<p>x</p>"))
    assert error.value.problem.part == "subject"

    # A block left open is reported where the template ends.
    problems = check_template(TemplateSource("s", "<p>\n{% if x %}\nopen</p>"))
    assert problems[0].code == "liquid" and problems[0].line == 3


def test_unreadable_mjml_is_reported():
    problems = check_template(TemplateSource("s", "<mjml><mj-body><mj-section>", MJML))
    assert [p.code for p in problems] == ["mjml"]
    assert "The MJML cannot be read" in problems[0].message


def test_checks_before_sending():
    bare = TemplateSource(
        "",
        """<p>Hi {{ contact.first_name | nosuchfilter }}</p>
<a href="htp://example.com">typo</a> <a href="https://exa mple.com/x">space</a>
<a href="mailto:">nobody</a> <a href="{{ view_in_browser_url }}">web</a> <a href="#top">top</a>
<img src="https://example.com/a.png">""",
    )
    problems = check_template(bare, sample=context())
    codes = [p.code for p in problems]
    assert codes.count("link") == 3
    assert {"liquid", "subject", "unsubscribe", "postal_address", "alt"} <= set(codes)
    assert [p.code for p in problems if not p.blocking] == ["alt"]  # warnings come last
    typo = next(p for p in problems if p.code == "link")
    assert typo.line == 2 and "should start with https://" in typo.message
    assert (
        "unknown filter 'nosuchfilter'" in next(p for p in problems if p.code == "liquid").message
    )

    good = TemplateSource("News", NEWSLETTER, MJML)
    assert check_template(good, sample=context()) == []


def test_a_literal_postal_address_counts_and_size_is_warned():
    body = '<p><a href="{{ preferences_url }}">Preferences</a> 1 Harbour Road</p>'
    source = TemplateSource("Hi", body)
    assert [p.code for p in check_template(source)] == ["postal_address"]
    assert check_template(source, postal_address="1 Harbour Road") == []
    big = TemplateSource("Hi", body + "<p>" + "x" * 110_000 + "</p>")
    size = check_template(big, postal_address="1 Harbour Road")
    assert [(p.code, p.blocking) for p in size] == [("size", False)]
    assert "Gmail clips" in size[0].message


@pytest.mark.parametrize(
    ("href", "ok"),
    [
        ("https://example.com/a?b=c", True),
        ("http://example.com", True),
        ("{{ unsubscribe_url }}", True),
        ("https://example.com/{{ contact.id }}", True),
        ("mailto:hello@example.com", True),
        ("tel:+44123", True),
        ("#section", True),
        ("", False),
        ("example.com", False),
        ("javascript:alert(1)", False),
        ("https://localhost", False),
        ("https://exa mple.com", False),
    ],
)
def test_link_problems(href, ok):
    assert (link_problem(href) is None) is ok


def test_html_to_text_keeps_structure():
    text = html_to_text(
        "<style>p{}</style><h1>Title</h1><p>First <b>bold</b><br>line</p>"
        '<ul><li>one</li><li>two</li></ul><p><a href="https://x.test/">link</a></p>'
    )
    assert text == "Title\n\nFirst bold\nline\n\n- one\n- two\n\nlink (https://x.test/)\n"


@pytest.mark.django_db
def test_contact_context_has_fields_custom_fields_company_and_owner(workspace, owner):
    company = Company.objects.create(
        workspace=workspace, name="Acme", domain="acme.test", custom={"plan": "Pro"}
    )
    contact = Contact.objects.create(
        workspace=workspace,
        first_name="Ann",
        last_name="Lee",
        email="ann@acme.test",
        company=company,
        owner=owner,
        custom={"customer_tier": "Gold", "first_name": "shadow"},
    )
    values = contact_context(contact, unsubscribe_url="https://u.test/")
    assert values["contact"]["full_name"] == "Ann Lee"
    assert values["contact"]["customer_tier"] == "Gold"
    assert values["contact"]["first_name"] == "Ann"  # a custom key cannot shadow a field
    assert values["company"] == {
        "name": "Acme",
        "domain": "acme.test",
        "industry": "",
        "size": "",
        "phone": "",
        "city": "",
        "region": "",
        "country": "",
        "plan": "Pro",
    }
    assert values["owner"]["email"] == owner.email
    compiled = compile_template(
        TemplateSource(
            "{{ contact.first_name }}",
            "<p>{{ contact.customer_tier }} at {{ company.plan }}, ask {{ owner.name }}</p>",
        )
    )
    assert f"Gold at Pro, ask {owner.name}" in compiled.render(values).html
