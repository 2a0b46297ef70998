// Package config reads a service's configuration from its environment into a
// struct tagged for github.com/caarlos0/env, through a getenv function so
// that tests can pass their own environment.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Load fills a T from getenv. defaults supplies per-service defaults for
// variables that are unset or empty (for example each service's own port);
// a variable's envDefault tag applies after that.
func Load[T any](getenv func(string) string, defaults map[string]string) (T, error) {
	var cfg T
	params, err := env.GetFieldParams(&cfg)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	environ := make(map[string]string, len(params))
	for _, p := range params {
		if v := getenv(p.Key); v != "" {
			environ[p.Key] = v
		} else if d, ok := defaults[p.Key]; ok {
			environ[p.Key] = d
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, explain(reflect.TypeFor[T](), err)
	}
	return cfg, nil
}

// explain names the variable of each field that failed to parse: the
// library's errors name the Go field.
func explain(t reflect.Type, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	keys := envKeys(t, map[string]string{})
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && keys[pe.Name] != "" {
			msgs = append(msgs, fmt.Sprintf("%s: %v", keys[pe.Name], pe.Err))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return fmt.Errorf("config: %s", strings.Join(msgs, "; "))
}

// envKeys maps field names to their env tags, through embedded and nested
// structs.
func envKeys(t reflect.Type, keys map[string]string) map[string]string {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			envKeys(f.Type, keys)
			continue
		}
		if key, _, _ := strings.Cut(f.Tag.Get("env"), ","); key != "" {
			keys[f.Name] = key
		}
	}
	return keys
}
