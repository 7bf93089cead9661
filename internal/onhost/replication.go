package onhost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/report"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Replication reads, in one command on the master slot's host, its
// replication to each of peers: how many entries its sync logs hold for
// the peer, how old the oldest is, and whether its rolling sync_client
// for the peer runs. The oldest entry is as old as the pending log file
// (log-run, else log), whose creation time the host's stat gives where
// its filesystem keeps one; elsewhere the time since the log was last
// written stands in, a lower bound. On a transport that runs no
// commands (a --root directory) it reads the logs instead, and whether
// sync_client runs is unknown.
func Replication(ctx context.Context, h transport.Host, slot hostpath.Slot, peers []string) (map[string]report.Replication, error) {
	var out strings.Builder
	err := h.Run(ctx, replicationScript(slot, peers), nil, &out, nil)
	if errors.Is(err, transport.ErrNoExec) {
		return replicationByReading(ctx, h, slot, peers)
	}
	if err != nil {
		return nil, err
	}
	return parseReplication(out.String(), peers)
}

// replicationScript prints, per peer, "log PEER LINES BIRTH MTIME" for
// each non-empty log (log-run first, the older) and "client PEER 0|1",
// then "now EPOCH". The processes are read from /proc, so that hosts
// without procps answer too.
func replicationScript(slot hostpath.Slot, peers []string) string {
	var b strings.Builder
	b.WriteString("procs=$(for p in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$p\" 2>/dev/null; echo; done)\n")
	for _, peer := range peers {
		dir := slot.SyncLogDir(peer)
		for _, log := range []string{"log-run", "log"} {
			f := shell.Quote(dir + "/" + log)
			fmt.Fprintf(&b, "if [ -s %s ]; then echo log %s $(wc -l < %s) $(stat -c '%%W %%Y' %s); fi\n", f, shell.Quote(peer), f, f)
		}
		want := shell.Quote("sync_client -C " + slot.IMAPDConf + " -r -n " + peer + " ")
		fmt.Fprintf(&b, "if printf '%%s\\n' \"$procs\" | grep -qF -- %s; then echo client %s 1; else echo client %s 0; fi\n", want, shell.Quote(peer), shell.Quote(peer))
	}
	b.WriteString("echo now $(date +%s)\n")
	return b.String()
}

func parseReplication(out string, peers []string) (map[string]report.Replication, error) {
	type logFile struct{ lines, birth, mtime int64 }
	logs := map[string][]logFile{}
	clients := map[string]bool{}
	now := int64(-1)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		bad := fmt.Errorf("reading replication state: unexpected line %q", sc.Text())
		switch {
		case len(f) == 5 && f[0] == "log":
			var n [3]int64
			for i := range n {
				v, err := strconv.ParseInt(f[2+i], 10, 64)
				if err != nil {
					return nil, bad
				}
				n[i] = v
			}
			logs[f[1]] = append(logs[f[1]], logFile{n[0], n[1], n[2]})
		case len(f) == 3 && f[0] == "client":
			clients[f[1]] = f[2] == "1"
		case len(f) == 2 && f[0] == "now":
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, bad
			}
			now = v
		default:
			return nil, bad
		}
	}
	if now < 0 {
		return nil, errors.New("reading replication state: the host did not say what time it is")
	}
	r := map[string]report.Replication{}
	for _, p := range peers {
		rep := report.Replication{Replica: p}
		run := clients[p]
		rep.SyncClient = &run
		for i, lf := range logs[p] {
			rep.Backlog += int(lf.lines)
			if i == 0 {
				since := lf.birth
				if since <= 0 {
					since, rep.BacklogAgeBound = lf.mtime, true
				}
				rep.BacklogAge = float64(max(now-since, 0))
			}
		}
		r[p] = rep
	}
	return r, nil
}

// replicationByReading is Replication on a transport that runs no
// commands.
func replicationByReading(ctx context.Context, h transport.Host, slot hostpath.Slot, peers []string) (map[string]report.Replication, error) {
	r := map[string]report.Replication{}
	for _, p := range peers {
		rep := report.Replication{Replica: p}
		for _, log := range []string{"log-run", "log"} {
			n, err := CountLines(ctx, h, slot.SyncLogDir(p)+"/"+log)
			if err != nil {
				return nil, err
			}
			rep.Backlog += n
		}
		r[p] = rep
	}
	return r, nil
}

// ReadChecks reads the last canary and verify of store from h (nil when
// none were recorded there).
func ReadChecks(ctx context.Context, h transport.Host, store string) (*report.Checks, error) {
	data, err := h.ReadFile(ctx, hostpath.Checks(store))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c report.Checks
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %v", hostpath.Checks(store), err)
	}
	if c.Store != store {
		return nil, fmt.Errorf("%s: records store %q, not %s", hostpath.Checks(store), c.Store, store)
	}
	return &c, nil
}

// WriteChecks records c on h, replacing what was there.
func WriteChecks(ctx context.Context, h transport.Host, c *report.Checks) error {
	if err := h.MkdirAll(ctx, hostpath.ChecksDir, 0o755, transport.Owner{}); err != nil {
		return err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return transport.WriteFile(ctx, h, hostpath.Checks(c.Store), append(data, '\n'), 0o644, transport.Owner{})
}
