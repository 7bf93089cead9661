// Package hostpath is the one home of every path cyrplan uses on a host:
// where a slot's files go, where cyrplan keeps its own state (manifest,
// lock, roles, backups), and the names of its temporary files. Render,
// plan, apply and the fleet operations all take their paths from here.
package hostpath

// Directories cyrplan writes into.
const (
	ConfigRoot = "/etc/cyrus"
	InitDir    = "/etc/init.d"
	UnitDir    = "/etc/systemd/system"
	StateDir   = "/var/lib/cyrplan" // manifest, lock, roles, previous versions
	RolesDir   = StateDir + "/roles"
	BackupDir  = StateDir + "/backup"
)

// Written are the directories cyrplan writes into: no slot or build of a
// layout may live in one.
var Written = []string{ConfigRoot, InitDir, UnitDir, StateDir}

// Files of cyrplan's own state.
const (
	Manifest = StateDir + "/manifest.json" // what cyrplan last applied
	Lock     = StateDir + "/lock"          // held by a running apply
	// HashKey is the host's own key for the keyed hashes of the files
	// and values that hold secrets (64 hex digits): made on the host by
	// its first apply that runs commands, readable by root alone, and
	// never read by cyrplan.
	HashKey = StateDir + "/hash.key"
)

// Slot are the paths of one slot on its host.
type Slot struct {
	ConfigDir   string // /etc/cyrus/slot608
	IMAPDConf   string // .../imapd.conf
	MasterConf  string // .../cyrus-master.conf: the slot as its store's master
	ReplicaConf string // .../cyrus-replica.conf: the slot as a replica
	InitScript  string // /etc/init.d/cyrus-slot608
	Unit        string // /etc/systemd/system/cyrus-slot608.service
	PIDFile     string // /run/cyrus-slot608.pid
	LockFile    string // /run/cyrus-slot608.lock: serialises the init script's verbs
	RoleFile    string // /var/lib/cyrplan/roles/slot608: the current role
	ConfigDB    string // configdirectory on the meta partition
}

// Of returns where the files of the slot named name, whose meta
// partition is mounted at meta, live.
func Of(name, meta string) Slot {
	p := Named(name)
	p.ConfigDB = meta + "/conf"
	return p
}

// Named returns the paths of a slot known only by name (one that left
// the layout): everything but those on its partitions.
func Named(slot string) Slot {
	dir := ConfigRoot + "/" + slot
	return Slot{
		ConfigDir:   dir,
		IMAPDConf:   dir + "/imapd.conf",
		MasterConf:  dir + "/cyrus-master.conf",
		ReplicaConf: dir + "/cyrus-replica.conf",
		InitScript:  InitDir + "/cyrus-" + slot,
		Unit:        UnitDir + "/cyrus-" + slot + ".service",
		PIDFile:     "/run/cyrus-" + slot + ".pid",
		LockFile:    "/run/cyrus-" + slot + ".lock",
		RoleFile:    RolesDir + "/" + slot,
	}
}

// RoleConf is the cyrus.conf the slot runs with in role ("master" or
// "replica").
func (p Slot) RoleConf(role string) string {
	if role == "replica" {
		return p.ReplicaConf
	}
	return p.MasterConf
}

// SASLDB is the slot's SASL password database (sasl_sasldb_path).
func (p Slot) SASLDB() string { return p.ConfigDB + "/sasldb2" }

// SyncLogDir is where master slot p logs what it has to send to peer.
func (p Slot) SyncLogDir(peer string) string { return p.ConfigDB + "/sync/" + peer }

// Backup is where apply applyID keeps the previous version of path.
func Backup(applyID, path string) string { return BackupDir + "/" + applyID + path }

// Journal records the steps of the last operation that touched the host
// that are done, so that the operation resumes where it stopped.
const Journal = StateDir + "/journal.json"

// Checks is where cyrplan keeps, on the host of a store's master, the
// last canary and the last verify of the store (status shows them).
func Checks(store string) string { return ChecksDir + "/" + store + ".json" }

// ChecksDir holds the Checks files of a host.
const ChecksDir = StateDir + "/checks"
