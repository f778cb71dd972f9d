"""Tenants, named people, API keys and authentication: who may ask anything at all."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import replace
from typing import Any

from facewarden.audit import AuditEvent
from facewarden.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from facewarden.governance import policy, roles
from facewarden.governance.actors import DEFAULT_TENANT, LOCAL_ADMIN_PRINCIPAL, SUBJECT_TOKEN_PREFIX, Actor
from facewarden.service.approvals import DualControl
from facewarden.service.common import purpose_row
from facewarden.service.context import ServiceContext
from facewarden.store import ApiKey, Person, Tenant, repositories


def _check_roles(person_roles: set[str]) -> None:
    unknown = person_roles - roles.ALL_ROLES
    if unknown or not person_roles:
        raise InvalidInput(f"Unknown or missing roles {sorted(unknown)}; use {sorted(roles.ALL_ROLES)}.",
                           code="invalid_roles")


class Accounts:
    def __init__(self, ctx: ServiceContext, approvals: DualControl) -> None:
        self.ctx = ctx
        self.approvals = approvals
        approvals.register("person_create", self._create_approved_person)

    def ensure_tenant(self, tenant_id: str = DEFAULT_TENANT, name: str | None = None) -> None:
        """Create the tenant if it is new, with the default purpose policies."""
        with self.ctx.db.session() as s:
            if s.get(Tenant, tenant_id) is None:
                now = self.ctx.clock()
                s.add(Tenant(id=tenant_id, name=name or tenant_id, created_at=now))
                s.flush()
                for spec in policy.DEFAULT_PURPOSES:
                    live = spec.name in self.ctx.settings.liveness_required_purposes
                    spec = replace(spec, liveness_required=live,
                                   light_challenge=live and spec.name in self.ctx.settings.light_challenge_purposes)
                    s.add(purpose_row(tenant_id, spec, None, now))

    def admin_key_exists(self, tenant_id: str = DEFAULT_TENANT) -> bool:
        """Whether an unrevoked API key with the admin role exists: `init` issues the first one only if not."""
        with self.ctx.db.session(readonly=True) as s:
            return any(roles.ADMIN in key_roles.split(",") for key_roles in repositories.active_key_roles(s, tenant_id))

    def _target_tenant(self, actor: Actor, tenant_id: str | None) -> str:
        tenant = tenant_id or actor.tenant_id
        if tenant != actor.tenant_id and actor.principal != LOCAL_ADMIN_PRINCIPAL:
            raise Forbidden("Only the local administrator (CLI) acts on another tenant.", code="wrong_tenant")
        return tenant

    def add_person(self, actor: Actor, *, name: str, person_roles: set[str]) -> dict[str, Any]:
        """Over the API: a person with a deciding role (admin, reviewer, investigator) takes two administrators,
        or one administrator could mint the second person every two-person rule asks for."""
        if person_roles & roles.PERSONAL_ROLES and not actor.is_local_admin:
            with self.ctx.audited(actor, "person_create", roles.ADMIN) as event:
                if not name or len(name) > 200 or not person_roles <= roles.ALL_ROLES:
                    raise InvalidInput("A person needs a 1-200 character name and known roles.", code="invalid_roles")
                event.outcome = "proposed"
                return self.approvals.propose(actor, "person_create", {"name": name, "roles": sorted(person_roles)},
                                              event)
        return {"person_id": self.create_person(actor, name=name, person_roles=person_roles),
                "roles": sorted(person_roles), "status": "applied"}

    def _create_approved_person(self, approver: Actor, params: dict[str, Any]) -> dict[str, Any]:
        person_id = self.create_person(approver, name=params["name"], person_roles=set(params["roles"]),
                                       _dual_approved=True)
        return {"person_id": person_id, "roles": params["roles"]}

    def create_person(self, actor: Actor, *, name: str, person_roles: set[str],
                      tenant_id: str | None = None, _dual_approved: bool = False) -> str:
        """A named person in a tenant. Their API keys carry their roles; the audit log names them."""
        with self.ctx.audited(actor, "person_create", roles.ADMIN) as event:
            if person_roles & roles.PERSONAL_ROLES and not (actor.is_local_admin or _dual_approved):
                raise Forbidden("A person with the roles admin, reviewer or investigator needs a second "
                                "administrator's approval: propose it as a person to add.",
                                code="dual_control_required")
            _check_roles(person_roles)
            if not name or len(name) > 200:
                raise InvalidInput("A person's name is 1-200 characters.", code="invalid_name")
            tenant = self._target_tenant(actor, tenant_id)
            self.ensure_tenant(tenant)
            person_id = str(uuid.uuid4())
            event.details = {"person_id": person_id, "roles": sorted(person_roles), "for_tenant": tenant}
            with self.ctx.db.session() as s:
                s.add(Person(id=person_id, tenant_id=tenant, name=name, roles=",".join(sorted(person_roles)),
                             created_at=self.ctx.clock()))
                self.ctx.audit.append(s, event)
        return person_id

    def create_api_key(self, actor: Actor, *, name: str, key_roles: set[str], tenant_id: str | None = None,
                       person_id: str | None = None, purposes: set[str] | None = None) -> tuple[str, str]:
        """Return (key id, secret). The secret is shown once; only its SHA-256 is stored. Keys with the roles
        that decide or search (admin, reviewer, investigator) must belong to a person."""
        with self.ctx.audited(actor, "api_key_create", roles.ADMIN) as event:
            _check_roles(key_roles)
            tenant = self._target_tenant(actor, tenant_id)
            self.ensure_tenant(tenant)
            key_id = str(uuid.uuid4())
            secret = "fw_" + secrets.token_urlsafe(32)
            event.details = {"key_id": key_id, "roles": sorted(key_roles), "for_tenant": tenant,
                             "person_id": person_id, "purposes": sorted(purposes) if purposes else None}
            with self.ctx.db.session() as s:
                if person_id is not None:
                    person = s.get(Person, person_id)
                    if person is None or person.tenant_id != tenant or person.disabled_at is not None:
                        raise NotFound("No such active person in that tenant.", code="person_not_found")
                    if not key_roles <= set(person.roles.split(",")):
                        raise Forbidden(f"A key can carry only its person's roles ({person.roles}).",
                                        code="role_not_held")
                elif key_roles & roles.PERSONAL_ROLES:
                    raise InvalidInput(f"Keys with the roles {sorted(roles.PERSONAL_ROLES)} must belong to a "
                                       "person (person_id): decisions are taken by named people.",
                                       code="person_required")
                s.add(ApiKey(id=key_id, tenant_id=tenant, name=name, roles=",".join(sorted(key_roles)),
                             key_hash=hashlib.sha256(secret.encode()).hexdigest(), created_at=self.ctx.clock(),
                             person_id=person_id, purposes=",".join(sorted(purposes)) if purposes else None))
                self.ctx.audit.append(s, event)
        return key_id, secret

    def revoke_api_key(self, actor: Actor, key_id: str) -> None:
        with self.ctx.audited(actor, "api_key_revoke", roles.ADMIN, details={"key_id": key_id}) as event, \
                self.ctx.db.session() as s:
            key = s.get(ApiKey, key_id)
            if key is None or key.tenant_id != actor.tenant_id:
                raise NotFound("No such API key in your tenant.")
            key.revoked_at = self.ctx.clock()
            self.ctx.audit.append(s, event)

    def authenticate(self, secret: str | None) -> Actor:
        if not secret:
            raise Unauthorized("Send your API key in the Authorization header: `Bearer fw_...`.")
        digest = hashlib.sha256(secret.encode()).hexdigest()
        with self.ctx.db.session(readonly=True) as s:
            if secret.startswith(SUBJECT_TOKEN_PREFIX):
                subject = repositories.subject_by_credential(s, digest)
                if subject is None:
                    raise Unauthorized("The subject credential is unknown (the record may have been erased).")
                return Actor(subject.tenant_id, f"subject:{subject.id}", frozenset({roles.SUBJECT}),
                             subject_id=subject.id)
            key = repositories.api_key_by_hash(s, digest)
            if key is None or key.revoked_at is not None:
                raise Unauthorized("The API key is unknown or revoked. Ask an administrator for a new one.")
            key_roles = frozenset(key.roles.split(","))
            bound = frozenset(key.purposes.split(",")) if key.purposes else None
            if key.person_id is None:  # a device or app: never a deciding role, whatever an old key says
                return Actor(key.tenant_id, f"apikey:{key.id}", key_roles - roles.PERSONAL_ROLES, purposes=bound)
            person = s.get(Person, key.person_id)
            if person is None or person.disabled_at is not None:
                raise Unauthorized("The person this API key belongs to is disabled.")
            return Actor(key.tenant_id, f"person:{person.id}", key_roles & set(person.roles.split(",")),
                         person_id=person.id, purposes=bound)

    def record_login_failure(self, client: str, reason: str) -> None:
        self.ctx.audit.record(AuditEvent("-", f"anonymous@{client}", "login", outcome=reason))
