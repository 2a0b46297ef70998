package keys

// LoadRotatingClock is LoadRotating with a clock the test moves.
var LoadRotatingClock = loadRotating

// Load reads every *.pem file of dir (RSA private keys, PKCS#1 or PKCS#8);
// the greatest signs. The service loads through LoadRotating, which reads
// the directory the same way; tests read one directory once.
func Load(dir string) (*Set, error) {
	keys, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	return newSet(keys, len(keys)-1)
}
