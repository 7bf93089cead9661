package onhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Journal is what a host records of the operation that last touched it:
// the steps of it that are done there.
type Journal struct {
	PlanID string `json:"planId"`
	Done   []int  `json:"done"`
}

// ReadJournal returns the host's journal, or nil if it has none.
func ReadJournal(ctx context.Context, h transport.Host) (*Journal, error) {
	data, err := h.ReadFile(ctx, hostpath.Journal)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil || !state.ValidID(j.PlanID) {
		return nil, fmt.Errorf("%s:%s: not a journal cyrplan wrote; move it away", h.Name(), hostpath.Journal)
	}
	return &j, nil
}

// RecordStep records on h that step n of operation plan id is done.
func RecordStep(ctx context.Context, h transport.Host, id string, n int) error {
	j, err := ReadJournal(ctx, h)
	if err != nil {
		return err
	}
	if j == nil || j.PlanID != id {
		j = &Journal{PlanID: id}
	}
	if !slices.Contains(j.Done, n) {
		j.Done = append(j.Done, n)
		slices.Sort(j.Done)
	}
	data, _ := json.MarshalIndent(j, "", "  ") // plain data
	if err := h.MkdirAll(ctx, hostpath.StateDir, 0o755, transport.Owner{}); err != nil {
		return err
	}
	if err := transport.WriteFile(ctx, h, hostpath.Journal, append(data, '\n'), 0o644, transport.Owner{}); err != nil {
		return err
	}
	return h.Sync(ctx)
}
