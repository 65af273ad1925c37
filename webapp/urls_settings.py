"""The web app's settings for admins (included by webapp/urls.py; docs/webapp.md, "Settings")."""

from django.urls import path

from .views import settings as views

urlpatterns = [
    path("settings/", views.settings_home, name="settings"),
    path("settings/lines/", views.lines, name="settings-lines"),
    path("settings/lines/new/", views.line_new, name="settings-line-new"),
    path("settings/lines/<int:line_id>/", views.line_edit, name="settings-line"),
    path("settings/carriers/", views.carriers, name="settings-carriers"),
    path("settings/quiet-hours/", views.quiet_hours, name="settings-quiet-hours"),
    path("settings/api-keys/", views.api_keys, name="settings-api-keys"),
    path("settings/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="settings-api-key-revoke"),
    path("settings/members/", views.members, name="settings-members"),
    path("settings/members/<int:member_id>/role/", views.member_role, name="settings-member-role"),
    path("settings/members/<int:member_id>/remove/", views.member_remove, name="settings-member-remove"),
    path("settings/members/<int:member_id>/invite/", views.member_invite, name="settings-member-invite"),
    path("settings/ringcentral/", views.ringcentral, name="settings-ringcentral"),
    path("settings/ringcentral/disconnect/", views.ringcentral_disconnect_view, name="settings-ringcentral-disconnect"),
]
