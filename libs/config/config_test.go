package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/config"
)

type Inner struct {
	Port string `env:"PORT"`
}

type cfg struct {
	Inner
	Timeout time.Duration `env:"TIMEOUT" envDefault:"5s"`
	Names   []string      `env:"NAMES" envDefault:"a,b"`
}

func TestLoad(t *testing.T) {
	env := map[string]string{"TIMEOUT": "2s"}
	c, err := config.Load[cfg](func(k string) string { return env[k] }, map[string]string{"PORT": ":8081", "TIMEOUT": "9s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != ":8081" || c.Timeout != 2*time.Second || strings.Join(c.Names, ",") != "a,b" {
		t.Errorf("got %+v", c)
	}
}

func TestLoadNamesTheVariable(t *testing.T) {
	env := map[string]string{"TIMEOUT": "soon"}
	_, err := config.Load[cfg](func(k string) string { return env[k] }, nil)
	if err == nil || !strings.Contains(err.Error(), "TIMEOUT:") {
		t.Fatalf("got %v, want an error naming TIMEOUT", err)
	}
}
