package keys

// LoadRotatingClock is LoadRotating with a clock the test moves.
var LoadRotatingClock = loadRotating
