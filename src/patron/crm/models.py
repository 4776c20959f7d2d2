"""Contacts and companies: the records sales, support and marketing share."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.tenancy import TenantModel

if TYPE_CHECKING:
    from patron.core.models import Workspace


class LifecycleStage(models.TextChoices):
    SUBSCRIBER = "subscriber", _("Subscriber")
    LEAD = "lead", _("Lead")
    MQL = "mql", _("Marketing-qualified lead")
    SQL = "sql", _("Sales-qualified lead")
    OPPORTUNITY = "opportunity", _("Opportunity")
    CUSTOMER = "customer", _("Customer")
    OTHER = "other", _("Other")


class Tag(TenantModel):
    """A label on contacts and companies ("vip", "ebook-crm-guide")."""

    name = models.CharField(_("name"), max_length=60)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("tag")
        ordering = ["name"]
        constraints = [models.UniqueConstraint("workspace", Lower("name"), name="tag_unique_name")]

    def __str__(self) -> str:
        return self.name


class CustomFieldObject(models.TextChoices):
    CONTACT = "contact", _("Contacts")
    COMPANY = "company", _("Companies")
    DEAL = "deal", _("Deals")
    TICKET = "ticket", _("Tickets")


class FieldType(models.TextChoices):
    TEXT = "text", _("Text")
    LONG_TEXT = "long_text", _("Long text")
    NUMBER = "number", _("Number")
    MONEY = "money", _("Money")
    DATE = "date", _("Date")
    DATETIME = "datetime", _("Date and time")
    BOOLEAN = "boolean", _("Yes / no")
    SINGLE_SELECT = "single_select", _("Single select")
    MULTI_SELECT = "multi_select", _("Multi select")
    URL = "url", _("Web address")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")


SELECT_TYPES = {FieldType.SINGLE_SELECT, FieldType.MULTI_SELECT}


class CustomField(TenantModel):
    """A field a workspace adds to its contacts, companies or deals.

    Values live in the record's ``custom`` JSON under ``key``; see
    ``patron.crm.custom_fields`` for the stored form of each type.
    """

    object_type = models.CharField(
        _("record type"), max_length=20, choices=CustomFieldObject.choices
    )
    key = models.CharField(
        _("key"),
        max_length=50,
        help_text=_("Used in the API, imports and merge tags. Cannot change later."),
    )
    label = models.CharField(_("label"), max_length=100)
    field_type = models.CharField(_("type"), max_length=20, choices=FieldType.choices)
    options = models.JSONField(_("options"), default=list, blank=True)
    required = models.BooleanField(_("required"), default=False)
    help_text = models.CharField(_("help text"), max_length=200, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("custom field")
        ordering = ["object_type", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "object_type", "key"], name="custom_field_unique_key"
            )
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def model_table(self) -> str:
        return {
            CustomFieldObject.CONTACT: "crm_contact",
            CustomFieldObject.COMPANY: "crm_company",
            CustomFieldObject.DEAL: "crm_deal",
            CustomFieldObject.TICKET: "crm_ticket",
        }[CustomFieldObject(self.object_type)]


class Company(TenantModel):
    name = models.CharField(_("name"), max_length=200)
    domain = models.CharField(_("domain"), max_length=253, blank=True)
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    size = models.PositiveIntegerField(_("employees"), null=True, blank=True)
    annual_revenue = models.DecimalField(
        _("annual revenue"), max_digits=16, decimal_places=2, null=True, blank=True
    )
    phone = models.CharField(_("phone"), max_length=50, blank=True)
    street = models.CharField(_("street address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    region = models.CharField(_("state / region"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=100, blank=True)
    custom = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    tags = models.ManyToManyField(Tag, related_name="companies", blank=True, verbose_name=_("tags"))

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        indexes = [
            models.Index(fields=["workspace", "name"], name="company_name"),
            models.Index(fields=["workspace", "domain"], name="company_domain"),
        ]

    def __str__(self) -> str:
        return self.name


class Contact(TenantModel):
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=50, blank=True)
    mobile_phone = models.CharField(_("mobile phone"), max_length=50, blank=True)
    job_title = models.CharField(_("job title"), max_length=150, blank=True)
    # The primary company; ``other_companies`` holds the rest.
    company = models.ForeignKey(
        Company,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contacts",
        verbose_name=_("company"),
    )
    other_companies = models.ManyToManyField(
        Company, related_name="other_contacts", blank=True, verbose_name=_("other companies")
    )
    street = models.CharField(_("street address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    region = models.CharField(_("state / region"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=100, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    custom = models.JSONField(default=dict, blank=True)
    lifecycle_stage = models.CharField(
        _("lifecycle stage"),
        max_length=20,
        choices=LifecycleStage.choices,
        default=LifecycleStage.SUBSCRIBER,
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    source = models.CharField(_("source"), max_length=100, blank=True)
    score = models.IntegerField(_("score"), default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, related_name="contacts", blank=True, verbose_name=_("tags"))
    # Where the contact came from on the web: the first touch is kept for good, the last
    # one follows each visit that came with UTM parameters or from another site
    # (``patron.crm.touches``).
    first_touch_source = models.CharField(_("first touch: source"), max_length=200, blank=True)
    first_touch_medium = models.CharField(_("first touch: medium"), max_length=200, blank=True)
    first_touch_campaign = models.CharField(_("first touch: campaign"), max_length=200, blank=True)
    first_touch_term = models.CharField(_("first touch: term"), max_length=200, blank=True)
    first_touch_content = models.CharField(_("first touch: content"), max_length=200, blank=True)
    first_touch_referrer = models.CharField(_("first touch: referrer"), max_length=2000, blank=True)
    first_touch_landing_url = models.CharField(
        _("first touch: landing page"), max_length=2000, blank=True
    )
    first_touch_at = models.DateTimeField(_("first touch"), null=True, blank=True)
    last_touch_source = models.CharField(_("last touch: source"), max_length=200, blank=True)
    last_touch_medium = models.CharField(_("last touch: medium"), max_length=200, blank=True)
    last_touch_campaign = models.CharField(_("last touch: campaign"), max_length=200, blank=True)
    last_touch_term = models.CharField(_("last touch: term"), max_length=200, blank=True)
    last_touch_content = models.CharField(_("last touch: content"), max_length=200, blank=True)
    last_touch_referrer = models.CharField(_("last touch: referrer"), max_length=2000, blank=True)
    last_touch_landing_url = models.CharField(
        _("last touch: landing page"), max_length=2000, blank=True
    )
    last_touch_at = models.DateTimeField(_("last touch"), null=True, blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [
            models.Index(fields=["workspace", "email"], name="contact_email"),
            models.Index(fields=["workspace", "last_name", "first_name"], name="contact_name"),
            models.Index(fields=["workspace", "-created_at"], name="contact_created"),
            # Contacts per lifecycle stage (the funnel's "now") from the index alone.
            models.Index(fields=["workspace", "lifecycle_stage"], name="contact_stage"),
        ]
        constraints = [
            models.UniqueConstraint(
                "workspace",
                Lower("email"),
                condition=~models.Q(email=""),
                name="contact_unique_email",
            )
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"#{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ContactEmail(TenantModel):
    """A further address of a contact; the primary one stays on ``Contact.email``."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="other_emails")
    email = models.EmailField(_("email"), max_length=254)

    class Meta:
        verbose_name = _("other email")
        ordering = ["id"]
        indexes = [models.Index(fields=["workspace", "email"], name="contact_other_email")]
        constraints = [
            models.UniqueConstraint("workspace", Lower("email"), name="contact_email_unique")
        ]

    def __str__(self) -> str:
        return self.email


class StageOutcome(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Pipeline(TenantModel):
    """A sales process: an ordered list of stages a deal moves through."""

    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("pipeline")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="pipeline_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Stage(TenantModel):
    """A step of a pipeline with the chance that a deal standing there is won."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(default=0)
    probability = models.PositiveSmallIntegerField(
        _("win probability (%)"), validators=[MaxValueValidator(100)]
    )
    outcome = models.CharField(
        _("outcome"), max_length=10, choices=StageOutcome.choices, default=StageOutcome.OPEN
    )

    class Meta:
        verbose_name = _("stage")
        ordering = ["pipeline", "position", "id"]
        indexes = [models.Index(fields=["workspace", "pipeline", "position"], name="stage_order")]

    def __str__(self) -> str:
        return self.name


class Deal(TenantModel):
    """A possible sale, moving through the stages of its pipeline until won or lost."""

    name = models.CharField(_("name"), max_length=200)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, default=Decimal("0.00")
    )
    currency = models.CharField(_("currency"), max_length=3)
    expected_close_date = models.DateField(_("expected close date"), null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    company = models.ForeignKey(
        Company,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("company"),
    )
    contacts = models.ManyToManyField(
        Contact, related_name="deals", blank=True, verbose_name=_("contacts")
    )
    source = models.CharField(_("source"), max_length=100, blank=True)
    custom = models.JSONField(default=dict, blank=True)
    lost_reason = models.CharField(_("reason lost"), max_length=300, blank=True)
    # Order of the card inside its stage's column on the board.
    position = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("deal")
        indexes = [
            models.Index(fields=["workspace", "pipeline", "stage", "position"], name="deal_board"),
            models.Index(fields=["workspace", "expected_close_date"], name="deal_close_date"),
            models.Index(fields=["workspace", "owner"], name="deal_owner"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def outcome(self) -> str:
        return self.stage.outcome

    @property
    def expected_revenue(self) -> Decimal:
        """Amount weighted by the stage's win probability."""
        return (self.amount * self.stage.probability / Decimal(100)).quantize(Decimal("0.01"))


class Note(TenantModel):
    """A note on a contact or a company. ``body`` is HTML, sanitised when saved."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="notes"
    )
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, null=True, blank=True, related_name="notes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField(_("note"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("note")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "contact", "-created_at"], name="note_contact"),
            models.Index(fields=["workspace", "company", "-created_at"], name="note_company"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(contact__isnull=False) | models.Q(company__isnull=False),
                name="note_has_a_subject",
            )
        ]

    def __str__(self) -> str:
        return self.body[:40]


class TaskPriority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")


class Task(TenantModel):
    """Something a person must do, possibly by a time, about a contact, company or deal."""

    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    remind_at = models.DateTimeField(_("remind me at"), null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    priority = models.CharField(
        _("priority"), max_length=10, choices=TaskPriority.choices, default=TaskPriority.NORMAL
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assigned to"),
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    ticket = models.ForeignKey(
        "crm.Ticket", on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("task")
        indexes = [
            models.Index(
                fields=["workspace", "assignee", "completed_at", "due_at"], name="task_todo"
            ),
            # The calendar of everyone: the tasks due in a week or a month.
            models.Index(fields=["workspace", "due_at"], name="task_due"),
            models.Index(
                fields=["remind_at"],
                name="task_reminder_due",
                condition=models.Q(reminded_at__isnull=True, completed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_done(self) -> bool:
        return self.completed_at is not None

    @property
    def is_overdue(self) -> bool:
        return (
            self.completed_at is None and self.due_at is not None and self.due_at < timezone.now()
        )


class ImportStatus(models.TextChoices):
    MAPPING = "mapping", _("Waiting for column mapping")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(TenantModel):
    """A CSV file being imported into contacts or companies.

    The file is kept in the database in chunks (``ImportFileChunk``) so that any
    worker, on any machine, can read it as a stream. ``processed_rows`` moves
    forward in the same transaction as each batch's writes: a worker that
    crashes is resumed from there and no row is applied twice or skipped.
    """

    object_type = models.CharField(
        _("record type"), max_length=20, choices=CustomFieldObject.choices
    )
    file_name = models.CharField(_("file"), max_length=255)
    file_size = models.PositiveBigIntegerField(default=0)
    encoding = models.CharField(max_length=20, default="utf-8")
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list)
    # Column index (as a string) -> target field name, "" for "do not import".
    mapping = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    update_existing = models.BooleanField(_("update existing records"), default=True)
    # Contacts imported (created or updated) are subscribed to this list, as consent "import".
    subscribe_list = models.ForeignKey(
        "audience.MailingList",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("subscribe to list"),
    )
    subscribe_confirmed = models.BooleanField(_("subscribers confirmed already"), default=False)
    consent_text = models.TextField(_("consent text"), blank=True)
    status = models.CharField(
        max_length=20, choices=ImportStatus.choices, default=ImportStatus.MAPPING
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="import_recent")]

    def __str__(self) -> str:
        return self.file_name

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, self.processed_rows * 100 // self.total_rows)

    @property
    def is_finished(self) -> bool:
        return self.status in {ImportStatus.DONE, ImportStatus.FAILED}


class ImportFileChunk(TenantModel):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="import_chunk_unique")]


class ImportRejection(TenantModel):
    """A row the import did not apply, with the reason, for the downloadable report."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejections")
    row_number = models.PositiveIntegerField()
    reason = models.TextField()
    values = models.JSONField(default=list)

    class Meta:
        ordering = ["job", "row_number"]
        indexes = [models.Index(fields=["workspace", "job", "row_number"], name="import_rejection")]


class SavedView(TenantModel):
    """A named set of list filters, sort and columns: one person's, or shared with all."""

    object_type = models.CharField(max_length=20, default="contact")
    name = models.CharField(_("name"), max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    shared = models.BooleanField(_("shared with the workspace"), default=False)
    # The list's query parameters (q, stage, tag, owner, sort, cf_<key>, cols).
    query = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("saved view")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "object_type", "owner", "name"], name="saved_view_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class AssignmentStrategy(models.TextChoices):
    USER = "user", _("To one person")
    ROUND_ROBIN = "round_robin", _("Round robin across a team")


class AssignmentRule(TenantModel):
    """Who owns a new contact or deal that arrives without an owner.

    Rules are tried in ``position`` order; the first whose conditions all hold
    decides. ``next_index`` is the round robin's place in ``team``, kept in the
    database so that turns stay fair across restarts and workers.
    """

    object_type = models.CharField(
        _("record type"),
        max_length=20,
        choices=[
            (CustomFieldObject.CONTACT, _("Contacts")),
            (CustomFieldObject.DEAL, _("Deals")),
            (CustomFieldObject.TICKET, _("Tickets")),
        ],
        default=CustomFieldObject.CONTACT,
    )
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    # [{"field": "lifecycle_stage" | "source" | "country" | "tag" | "cf_<key>", "value": "..."}]
    conditions = models.JSONField(default=list, blank=True)
    strategy = models.CharField(
        _("assign"),
        max_length=20,
        choices=AssignmentStrategy.choices,
        default=AssignmentStrategy.USER,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("person"),
    )
    team = models.JSONField(_("team"), default=list, blank=True)
    next_index = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("assignment rule")
        ordering = ["object_type", "position", "id"]

    def __str__(self) -> str:
        return self.name


class CallDirection(models.TextChoices):
    OUTBOUND = "outbound", _("Outbound")
    INBOUND = "inbound", _("Inbound")


class CallOutcome(models.TextChoices):
    CONNECTED = "connected", _("Connected")
    VOICEMAIL = "voicemail", _("Left voicemail")
    NO_ANSWER = "no_answer", _("No answer")
    BUSY = "busy", _("Busy")
    WRONG_NUMBER = "wrong_number", _("Wrong number")


class Call(TenantModel):
    """A phone call with a contact, logged after it happened."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="calls")
    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    deal = models.ForeignKey(
        Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    direction = models.CharField(
        _("direction"), max_length=10, choices=CallDirection.choices, default=CallDirection.OUTBOUND
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=CallOutcome.choices)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), default=0)
    notes = models.TextField(_("notes"), blank=True)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        verbose_name = _("call")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "contact", "-occurred_at"], name="call_contact")
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} · {self.get_outcome_display()}"


class MeetingOutcome(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    COMPLETED = "completed", _("Completed")
    RESCHEDULED = "rescheduled", _("Rescheduled")
    NO_SHOW = "no_show", _("No show")
    CANCELLED = "cancelled", _("Cancelled")


class Meeting(TenantModel):
    """A meeting with one or more contacts, planned ahead; its outcome recorded after."""

    title = models.CharField(_("title"), max_length=200)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    location = models.CharField(_("place or link"), max_length=300, blank=True)
    description = models.TextField(_("description"), blank=True)
    organizer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("organizer"),
    )
    contacts = models.ManyToManyField(
        Contact, related_name="meetings", blank=True, verbose_name=_("with")
    )
    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="meetings"
    )
    deal = models.ForeignKey(
        Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="meetings"
    )
    outcome = models.CharField(
        _("outcome"),
        max_length=20,
        choices=MeetingOutcome.choices,
        default=MeetingOutcome.SCHEDULED,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("meeting")
        ordering = ["starts_at", "id"]
        indexes = [
            models.Index(fields=["workspace", "organizer", "starts_at"], name="meeting_calendar"),
            # Everyone's calendar and the API's date windows.
            models.Index(fields=["workspace", "starts_at"], name="meeting_starts"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="meeting_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return self.title


class TicketStatus(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending")
    SOLVED = "solved", _("Solved")
    CLOSED = "closed", _("Closed")


class TicketPriority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class TicketChannel(models.TextChoices):
    MANUAL = "manual", _("Entered by hand")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    WEB = "web", _("Web form")
    CHAT = "chat", _("Chat")
    API = "api", _("API")


class SlaPolicy(TenantModel):
    """Response and resolution targets for one ticket priority."""

    priority = models.CharField(_("priority"), max_length=10, choices=TicketPriority.choices)
    first_response_minutes = models.PositiveIntegerField(_("first response within (minutes)"))
    resolution_minutes = models.PositiveIntegerField(_("resolved within (minutes)"))
    business_hours = models.BooleanField(_("count business hours only"), default=True)

    class Meta:
        verbose_name = _("SLA policy")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "priority"], name="sla_one_per_priority")
        ]

    def __str__(self) -> str:
        return self.get_priority_display()


class BusinessHours(TenantModel):
    """When the support team works, per weekday, in the workspace's time zone."""

    # {"0": ["09:00", "17:00"], ...}: Monday is "0"; a missing day is closed.
    schedule = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("business hours")
        constraints = [models.UniqueConstraint(fields=["workspace"], name="business_hours_once")]


class Ticket(TenantModel):
    """A support request, with its SLA clock."""

    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("contact"),
    )
    company = models.ForeignKey(
        Company,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("company"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=TicketStatus.choices, default=TicketStatus.NEW
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )
    channel = models.CharField(
        _("channel"), max_length=10, choices=TicketChannel.choices, default=TicketChannel.MANUAL
    )
    custom = models.JSONField(default=dict, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assigned to"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    # From these moments on a target is "at risk" (the last quarter of its time).
    first_response_warn_at = models.DateTimeField(null=True, blank=True)
    resolution_warn_at = models.DateTimeField(null=True, blank=True)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Measured in business or calendar seconds, as the policy in force said.
    first_response_seconds = models.PositiveIntegerField(null=True, blank=True)
    resolution_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("ticket")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "status", "-created_at"], name="ticket_status"),
            models.Index(fields=["workspace", "assignee", "status"], name="ticket_assignee"),
            models.Index(fields=["workspace", "contact"], name="ticket_contact"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def is_done(self) -> bool:
        return self.status in {TicketStatus.SOLVED, TicketStatus.CLOSED}


class TicketReply(TenantModel):
    """A message on a ticket: a public reply to the customer, or an internal note."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField(_("message"))
    is_internal = models.BooleanField(_("internal note"), default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


def workspace_today(workspace: Workspace) -> date:
    """Today's date where the workspace is (a quote is valid through its last day there)."""
    try:
        zone = ZoneInfo(workspace.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return timezone.localdate(timezone=zone)


class QuoteStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Expired")


class QuoteCounter(TenantModel):
    """The last quote number given out in a year; locked while the next is allocated."""

    year = models.PositiveIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "year"], name="quote_counter_per_year")
        ]


class Quote(TenantModel):
    """An offer on a deal, sent to a contact who accepts or declines it online."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="quotes")
    number = models.CharField(_("number"), max_length=30)
    title = models.CharField(_("title"), max_length=200)
    contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        related_name="quotes",
        verbose_name=_("addressed to"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    valid_until = models.DateField(_("valid until"))
    terms = models.TextField(_("terms and notes"), blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=QuoteStatus.choices, default=QuoteStatus.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    viewed_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by_name = models.CharField(max_length=200, blank=True)
    answered_from_ip = models.GenericIPAddressField(null=True, blank=True)
    answered_user_agent = models.CharField(max_length=300, blank=True)
    decline_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = _("quote")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "number"], name="quote_unique_number")
        ]
        indexes = [
            models.Index(fields=["workspace", "deal"], name="quote_deal"),
            # The hourly expiry job looks across workspaces at sent quotes only.
            models.Index(
                fields=["valid_until"],
                condition=models.Q(status="sent"),
                name="quote_sent_valid_until",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def is_expired(self) -> bool:
        """Expired, or sent and past its date before the hourly job marks it expired."""
        if self.status == QuoteStatus.EXPIRED:
            return True
        return self.status == QuoteStatus.SENT and self.valid_until < workspace_today(
            self.workspace
        )


class QuoteLine(TenantModel):
    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(_("description"), max_length=300)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=2)
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=2)
    discount_percent = models.DecimalField(
        _("discount (%)"), max_digits=5, decimal_places=2, default=Decimal("0")
    )
    tax_percent = models.DecimalField(
        _("tax (%)"), max_digits=5, decimal_places=2, default=Decimal("0")
    )

    class Meta:
        ordering = ["quote", "position", "id"]
