package awshmac

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// walRollback is the framework's rollback of a rotation the log still
// holds after walRollbackMinAge: a crash, or a failed cleanup.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	if kind != walRotateRoot {
		return nil
	}
	b.configLock.Lock()
	defer b.configLock.Unlock()
	return b.rollbackRotation(ctx, req.Storage, data)
}

// replayRotations finishes or undoes every rotation the log holds, before
// a new one starts. Callers hold configLock.
func (b *backend) replayRotations(ctx context.Context, s logical.Storage) error {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil || entry == nil || entry.Kind != walRotateRoot {
			continue
		}
		if err := b.rollbackRotation(ctx, s, entry.Data); err != nil {
			return err
		}
		if err := framework.DeleteWAL(ctx, s, id); err != nil {
			return err
		}
	}
	return nil
}

// rollbackRotation: a new key that was switched to has its old one
// deleted; one that was never switched to is deleted itself.
func (b *backend) rollbackRotation(ctx context.Context, s logical.Storage, data any) error {
	var w rotationWAL
	if err := roundTrip(data, &w); err != nil {
		return err
	}
	cfg, err := b.config(ctx, s)
	if err != nil || cfg == nil {
		return err // no config: nothing the plugin can reach
	}
	if w.NewAccessKey != "" && cfg.AccessKey == w.NewAccessKey {
		return b.finishSwitched(ctx, s, cfg, w)
	}
	return b.undoUnswitched(ctx, s, cfg, w)
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

// undoUnswitched deletes a new key from IAM and the store. A crash between
// CreateAccessKey and the log's update leaves no new key ID: it is then
// the user's other key, which the rotation checked did not exist before.
func (b *backend) undoUnswitched(ctx context.Context, s logical.Storage, cfg *pluginConfig, w rotationWAL) error {
	newID := w.NewAccessKey
	if newID == "" {
		var err error
		if newID, err = b.otherKey(ctx, s); err != nil || newID == "" {
			return err
		}
	}
	if err := b.deleteIAMKey(ctx, s, newID); err != nil {
		return err
	}
	if w.NewStore != nil {
		b.destroyObject(ctx, cfg, w.NewStore, newID)
	} else if p, err := cfg.store.forRotation(newID); err == nil {
		// Named after the new key: the object a crashed import may have made.
		_ = p.destroy(ctx, newID)
	}
	return nil
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

// otherKey is the user's key that is not the configured one, if any.
func (b *backend) otherKey(ctx context.Context, s logical.Storage) (string, error) {
	e, err := b.engineLocked(ctx, s)
	if err != nil {
		return "", err
	}
	defer e.release()
	keys, err := e.accessKeys(ctx)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if id := aws.ToString(k.AccessKeyId); id != e.cfg.AccessKey {
			return id, nil
		}
	}
	return "", nil
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
