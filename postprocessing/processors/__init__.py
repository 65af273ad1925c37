"""The processors of this release, imported (and so registered) in a fixed order by PostprocessingConfig.ready.

The order is the execution order within a batch and so the order row locks are taken in
(conversations, links, number flags, then blast recount marks — last, so that the mark's row lock,
which concurrent drains on the same blast wait for, is held only until the batch commits): concurrent
drains cannot deadlock on it.
Spelled out as data, not as import statements an import sorter would reorder.
"""

from importlib import import_module

ORDER = ("conversation", "links", "optout", "blast")

for _name in ORDER:
    import_module(f"{__name__}.{_name}")
