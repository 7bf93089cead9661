// Package e2e holds cyrplan's end-to-end tests: simulated hosts (network
// and mount namespaces, each with a real OpenSSH sshd) running real Cyrus
// IMAP from Debian's packages, started by the files cyrplan renders.
// They need root and packages; CI sets CYRPLAN_E2E=1 and installs both.
package e2e
