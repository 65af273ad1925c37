"""The processors of this release, imported (and so registered) in a fixed order by PostprocessingConfig.ready.

The order is the execution order within a batch and so the order row locks are taken in
(conversations, then blasts, then links, then number flags): concurrent drains cannot deadlock on it.
Spelled out as data, not as import statements an import sorter would reorder.
"""

from importlib import import_module

ORDER = ("conversation", "blast", "links", "optout")

for _name in ORDER:
    import_module(f"{__name__}.{_name}")
