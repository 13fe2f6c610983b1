package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"crucible/internal/identity"
)

// newFlags makes a flag set whose --help prints a summary, the flags and an example.
func newFlags(name, summary, example string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: crucible %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
		if example != "" {
			fmt.Fprintf(fs.Output(), "\nExample:\n  %s\n", example)
		}
	}
	return fs
}

// parse parses args, then fills every flag not given on the command line
// from CRUCIBLE_<FLAG> in the environment, then from the YAML file named by
// --config (if the set has it) or CRUCIBLE_CONFIG.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags go before nothing else; see --help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if a, ok := f.Value.(*alias); ok {
			set[a.target.Name] = true // --hub given: CRUCIBLE_SERVER must not override it
		}
	})
	fileValues, err := configFile(fs)
	if err != nil {
		return err
	}
	var ferr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || ferr != nil || f.Name == "config" {
			return
		}
		if a, ok := f.Value.(*alias); ok && set[a.target.Name] {
			return
		}
		env := "CRUCIBLE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				ferr = fmt.Errorf("%s=%q: %w", env, v, err)
			}
			return
		}
		if v, ok := fileValues[f.Name]; ok {
			if err := f.Value.Set(fmt.Sprint(v)); err != nil {
				ferr = fmt.Errorf("config %s: %q: %w", f.Name, v, err)
			}
		}
	})
	return ferr
}

func configFile(fs *flag.FlagSet) (map[string]any, error) {
	path := os.Getenv("CRUCIBLE_CONFIG")
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		path = f.Value.String()
	}
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	// Keys that are not flags of this command belong to other commands
	// sharing the file (serve and worker, say) and are ignored.
	return values, nil
}

// alias is another name of a flag: setting it sets the flag. A deprecated
// alias still works (scripts use it) but prints a one-line notice naming
// the flag to use instead.
type alias struct {
	name       string
	target     *flag.Flag
	deprecated io.Writer // nil: a plain alias
}

// addAlias adds --name as another name of the flag --of, which must be
// defined already. With a non-nil deprecated writer, using it prints a
// deprecation notice there.
func addAlias(fs *flag.FlagSet, name, of string, deprecated io.Writer) {
	target := fs.Lookup(of)
	usage := "alias of --" + of
	if deprecated != nil {
		usage = "deprecated alias of --" + of
	}
	fs.Var(&alias{name: name, target: target, deprecated: deprecated}, name, usage)
}

func (a *alias) String() string {
	if a == nil || a.target == nil {
		return "" // flag.PrintDefaults asks a zero value whether it is the default
	}
	return a.target.Value.String()
}

func (a *alias) Set(v string) error {
	if a.deprecated != nil {
		fmt.Fprintf(a.deprecated, "crucible: --%s is deprecated; use --%s instead\n", a.name, a.target.Name)
	}
	return a.target.Value.Set(v)
}

// keyID reads a key flag's value that may be a key id (ed25519:..., as
// `crucible keys new` prints it) or a key file, and returns the key id.
func keyID(flagName, v string) (string, error) {
	if strings.HasPrefix(v, "ed25519:") {
		if _, err := identity.ParseKeyID(v); err != nil {
			return "", usagef("--%s %s: %v", flagName, v, err)
		}
		return v, nil
	}
	key, err := identity.Load(v)
	if err != nil {
		return "", usagef("--%s %s: neither a key id (ed25519:...) nor a readable key file: %v", flagName, v, err)
	}
	return key.ID(), nil
}
