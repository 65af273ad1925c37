from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo account `make run` seeds (manage.py seed_demo). A top-layer app: it creates organizations,
    carrier accounts, lines, contacts and messages through their apps' services, so it sits above all of
    them (docs/architecture.md); nothing imports it."""

    name = "demo"
