package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/transport"
)

var userRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)

func newLocateCommand(g *globals) *cobra.Command {
	var f hostFlags
	cmd := &cobra.Command{
		Use:   "locate USER",
		Short: "Find the store that holds a user's mailbox",
		Long: `locate asks the current master of every store, in parallel, whether it
holds user/USER (Cyrus's mbpath), and prints the store, its current
master slot and host, and its replicas.`,
		Example: "  cyrplan locate brong",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.root != "" {
				return errors.New("locate needs SSH hosts; --root runs no commands")
			}
			l, err := g.load()
			if err != nil {
				return err
			}
			found, err := g.locate(cmd.Context(), &f, l, args[0])
			if err != nil {
				return err
			}
			var reps []string
			for _, r := range found.Replicas {
				reps = append(reps, fmt.Sprintf("%s on %s", r, l.Slots[r].Host))
			}
			fmt.Fprintf(g.stdout, "%s is on %s: master %s on %s; replicas %s\n", args[0], found.Store, found.Master,
				l.Slots[found.Master].Host, strings.Join(reps, ", "))
			return nil
		},
	}
	f.addConnect(cmd.Flags())
	return cmd
}

type located struct {
	Store    string
	Master   string
	Replicas []string
}

// locate finds the store whose current master holds user's mailbox.
func (g *globals) locate(ctx context.Context, f *hostFlags, l *layout.Layout, user string) (*located, error) {
	if !userRE.MatchString(user) {
		return nil, fmt.Errorf("%q is not a user name", user)
	}
	fl, err := f.config(g).Connect(ctx, l, l.HostNames())
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	var (
		mu    sync.Mutex
		found []*located
		errs  []string
	)
	parallel.Each(l.StoreNames(), f.parallelism, func(name string) {
		lv := store.Read(ctx, l, l.Stores[name], fl.Conns, fl.Errs)
		m, err := lv.Master()
		if err != nil {
			mu.Lock()
			errs = append(errs, err.Error())
			mu.Unlock()
			return
		}
		s := l.Slots[m]
		cmd := shell.Quote(l.BuildOf(m).Prefix+"/bin/mbpath") + " -C " + shell.Quote(hostpath.Of(s).IMAPDConf) + " " + shell.Quote("user/"+user)
		err = fl.Conns[s.Host].Run(ctx, cmd, nil, nil, nil)
		var ee *transport.ExitError
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			found = append(found, &located{Store: name, Master: m, Replicas: lv.Replicas()})
		case !errors.As(err, &ee):
			errs = append(errs, fmt.Sprintf("%s (%s on %s): %v", name, m, s.Host, err))
		}
	})
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		var names []string
		for _, x := range found {
			names = append(names, x.Store)
		}
		return nil, fmt.Errorf("user/%s is on %d stores: %s", user, len(found), strings.Join(names, ", "))
	case len(errs) > 0:
		return nil, fmt.Errorf("user/%s is on no store that answered; these did not:\n  %s", user, strings.Join(errs, "\n  "))
	}
	return nil, fmt.Errorf("no store holds user/%s", user)
}
