// Package fleetserver serves the fleet live: the fleet page at / and
// the OpenMetrics text at /metrics, both from the last status read,
// which it refreshes from the hosts on an interval.
package fleetserver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cyrplan/cyrplan/internal/fleetpage"
	"github.com/cyrplan/cyrplan/internal/metrics"
	"github.com/cyrplan/cyrplan/internal/report"
)

// OpenMetricsType is the content type of /metrics.
const OpenMetricsType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

// Server holds the last status and serves it.
type Server struct {
	read     func(context.Context) (*report.Status, error)
	interval time.Duration
	onError  func(error)

	mu   sync.Mutex
	last *report.Status
	err  error // of the last read; the status before it is still served
}

// New is a server whose status comes from read, every interval;
// onError (may be nil) hears of each read that failed.
func New(read func(context.Context) (*report.Status, error), interval time.Duration, onError func(error)) *Server {
	return &Server{read: read, interval: interval, onError: onError}
}

// Run reads the status now and then every interval, until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		st, err := s.read(ctx)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if err == nil {
			s.last = st
		}
		s.err = err
		s.mu.Unlock()
		if err != nil && s.onError != nil {
			s.onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Handler serves / (the fleet page) and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /metrics", s.metrics)
	return mux
}

// current is the status to serve, or why there is none yet.
func (s *Server) current() (*report.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		if s.err != nil {
			return nil, s.err
		}
		return nil, fmt.Errorf("the fleet is being read; try again in a moment")
	}
	return s.last, nil
}

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	st, err := s.current()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var b bytes.Buffer
	if err := fleetpage.Write(&b, st, fleetpage.Options{Refresh: s.interval}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	st, err := s.current()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var b bytes.Buffer
	if err := metrics.Write(&b, st); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", OpenMetricsType)
	w.Write(b.Bytes())
}
