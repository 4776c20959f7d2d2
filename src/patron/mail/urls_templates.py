"""Email templates (Marketing > Email templates), the image library, and the public
image address."""

from django.urls import include, path

from patron.core.tenancy import register_public_url_parameter, register_url_parameter
from patron.mail import views_images, views_templates

register_url_parameter("template_id", "mail.EmailTemplate")
register_url_parameter("image_id", "mail.MailImage")
register_public_url_parameter("image_key")
register_public_url_parameter("filename")

template_patterns = (
    [
        path("", views_templates.template_list, name="list"),
        path("new/", views_templates.template_new, name="new"),
        path("<int:template_id>/", views_templates.template_edit, name="edit"),
        path("<int:template_id>/duplicate/", views_templates.template_duplicate, name="duplicate"),
        path("<int:template_id>/delete/", views_templates.template_delete, name="delete"),
        path("<int:template_id>/test/", views_templates.template_test, name="test"),
        # The editor component's endpoints (they read the posted form, not a saved row).
        path("preview/", views_templates.preview, name="preview"),
        path("checks/", views_templates.checks, name="checks"),
        path("text/", views_templates.plain_text, name="text"),
        path("source/", views_templates.source, name="source"),
        path("contacts/", views_templates.contact_options, name="contacts"),
    ],
    "email_templates",
)
image_patterns = (
    [
        path("images/", views_images.image_list, name="list"),
        path("images/picker/", views_images.image_picker, name="picker"),
        path("images/<int:image_id>/delete/", views_images.image_delete, name="delete"),
        # Public: mail clients fetch images without a session.
        path(
            "mail-images/<str:image_key>/<str:filename>", views_images.public_image, name="public"
        ),
    ],
    "mail_images",
)

urlpatterns = [
    path("email-templates/", include(template_patterns)),
    path("", include(image_patterns)),
]
