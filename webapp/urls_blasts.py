"""The web app's blasts and reports (included by webapp/urls.py)."""

from django.urls import path

from .views import blasts as blast_views
from .views import reports as report_views

urlpatterns = [
    path("blasts/", blast_views.blast_list, name="blasts"),
    path("blasts/new/", blast_views.blast_new, name="blast-new"),
    path("blasts/compose-preview/", blast_views.compose_preview, name="blast-compose-preview"),
    path("blasts/<int:blast_id>/", report_views.blast_report_page, name="blast-report"),
    path("blasts/<int:blast_id>/report.csv", report_views.blast_report_csv, name="blast-report-csv"),
    path("blasts/<int:blast_id>/edit/", blast_views.blast_edit, name="blast-edit"),
    path("blasts/<int:blast_id>/review/", blast_views.blast_review, name="blast-review"),
    path("blasts/<int:blast_id>/launch/", blast_views.blast_launch, name="blast-launch"),
    path("blasts/<int:blast_id>/cancel/", blast_views.blast_cancel, name="blast-cancel"),
    path("blasts/<int:blast_id>/delete/", blast_views.blast_delete, name="blast-delete"),
    path("reports/", report_views.organization_report_page, name="org-report"),
    path("reports/report.csv", report_views.organization_report_csv, name="org-report-csv"),
]
