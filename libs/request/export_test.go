package request

// DecodeFieldByField is Decode without its direct pass: every body goes
// through the field-by-field pass, as every body did before the direct pass
// (FuzzDecode compared the two with that earlier Decode, kept word for word,
// over a million bodies before it was folded into this). FuzzDecode holds
// Decode to it: the same value, code and details.
func DecodeFieldByField[T any](contentType string, body []byte) (T, error) {
	return decode[T](contentType, body, false)
}
