package awshmac

import "fmt"

// registrationHint tells the operator how to allow a value the plugin's
// registration does not: the plugin's environment is given with `vault
// plugin register -env` and read when the plugin loads. The example is
// the project's, never the caller's value.
func registrationHint(env, example string) string {
	return fmt.Sprintf("to allow it, register the plugin with `vault plugin register -env %s=%s ...` (keeping the values already allowed) and run `vault plugin reload -plugin <name>`", env, example)
}
