"""Views of the web app, one module per page family. Thin: reads go through selectors (webapp/inbox.py,
messaging.selectors) and writes through the same services as the API, always scoped to the user's active
organization (common.active_membership)."""
