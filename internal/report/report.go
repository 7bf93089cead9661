// Package report holds what cyrplan status and verify find on a fleet,
// as plain values that every view reads: the terminal table, JSON,
// OpenMetrics and the fleet page. It also says how bad a finding is, on
// the Nagios/Icinga scale that status and verify exit with.
package report

import (
	"fmt"
	"time"
)

// Level is how bad a finding is, ordered; its value is the exit code of
// status and verify, the Nagios/Icinga plugin convention.
type Level int

const (
	OK       Level = 0 // all is well
	Warning  Level = 1 // look soon: drift, a store running backwards, an old backlog
	Critical Level = 2 // act now: a slot down, a host not answering, replication stopped, a replica that differs
	Unknown  Level = 3 // the check itself could not run
)

var levelNames = [...]string{"ok", "warning", "critical", "unknown"}

func (l Level) String() string {
	if l < OK || l > Unknown {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return levelNames[l]
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	for i, n := range levelNames {
		if string(b) == n {
			*l = Level(i)
			return nil
		}
	}
	return fmt.Errorf("unknown level %q", b)
}

// Problem is one finding that is not OK.
type Problem struct {
	Level Level  `json:"level"`
	Store string `json:"store,omitempty"`
	Slot  string `json:"slot,omitempty"`
	Host  string `json:"host,omitempty"`
	What  string `json:"what"`
}

func (p Problem) String() string {
	where := p.Store
	for _, s := range []string{p.Slot, p.Host} {
		if s != "" && where == "" {
			where = s
		} else if s != "" {
			where += " " + s
		}
	}
	if where == "" {
		return p.What
	}
	return where + ": " + p.What
}

// Status is what cyrplan status finds. Its JSON is status --json.
type Status struct {
	Time       time.Time `json:"time"`  // when the hosts were read
	Level      Level     `json:"level"` // the worst of Problems
	Problems   []Problem `json:"problems"`
	Stores     []Store   `json:"stores"`
	Moved      []Moved   `json:"moved"`
	Hosts      []Host    `json:"hosts"`
	LayoutHead string    `json:"layoutCommit,omitempty"`
	Local      bool      `json:"local,omitempty"` // read from a --root directory: no processes, no IMAP
}

// Add records a problem and raises the level.
func (s *Status) Add(p Problem) {
	s.Problems = append(s.Problems, p)
	s.Level = max(s.Level, p.Level)
}

// Moved is a store running backwards: its current master is not its
// preferred master.
type Moved struct {
	Store string `json:"store"`
	From  string `json:"preferredMaster"`
	To    string `json:"currentMaster"`
}

func (m Moved) String() string { return m.Store + " " + m.From + " => " + m.To }

// NeverApplied is the applied commit of a host cyrplan never applied to.
const NeverApplied = "never"

// Host is one host with a slot in scope.
type Host struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Error   string `json:"error,omitempty"` // why it did not answer
	// Applied is the layout commit of the host's last apply: "" outside
	// git, NeverApplied before the first.
	Applied string   `json:"appliedCommit"`
	Slots   []string `json:"slots"`   // its slots in scope, in layout order
	Masters int      `json:"masters"` // of those, how many are master now
	// Preferred is how many stores prefer a master here, and FailoverTo
	// where those masters go when the host fails (host -> how many).
	Preferred  int            `json:"preferredMasters"`
	FailoverTo map[string]int `json:"failoverTo,omitempty"`
}

// Store is one store.
type Store struct {
	Store     string   `json:"store"`
	Level     Level    `json:"level"` // the worst problem of the store
	Preferred string   `json:"preferredMaster"`
	Current   []string `json:"currentMasters"` // the slots recording master
	Replicas  []string `json:"replicas"`       // the slots recording replica
	Cyrus     string   `json:"cyrus"`          // the build the layout declares
	Prefix    string   `json:"prefix"`         // where that build is installed
	Slots     []Slot   `json:"slots"`
	// Replication is the current master's replication to each other
	// slot; empty unless the store has exactly one master.
	Replication []Replication `json:"replication"`
	Verify      *Verify       `json:"lastVerify,omitempty"` // the last verify, if any ran
	// Checks says why the last canary and verify could not be read
	// from (or a fresh canary recorded on) the master's host.
	Checks string `json:"checksError,omitempty"`
}

// Slot is one slot of a store.
type Slot struct {
	Slot    string `json:"slot"`
	Host    string `json:"host"`
	Role    string `json:"role,omitempty"`    // what its host records; "" when unknown
	Running string `json:"running,omitempty"` // the executable of its master process
	Health  string `json:"health"`            // HealthOK, HealthUnknown or the problem
	Drift   int    `json:"drift"`             // files changed by hand since the last apply
	Error   string `json:"error,omitempty"`
}

// Slot health that is not a problem.
const (
	HealthOK      = "ok"
	HealthUnknown = "unknown (--root)" // a --root directory runs no processes
)

// Replication is a master's replication to one replica.
type Replication struct {
	Replica string `json:"replica"`
	// Backlog is how many entries the master's sync log holds for the
	// replica, and BacklogAge how long the oldest has waited (seconds,
	// by the host's clock). BacklogAgeBound says the age is only a lower
	// bound: the host's filesystem gave no creation time, so it is the
	// time since the pending log was last written.
	Backlog         int     `json:"backlog"`
	BacklogAge      float64 `json:"backlogAgeSeconds"`
	BacklogAgeBound bool    `json:"backlogAgeLowerBound,omitempty"`
	// SyncClient says whether the master's rolling sync_client for the
	// replica runs; nil when that could not be seen (a --root directory).
	SyncClient *bool   `json:"syncClient,omitempty"`
	Canary     *Canary `json:"lastCanary,omitempty"`
	// Error says why the backlog and sync_client could not be read;
	// they are zero then.
	Error string `json:"error,omitempty"`
}

// Canary is the last canary sent through a store's master to a replica.
type Canary struct {
	SentAt  time.Time `json:"sentAt"`
	Seconds float64   `json:"seconds"`         // how long it took to arrive
	Error   string    `json:"error,omitempty"` // why it did not arrive
}

// Checks is what cyrplan keeps on a store's master host about the last
// canary and the last verify of the store, so that status can show them.
type Checks struct {
	Store  string             `json:"store"`
	Master string             `json:"master"`           // the slot that was master
	Canary map[string]*Canary `json:"canary,omitempty"` // replica -> its last canary
	Verify *Verify            `json:"verify,omitempty"`
}

// Verify is the result of comparing a store's master with its replicas
// mailbox by mailbox.
type Verify struct {
	Store     string       `json:"store"`
	At        time.Time    `json:"at"`
	Master    string       `json:"master"`
	Mailboxes int          `json:"mailboxes"` // on the master
	Replicas  []Comparison `json:"replicas"`
	Error     string       `json:"error,omitempty"` // the comparison could not be made
}

// Failed says whether the comparison could not be made, with the master
// or with any replica: Divergent does not count what was not compared.
func (v *Verify) Failed() bool {
	if v.Error != "" {
		return true
	}
	for _, r := range v.Replicas {
		if r.Error != "" {
			return true
		}
	}
	return false
}

// Divergent is how many mailboxes differ on any replica.
func (v *Verify) Divergent() int {
	n := 0
	for _, r := range v.Replicas {
		n += len(r.Divergent)
	}
	return n
}

// Comparison is one replica compared with its master.
type Comparison struct {
	Replica   string    `json:"replica"`
	Error     string    `json:"error,omitempty"` // the replica could not be read
	Divergent []Mailbox `json:"divergent"`
}

// Mailbox is one mailbox that differs between master and replica.
type Mailbox struct {
	Name string   `json:"mailbox"`
	What []string `json:"differences"` // "missing on the replica", "messages 5 != 4", ...
	// Missing and Extra count the messages (by Message-Id hash) the
	// replica lacks and has beyond the master, when the counts differ.
	Missing int `json:"missingOnReplica,omitempty"`
	Extra   int `json:"extraOnReplica,omitempty"`
}
