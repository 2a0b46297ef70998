//go:build contractcoverage

package api_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// notExercised are documented answers no test can cause on purpose, each
// with the reason. Everything else the spec documents must be seen.
var notExercised = map[string]string{
	"500": "only a bug answers it; libs/server's tests turn a panic into this envelope",
}

// Every operation and every status the spec documents for it was answered
// by some test of `make test`, and no answer broke the spec. The tests
// record both through libs/testkit into MOVIEBAG_CONTRACT_DIR; make runs
// this check after them (build tag contractcoverage).
func TestEveryOperationAndStatusExercised(t *testing.T) {
	dir := os.Getenv("MOVIEBAG_CONTRACT_DIR")
	if dir == "" {
		t.Fatal("MOVIEBAG_CONTRACT_DIR is not set: run `make test-go`, which records every test answer there and runs this check after")
	}
	seen := map[string]bool{}
	var violations []string
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no answers recorded in %s (%v): did the tests run?", dir, err)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			kind, rest, _ := strings.Cut(sc.Text(), " ")
			switch kind {
			case "exercised":
				seen[rest] = true
			case "violation":
				msg, err := strconv.Unquote(rest)
				if err != nil {
					msg = rest
				}
				violations = append(violations, msg)
			}
		}
		_ = f.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
	}
	for _, v := range violations {
		t.Errorf("an answer broke the spec: %s", v)
	}

	doc, err := openapi3.NewLoader().LoadFromFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if seen[op.OperationID+" "+status] || notExercised[status] != "" {
					continue
				}
				missing = append(missing, fmt.Sprintf("%s %d (%s %s)", op.OperationID, mustAtoi(t, status), method, path))
			}
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("documented but never answered in any test: %s", m)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("status %q: %v", s, err)
	}
	return n
}
