"""Who is asking: the resolved caller of every use case, whatever adapter it came through."""

from __future__ import annotations

from dataclasses import dataclass

from facewarden.errors import Forbidden
from facewarden.governance import roles

DEFAULT_TENANT = "default"
LOCAL_ADMIN_PRINCIPAL = "local-admin"  # whoever runs the CLI on the server: they hold the key files anyway
SUBJECT_TOKEN_PREFIX = "fws_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class Actor:
    """Who is asking: resolved from an API key (HTTP), a subject credential, or the local operator (CLI)."""

    tenant_id: str
    principal: str  # person:<id>, apikey:<id> (a device or app), subject:<id>, or local-admin
    roles: frozenset[str]
    person_id: str | None = None
    subject_id: str | None = None  # set only for a data subject acting through their credential
    purposes: frozenset[str] | None = None  # a device key bound to purposes (a payment terminal); None: any

    def check_purpose(self, purpose: str) -> None:
        if self.purposes is not None and purpose not in self.purposes:
            raise Forbidden(f"This API key may be used only for {sorted(self.purposes)}.",
                            code="purpose_not_allowed_for_key")

    def require(self, *allowed: str) -> None:
        if not self.roles & set(allowed):
            raise Forbidden(
                f"This action needs one of the roles {sorted(allowed)}; your key has {sorted(self.roles)}. "
                "Ask an administrator for a key with the right role.")

    @property
    def is_local_admin(self) -> bool:
        return self.principal == LOCAL_ADMIN_PRINCIPAL

    def read_scope(self, requested: str | None) -> str | None:
        """The tenant a read (audit log, reports) covers: API callers read their own tenant; the local
        administrator (CLI) names one, or reads every tenant with None."""
        return requested if self.is_local_admin else self.tenant_id


LOCAL_ADMIN = Actor(DEFAULT_TENANT, LOCAL_ADMIN_PRINCIPAL, frozenset(roles.ALL_ROLES))
