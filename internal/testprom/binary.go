package testprom

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trafficctl/trafficctl/internal/testenv"
)

// BinaryEnv names the environment variable that points at the prometheus binary; `make test`
// sets it to bin/prometheus.
const BinaryEnv = "PROMETHEUS"

// findBinary returns the prometheus binary from $PROMETHEUS, or else the bin/prometheus of the
// module the working directory belongs to, which is where hack/install-testenv.sh links it.
func findBinary() (string, error) {
	if path := os.Getenv(BinaryEnv); path != "" {
		if err := checkExecutable(path); err != nil {
			return "", fmt.Errorf("%s=%s: %w; run `make test` (or `make testenv`) to install it", BinaryEnv, path, err)
		}
		return path, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", fmt.Errorf("find the prometheus binary: %w; set %s or run `make test`", err, BinaryEnv)
	}
	path := filepath.Join(root, "bin", "prometheus")
	if err := checkExecutable(path); err != nil {
		return "", fmt.Errorf("prometheus binary %s: %w; run `make test` (or `make testenv`) to install it, or set %s", path, err, BinaryEnv)
	}
	return path, nil
}

func checkExecutable(path string) error {
	info, err := os.Stat(path) // follows the bin/prometheus symlink
	if err != nil {
		return err
	}
	if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}
