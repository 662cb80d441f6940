package awshmac

import (
	"maps"
	"reflect"
	"slices"

	"github.com/hashicorp/vault/sdk/framework"
)

// checkBindings refuses a write that would send a stored credential
// somewhere else, or use it to unlock something else, without giving it
// again: whoever may write config must not be able to redirect a token, a
// PIN or a password they cannot read.
func checkBindings(old, updated storeParams, d *framework.FieldData) error {
	var before, after map[string]any
	if err := roundTrip(old, &before); err != nil {
		return err
	}
	if err := roundTrip(updated, &after); err != nil {
		return err
	}
	for _, credential := range slices.Sorted(maps.Keys(updated.bindings())) {
		if _, given := d.GetOk(credential); given || before[credential] == nil || before[credential] == "" {
			continue
		}
		for _, field := range updated.bindings()[credential] {
			if !reflect.DeepEqual(before[field], after[field]) {
				return badInput("%s must be given again to change %s: the stored one is bound to where it was sent", credential, field)
			}
		}
	}
	return nil
}
