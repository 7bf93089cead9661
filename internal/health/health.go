// Package health checks that a slot answers: its IMAP banner, greeting
// with the slot's servername, proves that the slot's own config is in
// use (an imapd that read another imapd.conf greets with another name).
package health

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// Banner connects to addr and reads the IMAP greeting, until it names
// servername or ctx ends. It returns the last problem seen (an attempt
// that ctx's end cut short says nothing of the slot: the one before is
// reported).
func Banner(ctx context.Context, addr, servername string) error {
	var last error
	for {
		err := banner(ctx, addr, servername)
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", addr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func banner(ctx context.Context, addr, servername string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no greeting: %w", err)
	}
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("greeting %q is not * OK", line)
	}
	for _, w := range strings.Fields(line) {
		if w == servername {
			return nil
		}
	}
	return fmt.Errorf("greeting %q does not name %s (the slot runs with another imapd.conf?)", line, servername)
}
