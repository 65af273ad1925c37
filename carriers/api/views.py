"""GET /api/v1/carrier-accounts and /api/v1/carrier-accounts/{id}: the organization's carrier accounts
and their webhook health. Read-only and tenant scoped: another organization's account answers 404.
Accounts are created and configured in the admin (they hold the carrier's credentials)."""

from __future__ import annotations

from rest_framework import mixins, viewsets
from rest_framework.response import Response

from organizations.api.base import TenantAPIMixin

from ..models import CarrierAccount
from ..selectors import carrier_accounts_for, webhook_health
from .serializers import CarrierAccountSerializer


class CarrierAccountViewSet(TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = CarrierAccountSerializer
    queryset = CarrierAccount.objects.none()
    pagination_ordering = ("id",)

    def get_queryset(self):
        return carrier_accounts_for(organization=self.organization)

    def _serialize(self, accounts: list[CarrierAccount], *, many: bool):
        # One health read for the whole page (a fixed number of queries), not one per account.
        health = webhook_health(account_ids=[a.pk for a in accounts])
        context = {**self.get_serializer_context(), "webhook_health": health}
        return CarrierAccountSerializer(accounts if many else accounts[0], many=many, context=context).data

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._serialize(list(page or []), many=True))

    def retrieve(self, request, *args, **kwargs):
        return Response(self._serialize([self.get_object()], many=False))
