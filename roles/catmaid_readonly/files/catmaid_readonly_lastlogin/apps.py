"""Keep logins on a read-only replica from writing (catmaid.replication, role catmaid_readonly).

Two writes happen on a login, and the read-only database refuses both ("cannot execute UPDATE in a
read-only transaction", the login fails with HTTP 500):
- auth_user.last_login (update_last_login, a receiver of user_logged_in);
- auth_user.password, when the stored hash needs an upgrade: check_password() saves the password
  again with the preferred hasher (Django raises its PBKDF2 iterations in every release, so after an
  upgrade every user who has not logged in on the primary since). On the replica the password is
  checked and never saved; the primary upgrades it at the user's next login there.

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
            _check_without_rehash()


def _check_without_rehash():
    """AbstractBaseUser.check_password (and acheck_password, Django 4.2+) without the setter that saves
    an upgraded hash: the same verdict, no write."""
    from django.contrib.auth import hashers
    from django.contrib.auth.base_user import AbstractBaseUser

    def check_password(self, raw_password):
        return hashers.check_password(raw_password, self.password)

    AbstractBaseUser.check_password = check_password
    if hasattr(AbstractBaseUser, 'acheck_password') and hasattr(hashers, 'acheck_password'):
        async def acheck_password(self, raw_password):
            return await hashers.acheck_password(raw_password, self.password)

        AbstractBaseUser.acheck_password = acheck_password
