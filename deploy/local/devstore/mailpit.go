package devstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Mailpit is a running Mailpit: the mail server of local runs and tests. It
// keeps every mail it receives and serves them at APIURL/api/v1/messages.
type Mailpit struct {
	// SMTPURL is the SMTP_URL of the services (no TLS, no authentication:
	// a loopback server).
	SMTPURL string
	// APIURL is the base of Mailpit's REST API.
	APIURL string
	// SMTPAddr and APIAddr are where it listens.
	SMTPAddr, APIAddr string
	cmd               *exec.Cmd
}

// Stop kills the server and waits for it; the mails it kept are gone.
func (m *Mailpit) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
	}
}

// StartMailpit runs Mailpit with its database in dir, SMTP on smtpAddr and
// its API on apiAddr ("" for free loopback ports). Started again on the
// same addresses it is the same server to its clients.
func StartMailpit(ctx context.Context, dir, smtpAddr, apiAddr string, logger *slog.Logger) (*Mailpit, error) {
	bin, err := MailpitBinary(ctx, logger)
	if err != nil {
		return nil, err
	}
	for _, a := range []*string{&smtpAddr, &apiAddr} {
		if *a == "" {
			port, err := FreePort()
			if err != nil {
				return nil, err
			}
			*a = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mailpit dir: %w", err)
	}
	log, err := os.OpenFile(filepath.Join(dir, "mailpit.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mailpit log: %w", err)
	}
	defer func() { _ = log.Close() }()
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin,
		"--smtp", smtpAddr, "--listen", apiAddr, "--database", filepath.Join(dir, "mailpit.db"),
		"--max", "0", "--quiet")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mailpit: %w", err)
	}
	m := &Mailpit{
		SMTPURL: "smtp://" + smtpAddr, APIURL: "http://" + apiAddr,
		SMTPAddr: smtpAddr, APIAddr: apiAddr, cmd: cmd,
	}
	if err := waitHTTP(ctx, m.APIURL+"/readyz", 30*time.Second); err != nil {
		m.Stop()
		return nil, fmt.Errorf("mailpit on %s: %w (its log: %s)", apiAddr, err, log.Name())
	}
	if err := waitTCP(ctx, smtpAddr, 10*time.Second); err != nil {
		m.Stop()
		return nil, fmt.Errorf("mailpit SMTP on %s: %w", smtpAddr, err)
	}
	logger.Info("mailpit started", "smtp", m.SMTPURL, "api", m.APIURL+"/api/v1/messages")
	return m, nil
}

// MailpitBinary finds the mailpit binary: on PATH, else bin/mailpit of the
// repository the working directory is in, else built there from the
// version deploy/mailpit pins (once; a minute or two on a cold cache).
func MailpitBinary(ctx context.Context, logger *slog.Logger) (string, error) {
	if bin, err := exec.LookPath("mailpit"); err == nil {
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("mailpit is not on PATH and %w: run 'make bin/mailpit'", err)
	}
	bin := filepath.Join(root, "bin", "mailpit")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	logger.Info("building mailpit into bin/ (first run only)", "module", filepath.Join(root, "deploy", "mailpit"))
	cmd := exec.CommandContext(ctx, "go", "build", "-C", filepath.Join(root, "deploy", "mailpit"), "-o", bin, "github.com/axllent/mailpit")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build mailpit: %w: %s", err, out)
	}
	return bin, nil
}

// repoRoot is the nearest directory above the working directory with a
// go.work file.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the working directory is not in the moviebag repository")
		}
		dir = parent
	}
}

// waitHTTP waits until GET url answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	return waitUntil(ctx, timeout, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}
