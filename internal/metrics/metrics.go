// Package metrics writes what cyrplan status finds on a fleet in the
// OpenMetrics text format (cyrplan status --format openmetrics), for
// node_exporter's textfile collector or any other scraper. Every metric
// is a gauge; those named _info are always 1 and carry their facts in
// labels.
//
// The whole report:
//
//   - cyrplan_status_level: the Nagios/Icinga level of the report, the
//     exit code of cyrplan status: 0 ok, 1 warning, 2 critical, 3 unknown.
//   - cyrplan_status_time_seconds: when the hosts were read, in seconds
//     since the Unix epoch.
//
// Per host {host}:
//
//   - cyrplan_host_up: 1 when the host answered, 0 when it did not.
//   - cyrplan_host_masters: how many of its slots are master now.
//   - cyrplan_host_preferred_masters: how many stores prefer a master on it.
//
// Per store {store}:
//
//   - cyrplan_store_level: the Nagios/Icinga level of the store's worst problem.
//   - cyrplan_store_masters: how many of its slots record master; anything
//     but 1 is a problem.
//   - cyrplan_store_running_backwards: 1 when its one master is not its
//     preferred master.
//   - cyrplan_store_build_info{store,cyrus,prefix}: the Cyrus build the
//     layout declares for it and where that is installed.
//   - cyrplan_store_verify_time_seconds: when its last verify ran; only
//     once a verify ran.
//   - cyrplan_store_verify_divergent_mailboxes: how many mailboxes the last
//     verify found differing on any replica; only when that verify could
//     compare.
//
// Per slot {store,slot,host}:
//
//   - cyrplan_slot_up: 1 when its Cyrus master runs and answers IMAP; left
//     out when that cannot be known (status --root).
//   - cyrplan_slot_master: 1 when its host records it as master, 0 as
//     replica; left out when its role is unknown.
//   - cyrplan_slot_drift_files: how many of its files were changed by hand
//     since the last apply.
//   - cyrplan_slot_running_info{store,slot,host,running}: the executable its
//     Cyrus master runs from; only while it runs.
//
// Per replica {store,master,replica}, for stores with exactly one master:
//
//   - cyrplan_replication_backlog_entries: how many entries the master's
//     sync log holds for the replica.
//   - cyrplan_replication_backlog_age_seconds: how long the oldest of those
//     has waited.
//   - cyrplan_replication_sync_client_running: 1 when the master's rolling
//     sync_client for the replica runs; left out when that cannot be seen.
//   - cyrplan_replication_canary_sent_time_seconds: when the last canary was
//     sent; only once one was sent.
//   - cyrplan_replication_canary_arrived: 1 when the last canary arrived on
//     the replica, 0 when it did not.
//   - cyrplan_replication_canary_latency_seconds: how long the last canary
//     took to arrive; only when it arrived.
package metrics

import (
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/report"
)

var (
	storeLabels   = []string{"store"}
	slotLabels    = []string{"store", "slot", "host"}
	replicaLabels = []string{"store", "master", "replica"}

	statusLevel = newDesc("cyrplan_status_level",
		"The Nagios level of the whole cyrplan status report, its exit code: 0 ok, 1 warning, 2 critical, 3 unknown.")
	statusTime = newDesc("cyrplan_status_time_seconds",
		"When cyrplan status read the hosts, in seconds since the Unix epoch.")

	hostUp = newDesc("cyrplan_host_up",
		"Whether the host answered cyrplan status (1) or not (0).", "host")
	hostMasters = newDesc("cyrplan_host_masters",
		"How many slots on the host are master now.", "host")
	hostPreferredMasters = newDesc("cyrplan_host_preferred_masters",
		"How many stores prefer their master on the host.", "host")

	storeLevel = newDesc("cyrplan_store_level",
		"The Nagios level of the store's worst problem: 0 ok, 1 warning, 2 critical, 3 unknown.", storeLabels...)
	storeMasters = newDesc("cyrplan_store_masters",
		"How many of the store's slots record master; anything but 1 is a problem.", storeLabels...)
	storeRunningBackwards = newDesc("cyrplan_store_running_backwards",
		"Whether the store's one master is not its preferred master (1), for example after a failover, or it is (0).", storeLabels...)
	storeBuildInfo = newDesc("cyrplan_store_build_info",
		"The Cyrus build the layout declares for the store and where it is installed; always 1.", "store", "cyrus", "prefix")
	storeVerifyTime = newDesc("cyrplan_store_verify_time_seconds",
		"When the store's last verify ran, in seconds since the Unix epoch.", storeLabels...)
	storeVerifyDivergent = newDesc("cyrplan_store_verify_divergent_mailboxes",
		"How many mailboxes the store's last verify found differing between its master and a replica, summed over the replicas.", storeLabels...)

	slotUp = newDesc("cyrplan_slot_up",
		"Whether the slot's Cyrus master runs and answers IMAP (1) or not (0).", slotLabels...)
	slotMaster = newDesc("cyrplan_slot_master",
		"Whether the slot's host records it as the store's master (1) or as a replica (0).", slotLabels...)
	slotDrift = newDesc("cyrplan_slot_drift_files",
		"How many of the slot's files were changed by hand since cyrplan last applied the layout.", slotLabels...)
	slotRunningInfo = newDesc("cyrplan_slot_running_info",
		"The executable the slot's running Cyrus master was started from; always 1.", "store", "slot", "host", "running")

	replBacklog = newDesc("cyrplan_replication_backlog_entries",
		"How many entries the master's sync log holds for the replica, waiting to be replicated.", replicaLabels...)
	replBacklogAge = newDesc("cyrplan_replication_backlog_age_seconds",
		"How long the oldest entry waiting for the replica has waited, by the master host's clock; a lower bound when the host's filesystem gives no creation times.", replicaLabels...)
	replSyncClient = newDesc("cyrplan_replication_sync_client_running",
		"Whether the master's rolling sync_client for the replica runs (1) or not (0).", replicaLabels...)
	replCanaryTime = newDesc("cyrplan_replication_canary_sent_time_seconds",
		"When the last canary message was sent through the master, in seconds since the Unix epoch.", replicaLabels...)
	replCanaryArrived = newDesc("cyrplan_replication_canary_arrived",
		"Whether the last canary message sent through the master arrived on the replica (1) or not (0).", replicaLabels...)
	replCanaryLatency = newDesc("cyrplan_replication_canary_latency_seconds",
		"How long the last canary message took from the master to the replica.", replicaLabels...)
)

// newDesc describes a gauge. The names of those that end in _seconds
// carry the unit for OpenMetrics.
func newDesc(name, help string, labels ...string) *prometheus.Desc {
	var opts []prometheus.DescOpt
	if strings.HasSuffix(name, "_seconds") {
		opts = append(opts, prometheus.WithUnit("seconds"))
	}
	return prometheus.V2.NewDesc(name, help, prometheus.UnconstrainedLabels(labels), nil, opts...)
}

// Write writes s in the OpenMetrics text format.
func Write(w io.Writer, s *report.Status) error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(collector{s}); err != nil {
		return err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeOpenMetrics))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return enc.(expfmt.Closer).Close()
}

// collector turns a status report into metrics.
type collector struct{ s *report.Status }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		statusLevel, statusTime,
		hostUp, hostMasters, hostPreferredMasters,
		storeLevel, storeMasters, storeRunningBackwards, storeBuildInfo, storeVerifyTime, storeVerifyDivergent,
		slotUp, slotMaster, slotDrift, slotRunningInfo,
		replBacklog, replBacklogAge, replSyncClient, replCanaryTime, replCanaryArrived, replCanaryLatency,
	} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	// A label value that is not UTF-8 (an executable's path can be
	// anything) makes Gather fail, not Collect panic.
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	s := c.s
	gauge(statusLevel, float64(s.Level))
	if !s.Time.IsZero() {
		gauge(statusTime, unix(s.Time))
	}
	for _, h := range s.Hosts {
		gauge(hostUp, bit(h.Error == ""), h.Name)
		gauge(hostMasters, float64(h.Masters), h.Name)
		gauge(hostPreferredMasters, float64(h.Preferred), h.Name)
	}
	for _, st := range s.Stores {
		gauge(storeLevel, float64(st.Level), st.Store)
		gauge(storeMasters, float64(len(st.Current)), st.Store)
		gauge(storeRunningBackwards, bit(len(st.Current) == 1 && st.Current[0] != st.Preferred), st.Store)
		gauge(storeBuildInfo, 1, st.Store, st.Cyrus, st.Prefix)
		if v := st.Verify; v != nil {
			gauge(storeVerifyTime, unix(v.At), st.Store)
			if !v.Failed() {
				gauge(storeVerifyDivergent, float64(v.Divergent()), st.Store)
			}
		}
		for _, sl := range st.Slots {
			labels := []string{st.Store, sl.Slot, sl.Host}
			if sl.Health != report.HealthUnknown {
				gauge(slotUp, bit(sl.Health == report.HealthOK), labels...)
			}
			if sl.Role != "" {
				gauge(slotMaster, bit(sl.Role == string(layout.Master)), labels...)
			}
			gauge(slotDrift, float64(sl.Drift), labels...)
			if sl.Running != "" {
				gauge(slotRunningInfo, 1, append(labels, sl.Running)...)
			}
		}
		for _, r := range st.Replication {
			// Replication is only there for a store with one master.
			labels := []string{st.Store, st.Current[0], r.Replica}
			if r.Error == "" {
				gauge(replBacklog, float64(r.Backlog), labels...)
				gauge(replBacklogAge, r.BacklogAge, labels...)
			}
			if r.SyncClient != nil {
				gauge(replSyncClient, bit(*r.SyncClient), labels...)
			}
			if ca := r.Canary; ca != nil {
				gauge(replCanaryTime, unix(ca.SentAt), labels...)
				gauge(replCanaryArrived, bit(ca.Error == ""), labels...)
				if ca.Error == "" {
					gauge(replCanaryLatency, ca.Seconds, labels...)
				}
			}
		}
	}
}

// unix is t in seconds since the Unix epoch.
func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// bit is 1 for true and 0 for false.
func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
