package awshmac

import (
	"context"
	"errors"
	"fmt"
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
	case w.NewAccessKey != "" && cfg.AccessKey == w.NewAccessKey:
		err = b.finishSwitched(ctx, s, cfg, w)
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

// finishSwitched deletes the old IAM key with the current one, and the old
// store object unless old_store_object=keep (a store that refuses is
// logged, not retried: the object no longer has a valid key).
func (b *backend) finishSwitched(ctx context.Context, s logical.Storage, cfg *pluginConfig, w rotationWAL) error {
	if err := b.deleteIAMKey(ctx, s, w.OldAccessKey); err != nil {
		return err
	}
	if cfg.OldStoreObject == "keep" {
		return nil
	}
	b.destroyObject(ctx, cfg, w.OldStore, w.OldAccessKey)
	return nil
}

// undoUnswitched deletes a new key from IAM and the store. A crash during
// CreateAccessKey leaves no new key ID: see unnamedKey.
func (b *backend) undoUnswitched(ctx context.Context, s logical.Storage, cfg *pluginConfig, w rotationWAL) ([]string, error) {
	newID, warnings := w.NewAccessKey, []string(nil)
	if newID == "" {
		var err error
		if newID, warnings, err = b.unnamedKey(ctx, s, w); err != nil || newID == "" {
			return warnings, err
		}
	}
	if err := b.deleteIAMKey(ctx, s, newID); err != nil {
		return warnings, err
	}
	if w.NewStore != nil {
		b.destroyObject(ctx, cfg, w.NewStore, newID)
	} else if p, err := cfg.store.forRotation(newID); err == nil {
		// Named after the new key: the object a crashed import may have made.
		_ = p.destroy(ctx, newID)
	}
	return warnings, nil
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

func (b *backend) destroyObject(ctx context.Context, cfg *pluginConfig, ref map[string]any, accessKey string) {
	p, err := paramsFrom(cfg, ref)
	if err == nil {
		err = p.destroy(ctx, accessKey)
	}
	if err != nil {
		b.Logger().Warn("rotation: the old key's object stays in the store", "store", cfg.KeyStore, "error", err)
	}
}
