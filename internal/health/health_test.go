package health

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(greeting))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestBanner(t *testing.T) {
	tests := []struct {
		name, greeting, want string
	}{
		{"ok", "* OK [CAPABILITY IMAP4rev1] slot608 Cyrus IMAP 3.6.1 server ready\r\n", ""},
		{"other servername", "* OK slot999 Cyrus IMAP server ready\r\n", "does not name slot608"},
		{"not imap", "220 smtp ready\r\n", "is not * OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := Banner(ctx, serve(t, tt.greeting), "slot608")
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Banner = %v; want %q", err, tt.want)
			}
		})
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := Banner(ctx, addr, "slot608"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Banner on a closed port = %v", err)
	}
}
