package state

import (
	"strings"
	"testing"
)

const goodManifest = `{"format": 3, "applyId": "20261201T120000Z-abcdef", "time": "2026-12-01T12:00:00Z",
 "files": {"/etc/cyrus/slot608/imapd.conf": {"sha256": "` + hash64 + `", "slot": "slot608", "kind": "imapd.conf", "keyed": "` + hash64 + `"}},
 "slots": ["slot608"], "pending": {"slot608": "reload"}, "credentials": {"slot608": "` + hash64 + `"}}`

const hash64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestDecodeManifestRefuses: a host is not trusted; a manifest naming a
// path cyrplan does not write, a slot that is no slot name, a verb that
// is no verb, or anything too large is refused whole, with the reason.
func TestDecodeManifestRefuses(t *testing.T) {
	if _, err := DecodeManifest([]byte(goodManifest)); err != nil {
		t.Fatalf("a good manifest: %v", err)
	}
	tests := []struct{ name, from, to, want string }{
		{"a path outside the managed set", "/etc/cyrus/slot608/imapd.conf", "/mnt/data8/spool/user/x", "is not a file cyrplan writes for slot608"},
		{"traversal", "/etc/cyrus/slot608/imapd.conf", "/etc/cyrus/slot608/../../shadow", "is not a file cyrplan writes"},
		{"a device", "/etc/cyrus/slot608/imapd.conf", "/dev/zero", "is not a file cyrplan writes"},
		{"shell in a slot name", `"slot": "slot608"`, `"slot": "x;touch /tmp/M;#"`, "is not a slot name"},
		{"traversal in a slot name", `["slot608"]`, `["../../etc"]`, "is not a slot name"},
		{"shell in a verb", `"reload"}`, `"reload; touch /tmp/M"}`, "not one of"},
		{"an unknown kind", `"kind": "imapd.conf"`, `"kind": "x"`, "unknown kind"},
		{"not a hash", hash64, "x", "is not a SHA-256"},
		{"a keyed hash that is not one", `"keyed": "` + hash64, `"keyed": "` + hash64 + "0", "keyed hash"},
		{"credentials that are not a fingerprint", `{"slot608": "` + hash64, `{"slot608": "x`, "not a slot name and a fingerprint"},
		{"another format", `"format": 3`, `"format": 9`, "manifest format 9"},
		{"no format", `"format": 3`, `"format": 0`, "manifest format 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeManifest([]byte(strings.Replace(goodManifest, tt.from, tt.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeManifest: %v; want an error with %q", err, tt.want)
			}
		})
	}
	// The credentials of earlier formats were fingerprinted with a salt
	// the manifest held: they are dropped, and provisioned again.
	m, err := DecodeManifest([]byte(strings.Replace(goodManifest, `"format": 3`, `"format": 2, "salt": "abc"`, 1)))
	if err != nil || m.Credentials != nil || m.Files["/etc/cyrus/slot608/imapd.conf"].Keyed != hash64 {
		t.Errorf("a format 2 manifest: %+v, %v", m, err)
	}
	if _, err := DecodeManifest(make([]byte, MaxManifestSize+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("an oversized manifest: %v", err)
	}
}

// FuzzDecodeManifest: whatever a host holds, decoding never panics, and
// a manifest that decodes names only slots and paths cyrplan writes and
// verbs it runs.
func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(`{"format": 1, "files": {}, "slots": []}`))
	f.Add([]byte(`{"format": 2, "pending": {"slot1": "stop"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			return
		}
		for path, mf := range m.Files {
			if !slotNameRE.MatchString(mf.Slot) || strings.Contains(path, "..") || !strings.HasPrefix(path, "/etc/") {
				t.Fatalf("decoded a manifest with file %q of slot %q", path, mf.Slot)
			}
		}
		for slot, verb := range m.Pending {
			if !slotNameRE.MatchString(slot) || strings.ContainsAny(verb, " ;$`'\"\n") {
				t.Fatalf("decoded a manifest with pending %q for %q", verb, slot)
			}
		}
	})
}
