"""Disconnect django.contrib.auth's last_login update (catmaid.replication, role catmaid_readonly).

django.contrib.auth connects ``update_last_login`` to ``user_logged_in`` in its ready(), with
dispatch_uid 'update_last_login' (Django 2.0 and later). The guide's ``nolastlogin`` app
(django-no-last-login 0.1.0) disconnects it without that uid, and before auth's ready() runs, so
the receiver stays and every login on a replica fails with "cannot execute UPDATE in a read-only
transaction". This app comes after django.contrib.auth in INSTALLED_APPS, so its ready() runs
later and removes the receiver under the uid it was connected with.
"""

from django.apps import AppConfig


class NoLastLoginConfig(AppConfig):
    """Logging in keeps auth_user.last_login as it is (setting NO_UPDATE_LAST_LOGIN, default True)."""

    name = 'catmaid_readonly_lastlogin'
    label = 'catmaid_readonly_lastlogin'
    verbose_name = 'Read-only replica: no last_login update'

    def ready(self):
        from django.conf import settings
        from django.contrib.auth.models import update_last_login
        from django.contrib.auth.signals import user_logged_in

        if getattr(settings, 'NO_UPDATE_LAST_LOGIN', True):
            user_logged_in.disconnect(update_last_login, dispatch_uid='update_last_login')
            user_logged_in.disconnect(update_last_login)
