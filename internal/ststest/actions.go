package ststest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

type getCallerIdentityResult struct {
	XMLName xml.Name `xml:"GetCallerIdentityResult"`
	Arn     string
	UserID  string `xml:"UserId"`
	Account string
}

type getSessionTokenResult struct {
	XMLName     xml.Name `xml:"GetSessionTokenResult"`
	Credentials credentialsXML
}

type assumeRoleResult struct {
	XMLName         xml.Name `xml:"AssumeRoleResult"`
	SourceIdentity  string   `xml:",omitempty"`
	Credentials     credentialsXML
	AssumedRoleUser struct {
		Arn           string
		AssumedRoleID string `xml:"AssumedRoleId"`
	}
	PackedPolicySize int
}

type getFederationTokenResult struct {
	XMLName       xml.Name `xml:"GetFederationTokenResult"`
	Credentials   credentialsXML
	FederatedUser struct {
		Arn             string
		FederatedUserID string `xml:"FederatedUserId"`
	}
	PackedPolicySize int
}

var (
	sessionNameRe    = regexp.MustCompile(`^[\w+=,.@-]*$`)
	externalIDRe     = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	serialRe         = regexp.MustCompile(`^[\w+=/:,.@-]*$`)
	tokenCodeRe      = regexp.MustCompile(`^\d{6}$`)
	tagRe            = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	roleARNRe        = regexp.MustCompile(`^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)
	policyARNRe      = regexp.MustCompile(`^arn:aws[\w-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+$`)
	policyCharsRe    = regexp.MustCompile(`^[\x{0009}\x{000A}\x{000D}\x{0020}-\x{00FF}]+$`)
	federationNameRe = regexp.MustCompile(`^[\w+=,.@-]*$`)
)

func credentials(k *accessKey) credentialsXML {
	return credentialsXML{k.id, k.secret, k.token, k.expires.Format(time.RFC3339)}
}

// duration reads DurationSeconds, with a default and the model's bounds.
func duration(params url.Values, def, max time.Duration) (time.Duration, *apiError) {
	v := params.Get("DurationSeconds")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, validationError("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must be a number", v)
	}
	if n < 900 {
		return 0, validationError("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", n)
	}
	if time.Duration(n)*time.Second > max {
		return 0, validationError("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to %d", n, int(max.Seconds()))
	}
	return time.Duration(n) * time.Second, nil
}

func checkLength(name, v string, min, max int) *apiError {
	if n := len([]rune(v)); n < min || n > max {
		return validationError("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length between %d and %d", name, min, max)
	}
	return nil
}

func checkPattern(name, v string, re *regexp.Regexp) *apiError {
	if !re.MatchString(v) {
		return validationError("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", v, name, re)
	}
	return nil
}

// checkMFA validates SerialNumber and TokenCode against the registered devices.
func (s *Server) checkMFA(params url.Values) (bool, *apiError) {
	serial, code := params.Get("SerialNumber"), params.Get("TokenCode")
	if serial == "" && code == "" {
		return false, nil
	}
	if serial == "" || code == "" {
		return false, validationError("SerialNumber and TokenCode must be given together")
	}
	if err := checkLength("serialNumber", serial, 9, 256); err != nil {
		return false, err
	}
	if err := checkPattern("serialNumber", serial, serialRe); err != nil {
		return false, err
	}
	if err := checkPattern("tokenCode", code, tokenCodeRe); err != nil {
		return false, err
	}
	if want, ok := s.mfa[serial]; !ok || want != code {
		return false, accessDenied("MultiFactorAuthentication failed with invalid MFA one time pass code.")
	}
	return true, nil
}

// policies validates Policy and PolicyArns and returns a packed size.
func policies(params url.Values) (int, *apiError) {
	size := 0
	if p := params.Get("Policy"); params.Has("Policy") {
		if err := checkPattern("policy", p, policyCharsRe); err != nil {
			return 0, err
		}
		var doc map[string]any
		if json.Unmarshal([]byte(p), &doc) != nil {
			return 0, &apiError{400, "MalformedPolicyDocument", "The policy is not in the valid JSON format."}
		}
		size += len(p)
	}
	arns := members(params, "PolicyArns.member.", ".arn")
	if len(arns) > 10 {
		return 0, validationError("1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	for _, a := range arns {
		if err := checkLength("policyArns.member.arn", a, 20, 2048); err != nil {
			return 0, err
		}
		if !policyARNRe.MatchString(a) {
			return 0, &apiError{400, "InvalidParameterValue", "Invalid policy ARN: " + a}
		}
		size += len(a)
	}
	if size > 2048 {
		return 0, &apiError{400, "PackedPolicyTooLarge", "Packed policy consumes 110% of allotted space, please use smaller policy."}
	}
	return size * 100 / 2048, nil
}

// members reads a Query-protocol list: prefix1suffix, prefix2suffix, ...
func members(params url.Values, prefix, suffix string) []string {
	var out []string
	for i := 1; ; i++ {
		k := prefix + strconv.Itoa(i) + suffix
		if !params.Has(k) {
			return out
		}
		out = append(out, params.Get(k))
	}
}

func tags(params url.Values) (map[string]string, *apiError) {
	keys := members(params, "Tags.member.", ".Key")
	values := members(params, "Tags.member.", ".Value")
	if len(keys) != len(values) {
		return nil, validationError("every tag needs a Key and a Value")
	}
	if len(keys) > 50 {
		return nil, validationError("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	out := map[string]string{}
	for i, k := range keys {
		if err := checkLength("tags.member.key", k, 1, 128); err != nil {
			return nil, err
		}
		if err := checkLength("tags.member.value", values[i], 0, 256); err != nil {
			return nil, err
		}
		if err := checkPattern("tags.member.key", k, tagRe); err != nil {
			return nil, err
		}
		if err := checkPattern("tags.member.value", values[i], tagRe); err != nil {
			return nil, err
		}
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup {
			return nil, validationError("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		out[lk] = values[i]
	}
	return out, nil
}

func (s *Server) getSessionToken(params url.Values, key *accessKey, now time.Time) (any, *apiError) {
	if key.kind != kindUser {
		return nil, accessDenied("Cannot call GetSessionToken with session credentials")
	}
	d, err := duration(params, 12*time.Hour, 36*time.Hour)
	if err != nil {
		return nil, err
	}
	mfa, err := s.checkMFA(params)
	if err != nil {
		return nil, err
	}
	k := s.newTemporaryKeyLocked(key, kindSession, key.arn, key.userID, d)
	k.mfa = mfa
	return getSessionTokenResult{Credentials: credentials(k)}, nil
}

func (s *Server) assumeRole(params url.Values, key *accessKey, now time.Time) (any, *apiError) {
	roleARN, name := params.Get("RoleArn"), params.Get("RoleSessionName")
	if err := checkAssumeRoleNames(roleARN, name); err != nil {
		return nil, err
	}
	d, err := duration(params, time.Hour, 12*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := s.authoriseAssumeRole(params, key, roleARN, d); err != nil {
		return nil, err
	}
	packed, err := policies(params)
	if err != nil {
		return nil, err
	}
	if err := checkSessionTags(params); err != nil {
		return nil, err
	}
	source := params.Get("SourceIdentity")
	if err := checkSourceIdentity(params, source); err != nil {
		return nil, err
	}
	if _, err := s.checkMFA(params); err != nil {
		return nil, err
	}
	roleName := roleARN[strings.LastIndex(roleARN, "/")+1:]
	roleID := s.roles[roleARN].id // one ID per role: sessions differ by name only
	arn := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", Account, roleName, name)
	k := s.newTemporaryKeyLocked(key, kindRole, arn, roleID+":"+name, d)
	k.roleARN = roleARN
	k.tags, _ = tags(params)
	var res assumeRoleResult
	res.SourceIdentity = source
	res.Credentials = credentials(k)
	res.AssumedRoleUser.Arn = arn
	res.AssumedRoleUser.AssumedRoleID = roleID + ":" + name
	res.PackedPolicySize = packed
	return res, nil
}

func checkAssumeRoleNames(roleARN, name string) *apiError {
	if roleARN == "" || name == "" {
		return &apiError{400, "MissingParameter", "RoleArn and RoleSessionName are required"}
	}
	if err := checkLength("roleArn", roleARN, 20, 2048); err != nil {
		return err
	}
	if err := checkLength("roleSessionName", name, 2, 64); err != nil {
		return err
	}
	if err := checkPattern("roleSessionName", name, sessionNameRe); err != nil {
		return err
	}
	if !roleARNRe.MatchString(roleARN) {
		return validationError("%s is invalid", roleARN)
	}
	return nil
}

// authoriseAssumeRole is what the role's trust and limits decide: who may
// assume it, for how long, with which external ID.
func (s *Server) authoriseAssumeRole(params url.Values, key *accessKey, roleARN string, d time.Duration) *apiError {
	if key.kind == kindFederation {
		return accessDenied("Federated users cannot assume roles")
	}
	role, ok := s.roles[roleARN]
	if !ok {
		return accessDenied("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", key.arn, roleARN)
	}
	if key.kind == kindRole && d > time.Hour {
		return validationError("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	if d > role.MaxSessionDuration {
		return validationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	if ext := params.Get("ExternalId"); params.Has("ExternalId") {
		if err := checkLength("externalId", ext, 2, 1224); err != nil {
			return err
		}
		if err := checkPattern("externalId", ext, externalIDRe); err != nil {
			return err
		}
	}
	if role.ExternalID != "" && params.Get("ExternalId") != role.ExternalID {
		return accessDenied("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", key.arn, roleARN)
	}
	return nil
}

// checkSessionTags: the tags and transitive keys STS would accept.
func checkSessionTags(params url.Values) *apiError {
	tagMap, err := tags(params)
	if err != nil {
		return err
	}
	transitive := members(params, "TransitiveTagKeys.member.", "")
	if len(transitive) > 50 {
		return validationError("1 validation error detected: Value at 'transitiveTagKeys' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, t := range transitive {
		if _, ok := tagMap[strings.ToLower(t)]; !ok {
			return validationError("The specified transitive tag key %q is not a session tag key.", t)
		}
	}
	return nil
}

func checkSourceIdentity(params url.Values, source string) *apiError {
	if !params.Has("SourceIdentity") {
		return nil
	}
	if err := checkLength("sourceIdentity", source, 2, 64); err != nil {
		return err
	}
	if err := checkPattern("sourceIdentity", source, sessionNameRe); err != nil {
		return err
	}
	if strings.HasPrefix(strings.ToLower(source), "aws:") {
		return validationError("SourceIdentity must not start with aws:")
	}
	return nil
}

func (s *Server) getFederationToken(params url.Values, key *accessKey, now time.Time) (any, *apiError) {
	if key.kind != kindUser {
		return nil, accessDenied("Cannot call GetFederationToken with session credentials")
	}
	name := params.Get("Name")
	if name == "" {
		return nil, &apiError{400, "MissingParameter", "Name is required"}
	}
	if err := checkLength("name", name, 2, 32); err != nil {
		return nil, err
	}
	if err := checkPattern("name", name, federationNameRe); err != nil {
		return nil, err
	}
	d, err := duration(params, 12*time.Hour, 36*time.Hour)
	if err != nil {
		return nil, err
	}
	packed, err := policies(params)
	if err != nil {
		return nil, err
	}
	if _, err := tags(params); err != nil {
		return nil, err
	}
	arn := fmt.Sprintf("arn:aws:sts::%s:federated-user/%s", Account, name)
	k := s.newTemporaryKeyLocked(key, kindFederation, arn, Account+":"+name, d)
	var res getFederationTokenResult
	res.Credentials = credentials(k)
	res.FederatedUser.Arn = arn
	res.FederatedUser.FederatedUserID = Account + ":" + name
	res.PackedPolicySize = packed
	return res, nil
}

type accessKeyXML struct {
	UserName        string
	AccessKeyID     string `xml:"AccessKeyId"`
	Status          string
	SecretAccessKey string `xml:",omitempty"`
	CreateDate      string
}

func (s *Server) targetUser(params url.Values, key *accessKey) (string, *apiError) {
	user := params.Get("UserName")
	if user == "" {
		return key.user, nil
	}
	if user != key.user {
		return "", accessDenied("User: %s is not authorized to perform: iam:*AccessKey* on resource: user %s", key.arn, user)
	}
	return user, nil
}

func (s *Server) createAccessKey(params url.Values, key *accessKey) (any, *apiError) {
	user, err := s.targetUser(params, key)
	if err != nil {
		return nil, err
	}
	if len(s.userKeysLocked(user)) >= 2 {
		return nil, &apiError{409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2"}
	}
	var k *accessKey
	if s.forged != "" {
		k = s.forgeLocked(user)
	} else {
		k = s.newLongTermKeyLocked(user)
	}
	return struct {
		XMLName   xml.Name `xml:"CreateAccessKeyResult"`
		AccessKey accessKeyXML
	}{AccessKey: accessKeyXML{user, k.id, "Active", k.secret, k.created.UTC().Format(time.RFC3339)}}, nil
}

func (s *Server) deleteAccessKey(params url.Values, key *accessKey) (any, *apiError) {
	user, err := s.targetUser(params, key)
	if err != nil {
		return nil, err
	}
	id := params.Get("AccessKeyId")
	k, ok := s.keys[id]
	if !ok || k.kind != kindUser || k.user != user {
		return nil, &apiError{404, "NoSuchEntity", "The Access Key with id " + id + " cannot be found."}
	}
	delete(s.keys, id)
	return struct {
		XMLName xml.Name `xml:"DeleteAccessKeyResult"`
	}{}, nil
}

func (s *Server) listAccessKeys(params url.Values, key *accessKey) (any, *apiError) {
	user, err := s.targetUser(params, key)
	if err != nil {
		return nil, err
	}
	var members []accessKeyXML
	for _, k := range s.userKeysLocked(user) {
		members = append(members, accessKeyXML{UserName: user, AccessKeyID: k.id, Status: "Active", CreateDate: k.created.UTC().Format(time.RFC3339)})
	}
	return struct {
		XMLName           xml.Name       `xml:"ListAccessKeysResult"`
		AccessKeyMetadata []accessKeyXML `xml:"AccessKeyMetadata>member"`
		IsTruncated       bool
	}{AccessKeyMetadata: members}, nil
}

func (s *Server) userKeysLocked(user string) []*accessKey {
	var out []*accessKey
	for _, k := range s.keys {
		if k.kind == kindUser && k.user == user {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
