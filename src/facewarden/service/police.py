"""Law-enforcement searches: written requests, review, grants, searches, double confirmation, emergencies.

The workflow of Utah Code 77-23e and Mass. G.L. c.6 §220: an investigator of a requesting agency files a written
request with the agency that administers a face database; a reviewer of that agency approves or denies it; an
approval is a grant for this case only, a few searches, until an expiry. A search returns investigative leads,
never an identification: a lead is confirmed only when two different reviewers confirm it (EU AI Act Art. 14(5)).
In an emergency a search runs at once, and a written request must follow within 48 hours, or the leads are
destroyed and the search is flagged.

Audit entries carry the case number as `case_id` and identifiers only: never scores, names, narratives or facts.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from facewarden.audit import AuditEvent
from facewarden.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from facewarden.governance import policy, roles
from facewarden.governance.actors import Actor
from facewarden.service.calibration import law_enforcement_threshold
from facewarden.service.common import aware, iso
from facewarden.service.context import ServiceContext
from facewarden.service.police_records import (
    MARKING,
    MAX_CASE_NUMBER,
    MAX_TEXT_FIELD,
    case_id,
    check_lengths,
    fields_of,
    grant_json,
    request_json,
)
from facewarden.service.subjects import matchable, refresh_gallery
from facewarden.store import LawEnforcementPolicy, LeCandidate, LeSearch, SearchGrant, SearchRequest, repositories
from facewarden.vision import DetectedFace

log = logging.getLogger("facewarden.lawenforcement")
PENDING_REQUEST_TTL = timedelta(days=30)  # an undecided request, and its probe photo, lapse after this


class PoliceSearch:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    # -- helpers -----------------------------------------------------------------------------
    def _le_policy(self, s: Session, administering_tenant: str) -> LawEnforcementPolicy:
        pol = s.get(LawEnforcementPolicy, administering_tenant) if administering_tenant else None
        if pol is None:  # one answer for both cases: which tenants exist is not the requester's business
            raise NotFound(f"No agency '{administering_tenant}' accepts search requests here; check the "
                           "administering_tenant.", code="unknown_agency")
        return pol

    @staticmethod
    def _searchable_purposes(s: Session, administering_tenant: str) -> set[str]:
        return repositories.searchable_purposes(s, administering_tenant)

    def _find_leads(self, s: Session, administering_tenant: str, embedding: np.ndarray,
                    max_candidates: int) -> list[tuple[str, str]]:
        """(subject id, external reference) of the leads, nearest first: the administering agency's gallery
        only, and only its purposes that law enforcement may search."""
        purposes = self._searchable_purposes(s, administering_tenant)
        if not purposes:
            return []
        threshold = law_enforcement_threshold(self.ctx, s).value  # leads: the strictest operating point
        found = self.ctx.gallery.search(administering_tenant, embedding, threshold=threshold,
                                        max_candidates=max_candidates, purposes=purposes)
        if not found:
            return []
        # Checked again against the database (the gallery is a cache): purpose, retention, and a legal basis
        # that is a law, so no consent or contract template is ever searched.
        rows = matchable(self.ctx, s, administering_tenant, [c.subject_id for c in found], purposes,
                               legal_bases={"law", "public-task"})
        return [(c.subject_id, rows[c.subject_id]) for c in found if c.subject_id in rows]

    def _store_search(self, s: Session, actor: Actor, *, administering_tenant: str, case_number: str,
                      request_id: str | None, emergency_facts: str | None,
                      leads: list[tuple[str, str]]) -> tuple[LeSearch, list[dict[str, Any]]]:
        search = LeSearch(id=str(uuid.uuid4()), administering_tenant=administering_tenant,
                          requesting_tenant=actor.tenant_id, request_id=request_id, run_by=actor.principal,
                          case_number=case_number, emergency=emergency_facts is not None,
                          emergency_facts=emergency_facts, status="leads", candidates_returned=len(leads),
                          created_at=self.ctx.clock())
        s.add(search)
        s.flush()
        out = []
        for rank, (subject_id, external_id) in enumerate(leads, start=1):
            cand = LeCandidate(id=str(uuid.uuid4()), search_id=search.id, subject_id=subject_id, rank=rank)
            s.add(cand)
            out.append({"candidate_id": cand.id, "subject": external_id, "rank": rank, "confirmed": False})
        s.flush()
        return search, out

    def _disclosed(self, s: Session, actor: Actor, search: LeSearch,
                   leads: list[tuple[str, str]]) -> None:
        """The administering agency's own entry: whose data it disclosed, to which agency, for which case."""
        self.ctx.audit.append(s, AuditEvent(
            search.administering_tenant, actor.principal, "le_disclosure", case_id=search.case_number,
            purpose=policy.LAW_ENFORCEMENT, outcome="candidates" if leads else "no_candidates",
            details={"search_id": search.id, "requesting_tenant": search.requesting_tenant,
                     "emergency": search.emergency, "candidates": [subject_id for subject_id, _ in leads]}))

    def _search_json(self, s: Session, search: LeSearch) -> dict[str, Any]:
        cands = repositories.candidates_of(s, search.id)
        names = repositories.subject_references(s, [c.subject_id for c in cands])
        body: dict[str, Any] = {
            "search_id": search.id, "case_number": search.case_number, "marking": MARKING,
            "administering_tenant": search.administering_tenant, "requesting_tenant": search.requesting_tenant,
            "request_id": search.request_id, "emergency": search.emergency, "status": search.status,
            "created_at": iso(search.created_at), "candidates_returned": search.candidates_returned,
            "candidates": [{"candidate_id": c.id, "subject": names.get(c.subject_id), "rank": c.rank,
                            "confirmed": c.confirmed_at is not None,
                            "confirmations": (c.first_confirmed_by is not None) + (c.second_confirmed_by is not None)}
                           for c in cands]}
        if search.emergency:
            body["follow_up_due"] = iso(aware(search.created_at) + policy.EMERGENCY_FOLLOW_UP)  # type: ignore[operator]
        return body

    # -- 1. the written request ------------------------------------------------------------
    def file_request(self, actor: Actor, *, administering_tenant: str, fields: policy.RequestFields,
                     probe: bytes, emergency_search_id: str | None = None) -> dict[str, Any]:
        """An investigator files a written request with the agency that administers a database. The probe photo
        is checked (exactly one face) and kept only as ciphertext under the request's own data key."""
        with self.ctx.audited(actor, "le_request_file", roles.INVESTIGATOR, case_id=case_id(fields.case_number),
                           purpose=policy.LAW_ENFORCEMENT,
                           details={"administering_tenant": (administering_tenant or "")[:64]}) as event:
            check_lengths(fields)
            with self.ctx.db.session(readonly=True) as s:
                pol = self._le_policy(s, administering_tenant)
                policy.check_request(fields, frozenset(pol.allowed_uses.split(",")), pol.max_candidates)
                if emergency_search_id:
                    self._check_follow_up(s, actor, administering_tenant, fields.case_number, emergency_search_id)
            self._probe(probe)  # exactly one usable face, or the request is refused now
            request_id = str(uuid.uuid4())
            # The probe's key is confirmed once the request committed, destroyed if it never did (keyring.creating).
            with self.ctx.keyring.creating("le_request") as new_keys:
                new_keys.append(self.ctx.keyring.probe_key(request_id))
                sealed = self.ctx.keyring.seal_probe(request_id, administering_tenant, actor.tenant_id, probe)
                with self.ctx.db.session() as s:
                    s.add(SearchRequest(
                        id=request_id, administering_tenant=administering_tenant, requesting_tenant=actor.tenant_id,
                        requested_by=actor.principal, case_number=fields.case_number.strip(),
                        offence=fields.offence.strip(), narrative=fields.narrative.strip(),
                        authorised_use=fields.authorised_use, basis_kind=fields.basis_kind,
                        court_order_ref=(fields.court_order_ref or "").strip() or None,
                        emergency_facts=(fields.emergency_facts or "").strip() or None,
                        max_candidates=fields.max_candidates,
                        probe=sealed,
                        emergency_search_id=emergency_search_id or None, status="pending",
                        created_at=self.ctx.clock()))
                    s.flush()
                    event.outcome = "filed"
                    event.details = {"request_id": request_id, "administering_tenant": administering_tenant,
                                     "authorised_use": fields.authorised_use, "basis_kind": fields.basis_kind,
                                     "max_candidates": fields.max_candidates,
                                     "emergency_search_id": emergency_search_id or None}
                    self.ctx.audit.append(s, event)
        return {"request_id": request_id, "status": "pending", "case_number": fields.case_number.strip(),
                "administering_tenant": administering_tenant, "authorised_use": fields.authorised_use,
                "basis_kind": fields.basis_kind, "max_candidates": fields.max_candidates,
                "emergency_search_id": emergency_search_id or None,
                "message": f"A reviewer of '{administering_tenant}' must approve the request before any search."}

    def _check_follow_up(self, s: Session, actor: Actor, administering_tenant: str, case_number: str,
                         emergency_search_id: str) -> None:
        search = s.get(LeSearch, emergency_search_id)
        if search is None or not search.emergency or search.requesting_tenant != actor.tenant_id:
            raise NotFound("No emergency search of your agency has that id.", code="emergency_search_not_found")
        if search.administering_tenant != administering_tenant or search.case_number != case_number.strip():
            raise Conflict("A follow-up request must be for the emergency search's own case and database.",
                           code="follow_up_mismatch")
        deadline = aware(search.created_at) + policy.EMERGENCY_FOLLOW_UP  # type: ignore[operator]
        if self.ctx.clock() > deadline or search.status != "leads":
            raise Conflict(f"The written request had to follow within 48 hours (by {deadline.isoformat()}); the "
                           "emergency search is closed.", code="follow_up_too_late")
        if repositories.follow_up_of(s, emergency_search_id):
            raise Conflict("A written request already follows up this emergency search.", code="follow_up_exists")

    # -- 2. review ---------------------------------------------------------------------------
    def review_request(self, actor: Actor, request_id: str, *, approve: bool,
                       reason: str) -> dict[str, Any]:
        """A reviewer of the administering agency decides. Approval is a grant for this case only, checked
        against the policy in force now; denial destroys the probe's data key."""
        with self.ctx.audited(actor, "le_request_review", roles.REVIEWER, purpose=policy.LAW_ENFORCEMENT,
                           details={"request_id": request_id[:64], "approve": approve}) as event:
            reason = (reason or "").strip()
            if not reason:
                raise InvalidInput("A decision needs its reason (`reason`).", code="reason_required")
            if len(reason) > MAX_TEXT_FIELD:
                raise InvalidInput(f"`reason` is at most {MAX_TEXT_FIELD} characters.", code="invalid_request")
            now = self.ctx.clock()
            with self.ctx.db.session() as s:
                req = s.get(SearchRequest, request_id, with_for_update=True)
                if req is None or req.administering_tenant != actor.tenant_id:
                    raise NotFound("No such police request to your agency.", code="request_not_found")
                event.case_id = req.case_number
                if req.status != "pending":
                    raise Conflict(f"This request is already {req.status}.", code="request_decided")
                pol = self._le_policy(s, actor.tenant_id)
                if req.requesting_tenant == actor.tenant_id and not pol.allow_own_agency_review:
                    raise Forbidden("This request comes from your own agency; the policy requires a reviewer of "
                                    "another agency to decide it.", code="own_agency_review")
                if req.requested_by == actor.principal:
                    raise Forbidden("Nobody reviews their own request.", code="same_person")
                grant = None
                if approve:
                    policy.check_request(fields_of(req), frozenset(pol.allowed_uses.split(",")), pol.max_candidates)
                    grant = SearchGrant(id=str(uuid.uuid4()), request_id=req.id, case_number=req.case_number,
                                        searches_allowed=pol.searches_per_grant, searches_used=0,
                                        expires_at=now + timedelta(days=pol.grant_days), created_at=now)
                    s.add(grant)
                else:
                    req.probe = None  # the ciphertext goes too; destroying its key below makes any copy useless
                req.status = "approved" if approve else "denied"
                req.decided_by, req.decision_reason, req.decided_at = actor.principal, reason, now
                s.flush()
                event.outcome = req.status
                event.details = {"request_id": req.id, "requesting_tenant": req.requesting_tenant}
                if grant is not None:
                    event.details.update(grant_id=grant.id, searches_allowed=grant.searches_allowed,
                                         expires_at=iso(grant.expires_at))
                self.ctx.audit.append(s, event)
                if not approve:
                    self._shred_probe_on_commit(s, req.id)
                result = {"request_id": req.id, "case_number": req.case_number, "status": req.status,
                          "decided_by": actor.principal, "reason": reason, "decided_at": iso(now),
                          "grant": grant_json(grant)}
        return result

    # -- 3. the search under a grant -----------------------------------------------------------
    def _check_grant(self, req: SearchRequest, grant: SearchGrant | None) -> None:
        if req.status != "approved" or grant is None:
            raise Forbidden(f"This request is {req.status}: a search runs only under the grant of an approved "
                            "request.", code="grant_required")
        if aware(grant.expires_at) <= self.ctx.clock():  # type: ignore[operator]
            raise Forbidden(f"The grant expired on {iso(grant.expires_at)}; file a new request.",
                            code="grant_expired")
        if grant.searches_used >= grant.searches_allowed:
            raise Forbidden(f"The grant's {grant.searches_allowed} searches are used up; file a new request.",
                            code="grant_used_up")

    def search(self, actor: Actor, request_id: str) -> dict[str, Any]:
        """Search the administering agency's searchable purposes with the request's probe, under its grant."""
        with self.ctx.audited(actor, "le_search", roles.INVESTIGATOR, purpose=policy.LAW_ENFORCEMENT,
                           details={"request_id": request_id[:64]}) as event:
            with self.ctx.db.session(readonly=True) as s:
                req = s.get(SearchRequest, request_id)
                if req is None or req.requesting_tenant != actor.tenant_id:
                    raise NotFound("No such police request from your agency.", code="request_not_found")
                event.case_id = req.case_number
                self._check_grant(req, repositories.grant_of(s, req.id))
            self.ctx.check_search_rate(actor)
            image = self.ctx.keyring.open_probe(req.id, req.administering_tenant, req.requesting_tenant,
                                                req.probe or b"")
            embedding = self._probe(image).embedding
            refresh_gallery(self.ctx)
            with self.ctx.db.session() as s:
                req = s.get(SearchRequest, request_id, with_for_update=True)
                grant = repositories.grant_of(s, request_id, for_update=True)
                self._check_grant(req, grant)  # again, under the lock: two searches at once use two searches
                assert grant is not None
                grant.searches_used += 1
                leads = self._find_leads(s, req.administering_tenant, embedding, req.max_candidates)
                search, candidates = self._store_search(
                    s, actor, administering_tenant=req.administering_tenant, case_number=req.case_number,
                    request_id=req.id, emergency_facts=None, leads=leads)
                event.outcome = "candidates" if leads else "no_candidates"
                event.details = {"request_id": req.id, "search_id": search.id, "grant_id": grant.id,
                                 "searches_used": grant.searches_used, "searches_allowed": grant.searches_allowed,
                                 "candidates": [subject_id for subject_id, _ in leads]}
                self._disclosed(s, actor, search, leads)
                self.ctx.audit.append(s, event)
                result = {"search_id": search.id, "case_number": req.case_number, "marking": MARKING,
                          "searches_used": grant.searches_used, "searches_allowed": grant.searches_allowed,
                          "candidates": candidates}
        return result

    # -- 4. emergencies ----------------------------------------------------------------------
    def emergency_search(self, actor: Actor, *, administering_tenant: str, case_number: str,
                         authorised_use: str, emergency_facts: str, probe: bytes,
                         max_candidates: int) -> dict[str, Any]:
        """A search at once, without a grant, where the policy allows the use. A written request must follow
        within 48 hours, or the retention job destroys the leads and flags the search."""
        with self.ctx.audited(actor, "le_emergency_search", roles.INVESTIGATOR, case_id=case_id(case_number),
                           purpose=policy.LAW_ENFORCEMENT,
                           details={"administering_tenant": (administering_tenant or "")[:64]}) as event:
            facts = (emergency_facts or "").strip()
            if case_id(case_number) is None:
                raise InvalidInput(f"case_number must be 1-{MAX_CASE_NUMBER} printable characters.",
                                   code="request_incomplete" if not (case_number or "").strip() else "invalid_request")
            if not facts:
                raise InvalidInput("An emergency search needs the facts of the emergency (`emergency_facts`).",
                                   code="request_incomplete")
            if len(facts) > MAX_TEXT_FIELD:
                raise InvalidInput(f"emergency_facts is at most {MAX_TEXT_FIELD} characters.", code="invalid_request")
            if authorised_use not in policy.AUTHORISED_USES:
                raise InvalidInput(f"authorised_use must be one of {sorted(policy.AUTHORISED_USES)}.",
                                   code="invalid_request")
            case_number = case_number.strip()
            with self.ctx.db.session(readonly=True) as s:
                pol = self._le_policy(s, administering_tenant)
                allowed = frozenset(pol.allowed_uses.split(","))
                if authorised_use not in allowed:
                    raise Forbidden(f"This database's policy allows searches only for {sorted(allowed)}, not "
                                    f"'{authorised_use}'.", code="use_not_allowed")
                if not 1 <= max_candidates <= pol.max_candidates:
                    raise InvalidInput(f"max_candidates must be 1-{pol.max_candidates} under this database's policy.",
                                       code="invalid_request")
            self.ctx.check_search_rate(actor)
            embedding = self._probe(probe).embedding
            refresh_gallery(self.ctx)
            with self.ctx.db.session() as s:
                leads = self._find_leads(s, administering_tenant, embedding, max_candidates)
                search, candidates = self._store_search(
                    s, actor, administering_tenant=administering_tenant, case_number=case_number, request_id=None,
                    emergency_facts=facts, leads=leads)
                due = aware(search.created_at) + policy.EMERGENCY_FOLLOW_UP  # type: ignore[operator]
                event.outcome = "candidates" if leads else "no_candidates"
                event.details = {"search_id": search.id, "administering_tenant": administering_tenant,
                                 "authorised_use": authorised_use, "follow_up_due": due.isoformat(),
                                 "candidates": [subject_id for subject_id, _ in leads]}
                self._disclosed(s, actor, search, leads)
                self.ctx.audit.append(s, event)
        return {"search_id": search.id, "case_number": case_number, "marking": MARKING, "emergency": True,
                "candidates": candidates, "follow_up_due": due.isoformat(),
                "message": f"Emergency search: a written request must follow within 48 hours, by {due.isoformat()} "
                           f"(a written request with emergency_search_id={search.id}). Otherwise these leads "
                           "are destroyed and the search is flagged."}

    def expire_emergencies(self, actor: Actor) -> int:
        """Run by the retention job: an emergency search 48 hours old with no written request following it loses
        its candidates and is flagged; one whose written request was denied loses them and is destroyed.
        Returns how many were flagged."""
        with self.ctx.audited(actor, "le_emergency_expire", roles.ADMIN):
            cutoff = self.ctx.clock() - policy.EMERGENCY_FOLLOW_UP
            with self.ctx.db.session(readonly=True) as s:
                due = [x.id for x in repositories.open_emergency_searches(s)
                       if aware(x.created_at) <= cutoff]  # type: ignore[operator]
            flagged = 0
            for search_id in due:
                with self.ctx.db.session() as s:
                    search = s.get(LeSearch, search_id, with_for_update=True)
                    if search is None or search.status != "leads":
                        continue
                    follow_ups = repositories.follow_up_statuses(s, search_id)
                    if follow_ups and follow_ups != {"denied"}:
                        continue  # a written request followed in time and is pending or approved
                    status = "destroyed" if follow_ups else "flagged"
                    cands = repositories.candidates_of(s, search_id)
                    for c in cands:
                        s.delete(c)
                    search.status = status
                    s.flush()
                    self.ctx.audit.append(s, AuditEvent(
                        search.administering_tenant, actor.principal, "le_emergency_expire",
                        case_id=search.case_number, purpose=policy.LAW_ENFORCEMENT, outcome=status,
                        details={"search_id": search.id, "requesting_tenant": search.requesting_tenant,
                                 "candidates_deleted": len(cands)}))
                    flagged += status == "flagged"
                    log.info("emergency search %s %s (%d candidates deleted)", search.id, status, len(cands))
        return flagged

    def expire_probes(self, actor: Actor) -> int:
        """Run by the retention job: a probe photo is kept only while it can still be searched. Once its grant has
        expired or is used up, or a request waited 30 days without a decision, the probe's key is destroyed."""
        now = self.ctx.clock()
        destroyed = 0
        with self.ctx.db.session() as s:
            for req, grant in repositories.requests_holding_probes(s):
                spent = grant is not None and (aware(grant.expires_at) <= now  # type: ignore[operator]
                                               or grant.searches_used >= grant.searches_allowed)
                stale = req.status == "pending" and aware(req.created_at) + PENDING_REQUEST_TTL <= now  # type: ignore[operator]
                if spent or stale:
                    if stale:
                        req.status = "expired"
                    req.probe = None
                    self._shred_probe_on_commit(s, req.id)
                    self.ctx.audit.append(s, AuditEvent(req.administering_tenant, actor.principal, "le_probe_destroy",
                                                    case_id=req.case_number, purpose=policy.LAW_ENFORCEMENT,
                                                    outcome="expired" if stale else "grant_spent",
                                                    details={"request_id": req.id}))
                    destroyed += 1
        return destroyed

    def _probe(self, image: bytes) -> DetectedFace:
        """The probe's one face: its dominant face only where `dominant_face_purposes` names law-enforcement."""
        return self.ctx.probe_for(image, policy.LAW_ENFORCEMENT)

    def _shred_probe_on_commit(self, s: Session, request_id: str) -> None:
        """Journal the probe key's shred in the key store now, destroy the key once this unit of work committed
        (a crash in between is finished or undone by the key-intent recovery)."""
        keys = [self.ctx.keyring.probe_key(request_id)]
        self.ctx.keyring.begin_shred(keys)
        s.info.setdefault("after_commit", []).append(lambda: self.ctx.keyring.finish_shred(keys))

    # -- 5. double confirmation ----------------------------------------------------------------
    def confirm_candidate(self, actor: Actor, candidate_id: str) -> dict[str, Any]:
        """A lead becomes a confirmed lead only when two different reviewers of the administering agency have
        each compared it themselves (EU AI Act Art. 14(5))."""
        with self.ctx.audited(actor, "le_confirm", roles.REVIEWER, purpose=policy.LAW_ENFORCEMENT,
                           details={"candidate_id": candidate_id[:64]}) as event, self.ctx.db.session() as s:
            cand = s.get(LeCandidate, candidate_id, with_for_update=True)
            search = s.get(LeSearch, cand.search_id) if cand is not None else None
            if cand is None or search is None or search.administering_tenant != actor.tenant_id:
                raise NotFound("No such candidate in a search of your agency's database.", code="candidate_not_found")
            event.case_id, event.subject_id = search.case_number, cand.subject_id
            if search.status != "leads":
                raise Gone(f"The search was {search.status}; its candidates can no longer be confirmed.",
                           code="search_closed")
            if cand.confirmed_at is not None:
                raise Conflict("Two reviewers have already confirmed this lead.", code="already_confirmed")
            if cand.first_confirmed_by is None:
                cand.first_confirmed_by = actor.principal
                event.outcome = "first_confirmation"
            elif cand.first_confirmed_by == actor.principal:
                raise Conflict("You confirmed this lead already; a second, different reviewer must confirm it.",
                               code="same_reviewer")
            else:
                cand.second_confirmed_by, cand.confirmed_at = actor.principal, self.ctx.clock()
                event.outcome = "confirmed"
            event.details = {"candidate_id": cand.id, "search_id": search.id}
            self.ctx.audit.append(s, event)
            confirmed = cand.confirmed_at is not None
            return {"candidate_id": cand.id, "search_id": search.id, "case_number": search.case_number,
                    "rank": cand.rank, "confirmations": 2 if confirmed else 1, "confirmed": confirmed,
                    "marking": MARKING}  # a confirmed lead is still a lead, not an identification

    # -- 6. reading ------------------------------------------------------------------------------
    def list_requests(self, actor: Actor) -> list[dict[str, Any]]:
        """Reviewers see the requests to their agency, investigators their own agency's requests."""
        with self.ctx.audited(actor, "le_request_list", roles.REVIEWER, roles.INVESTIGATOR) as event, \
                self.ctx.db.session() as s:
            reqs = repositories.requests_visible(
                s, administered_by=actor.tenant_id if roles.REVIEWER in actor.roles else None,
                requested_by=actor.tenant_id if roles.INVESTIGATOR in actor.roles else None)
            grants = repositories.grants_of(s, [r.id for r in reqs])
            event.details = {"returned": len(reqs)}
            self.ctx.audit.append(s, event)
            return [request_json(r, grants.get(r.id)) for r in reqs]

    def get_search(self, actor: Actor, search_id: str) -> dict[str, Any]:
        """For the investigators of the requesting agency and the reviewers of the administering one."""
        with self.ctx.audited(actor, "le_search_view", roles.REVIEWER, roles.INVESTIGATOR,
                           details={"search_id": search_id[:64]}) as event, self.ctx.db.session() as s:
            search = s.get(LeSearch, search_id)
            if search is None or not (
                    (roles.INVESTIGATOR in actor.roles and search.requesting_tenant == actor.tenant_id)
                    or (roles.REVIEWER in actor.roles and search.administering_tenant == actor.tenant_id)):
                raise NotFound("No such search for your agency.", code="search_not_found")
            event.case_id = search.case_number
            body = self._search_json(s, search)
            self.ctx.audit.append(s, event)
            return body
