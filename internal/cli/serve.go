package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/fleetserver"
	"github.com/cyrplan/cyrplan/internal/report"
)

func newServeCommand(g *globals) *cobra.Command {
	var (
		f        hostFlags
		listen   string
		interval time.Duration
		opts     fleet.StatusOptions
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the fleet page and /metrics live, reading the hosts on an interval",
		Long: `serve reads the fleet as status does, every --interval, and serves the
last reading: the fleet page (status --format html, reloading itself) at
/ and the OpenMetrics text (status --format openmetrics) at /metrics,
for Prometheus to scrape. A reading that fails is reported on stderr and
the one before stays served (the page and cyrplan_status_time_seconds
say how old it is). It runs until interrupted.`,
		Example: "  cyrplan serve --listen 127.0.0.1:8080\n  cyrplan serve --listen :9464 --interval 1m --canary",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < time.Second {
				return fmt.Errorf("--interval %s: at least 1s", interval)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			c := f.config(g)
			srv := fleetserver.New(func(ctx context.Context) (*report.Status, error) {
				return fleet.Status(ctx, c, opts)
			}, interval, func(err error) { fmt.Fprintf(g.stderr, "cyrplan serve: reading the fleet: %v\n", err) })
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			go srv.Run(ctx)
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				shut, done := context.WithTimeout(context.Background(), 5*time.Second)
				defer done()
				hs.Shutdown(shut)
			}()
			fmt.Fprintf(g.stderr, "cyrplan serve: the fleet page is at http://%s/ and its metrics at http://%s/metrics\n", ln.Addr(), ln.Addr())
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "`address` to serve on")
	cmd.Flags().DurationVar(&interval, "interval", 30*time.Second, "how often to read the hosts")
	cmd.Flags().BoolVar(&opts.Canary, "canary", false, "send a fresh canary at each reading")
	cmd.Flags().DurationVar(&opts.CanaryTimeout, "canary-timeout", time.Minute, "how long a canary may take to arrive")
	return cmd
}
