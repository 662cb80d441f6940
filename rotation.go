package awshmac

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

const walRotateRoot = "rotate-root"

// walRollbackMinAge leaves a rotation in progress (which may wait up to
// rotation_verify_timeout for IAM) alone before rolling it back.
const walRollbackMinAge = 15 * time.Minute

// rotationWAL is what a rotation in progress leaves in the write-ahead log:
// access key IDs and store references, never a secret (write-only fields
// are left out; they come from the config when the log is replayed).
type rotationWAL struct {
	OldAccessKey string         `json:"old_access_key"`
	OldStore     map[string]any `json:"old_store"`
	NewAccessKey string         `json:"new_access_key,omitempty"`
	NewStore     map[string]any `json:"new_store,omitempty"`
	// User (the ARN the rotation ran as) and the window from Started to
	// Until, when IAM may have made the new key, let a replay recognise a
	// key the log does not name yet: a crash during CreateAccessKey.
	User    string    `json:"user,omitempty"`
	Started time.Time `json:"started,omitempty"`
	Until   time.Time `json:"until,omitempty"`
	// Switched: the config named the new key; only the old one may go.
	Switched bool `json:"switched,omitempty"`
	// Before: the user's keys IAM listed before CreateAccessKey, which a
	// replay never deletes as the new key.
	Before []string `json:"before,omitempty"`
	// Endpoints: the sts/iam endpoints the rotation ran against; a replay
	// against others deletes nothing.
	Endpoints map[string]string `json:"endpoints,omitempty"`
}

// rotation is one rotation's state, step by step.
type rotation struct {
	b        *backend
	s        logical.Storage
	cfg      *pluginConfig // the config being rotated away from
	old      *engine
	user     string // the user ARN, which the new key must prove
	walID    string
	wal      rotationWAL
	newCfg   *pluginConfig
	newKey   storeKey
	switched bool     // the new key's engine is installed and owns it
	before   []string // the user's key IDs before CreateAccessKey
	warnings []string // for the response: keys an earlier rotation's replay kept
}

// rotateRoot makes a new IAM access key through the store, imports its
// secret straight into the store as a new object, proves it, switches to
// it and deletes the old key. Callers hold configLock; it is let go during
// old_key_grace and held again when rotateRoot returns. The new secret is
// never stored, logged or returned.
func (b *backend) rotateRoot(ctx context.Context, s logical.Storage) (*logical.Response, error) {
	r, err := b.startRotation(ctx, s)
	if err != nil {
		return nil, err
	}
	defer r.old.release()
	for _, step := range []func(context.Context) error{r.checkStore, r.checkKeys, r.create, r.verify, r.switchOver} {
		if err := step(ctx); err != nil {
			if r.newKey != nil && !r.switched {
				_ = r.newKey.Close() // a stopped rotation keeps no handle on the store
			}
			return nil, err
		}
	}
	warnings := append(r.warnings, r.retireOld(ctx)...)
	resp := &logical.Response{Data: map[string]any{"access_key": r.newCfg.AccessKey, "previous_access_key": r.cfg.AccessKey}}
	for _, w := range warnings {
		resp.AddWarning(w)
	}
	return resp, nil
}

func (b *backend) startRotation(ctx context.Context, s logical.Storage) (*rotation, error) {
	warnings, err := b.replayRotations(ctx, s)
	if err != nil {
		return nil, err
	}
	cfg, err := b.config(ctx, s)
	if err == nil && cfg == nil {
		err = errNotConfigured
	}
	if err != nil {
		return nil, err
	}
	e, err := b.engineLocked(ctx, s)
	if err != nil {
		return nil, err
	}
	return &rotation{b: b, s: s, cfg: cfg, old: e, warnings: warnings}, nil
}

// callAWS runs one STS or IAM call within sts_timeout, its failure classified.
func (e *engine) callAWS(ctx context.Context, op string, call func(context.Context) error) error {
	callCtx, cancel := context.WithTimeout(ctx, e.cfg.stsTimeout())
	defer cancel()
	if err := call(callCtx); err != nil {
		return classifySTS(ctx, op, e.cfg.stsTimeout(), err)
	}
	return nil
}

// accessKeys lists the user's access keys, asking IAM through the store.
func (e *engine) accessKeys(ctx context.Context) ([]types.AccessKeyMetadata, error) {
	var list *iam.ListAccessKeysOutput
	err := e.callAWS(ctx, "ListAccessKeys", func(ctx context.Context) (err error) {
		list, err = e.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return list.AccessKeyMetadata, nil
}

// keyCreated is when IAM made the configured key; IAM is asked once.
func (e *engine) keyCreated(ctx context.Context) (time.Time, error) {
	if t := e.created.Load(); t != nil {
		return *t, nil
	}
	keys, err := e.accessKeys(ctx)
	if err != nil {
		return time.Time{}, err
	}
	for _, k := range keys {
		if aws.ToString(k.AccessKeyId) == e.cfg.AccessKey {
			t := aws.ToTime(k.CreateDate)
			e.created.Store(&t)
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("IAM does not list the configured key")
}

// importChecker is a store that can tell, before IAM makes a key, that an
// import would be refused.
type importChecker interface {
	checkImport(ctx context.Context) error
}

// checkStore stops a rotation whose import the store would refuse while
// nothing is made yet; the import checks again, and a refusal there
// deletes the new IAM key.
func (r *rotation) checkStore(ctx context.Context) error {
	if c, ok := r.cfg.store.(importChecker); ok {
		return c.checkImport(ctx)
	}
	return nil
}

// checkKeys learns the user and refuses when a second key, not the
// plugin's, takes the user's other slot: the plugin never deletes a key it
// did not create.
func (r *rotation) checkKeys(ctx context.Context) error {
	var err error
	if r.user, err = r.old.callerARN(ctx); err != nil {
		return err
	}
	keys, err := r.old.accessKeys(ctx)
	if err != nil {
		return err
	}
	// The keys before the rotation: any listed key but the configured one
	// stops it, so that is the configured key, listed or not.
	r.before = []string{r.cfg.AccessKey}
	for _, k := range keys {
		if id := aws.ToString(k.AccessKeyId); id != r.cfg.AccessKey {
			return badInput("rotation: the IAM user already has a second access key, %s, which this plugin did not create; delete it (IAM allows two keys per user) and rotate again", id)
		}
	}
	return nil
}

// callerARN is who the engine's key belongs to, asked of STS.
func (e *engine) callerARN(ctx context.Context) (arn string, err error) {
	err = e.callAWS(ctx, "GetCallerIdentity", func(ctx context.Context) error {
		me, err := e.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err == nil {
			arn = aws.ToString(me.Arn)
		}
		return err
	})
	return arn, err
}

// create logs the rotation, makes the new IAM key, names it in the log
// and imports its secret.
func (r *rotation) create(ctx context.Context) error {
	// CreateAccessKey runs within sts_timeout, so IAM makes the key, if at
	// all, between now and then.
	start := time.Now().UTC()
	r.wal = rotationWAL{OldAccessKey: r.cfg.AccessKey, OldStore: storeRef(r.cfg),
		User: r.user, Started: start, Until: start.Add(r.cfg.stsTimeout()),
		Before: r.before, Endpoints: r.cfg.commonConfig.endpoints()}
	if err := r.logWAL(ctx); err != nil {
		return err
	}
	if err := r.b.hook("logged"); err != nil {
		return err
	}
	out, err := r.createKey(ctx)
	if err != nil {
		return err
	}
	newID, secret := aws.ToString(out.AccessKeyId), aws.ToString(out.SecretAccessKey)
	out.SecretAccessKey = nil // the only other reference
	if err := r.b.hook("created"); err != nil {
		return err
	}
	if err := r.checkNewKey(ctx, newID); err != nil {
		return err // the log stays unnamed: a replay deletes only a key it proves
	}
	r.wal.NewAccessKey = newID
	// The secret lives in this frame only; Go strings cannot be zeroed, so
	// its last references go when importNew returns.
	if err = r.logWAL(ctx); err == nil {
		err = r.importNew(ctx, newID, secret)
	}
	if err != nil {
		r.undo(ctx, newID)
		return err
	}
	r.newCfg.AccessKeyCreated = aws.ToTime(out.CreateDate).UTC()
	return r.b.hook("imported")
}

// createKey asks IAM for the new key. When IAM answered with a refusal it
// made none, and the log goes; when it did not answer, the log stays and
// its window lets the next replay find a key IAM made anyway.
func (r *rotation) createKey(ctx context.Context) (*types.AccessKey, error) {
	var out *iam.CreateAccessKeyOutput
	err := r.old.callAWS(ctx, "CreateAccessKey", func(ctx context.Context) (err error) {
		out, err = r.old.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
		return err
	})
	var refused *stscreds.Error
	switch {
	case err == nil:
		return out.AccessKey, nil
	case errors.As(err, &refused) && refused.Code != "":
		r.dropWAL(ctx)
	default:
		r.b.Logger().Warn("rotation: IAM did not answer CreateAccessKey; the next rotation or the WAL rollback removes any key it made", "error", err)
	}
	return nil, err
}

// accessKeyIDRe is the shape of the long-term key IDs IAM makes.
var accessKeyIDRe = regexp.MustCompile(`^AKIA[A-Z0-9]{12,124}$`)

// checkNewKey refuses a CreateAccessKey answer that is not shown to be a
// new key of this user: logged as the new key, an existing key's ID would
// be deleted by the undo or a replay.
func (r *rotation) checkNewKey(ctx context.Context, id string) error {
	why := ""
	switch {
	case !accessKeyIDRe.MatchString(id):
		why = "its access key ID is not of the shape IAM makes"
	case slices.Contains(r.wal.Before, id):
		why = "it names a key the user already had"
	default:
		k, err := r.listedKey(ctx, id)
		if err != nil {
			return err
		}
		why = "IAM does not list it"
		if k != nil {
			why = r.wal.disowns(r.user, *k)
		}
	}
	if why == "" {
		return nil
	}
	r.b.Logger().Warn("rotation: CreateAccessKey's answer refused; nothing imported or deleted", "reason", why)
	return &stsError{op: "CreateAccessKey", err: errors.New(why), code: http.StatusBadGateway,
		detail: "the answer is not a new key of this user (" + why + "); nothing was imported, and no key is deleted"}
}

// listedKey is the new key as IAM lists it, asked again with backoff for
// up to rotation_verify_timeout while IAM propagates it; nil when never.
func (r *rotation) listedKey(ctx context.Context, id string) (*types.AccessKeyMetadata, error) {
	deadline := time.Now().Add(r.cfg.verifyTimeout())
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		keys, err := r.old.accessKeys(ctx)
		if err != nil {
			return nil, err
		}
		if k := findKey(keys, id); k != nil || time.Now().Add(wait).After(deadline) {
			return k, nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// findKey is the listed key with that ID, or nil.
func findKey(keys []types.AccessKeyMetadata, id string) *types.AccessKeyMetadata {
	for i := range keys {
		if aws.ToString(keys[i].AccessKeyId) == id {
			return &keys[i]
		}
	}
	return nil
}

// importNew imports the new secret as a new store object and logs it;
// only an object the import made is recorded, so only it is ever undone.
func (r *rotation) importNew(ctx context.Context, newID, secret string) error {
	newCfg, err := r.cfg.clone()
	if err != nil {
		return err
	}
	newCfg.AccessKey = newID
	if newCfg.store, err = r.cfg.store.forRotation(newID); err != nil {
		return err
	}
	k, err := newCfg.store.importSecret(ctx, newID, secret)
	if errors.Is(err, hmac.ErrKeyExists) {
		return badInput("rotation: the %s key store already holds an object named for the new access key %s, which this rotation did not make; the rotation stopped, that object is left as it is, the new IAM key is undone and the old key stays configured", r.cfg.KeyStore, newID)
	}
	if err != nil {
		return &storeError{store: r.cfg.KeyStore, err: err}
	}
	key := reportingKey{storeKey: k, store: r.cfg.KeyStore, gate: r.b.keyGate(), cfg: newCfg} // the back-off follows the new config
	r.newCfg, r.newKey = newCfg, key
	r.wal.NewAccessKey, r.wal.NewStore = newID, storeRef(newCfg)
	return r.logWAL(ctx)
}

// verify proves the new key through the store, retrying while IAM
// propagates it, and requires the same user.
func (r *rotation) verify(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.verifyTimeout())
	sc := r.cfg.awsConfig(r.newKey, sigv4.NewSigner())
	sc.MaxRetries = -1 // this loop does the retrying
	client, err := stscreds.NewSTSClient(sc)
	if err != nil {
		return err
	}
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		callCtx, cancel := context.WithTimeout(ctx, r.cfg.stsTimeout())
		me, err := client.GetCallerIdentity(callCtx, &sts.GetCallerIdentityInput{})
		cancel()
		if err == nil && aws.ToString(me.Arn) == r.user {
			return r.b.hook("verified")
		}
		detail := ""
		if err == nil {
			err = fmt.Errorf("the new key belongs to another identity")
			detail = "the new key proves another identity than the user rotating; it was deleted and the old key kept"
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			r.undo(ctx, r.wal.NewAccessKey)
			// The caller did nothing wrong: AWS would not take the new key.
			return &stsError{op: "GetCallerIdentity (new key)", err: stscreds.WrapError("GetCallerIdentity", err), code: http.StatusBadGateway, detail: detail}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}

// switchOver stores the new config and installs its engine; every node
// drops its caches through Invalidate.
func (r *rotation) switchOver(ctx context.Context) error {
	now := time.Now().UTC()
	r.newCfg.LastRotated = now
	e, err := r.b.newEngine(r.newCfg, r.newKey)
	if err != nil {
		r.undo(ctx, r.wal.NewAccessKey)
		return err
	}
	if err := r.b.putConfig(ctx, r.s, r.newCfg); err != nil {
		e.retire()
		r.undo(ctx, r.wal.NewAccessKey)
		return err
	}
	r.b.install(e)
	r.switched = true
	r.wal.Switched = true
	if err := r.logWAL(ctx); err != nil {
		// The config names the new key: a replay reads that as switched too.
		r.b.Logger().Warn("rotation: cannot log the switch", "error", err)
	}
	return r.b.hook("switched")
}

// retireOld waits old_key_grace, so that requests signed with the old key
// just before the switch still work, then deletes the old IAM key and
// store object. The wait holds no lock, so config reads, writes and engine
// builds go on; the deletion, under configLock again, replays the log
// against the config as it is then: a config that no longer names the new
// key gets nothing deleted. A failure leaves the log for the next rotation
// or the WAL rollback.
func (r *rotation) retireOld(ctx context.Context) []string {
	r.b.configLock.Unlock()
	select {
	case <-time.After(r.newCfg.oldKeyGrace()):
	case <-ctx.Done():
	}
	r.b.configLock.Lock()
	if entry, err := framework.GetWAL(ctx, r.s, r.walID); err == nil && entry == nil {
		return nil // a rotation or rollback in the meantime finished it
	}
	warnings, err := r.b.rollbackRotation(ctx, r.s, r.wal)
	if err != nil {
		r.b.Logger().Warn("rotation: the old key is not yet deleted; it will be retried", "old_access_key", r.wal.OldAccessKey, "error", err)
		return append(warnings, fmt.Sprintf("the old access key %s could not be deleted yet; the next rotation or the WAL rollback will retry", r.wal.OldAccessKey))
	}
	r.dropWAL(ctx)
	return warnings
}

// undo removes a new key that was never switched to, from IAM and the store.
func (r *rotation) undo(ctx context.Context, newID string) {
	r.wal.NewAccessKey = newID
	warnings, err := r.b.undoUnswitched(ctx, r.s, r.cfg, r.wal)
	for _, msg := range warnings {
		r.b.Logger().Warn(msg)
	}
	if err != nil {
		r.b.Logger().Warn("rotation: could not remove the unused new key; it will be retried", "new_access_key", newID, "error", err)
		return
	}
	if r.newKey != nil {
		_ = r.newKey.Close()
	}
	r.dropWAL(ctx)
}

func (r *rotation) logWAL(ctx context.Context) error {
	id, err := framework.PutWAL(ctx, r.s, walRotateRoot, r.wal)
	if err != nil {
		return err
	}
	if r.walID != "" {
		_ = framework.DeleteWAL(ctx, r.s, r.walID)
	}
	r.walID = id
	return nil
}

func (r *rotation) dropWAL(ctx context.Context) {
	if r.walID != "" {
		_ = framework.DeleteWAL(ctx, r.s, r.walID)
	}
}

// storeRef is the store's fields but the write-only ones: what names the
// object, never what unlocks it.
func storeRef(cfg *pluginConfig) map[string]any {
	var fields map[string]any
	_ = roundTrip(cfg.store, &fields)
	for _, name := range storeKinds[cfg.KeyStore].writeOnly {
		delete(fields, name)
	}
	return fields
}

// paramsFrom rebuilds a store's params from a reference and the current
// config's credentials.
func paramsFrom(cfg *pluginConfig, ref map[string]any) (storeParams, error) {
	var fields map[string]any
	if err := roundTrip(cfg.store, &fields); err != nil {
		return nil, err
	}
	for k, v := range ref {
		fields[k] = v
	}
	p := storeKinds[cfg.KeyStore].newParams()
	return p, roundTrip(fields, p)
}

var errRotationStep = errors.New("rotation stopped by a test hook")

// hook is the test seam that stops a rotation between two steps, as a
// crash would.
func (b *backend) hook(step string) error {
	if b.rotationHook != nil && b.rotationHook(step) {
		return fmt.Errorf("%w after %s", errRotationStep, step)
	}
	return nil
}
