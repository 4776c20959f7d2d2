"""factory_boy factories for every model; tests build data only through these or services."""

from __future__ import annotations

import factory
from django.utils import timezone

from patron.activity.models import Event
from patron.core.models import ApiKey, Membership, User, Workspace
from patron.core.roles import Role
from patron.core.services import hash_token
from patron.crm.models import Call, Company, Contact, Deal, Meeting, Pipeline, Quote, Ticket
from patron.mail.models import OutboxMessage

PASSWORD = "correct horse battery staple"


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """An API key whose secret is ``ptn_test_<sequence>`` (see ``api_key_secret``)."""

    class Meta:
        model = ApiKey

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Key {n}")
    prefix = factory.Sequence(lambda n: f"ptn_test_{n}"[:12])
    key_hash = factory.Sequence(lambda n: hash_token(f"ptn_test_{n}"))


def api_key_secret(api_key: ApiKey) -> str:
    for n in range(100000):
        if hash_token(f"ptn_test_{n}") == api_key.key_hash:
            return f"ptn_test_{n}"
    raise LookupError("not a factory-made key")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    workspace = factory.SubFactory(WorkspaceFactory)
    kind = "custom.event"
    properties = factory.LazyFunction(dict)
    occurred_at = factory.LazyFunction(timezone.now)


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Faker("company")
    domain = factory.Sequence(lambda n: f"company{n}.example")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    workspace = factory.SubFactory(WorkspaceFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"contact{n}@example.net")


class OutboxMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutboxMessage

    workspace = factory.SubFactory(WorkspaceFactory)
    from_address = "patron@example.com"
    to = factory.LazyFunction(lambda: ["someone@example.org"])
    subject = factory.Sequence(lambda n: f"Message {n}")
    text_body = "Hello"
    raw = b"Subject: Hello\r\n\r\nHello\r\n"


def make_pipeline(workspace, name: str = "Sales") -> Pipeline:
    from patron.crm.services import create_pipeline

    return create_pipeline(workspace=workspace, name=name)


def make_quote(deal: Deal, **values) -> Quote:
    """A draft quote on ``deal`` through the service (which gives out the number).

    Two lines by default: 2 x 1,200.00 at 19 % tax and 1 x 300.00 at 50 % off,
    3,006.00 in all. Any argument of ``create_quote`` can be given.
    """
    from datetime import timedelta

    from patron.crm.quotes import create_quote

    values.setdefault("title", "Two espresso machines")
    values.setdefault("valid_until", timezone.localdate() + timedelta(days=14))
    values.setdefault(
        "lines",
        [
            {"description": "Machine", "quantity": 2, "unit_price": "1200", "tax_percent": 19},
            {"description": "Training", "quantity": 1, "unit_price": 300, "discount_percent": 50},
        ],
    )
    return create_quote(deal=deal, **values)


class DealFactory(factory.django.DjangoModelFactory):
    """A deal in the first stage of its pipeline (a default pipeline when none is given)."""

    class Meta:
        model = Deal

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Deal {n}")
    pipeline = factory.LazyAttribute(lambda o: make_pipeline(o.workspace, f"P{o.name}"))
    stage = factory.LazyAttribute(lambda o: o.pipeline.stages.order_by("position").first())
    amount = 1000
    currency = "USD"


class TicketFactory(factory.django.DjangoModelFactory):
    """A ticket opened through the service, so it has its SLA due times."""

    class Meta:
        model = Ticket

    workspace = factory.SubFactory(WorkspaceFactory)
    subject = factory.Sequence(lambda n: f"Ticket {n}")
    priority = "normal"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        from patron.crm.tickets import open_ticket

        return open_ticket(**kwargs)


class CallFactory(factory.django.DjangoModelFactory):
    """A call logged through the service (so it is on the contact's timeline)."""

    class Meta:
        model = Call

    workspace = factory.SubFactory(WorkspaceFactory)
    contact = factory.LazyAttribute(lambda o: ContactFactory(workspace=o.workspace))
    outcome = "connected"
    duration_minutes = 5

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        from patron.crm.meetings import log_call

        return log_call(**kwargs)


class MeetingFactory(factory.django.DjangoModelFactory):
    """A meeting scheduled through the service, tomorrow for an hour, with one contact."""

    class Meta:
        model = Meeting

    workspace = factory.SubFactory(WorkspaceFactory)
    title = factory.Sequence(lambda n: f"Meeting {n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=1))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timezone.timedelta(hours=1))
    contacts = factory.LazyAttribute(lambda o: [ContactFactory(workspace=o.workspace)])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        from patron.crm.meetings import schedule_meeting

        return schedule_meeting(**kwargs)
