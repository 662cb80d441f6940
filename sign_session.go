package awshmac

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// roleSession is the STS session a sign_with=session role signs with. It
// lives in the engine's memory only, is refreshed before it expires and is
// never returned: AWS then enforces the role's policy on every request the
// plugin signs for it.
type roleSession struct {
	role    *roleEntry // the role it was minted for; a new role, a new session
	key     hmac.Key
	token   string
	minted  time.Time
	expires time.Time
}

// fresh reports whether the session has more than a fifth of its life left.
func (s *roleSession) fresh(now time.Time) bool {
	return now.Before(s.expires.Add(-s.expires.Sub(s.minted) / 5))
}

// roleSessions are an engine's sessions, by role name. The lock guards the
// maps only: no STS call runs under it, so one slow role never stalls
// another.
type roleSessions struct {
	mu       sync.Mutex
	sessions map[string]*roleSession
	flights  map[string]*sessionFlight
}

// sessionFlight is one role's mint in progress; the callers that arrive
// meanwhile wait for it instead of minting again.
type sessionFlight struct {
	done chan struct{}
	s    *roleSession
	err  error
}

// sessionFor returns the role's session, minting one through the key store
// when there is none or it is close to expiring. Callers of one role share
// one mint (single flight); each waits only as long as its own context.
func (e *engine) sessionFor(ctx context.Context, name string, role *roleEntry) (*roleSession, error) {
	for {
		s, f, leader := e.sessions.lookup(name, role)
		if s != nil {
			return s, nil
		}
		if leader {
			s, err := e.mintSession(ctx, name, role)
			e.sessions.land(name, f, s, err)
			return s, err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		switch {
		case f.err == nil && f.s.role == role:
			return f.s, nil
		case f.err != nil && !errors.Is(f.err, context.Canceled) && !errors.Is(f.err, context.DeadlineExceeded):
			return nil, f.err
		}
		// The leader gave up or minted for an older role: try again.
	}
}

// lookup returns a fresh session, or the flight to wait for, or a new
// flight this caller leads.
func (rs *roleSessions) lookup(name string, role *roleEntry) (*roleSession, *sessionFlight, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if s := rs.sessions[name]; s != nil && s.role == role && s.fresh(time.Now()) {
		return s, nil, false
	}
	if f := rs.flights[name]; f != nil {
		return nil, f, false
	}
	if rs.flights == nil {
		rs.flights, rs.sessions = map[string]*sessionFlight{}, map[string]*roleSession{}
	}
	f := &sessionFlight{done: make(chan struct{})}
	rs.flights[name] = f
	return nil, f, true
}

// land records the flight's outcome and wakes its waiters.
func (rs *roleSessions) land(name string, f *sessionFlight, s *roleSession, err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if err == nil {
		rs.sessions[name] = s
	}
	delete(rs.flights, name)
	f.s, f.err = s, err
	close(f.done)
}

func (e *engine) mintSession(ctx context.Context, name string, role *roleEntry) (*roleSession, error) {
	now := time.Now()
	in := credsRequest{ttl: role.DefaultSTSTTL, identity: signSessionIdentity(role, name)}
	if role.CredentialType == credentialAssumedRole {
		in.roleARN = role.RoleARNs[0]
	}
	creds, err := e.mint(ctx, role, in)
	if err != nil {
		return nil, err
	}
	return &roleSession{role: role, key: hmac.NewStaticKey(creds.AccessKeyID, creds.SecretAccessKey),
		token: creds.SessionToken, minted: now, expires: creds.Expires}, nil
}

// signSessionIdentity names the shared signing session after the role; it
// serves every caller, so it carries none's identity, only the role's own
// fixed tags.
func signSessionIdentity(role *roleEntry, name string) sessionIdentity {
	id := sessionIdentity{name: safeNameRe.ReplaceAllString("vault-sign-"+name, "-"), sourceIdentity: role.SourceIdentity}
	limit := 64
	if role.CredentialType == credentialFederationToken {
		limit = 32
	}
	if len(id.name) > limit {
		id.name = id.name[:limit]
	}
	if role.CredentialType == credentialSessionToken {
		id.name = ""
	}
	tags, _ := sessionTags(&roleEntry{SessionTags: fixedTags(role.SessionTags)}, caller{})
	id.tags = tags
	return id
}

func fixedTags(tags map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range tags {
		if !isTemplate(v) {
			out[k] = v
		}
	}
	return out
}
