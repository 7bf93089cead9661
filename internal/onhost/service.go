package onhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// ServiceError is a verb of a slot's init script that failed.
type ServiceError struct {
	Host, Slot, Verb string
	Err              error  // *transport.ExitError, or why it could not run
	Output           string // what it printed, trimmed
}

func (e *ServiceError) Error() string {
	msg := fmt.Sprintf("%s: %s %s: %v", e.Host, hostpath.Named(e.Slot).InitScript, e.Verb, e.Err)
	if e.Output != "" {
		msg += ": " + e.Output
	}
	return msg
}

func (e *ServiceError) Unwrap() error { return e.Err }

// Service runs verb (start, stop, restart, reload, status) of slot's
// init script on h and returns what it printed. A transport that runs
// no commands gives transport.ErrNoExec; a verb that fails gives a
// *ServiceError that names the host, the script and the verb.
func Service(ctx context.Context, h transport.Host, slot, verb string) (string, error) {
	var out strings.Builder
	err := h.Run(ctx, hostpath.Named(slot).InitScript+" "+verb, nil, &out, &out)
	text := strings.TrimSpace(out.String())
	switch {
	case errors.Is(err, transport.ErrNoExec):
		return "", err
	case err != nil:
		return text, &ServiceError{Host: h.Name(), Slot: slot, Verb: verb, Err: err, Output: text}
	}
	return text, nil
}

// stopScript stops a slot's master without its init script: it signals
// the process the pidfile names, if that process is the slot's master.
const stopScript = `pidfile=%[1]s
pid=$(cat "$pidfile" 2>/dev/null) || { echo "%[2]s: not running"; exit 0; }
if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-p $pidfile"; then
	echo "%[2]s: not running"; exit 0
fi
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
echo "%[2]s: stopped"`

// Stop stops slot with its init script, or, when the host no longer has
// the script (an apply that stopped had removed it already), by its
// pidfile: a slot that left the layout can always be stopped.
func Stop(ctx context.Context, h transport.Host, slot string, haveScript bool) (string, error) {
	if haveScript {
		return Service(ctx, h, slot, "stop")
	}
	var out strings.Builder
	err := h.Run(ctx, fmt.Sprintf(stopScript, shell.Quote(hostpath.Named(slot).PIDFile), slot), nil, &out, &out)
	text := strings.TrimSpace(out.String())
	switch {
	case errors.Is(err, transport.ErrNoExec):
		return "", err
	case err != nil:
		return text, &ServiceError{Host: h.Name(), Slot: slot, Verb: "stop (by its pidfile: the init script is gone)", Err: err, Output: text}
	}
	return text, nil
}

var statusRE = regexp.MustCompile(`running as (master|replica) \(pid [0-9]+, (/\S+)\)`)

// Running is what a slot's init script says of its master.
type Running struct {
	Running bool
	Role    string // the role it runs in
	Exe     string // the master's executable: the build it runs
}

// Status asks slot's init script whether its master runs, in which role
// and from which build. Not running is not an error.
func Status(ctx context.Context, h transport.Host, slot string) (Running, error) {
	out, err := Service(ctx, h, slot, "status")
	var ee *transport.ExitError
	if errors.As(err, &ee) && ee.Code == 3 {
		return Running{}, nil
	}
	if err != nil {
		return Running{}, err
	}
	r := Running{Running: true}
	if m := statusRE.FindStringSubmatch(out); m != nil {
		r.Role, r.Exe = m[1], m[2]
	}
	return r, nil
}

// CountLines counts the lines of the file at path on h without reading
// it here (a sync log can be large): wc -l on the host, or, on a
// transport that runs no commands, by reading it. A missing file has 0.
func CountLines(ctx context.Context, h transport.Host, path string) (int, error) {
	var out strings.Builder
	err := h.Run(ctx, "if [ -f "+shell.Quote(path)+" ]; then wc -l < "+shell.Quote(path)+"; else echo 0; fi", nil, &out, nil)
	if errors.Is(err, transport.ErrNoExec) {
		data, err := h.ReadFile(ctx, path)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return strings.Count(string(data), "\n"), err
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out.String()))
}

// SendLog sends what the stopped master slot logged for its replica
// peer: one-shot runs of sync_client over its rolling log files, each
// removed once sent. The slot's build is at prefix; its files follow
// hostpath.
func SendLog(ctx context.Context, h transport.Host, slot hostpath.Slot, prefix, peer string) error {
	dir := slot.SyncLogDir(peer)
	for _, log := range []string{"log-run", "log"} {
		path := dir + "/" + log
		if _, err := h.Lstat(ctx, path); err != nil {
			continue
		}
		var out strings.Builder
		cmd := fmt.Sprintf("timeout 300 %s -C %s -n %s -o -r -f %s", shell.Quote(prefix+"/bin/sync_client"), shell.Quote(slot.IMAPDConf),
			shell.Quote(peer), shell.Quote(path))
		if err := h.Run(ctx, cmd, nil, &out, &out); err != nil {
			return fmt.Errorf("%s: sync_client over %s: %v: %s", h.Name(), path, err, strings.TrimSpace(out.String()))
		}
		if err := h.Remove(ctx, path); err != nil {
			return err
		}
	}
	return nil
}

// LogEmpty reports whether master slot has nothing left to send peer.
func LogEmpty(ctx context.Context, h transport.Host, slot hostpath.Slot, peer string) (bool, error) {
	for _, log := range []string{"log-run", "log"} {
		fi, err := h.Lstat(ctx, slot.SyncLogDir(peer)+"/"+log)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		if fi.Size > 0 {
			return false, nil
		}
	}
	return true, nil
}

// Provision puts user, with password, in the sasldb of slot (realm: the
// slot's servername, its name), so that its peers' sync_client can log
// in to it: the replication credentials. The password goes through
// stdin, never on a command line.
func Provision(ctx context.Context, h transport.Host, slot, db, user, password string) error {
	cmd := fmt.Sprintf("saslpasswd2 -p -c -f %[1]s -u %[2]s %[3]s && chown cyrus:mail %[1]s && chmod 0640 %[1]s",
		shell.Quote(db), shell.Quote(slot), shell.Quote(user))
	var out strings.Builder
	err := h.Run(ctx, cmd, strings.NewReader(password), &out, &out)
	switch {
	case errors.Is(err, transport.ErrNoExec):
		return err
	case err != nil:
		return &ServiceError{Host: h.Name(), Slot: slot, Verb: "provision (saslpasswd2)", Err: err, Output: strings.TrimSpace(out.String())}
	}
	return nil
}

// ResumeSync ends the rolling sync_client processes of master slot (the
// children of its master process): the master starts them again at once,
// and they connect to replicas that were down instead of waiting out
// their retries.
func ResumeSync(ctx context.Context, h transport.Host, slot string) error {
	cmd := fmt.Sprintf(`pid=$(cat %s 2>/dev/null) && pkill -TERM -P "$pid" -x sync_client; exit 0`, shell.Quote(hostpath.Named(slot).PIDFile))
	var out strings.Builder
	err := h.Run(ctx, cmd, nil, &out, &out)
	if err != nil && !errors.Is(err, transport.ErrNoExec) {
		return &ServiceError{Host: h.Name(), Slot: slot, Verb: "resume sync_client", Err: err, Output: strings.TrimSpace(out.String())}
	}
	return err
}

// FullSync copies every user of master slot to its replica peer with a
// one-shot sync_client -A: the initial copy of a new replica.
func FullSync(ctx context.Context, h transport.Host, slot hostpath.Slot, prefix, peer string) error {
	var out strings.Builder
	cmd := fmt.Sprintf("timeout 3600 %s -C %s -n %s -A", shell.Quote(prefix+"/bin/sync_client"), shell.Quote(slot.IMAPDConf), shell.Quote(peer))
	if err := h.Run(ctx, cmd, nil, &out, &out); err != nil {
		return fmt.Errorf("%s: sync_client -A to %s: %v: %s", h.Name(), peer, err, strings.TrimSpace(out.String()))
	}
	return nil
}
