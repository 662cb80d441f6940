// Package ststest runs an in-process STS and IAM endpoint for tests.
//
// Every request's SigV4 signature is verified with aws-sdk-go-v2's own
// signer, an implementation independent of this project's, against a table
// of access keys the server owns. It implements GetCallerIdentity,
// GetSessionToken, AssumeRole, GetFederationToken and IAM CreateAccessKey,
// DeleteAccessKey, ListAccessKeys, GetRole and the inline role policies
// (PutRolePolicy, GetRolePolicy, DeleteRolePolicy, ListRolePolicies, within
// IAM's size quota), checks parameters against STS's documented limits,
// answers with AWS-shaped XML and error codes, and the temporary
// credentials it issues work against itself. Requests signed with an
// assumed-role session are refused where a Deny of the role's inline
// policies matches them, on aws:userid, aws:TokenIssueTime and
// aws:PrincipalTag/*.
package ststest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// Account is the AWS account ID of everything the server owns.
const Account = "123456789012"

// Kinds of access key.
const (
	kindUser       = "user"
	kindSession    = "session"    // from GetSessionToken
	kindRole       = "role"       // from AssumeRole
	kindFederation = "federation" // from GetFederationToken
)

type accessKey struct {
	id, secret string
	kind       string
	user       string // owning IAM user (for every kind)
	arn        string // the caller's ARN as GetCallerIdentity reports it
	userID     string
	token      string
	expires    time.Time
	mfa        bool              // session credentials obtained with MFA
	roleARN    string            // the role an assumed-role session acts as
	tags       map[string]string // session tags, keys lower-cased
	created    time.Time
	usableAt   time.Time // before it, the key is refused as unknown
	active     bool
}

// Role is an IAM role that AssumeRole accepts.
type Role struct {
	ARN                string
	MaxSessionDuration time.Duration // default one hour
	ExternalID         string        // required when set
	// PermissionsBoundary is the managed policy ARN GetRole reports; empty: none.
	PermissionsBoundary string
	// id is the role's unique ID (AROA...), the first half of aws:userid.
	id string
}

// Fault makes the server answer the next Count requests (of Action, when
// set) with an error.
type Fault struct {
	Action  string
	Code    string // e.g. Throttling, InternalFailure
	Message string
	Status  int // e.g. 400, 500, 503
	Count   int
}

// Call records one request the server accepted as authentic.
type Call struct {
	Service, Action, AccessKeyID string
	Params                       map[string][]string
}

// Server is an STS and IAM endpoint for tests.
type Server struct {
	URL string

	srv *httptest.Server

	mu        sync.Mutex
	keys      map[string]*accessKey
	roles     map[string]Role
	inline    map[string]map[string]string // role ARN -> policy name -> document
	mfa       map[string]string            // serial -> the valid token code
	faults    []Fault
	calls     []Call
	now       func() time.Time
	region    string
	refused   int
	frozen    chan struct{}            // while non-nil, requests wait for it to close
	delay     time.Duration            // before a created access key works
	newKeyARN string                   // set: created keys answer GetCallerIdentity as this ARN
	waiting   int                      // requests held by frozen
	held      map[string]chan struct{} // AssumeRole of these role ARNs waits
	forged    string                   // the next CreateAccessKey answers this ID
	lifeCap   time.Duration            // set: temporary credentials expire this soon
}

// New starts a server on 127.0.0.1. Close it when done.
func New() *Server {
	s := &Server{
		keys:   map[string]*accessKey{},
		roles:  map[string]Role{},
		inline: map[string]map[string]string{},
		mfa:    map[string]string{},
		now:    time.Now,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	return s
}

// Close stops the server, releasing any frozen request first.
func (s *Server) Close() {
	s.Thaw()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Freeze makes the server accept requests but not answer them until Thaw
// (or until the client gives up): an STS that has stopped answering.
func (s *Server) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen == nil {
		s.frozen = make(chan struct{})
	}
}

// HoldRole makes AssumeRole of one role ARN wait until the returned
// release is called (or the client gives up): one slow call, while every
// other request is answered at once.
func (s *Server) HoldRole(arn string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	s.held[arn] = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.held, arn)
			s.mu.Unlock()
			close(ch)
		})
	}
}

// holdFor waits while the request's role is held.
func (s *Server) holdFor(r *http.Request, params url.Values) {
	if params.Get("Action") != "AssumeRole" {
		return
	}
	s.mu.Lock()
	ch := s.held[params.Get("RoleArn")]
	s.mu.Unlock()
	if ch == nil {
		return
	}
	s.mu.Lock()
	s.waiting++
	s.mu.Unlock()
	select {
	case <-ch:
	case <-r.Context().Done():
	}
	s.mu.Lock()
	s.waiting--
	s.mu.Unlock()
}

// Waiting is how many requests the server holds (frozen, or a held role).
func (s *Server) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// Thaw answers later requests again; the ones held are dropped.
func (s *Server) Thaw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen != nil {
		close(s.frozen)
		s.frozen = nil
	}
}

// wait holds a request while the server is frozen; false for one it held.
func (s *Server) wait(r *http.Request) bool {
	s.mu.Lock()
	frozen := s.frozen
	if frozen != nil {
		s.waiting++
	}
	s.mu.Unlock()
	if frozen == nil {
		return true
	}
	defer func() {
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
	}()
	// A request held while frozen is never answered: its client gave up.
	select {
	case <-frozen:
	case <-r.Context().Done():
	}
	return false
}

// SetClock replaces the server's clock, for expiry and skew tests.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// RequireRegion makes the server refuse signatures scoped to another region.
func (s *Server) RequireRegion(region string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.region = region
}

// AddUser creates an IAM user with one long-term access key and returns it.
func (s *Server) AddUser(name string) (accessKeyID, secretAccessKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.newLongTermKeyLocked(name)
	return k.id, k.secret
}

// AddUserKey registers a long-term key with a chosen ID and secret.
func (s *Server) AddUserKey(name, accessKeyID, secretAccessKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[accessKeyID] = &accessKey{
		id: accessKeyID, secret: secretAccessKey, kind: kindUser, user: name,
		arn: userARN(name), userID: "AIDA" + randomID(17), created: s.now(), active: true,
	}
}

// AddUserKeyAt makes a long-term key as an administrator would, for any
// user and with IAM's CreateDate set to created, bypassing the two-key
// limit; it returns the key.
func (s *Server) AddUserKeyAt(name string, created time.Time) (accessKeyID, secretAccessKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.newLongTermKeyLocked(name)
	k.created, k.usableAt = created, time.Time{}
	return k.id, k.secret
}

// AddRole makes a role assumable.
func (s *Server) AddRole(r Role) {
	if r.MaxSessionDuration == 0 {
		r.MaxSessionDuration = time.Hour
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.roles[r.ARN]; ok {
		r.id = old.id
	} else {
		r.id = "AROA" + randomID(17)
	}
	s.roles[r.ARN] = r
}

// AddMFADevice registers an MFA device whose only valid code is code.
func (s *Server) AddMFADevice(serial, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mfa[serial] = code
}

// InjectFault queues a fault for the next requests.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Calls returns the authentic requests served so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Refused counts requests refused for authentication.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// SetNewKeyDelay makes access keys created from now on refused
// (InvalidClientTokenId) for d, as IAM's eventual consistency does.
func (s *Server) SetNewKeyDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Secret returns an access key's secret, for tests that play the person
// who once held it.
func (s *Server) Secret(accessKeyID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[accessKeyID]; k != nil {
		return k.secret
	}
	return ""
}

// takeFaultLocked consumes the first fault that applies to action.
func (s *Server) takeFaultLocked(action string) *apiError {
	for i := range s.faults {
		f := &s.faults[i]
		if f.Action != "" && f.Action != action {
			continue
		}
		f.Count--
		e := &apiError{f.Status, f.Code, f.Message}
		if f.Count <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return e
	}
	return nil
}

// AccessKeyIDs lists the active long-term keys of a user.
func (s *Server) AccessKeyIDs(user string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, k := range s.keys {
		if k.kind == kindUser && k.user == user {
			ids = append(ids, k.id)
		}
	}
	return ids
}

func (s *Server) newLongTermKeyLocked(user string) *accessKey {
	k := &accessKey{
		id: "AKIA" + randomID(16), secret: randomSecret(), kind: kindUser, user: user,
		arn: userARN(user), userID: "AIDA" + randomID(17), created: s.now(), active: true,
	}
	k.usableAt = k.created.Add(s.delay)
	if s.newKeyARN != "" {
		k.arn = s.newKeyARN
	}
	s.keys[k.id] = k
	return k
}

// NewKeysProveAs makes access keys created from now on answer
// GetCallerIdentity as arn: a key that proves another identity than the
// user it was made for.
func (s *Server) NewKeysProveAs(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newKeyARN = arn
}

// ForgeNextAccessKey makes the next CreateAccessKey answer with id, as a
// hostile endpoint might. An ID the server does not know is listed for the
// user but refused as unknown, so it proves nothing; a known key is named
// again, with a made-up secret.
func (s *Server) ForgeNextAccessKey(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forged = id
}

// forgeLocked answers CreateAccessKey with the forged ID.
func (s *Server) forgeLocked(user string) *accessKey {
	id := s.forged
	s.forged = ""
	if k := s.keys[id]; k != nil {
		return &accessKey{id: id, secret: randomSecret(), created: k.created}
	}
	k := &accessKey{id: id, secret: randomSecret(), kind: kindUser, user: user, arn: userARN(user),
		created: s.now(), usableAt: s.now().Add(100 * 365 * 24 * time.Hour), active: true}
	s.keys[id] = k
	return k
}

// CapSessionLife makes temporary credentials issued from now on expire
// after d at most, whatever was asked: expiry within a test's time.
func (s *Server) CapSessionLife(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifeCap = d
}

func (s *Server) newTemporaryKeyLocked(parent *accessKey, kind, arn, userID string, d time.Duration) *accessKey {
	if s.lifeCap > 0 {
		d = min(d, s.lifeCap)
	}
	k := &accessKey{
		id: "ASIA" + randomID(16), secret: randomSecret(), kind: kind, user: parent.user,
		arn: arn, userID: userID, token: randomToken(), expires: s.now().Add(d).UTC().Truncate(time.Second),
		created: s.now(), active: true,
	}
	s.keys[k.id] = k
	return k
}

func userARN(name string) string { return fmt.Sprintf("arn:aws:iam::%s:user/%s", Account, name) }

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomID(n int) string {
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(idAlphabet))))
		b[i] = idAlphabet[v.Int64()]
	}
	return string(b)
}

func randomSecret() string {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b) // 40 characters
}

func randomToken() string {
	b := make([]byte, 96)
	_, _ = rand.Read(b)
	return "IQoJb3JpZ2luX2VjE" + base64.StdEncoding.EncodeToString(b)
}
