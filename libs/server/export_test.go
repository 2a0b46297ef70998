package server

// The middleware and the error handler, for the benchmarks of package
// server_test, which price each on its own.
var (
	Instrument            = instrument
	RecoverPanic          = recoverPanic
	LimitBody             = limitBody
	RefuseContentEncoding = refuseContentEncoding
	Shed                  = shed
	Deadline              = deadline
	ErrorHandler          = errorHandler
)

// DrainLimit is how much of a refused body the server reads before its 413.
const DrainLimit = drainLimit
