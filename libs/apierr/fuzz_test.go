package apierr_test

import (
	"encoding/json"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
)

// FuzzEnvelope: any error, of any code (known or not) with any details and
// request id, encodes to a valid envelope with an error status and a
// catalog message.
func FuzzEnvelope(f *testing.F) {
	f.Add("MovieAlreadyExistsError", "req-1", "name", "is required")
	f.Add("NoSuchCode", "", "", "")
	f.Add("SchemaValidationError", "\x00\"<script>", "casts[0]", "\xff\xfe")
	f.Add("A&B", "\u2028\u2029\b\f\n\r\t\\", "\x7f\x1f", "é\xc3(日本")
	f.Fuzz(func(t *testing.T, code, requestID, field, issue string) {
		e := apierr.FromError(apierr.New(apierr.Code(code)).WithDetails(apierr.FieldError{Field: field, Issue: issue}))
		body := e.Envelope(requestID).Marshal()
		// The hand-written encoder writes what encoding/json writes, byte for byte.
		raw := apierr.Envelope{Message: issue, Status: len(field), Code: apierr.Code(code), RequestID: requestID,
			Details: []apierr.FieldError{{Field: field, Issue: issue}, {Field: code, Issue: requestID}}}
		for _, env := range []apierr.Envelope{e.Envelope(requestID), raw, {Message: field}} {
			want, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			if got := env.Marshal(); string(got) != string(want) {
				t.Fatalf("Marshal:\n got %q\nwant %q (encoding/json)", got, want)
			}
			// Appended after what a buffer already holds, the same bytes.
			prefix := []byte(requestID)
			if got := env.AppendJSON(prefix[:len(prefix):len(prefix)]); string(got) != requestID+string(want) {
				t.Fatalf("AppendJSON after %q:\n got %q\nwant %q", requestID, got, requestID+string(want))
			}
		}
		var env map[string]any
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("invalid JSON %q: %v", body, err)
		}
		status, _ := env["status"].(float64)
		if status < 400 || status > 599 {
			t.Fatalf("status %v in %s", env["status"], body)
		}
		c := apierr.Code(env["code"].(string))
		if !c.Known() || env["message"] != c.Message() || int(status) != c.Status() {
			t.Fatalf("envelope %s is not a catalog entry", body)
		}
	})
}
