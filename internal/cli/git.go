package cli

import (
	"errors"

	"github.com/cyrplan/cyrplan/internal/gitops"
)

// revision is where the layout is in git.
type revision struct {
	commit   string // HEAD; "" outside git
	layoutID string // the layout directory's tree at HEAD
	dirty    []string
}

// revision finds the commit the layout is at and its uncommitted files.
func (g *globals) revision() (revision, error) {
	repo, err := gitops.Open(g.layoutDir)
	if errors.Is(err, gitops.ErrNotRepository) {
		return revision{}, nil
	}
	if err != nil {
		return revision{}, err
	}
	var r revision
	if r.commit, err = repo.Head(); err != nil {
		return r, err
	}
	if r.layoutID, err = repo.LayoutID(r.commit); err != nil {
		return r, err
	}
	r.dirty, err = repo.Dirty()
	return r, err
}
