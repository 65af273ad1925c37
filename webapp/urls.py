"""The server-rendered web app: sign in, sign out, password reset, the inbox and a conversation's thread."""

from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy

from . import pwa
from .views import auth, inbox, thread

urlpatterns = [
    path("", inbox.home, name="home"),
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("sw.js", pwa.service_worker, name="service-worker"),
    path("offline/", pwa.offline, name="offline"),
    path("inbox/", inbox.home, name="inbox"),
    path("inbox/<int:conversation_id>/", thread.thread, name="thread"),
    path("inbox/<int:conversation_id>/reply/", thread.reply, name="reply"),
    path("inbox/<int:conversation_id>/live/", thread.thread_live, name="thread-live"),
    path("inbox/<int:conversation_id>/older/", thread.thread_older, name="thread-older"),
    path("inbox/<int:conversation_id>/assign/", thread.assign, name="assign"),
    path("inbox/<int:conversation_id>/close/", thread.close, name="close"),
    path("inbox/<int:conversation_id>/reopen/", thread.reopen, name="reopen"),
    path("inbox/new/", thread.new_conversation, name="new-conversation"),
    path("inbox/counter/", thread.counter, name="compose-counter"),
    path("", include("webapp.urls_blasts")),
    path("", include("webapp.urls_settings")),
    path("login/", auth_views.LoginView.as_view(template_name="webapp/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path(
        "forgot-password/",
        auth.PasswordResetView.as_view(
            template_name="webapp/forgot_password.html",
            email_template_name="webapp/password_reset_email.txt",
            subject_template_name="webapp/password_reset_subject.txt",
            success_url=reverse_lazy("password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "forgot-password/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="webapp/forgot_password_sent.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="webapp/reset_password.html", success_url=reverse_lazy("password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="webapp/reset_password_done.html"),
        name="password_reset_complete",
    ),
]
