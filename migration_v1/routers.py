"""Routes the v1 models (app label `migration_v1`, unmanaged, `v1_` prefixed) to the read-only v1 alias."""


class V1Router:
    def _is_v1(self, model) -> bool:
        return getattr(model._meta, "v1_source", False) or getattr(model, "V1_SOURCE", False)

    def db_for_read(self, model, **hints):
        return "v1" if self._is_v1(model) else None

    def db_for_write(self, model, **hints):
        if self._is_v1(model):
            raise PermissionError("the v1 database is read-only for Parley")
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == "v1":
            return False
        return None
