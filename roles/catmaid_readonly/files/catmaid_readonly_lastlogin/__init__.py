"""Read-only CATMAID on a database replica (catmaid.replication, role catmaid_readonly): logging in
must not write auth_user.last_login, which the read-only database refuses. Installed by the role
and listed in INSTALLED_APPS by its settings fragment; do not edit, the role writes it again."""
