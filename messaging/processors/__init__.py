"""Messaging's post-processing processors: they change messaging's data (conversation last message,
blast counters and progress) or read its rows (number flags from carrier results). They register
through the post-processing registry (postprocessing/registry.py), which knows nothing of messages,
when `register()` imports them from MessagingConfig.ready. See docs/postprocessing.md.

RANK is the execution order within a batch of every processor of this release, and so the order row
locks are taken in (conversations, links, number flags, then blast recount marks — last, so that the
mark's row lock, which concurrent drains on the same blast wait for, is held only until the batch
commits): concurrent drains cannot deadlock on it. Link attribution is the shortener's
(shortener/processors.py, registered from ShortenerConfig.ready) but takes its place from this table,
since apps' ready() run in INSTALLED_APPS order. Processors without a rank (partner integrations) run
after all of these.
"""

from importlib import import_module

RANK = {
    "conversation_last_message": 10,
    "link_attribution": 20,
    "optout_hygiene": 30,
    "blast_counters": 40,
    "blast_progress": 41,
}

# Spelled out as data, not as import statements an import sorter would reorder.
_MODULES = ("conversation", "optout", "blast")


def register() -> None:
    """Import (and so register) messaging's processors; called once from MessagingConfig.ready."""
    for name in _MODULES:
        import_module(f"{__name__}.{name}")
