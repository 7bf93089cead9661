package fleetserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/report"
	"github.com/cyrplan/cyrplan/internal/report/reporttest"
)

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestServer(t *testing.T) {
	example := reporttest.Example(t)
	var (
		mu     sync.Mutex
		reads  = make(chan struct{}, 10)
		result = func() (*report.Status, error) { return nil, errors.New("imap3: connection refused") }
		heard  []error
	)
	srv := New(func(context.Context) (*report.Status, error) {
		mu.Lock()
		defer mu.Unlock()
		defer func() { reads <- struct{}{} }()
		return result()
	}, 20*time.Millisecond, func(err error) {
		mu.Lock()
		heard = append(heard, err)
		mu.Unlock()
	})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	// Before any reading: 503 with what is going on.
	if code, _, body := get(t, ts.URL+"/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "being read") {
		t.Errorf("before the first reading: %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx)
	<-reads
	// A first reading that failed: 503 with its error.
	if code, _, body := get(t, ts.URL+"/metrics"); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Errorf("after a failed reading: %d %q", code, body)
	}
	mu.Lock()
	result = func() (*report.Status, error) { return example, nil }
	mu.Unlock()
	<-reads
	<-reads
	code, ctype, body := get(t, ts.URL+"/")
	if code != http.StatusOK || ctype != "text/html; charset=utf-8" || !strings.Contains(body, "store13 slot405 =&gt; slot703") && !strings.Contains(body, "store13 slot405 => slot703") {
		t.Errorf("the page: %d %s\n%.300s", code, ctype, body)
	}
	if !strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("the served page does not refresh itself")
	}
	code, ctype, body = get(t, ts.URL+"/metrics")
	if code != http.StatusOK || ctype != OpenMetricsType || !strings.HasSuffix(body, "# EOF\n") || !strings.Contains(body, `cyrplan_store_running_backwards{store="store13"} 1`) {
		t.Errorf("the metrics: %d %s\n%s", code, ctype, body)
	}
	// A later reading that fails leaves the last good one served.
	mu.Lock()
	result = func() (*report.Status, error) { return nil, errors.New("imap6: timeout") }
	mu.Unlock()
	<-reads
	<-reads
	if code, _, body := get(t, ts.URL+"/metrics"); code != http.StatusOK || !strings.Contains(body, "cyrplan_store_running_backwards") {
		t.Errorf("after a failed later reading: %d\n%.200s", code, body)
	}
	// onError hears of it (just after the reading returns).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got := slices.ContainsFunc(heard, func(err error) bool { return strings.Contains(err.Error(), "imap6: timeout") })
		h := slices.Clone(heard)
		mu.Unlock()
		if got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the errors heard: %v", h)
		}
	}
	if code, _, _ := get(t, ts.URL+"/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d", code)
	}
}
