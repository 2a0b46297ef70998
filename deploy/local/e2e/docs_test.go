package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/moviebag/moviebag/api"
	"github.com/moviebag/moviebag/libs/testkit"
)

// ScreenshotEnv names a file the docs test saves its last screenshot to.
const screenshotEnv = "MOVIEBAG_DOCS_SCREENSHOT"

// The local gateway serves the spec at /openapi.yaml and its reference page
// at /docs; opened in headless Chromium, the page renders every operation:
// its summary in the menu, and its own section, headed by the summary, once
// the menu item is clicked.
func TestReferencePageRendersEveryOperation(t *testing.T) {
	e := startStack(t, nil)
	spec := testkit.CallAPI(t, "GET", e.GatewayURL+"/openapi.yaml", "")
	if spec.Status != 200 || !bytes.Equal(spec.Body, api.Spec()) || spec.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("/openapi.yaml: %d %s, %d bytes", spec.Status, spec.Header.Get("Content-Type"), len(spec.Body))
	}
	page := testkit.CallAPI(t, "GET", e.GatewayURL+"/docs", "")
	if page.Status != 200 || !bytes.Equal(page.Body, api.Reference()) {
		t.Fatalf("/docs: %d, %d bytes", page.Status, len(page.Body))
	}

	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not on PATH: run `make deps` (Debian package chromium)")
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(e.GatewayURL+"/docs"), chromedp.WaitVisible(menu)); err != nil {
		t.Fatalf("open %s/docs: %v", e.GatewayURL, err)
	}

	for _, op := range specOperations(t) {
		if op.summary == "" {
			t.Errorf("%s has no summary", op.id)
			continue
		}
		if err := showOperation(ctx, op); err != nil {
			t.Errorf("%s: %v", op.id, err)
		}
	}
	if name := os.Getenv(screenshotEnv); name != "" {
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Clean(name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const menu = `#redoc [data-component-name="Menu/Menu"]`

// showOperation clicks op's menu item (opening its tag's group first when
// it is closed) and waits until the page shows a heading of its summary
// outside the menu.
func showOperation(ctx context.Context, op operation) error {
	sum := strconv.Quote(op.summary)
	tag := strconv.Quote(op.tag)
	click := `(() => {
		const labels = Array.from(document.querySelectorAll('` + menu + ` [data-testid="menu-item-label"]'));
		const first = el => el.innerText.split('\n')[0].trim();
		const item = labels.find(el => first(el) === ` + sum + `);
		if (item) { item.click(); return "item"; }
		const group = labels.find(el => first(el) === ` + tag + `);
		if (group) { group.click(); return "group"; }
		return "";
	})()`
	shown := `Array.from(document.querySelectorAll('h1, h2, h3')).some(h => !h.closest('` + menu + `') && h.innerText.trim() === ` + sum + `)`
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](shown))
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if last != "item" {
			if last, err = chromedp.Run(ctx, chromedp.Evaluate[string](click)); err != nil {
				return err
			}
		}
		if err := chromedp.Do(ctx, chromedp.Sleep(100*time.Millisecond)); err != nil {
			return err
		}
	}
	menuText, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+menu+`').innerText`))
	return fmt.Errorf("the page shows no heading %q (last click: %q); the menu reads %q", op.summary, last, menuText)
}
