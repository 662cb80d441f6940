package awshmac

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// walClockSkew is how far IAM's clock may be from this node's when a
// replay compares a key's CreateDate with the logged window.
const walClockSkew = 5 * time.Minute

// walRollback is the framework's rollback of a rotation the log still
// holds after walRollbackMinAge: a crash, or a failed cleanup.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	if kind != walRotateRoot {
		return nil
	}
	b.configLock.Lock()
	defer b.configLock.Unlock()
	_, err := b.rollbackRotation(ctx, req.Storage, data)
	return err
}

// replayRotations finishes or undoes every rotation the log holds, before
// a new one starts, and returns the warnings of keys it left alone.
// Callers hold configLock.
func (b *backend) replayRotations(ctx context.Context, s logical.Storage) ([]string, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil || entry == nil || entry.Kind != walRotateRoot {
			continue
		}
		kept, err := b.rollbackRotation(ctx, s, entry.Data)
		warnings = append(warnings, kept...)
		if err != nil {
			return warnings, err
		}
		if err := framework.DeleteWAL(ctx, s, id); err != nil {
			return warnings, err
		}
	}
	return warnings, nil
}

// rollbackRotation, against the config as it is now: a new key the config
// names has its old one deleted; one never switched to is deleted itself;
// after a switch the config has moved on from, nothing is. Keys it keeps
// are warned of, in the log and to the caller.
func (b *backend) rollbackRotation(ctx context.Context, s logical.Storage, data any) ([]string, error) {
	var w rotationWAL
	if err := roundTrip(data, &w); err != nil {
		return nil, err
	}
	cfg, err := b.config(ctx, s)
	if err != nil || cfg == nil {
		return nil, err // no config: nothing the plugin can reach
	}
	var warnings []string
	switch {
	case w.Endpoints != nil && !maps.Equal(w.Endpoints, cfg.commonConfig.endpoints()):
		// Another IAM's key IDs mean nothing here, and may name keys of this one.
		warnings = []string{fmt.Sprintf("rotation replay: the rotation from %s ran against other sts/iam endpoints than the config names now; no key is deleted", w.OldAccessKey)}
	case w.NewAccessKey != "" && cfg.AccessKey == w.NewAccessKey:
		warnings, err = b.finishSwitched(ctx, s, cfg, w)
	case w.Switched:
		warnings = []string{fmt.Sprintf("rotation: the config changed after the switch from %s to %s and now names %s; neither key is deleted", w.OldAccessKey, w.NewAccessKey, cfg.AccessKey)}
	default:
		warnings, err = b.undoUnswitched(ctx, s, cfg, w)
	}
	for _, msg := range warnings {
		b.Logger().Warn(msg)
	}
	return warnings, err
}

// finishSwitched deletes the old IAM key with the current one, once the
// current key is shown to be the one the rotation made, and the old store
// object unless old_store_object=keep (a store that refuses is logged,
// not retried: the object no longer has a valid key).
func (b *backend) finishSwitched(ctx context.Context, s logical.Storage, cfg *pluginConfig, w rotationWAL) ([]string, error) {
	why, err := b.disownedKey(ctx, s, w, w.NewAccessKey)
	if err != nil {
		return nil, err
	}
	if why != "" {
		return []string{fmt.Sprintf("rotation replay: the old access key %s is kept, not deleted: the configured key %s cannot be shown to be the rotation's: %s", w.OldAccessKey, w.NewAccessKey, why)}, nil
	}
	if err := b.deleteIAMKey(ctx, s, w.OldAccessKey); err != nil {
		return nil, err
	}
	if cfg.OldStoreObject == "keep" {
		return nil, nil
	}
	return b.destroyObject(ctx, cfg, w.OldStore, w.OldAccessKey), nil
}

// undoUnswitched deletes a new key from IAM and the store object its
// import made; it never destroys by name, so never an object the rotation
// did not make. A crash during CreateAccessKey leaves no new key ID: see
// unnamedKey. A named key gets the same proof as an unnamed one.
func (b *backend) undoUnswitched(ctx context.Context, s logical.Storage, cfg *pluginConfig, w rotationWAL) ([]string, error) {
	newID, warnings := w.NewAccessKey, []string(nil)
	if newID == "" {
		var err error
		if newID, warnings, err = b.unnamedKey(ctx, s, w); err != nil || newID == "" {
			return warnings, err
		}
		if err := b.deleteIAMKey(ctx, s, newID); err != nil {
			return warnings, err
		}
	} else {
		kept, err := b.deleteNamedKey(ctx, s, w, newID)
		if err != nil {
			return nil, err
		}
		if kept != "" {
			return []string{kept}, nil
		}
	}
	if w.NewStore != nil {
		warnings = append(warnings, b.destroyObject(ctx, cfg, w.NewStore, newID)...)
	}
	return warnings, nil
}

// deleteNamedKey deletes the new key the log names once it is shown to be
// the rotation's; otherwise it keeps it and says why. A key IAM no longer
// lists is gone already (an undo cut short).
func (b *backend) deleteNamedKey(ctx context.Context, s logical.Storage, w rotationWAL, id string) (string, error) {
	why, err := b.disownedKey(ctx, s, w, id)
	switch {
	case err != nil:
		return "", err
	case why == errNotListed:
		return "", nil
	case why != "":
		return fmt.Sprintf("rotation replay: the access key %s is kept, not deleted: %s", id, why), nil
	}
	return "", b.deleteIAMKey(ctx, s, id)
}

// errNotListed is disownedKey's reason for a key IAM does not list.
const errNotListed = "IAM does not list it"

// disownedKey says why a key the log names cannot be shown to be the one
// the rotation made ("" when it can): not one the user had before, and
// listed for the logged user within the logged window.
func (b *backend) disownedKey(ctx context.Context, s logical.Storage, w rotationWAL, id string) (string, error) {
	if id == w.OldAccessKey || slices.Contains(w.Before, id) {
		return "the user had it before the rotation", nil
	}
	e, err := b.engineLocked(ctx, s)
	if err != nil {
		return "", err
	}
	defer e.release()
	keys, err := e.accessKeys(ctx)
	if err != nil {
		return "", err
	}
	k := findKey(keys, id)
	if k == nil {
		return errNotListed, nil
	}
	caller, err := e.callerARN(ctx)
	if err != nil {
		return "", err
	}
	return w.disowns(caller, *k), nil
}

// deleteIAMKey deletes a key through the current engine; gone already is fine.
func (b *backend) deleteIAMKey(ctx context.Context, s logical.Storage, id string) error {
	e, err := b.engineLocked(ctx, s)
	if err != nil {
		return err
	}
	defer e.release()
	return e.callAWS(ctx, "DeleteAccessKey", func(ctx context.Context) error {
		_, err := e.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(id)})
		var aerr interface{ ErrorCode() string }
		if errors.As(err, &aerr) && aerr.ErrorCode() == "NoSuchEntity" {
			return nil
		}
		return err
	})
}

// unnamedKey is the key a rotation's CreateAccessKey may have made before
// the log named it: the configured user's other key, when that user is the
// one the rotation ran as and IAM made the key within the logged window.
// Any other key (an administrator's, another user's) is kept, with a
// warning: the plugin deletes only keys it can prove it made.
func (b *backend) unnamedKey(ctx context.Context, s logical.Storage, w rotationWAL) (string, []string, error) {
	e, err := b.engineLocked(ctx, s)
	if err != nil {
		return "", nil, err
	}
	defer e.release()
	keys, err := e.accessKeys(ctx)
	if err != nil {
		return "", nil, err
	}
	var caller string
	var warnings []string
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		if id == e.cfg.AccessKey {
			continue
		}
		if slices.Contains(w.Before, id) {
			warnings = append(warnings, fmt.Sprintf("rotation replay: the access key %s is kept, not deleted: the user had it before the rotation", id))
			continue
		}
		if caller == "" {
			if caller, err = e.callerARN(ctx); err != nil {
				return "", nil, err
			}
		}
		if why := w.disowns(caller, k); why != "" {
			warnings = append(warnings, fmt.Sprintf("rotation replay: the access key %s is kept, not deleted: %s", id, why))
			continue
		}
		return id, warnings, nil
	}
	return "", warnings, nil
}

// disowns says why a key the log does not name cannot be shown to be the
// rotation's; "" when it is.
func (w rotationWAL) disowns(caller string, k types.AccessKeyMetadata) string {
	created := aws.ToTime(k.CreateDate)
	switch {
	case w.User == "" || w.Started.IsZero() || w.Until.IsZero():
		return "the log, from an older version of the plugin, does not say for which user or when the rotation ran"
	case caller != w.User:
		return fmt.Sprintf("the config now belongs to %s, not to %s, which the rotation ran as; a key it may have made for that user is left to an administrator", caller, w.User)
	case k.UserName != nil && aws.ToString(k.UserName) != userName(w.User):
		return fmt.Sprintf("it belongs to the IAM user %s, not %s", aws.ToString(k.UserName), userName(w.User))
	case created.Before(w.Started.Add(-walClockSkew)) || created.After(w.Until.Add(walClockSkew)):
		return fmt.Sprintf("IAM created it at %s, outside the rotation's window (%s to %s, give or take %s)",
			formatTime(created), formatTime(w.Started), formatTime(w.Until), walClockSkew)
	}
	return ""
}

// userName is the IAM user name an ARN ends with (after any path).
func userName(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}

// destroyObject destroys the store object a log names, with the current
// config's credentials: only where the config would send them now, and
// never the configured key's object. It returns a warning when it does not.
func (b *backend) destroyObject(ctx context.Context, cfg *pluginConfig, ref map[string]any, accessKey string) []string {
	p, err := paramsFrom(cfg, ref)
	if err == nil {
		if why := b.refRefused(cfg, p); why != "" {
			return []string{fmt.Sprintf("rotation replay: the store object of the access key %s is kept: %s", accessKey, why)}
		}
		err = p.destroy(ctx, accessKey)
	}
	if err != nil {
		b.Logger().Warn("rotation: a rotated key's object stays in the store", "store", cfg.KeyStore, "access_key", accessKey, "error", err)
	}
	return nil
}

// refRefused says why the current credentials must not go to the object a
// logged reference names: the registration no longer allows it, a field
// that binds a credential differs from the config's (a log from an earlier
// config, whoever wrote it), or it is the configured key's object.
func (b *backend) refRefused(cfg *pluginConfig, p storeParams) string {
	at, err := cfg.clone()
	if err != nil {
		return err.Error()
	}
	at.store = p
	if err := b.allowed(at); err != nil {
		return err.Error()
	}
	var now, ref map[string]any
	if roundTrip(cfg.store, &now) != nil || roundTrip(p, &ref) != nil {
		return "its reference cannot be read"
	}
	perObject := objectFields(cfg.store, now)
	for _, fields := range p.bindings() {
		for _, f := range fields {
			if !perObject[f] && !reflect.DeepEqual(now[f], ref[f]) {
				return fmt.Sprintf("its %s is not the config's; the config's credential is not sent there", f)
			}
		}
	}
	if sameObject(perObject, ref, now) {
		return "it names the configured key's object"
	}
	return ""
}

// sameObject: every object-naming field the reference sets is the
// config's, so it would reach the configured key's object.
func sameObject(perObject map[string]bool, ref, now map[string]any) bool {
	set := 0
	for f := range perObject {
		if v := ref[f]; v != nil && v != "" {
			if !reflect.DeepEqual(v, now[f]) {
				return false
			}
			set++
		}
	}
	return set > 0
}

// objectFields are the store's fields that name one object (those a
// rotation's copy changes), as opposed to where the store is.
func objectFields(p storeParams, now map[string]any) map[string]bool {
	out := map[string]bool{}
	n, err := p.forRotation("AKIAOBJECTFIELDS0000")
	var next map[string]any
	if err != nil || roundTrip(n, &next) != nil {
		return out
	}
	for f := range maps.Keys(now) {
		if !reflect.DeepEqual(now[f], next[f]) {
			out[f] = true
		}
	}
	for f := range maps.Keys(next) {
		if _, ok := now[f]; !ok {
			out[f] = true
		}
	}
	return out
}
