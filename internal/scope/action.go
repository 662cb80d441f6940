package scope

import "strings"

// checkAction decides whether the operation found may be signed: an
// authority operation only when listed exactly, another when a listed glob
// matches it, and a request the scope could not place only when nothing
// depends on its operation.
func (p *Policy) checkAction(r *Request, d *Decision) error {
	if d.Operation == "" {
		return p.checkUnplaced(r, d)
	}
	if isAuthorityService(d.Service) && len(p.Actions) == 0 {
		return denied("action: " + d.Service + " mints credentials or changes access; only actions listed in allowed_actions are signed (allowed_actions: none)")
	}
	if err := p.allows(d.Action(), IsAuthority(d.Service, d.Operation)); err != nil {
		return err
	}
	for _, a := range d.needExact {
		if !namedExactly(p.Actions, a) {
			return denied("headers: " + d.needReason + "; the role must list " + a + " in allowed_actions")
		}
	}
	for _, a := range d.needAlso {
		if len(p.Actions) > 0 && p.allows(a, isAuthorityAction(a)) != nil {
			return denied("headers: x-amz-copy-source reads an object, and the role may not sign " + a + " (allowed_actions: " + listOrNone(p.Actions) + ")")
		}
	}
	return nil
}

// allows matches one action: exactly for authority, else by glob.
func (p *Policy) allows(action string, authority bool) error {
	if authority {
		if namedExactly(p.Actions, action) {
			return nil
		}
		return denied("action: " + action + " mints credentials or changes access; only actions listed one by one in allowed_actions are signed (allowed_actions: " + listOrNone(p.Actions) + ")")
	}
	if len(p.Actions) == 0 {
		return nil
	}
	for _, a := range p.Actions {
		if globMatchFold(a, action) {
			return nil
		}
	}
	return denied("action: the role may not sign " + action + " (allowed_actions: " + listOrNone(p.Actions) + ")")
}

// checkUnplaced: a request whose operation is unknown is signed only when
// the role does not limit actions and the service has no operation that
// mints or changes access; a service no model knows, only when the role
// names it.
func (p *Policy) checkUnplaced(r *Request, d *Decision) error {
	reason := d.unplaced
	if reason == "" {
		reason = "action: the request's API action cannot be determined"
	}
	switch {
	case isAuthorityService(d.Service):
		return denied(reason + "; " + d.Service + " mints credentials or changes access, so only actions listed in allowed_actions are signed")
	case len(p.Actions) > 0:
		return denied(reason + ", and the role limits actions (allowed_actions: " + listOrNone(p.Actions) + ")")
	case hasAuthorityOps(d.Service):
		return denied(reason + ", and " + d.Service + " has operations that mint credentials or change access")
	case d.Model == "" && !d.modelled && !namedExactly(p.Services, r.Service):
		return denied("service: AWS's service models do not know this service, so its operations cannot be placed; the role must name it in allowed_services (allowed_services: " + listOrNone(p.Services) + ")")
	}
	return nil
}

func isAuthorityAction(action string) bool {
	service, op, _ := strings.Cut(action, ":")
	return IsAuthority(service, op)
}
