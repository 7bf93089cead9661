package onhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Tidy removes from h what interrupted applies left: the temporary files
// in dirs (where cyrplan writes files) and in the backups it keeps, and
// the backups of all but the keep most recent applies. It removes only
// names cyrplan makes, never follows a link, and never touches a file
// it did not write.
func Tidy(ctx context.Context, h transport.Host, dirs []string, keep int) error {
	for _, d := range dirs {
		if err := removeTemps(ctx, h, d, false); err != nil {
			return err
		}
	}
	backups, err := h.ReadDir(ctx, hostpath.BackupDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var applies []string
	for _, e := range backups {
		if e.Info.IsDir && e.Info.Mode&fs.ModeSymlink == 0 {
			applies = append(applies, e.Name) // apply ids sort by time
		}
	}
	for i, id := range applies {
		dir := hostpath.BackupDir + "/" + id
		if i < len(applies)-keep {
			err = removeTree(ctx, h, dir)
		} else {
			err = removeTemps(ctx, h, dir, true)
		}
		if err != nil {
			return fmt.Errorf("pruning the backups of %s: %w", h.Name(), err)
		}
	}
	return nil
}

// removeTemps removes the temporary files in dir (and, with deep, in its
// subdirectories).
func removeTemps(ctx context.Context, h transport.Host, dir string, deep bool) error {
	entries, err := h.ReadDir(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := dir + "/" + e.Name
		switch {
		case e.Info.Mode.IsRegular() && strings.HasPrefix(e.Name, transport.TempPrefix):
			if err := h.Remove(ctx, p); err != nil {
				return err
			}
		case deep && e.Info.IsDir && e.Info.Mode&fs.ModeSymlink == 0:
			if err := removeTemps(ctx, h, p, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeTree removes a backup directory and everything in it; links in
// it are removed, never followed.
func removeTree(ctx context.Context, h transport.Host, dir string) error {
	if !strings.HasPrefix(dir, hostpath.BackupDir+"/") {
		return fmt.Errorf("%s is not a backup of cyrplan's: not removed", dir)
	}
	entries, err := h.ReadDir(ctx, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := dir + "/" + e.Name
		if e.Info.IsDir && e.Info.Mode&fs.ModeSymlink == 0 {
			err = removeTree(ctx, h, p)
		} else {
			err = h.Remove(ctx, p)
		}
		if err != nil {
			return err
		}
	}
	return h.Remove(ctx, dir)
}
