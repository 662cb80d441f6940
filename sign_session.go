package awshmac

import (
	"context"
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

// roleSessions are an engine's sessions, by role name.
type roleSessions struct {
	mu       sync.Mutex
	sessions map[string]*roleSession
}

// sessionFor returns the role's session, minting one through the key store
// when there is none or it is close to expiring.
func (e *engine) sessionFor(ctx context.Context, name string, role *roleEntry) (*roleSession, error) {
	e.sessions.mu.Lock()
	defer e.sessions.mu.Unlock()
	now := time.Now()
	if s := e.sessions.sessions[name]; s != nil && s.role == role && s.fresh(now) {
		return s, nil
	}
	in := credsRequest{ttl: role.DefaultSTSTTL, identity: signSessionIdentity(role, name)}
	if role.CredentialType == credentialAssumedRole {
		in.roleARN = role.RoleARNs[0]
	}
	creds, err := e.mint(ctx, role, in)
	if err != nil {
		return nil, err
	}
	s := &roleSession{role: role, key: hmac.NewStaticKey(creds.AccessKeyID, creds.SecretAccessKey),
		token: creds.SessionToken, minted: now, expires: creds.Expires}
	if e.sessions.sessions == nil {
		e.sessions.sessions = map[string]*roleSession{}
	}
	e.sessions.sessions[name] = s
	return s, nil
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
