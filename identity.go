package awshmac

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/helper/identitytpl"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

// The plugin's own template variables, beside Vault's identity templating
// ({{identity.entity.name}}, {{identity.entity.metadata.KEY}},
// {{identity.entity.aliases.ACCESSOR.name}}, {{identity.groups...}}).
const (
	tplDisplayName = "{{display_name}}" // the token's display name
	tplRandom      = "{{random}}"       // 8 random hex digits
)

var (
	sessionNameGlobRe = regexp.MustCompile(`^[\w+=,.@*?-]{1,64}$`)
	// safeNameRe matches what STS does not take in a session name.
	safeNameRe = regexp.MustCompile(`[^\w+=,.@-]`)
)

func isTemplate(s string) bool { return strings.Contains(s, "{{") }

// checkTemplate validates a template's syntax without any identity.
func checkTemplate(tpl string) error {
	s := strings.NewReplacer(tplDisplayName, "x", tplRandom, "x").Replace(tpl)
	_, _, err := identitytpl.PopulateString(identitytpl.PopulateStringInput{String: s, ValidityCheckOnly: true, Mode: identitytpl.ACLTemplating})
	return err
}

// validateIdentity checks the session identity fields for the role's type.
func (r *roleEntry) validateIdentity() error {
	assumed, federation := r.CredentialType == credentialAssumedRole, r.CredentialType == credentialFederationToken
	switch {
	case r.RoleSessionNameTemplate != "" && !assumed && !federation:
		return badInput("role_session_name_template is only for assumed_role and federation_token")
	case r.RoleSessionNameTemplate != "" && checkTemplate(r.RoleSessionNameTemplate) != nil:
		return badInput("role_session_name_template is not a valid identity template")
	case r.SourceIdentityTemplate != "" && !assumed:
		return badInput("source_identity_template is only for assumed_role")
	case r.SourceIdentityTemplate != "" && r.SourceIdentity != "":
		return badInput("source_identity_template and source_identity exclude each other")
	case r.SourceIdentityTemplate != "" && checkTemplate(r.SourceIdentityTemplate) != nil:
		return badInput("source_identity_template is not a valid identity template")
	case len(r.AllowedSessionNames) > 0 && !assumed && !federation:
		return badInput("allowed_session_names is only for assumed_role and federation_token")
	case firstMismatch(r.AllowedSessionNames, sessionNameGlobRe) > 0:
		return badInput("allowed_session_names: item %d is not a session name glob", firstMismatch(r.AllowedSessionNames, sessionNameGlobRe))
	case r.AuditSessionTags && !assumed && !federation:
		return badInput("audit_session_tags is only for assumed_role and federation_token")
	case r.AuditSessionTags && len(r.SessionTags)+2 > 50:
		return badInput("session_tags: at most 48 tags with audit_session_tags")
	}
	return nil
}

// caller is what a request tells of the Vault caller.
type caller struct {
	displayName string
	requestID   string
	entityID    string
	entity      *logical.Entity
	groups      []*logical.Group
}

// callerOf reads the caller's entity and groups, only when the role's
// templates need them (each is a round trip to Vault).
func (b *backend) callerOf(req *logical.Request, role *roleEntry) (caller, error) {
	c := caller{displayName: req.DisplayName, requestID: req.ID, entityID: req.EntityID}
	if c.entityID == "" || !role.needsEntity() {
		return c, nil
	}
	entity, err := b.System().EntityInfo(c.entityID)
	if err != nil {
		return c, err
	}
	groups, err := b.System().GroupsForEntity(c.entityID)
	if err != nil {
		return c, err
	}
	c.entity, c.groups = entity, groups
	return c, nil
}

func (r *roleEntry) needsEntity() bool {
	all := []string{r.RoleSessionNameTemplate, r.SourceIdentityTemplate}
	for _, v := range r.SessionTags {
		all = append(all, v)
	}
	return slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, "identity.") })
}

// render fills a template for the caller; field names the template's field.
func (c caller) render(field, tpl string) (string, error) {
	var random [4]byte
	_, _ = rand.Read(random[:])
	s := strings.NewReplacer(
		tplDisplayName, safeNameRe.ReplaceAllString(c.displayName, "-"),
		tplRandom, hex.EncodeToString(random[:]),
	).Replace(tpl)
	if !isTemplate(s) {
		return s, nil
	}
	_, out, err := identitytpl.PopulateString(identitytpl.PopulateStringInput{
		String: s, Entity: c.entity, Groups: c.groups, Mode: identitytpl.ACLTemplating,
	})
	switch {
	case errors.Is(err, identitytpl.ErrNoEntityAttachedToToken), errors.Is(err, identitytpl.ErrNoGroupsAttachedToToken):
		return "", badInput("%s needs the caller's identity entity, and this request has none", field)
	case err != nil:
		return "", badInput("%s: the caller's identity has no value for one of its directives", field)
	}
	return out, nil
}

// sessionIdentity is what one creds/ request's session is named and tagged.
type sessionIdentity struct {
	name           string
	sourceIdentity string
	tags           []stscreds.Tag
}

// identityFor names and tags the session for the caller: the role decides,
// the caller chooses a name only where allowed_session_names lets them.
func identityFor(role *roleEntry, roleName string, c caller, asked string) (sessionIdentity, error) {
	var id sessionIdentity
	var err error
	if id.name, err = sessionName(role, roleName, c, asked); err != nil {
		return id, err
	}
	if id.sourceIdentity, err = sourceIdentity(role, c); err != nil {
		return id, err
	}
	id.tags, err = sessionTags(role, c)
	return id, err
}

func sessionName(role *roleEntry, roleName string, c caller, asked string) (string, error) {
	federation := role.CredentialType == credentialFederationToken
	nameRe, limit := sessionNameRe, 64
	if federation {
		nameRe, limit = federationRe, 32
	}
	switch {
	case role.CredentialType == credentialSessionToken:
		if asked != "" {
			return "", badInput("role_session_name does not apply to session_token roles")
		}
		return "", nil
	case asked != "" && !matchGlobs(role.AllowedSessionNames, asked):
		return "", badInput("role_session_name: the role does not let callers choose this session name (allowed_session_names: %s)", listOrNone(role.AllowedSessionNames))
	case asked != "":
		if !nameRe.MatchString(asked) {
			return "", badInput("role_session_name must be 2 to %d characters of letters, digits and +=,.@-_", limit)
		}
		return asked, nil
	case role.RoleSessionNameTemplate != "":
		name, err := c.render("role_session_name_template", role.RoleSessionNameTemplate)
		if err == nil && !nameRe.MatchString(name) {
			err = badInput("role_session_name_template renders, for this caller, a name that is not 2 to %d characters of letters, digits and +=,.@-_", limit)
		}
		return name, err
	}
	return defaultSessionName(c.displayName, roleName, federation), nil
}

func sourceIdentity(role *roleEntry, c caller) (string, error) {
	switch {
	case role.SourceIdentityTemplate != "":
		id, err := c.render("source_identity_template", role.SourceIdentityTemplate)
		if err == nil && (!sourceIDRe.MatchString(id) || strings.HasPrefix(strings.ToLower(id), "aws:")) {
			err = badInput("source_identity_template renders, for this caller, a value that is not 2 to 64 characters of letters, digits and +=,.@-_")
		}
		return id, err
	case role.SourceIdentity != "":
		return role.SourceIdentity, nil
	case role.AuditSessionTags && role.CredentialType == credentialAssumedRole && c.entityID != "":
		return c.entityID, nil
	}
	return "", nil
}

func sessionTags(role *roleEntry, c caller) ([]stscreds.Tag, error) {
	var tags []stscreds.Tag
	for k, v := range role.SessionTags {
		if isTemplate(v) {
			var err error
			if v, err = c.render("session_tags", v); err != nil {
				return nil, err
			}
			if len([]rune(v)) > 256 || !tagRe.MatchString(v) {
				return nil, badInput("session_tags: a template renders, for this caller, a value that is not up to 256 letters, digits, spaces or _.:/=+-@")
			}
		}
		tags = append(tags, stscreds.Tag{Key: k, Value: v})
	}
	if role.AuditSessionTags {
		tags = append(tags, stscreds.Tag{Key: "vault-request-id", Value: c.requestID})
		if c.entityID != "" {
			tags = append(tags, stscreds.Tag{Key: "vault-entity-id", Value: c.entityID})
		}
	}
	slices.SortFunc(tags, func(a, b stscreds.Tag) int { return strings.Compare(a.Key, b.Key) })
	return tags, nil
}
