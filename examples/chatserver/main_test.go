package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/internal/pgtest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunNoFlags starts the command as the README's first command does
// (no database, no keys; only a free port instead of :8080), checks that it
// says how to try it and that its keys are for development, answers
// /healthz, and shuts down cleanly, flushing the audit log.
func TestRunNoFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, &stdout, &stderr, func(a string) { addrc <- a })
	}()

	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run returned early: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("healthz: %d %s", res.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not shut down")
	}

	if out := stdout.String(); !strings.Contains(out, "Try it") || !strings.Contains(out, "/v1/apps/demo/users") {
		t.Errorf("stdout does not say how to try it:\n%s", out)
	}
	logs := stderr.String()
	for _, want := range []string{"DEVELOPMENT KEYS", "in the clear", "audit log flushed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	o, err := parseFlags([]string{
		"-addr", ":9000", "-access-ttl", "5m", "-refresh-ttl", "8h", "-idle-timeout", "10m",
		"-lockout-failures", "3", "-lockout-window", "1m", "-lockout-duration", "2m",
		"-sweep-interval", "30m", "-retention-grace", "48h", "-trusted-proxies", "10.0.0.0/8, 192.168.1.1/32",
		"-audit-checkpoint-every", "100",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != ":9000" || o.accessTTL != 5*time.Minute || o.refreshTTL != 8*time.Hour || o.idleTimeout != 10*time.Minute ||
		o.lockoutFailures != 3 || o.lockoutWindow != time.Minute || o.lockoutDuration != 2*time.Minute ||
		o.sweepInterval != 30*time.Minute || o.retentionGrace != 48*time.Hour || len(o.trustedProxies) != 2 ||
		o.checkpointEvery != 100 {
		t.Fatalf("parsed %+v", o)
	}
	if _, err := parseFlags([]string{"-tls-cert", "c.pem"}, io.Discard); err == nil {
		t.Error("-tls-cert without -tls-key accepted")
	}
	if _, err := parseFlags([]string{"-audit-checkpoint-every", "-1"}, io.Discard); err == nil {
		t.Error("a negative -audit-checkpoint-every accepted")
	}
	t.Setenv("DATABASE_URL", "postgres://example/db")
	if o, _ := parseFlags(nil, io.Discard); o.databaseURL != "postgres://example/db" {
		t.Errorf("DATABASE_URL not used: %q", o.databaseURL)
	}
}

// start runs the command with args until the returned stop is called.
func start(t *testing.T, args ...string) (base string, logs *lockedBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &lockedBuffer{}
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard, logs, func(a string) { addrc <- a })
	}()
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("run returned early: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	return base, logs, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func field(t *testing.T, body, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	s, _ := m[name].(string)
	return s
}

// TestRunPostgres runs the command on Postgres twice with the same key
// files: the second run reads what the first wrote, so the keys came from
// the files and not from memory or the database.
func TestRunPostgres(t *testing.T) {
	db := pgtest.New(t)
	dir := t.TempDir()
	args := []string{"-database-url", db.URL, "-database-schema", db.Schema, "-kek-file", filepath.Join(dir, "kek.bin"), "-keys-file", filepath.Join(dir, "keys.json")}
	const text = "first-run message"

	base, logs, stop := start(t, args...)
	if code, body := call(t, "POST", base+"/v1/apps/demo/users", "", `{"username":"alice","password":"a long passphrase of words"}`); code != 201 {
		t.Fatalf("sign up: %d %s", code, body)
	}
	_, body := call(t, "POST", base+"/v1/apps/demo/login", "", `{"username":"alice","password":"a long passphrase of words"}`)
	tok := field(t, body, "access_token")
	_, body = call(t, "POST", base+"/v1/channels", tok, `{"name":"x"}`)
	ch := field(t, body, "id")
	if code, body := call(t, "POST", base+"/v1/channels/"+ch+"/messages", tok, `{"text":"`+text+`"}`); code != 201 {
		t.Fatalf("post: %d %s", code, body)
	}
	stop()
	if !strings.Contains(logs.String(), "DEVELOPMENT KEK") || strings.Contains(logs.String(), text) {
		t.Errorf("first run's log:\n%s", logs.String())
	}

	base, _, stop = start(t, args...)
	defer stop()
	_, body = call(t, "POST", base+"/v1/apps/demo/login", "", `{"username":"alice","password":"a long passphrase of words"}`)
	tok = field(t, body, "access_token")
	code, body := call(t, "GET", base+"/v1/channels/"+ch+"/messages", tok, "")
	if code != 200 || !strings.Contains(body, text) || !strings.Contains(body, `"integrity":"ok"`) {
		t.Fatalf("second run read: %d %s", code, body)
	}
	if code, body := call(t, "GET", base+"/v1/admin/audit/verify", tok, ""); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("second run verify: %d %s", code, body)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "chatserver test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestRunTLS: with a certificate the server speaks TLS 1.2 or later only,
// sends HSTS, and does not warn about clear text.
func TestRunTLS(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	base, logs, stop := start(t, "-tls-cert", certFile, "-tls-key", keyFile)
	defer stop()
	base = strings.Replace(base, "http://", "https://", 1)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("healthz over TLS: %d, HSTS %q", res.StatusCode, res.Header.Get("Strict-Transport-Security"))
	}

	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if res, err := old.Get(base + "/healthz"); err == nil {
		res.Body.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
	if strings.Contains(logs.String(), "in the clear") {
		t.Error("clear-text warning logged although TLS is on")
	}
}

// TestRunStopsOnSIGTERM: the signal a supervisor sends stops the server
// cleanly, with the audit log flushed.
func TestRunStopsOnSIGTERM(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	var stderr lockedBuffer
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"-addr", "127.0.0.1:0"}, io.Discard, &stderr, func(a string) { addrc <- a })
	}()
	select {
	case <-addrc:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), "audit log flushed") {
		t.Errorf("no flush logged:\n%s", stderr.String())
	}
}

// TestUnprotectedNeedsAcknowledgement: the benchmark switch that turns the
// audit middleware and message encryption off is refused without its
// exact acknowledgement, and the acknowledgement alone is refused too.
func TestUnprotectedNeedsAcknowledgement(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	for _, args := range [][]string{
		{"-benchmark-unprotected"},
		{"-benchmark-unprotected", "-benchmark-unprotected-ack", "yes"},
		{"-benchmark-unprotected-ack", unprotectedAckPhrase},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	o, err := parseFlags([]string{"-benchmark-unprotected", "-benchmark-unprotected-ack", unprotectedAckPhrase}, io.Discard)
	if err != nil || !o.unprotected {
		t.Fatalf("acknowledged: %+v, %v", o, err)
	}
	if _, err := parseFlags(nil, io.Discard); err != nil {
		t.Fatal(err)
	}
}

// TestRunUnprotectedWarns: a server started unprotected says so loudly,
// and one started normally does not.
func TestRunUnprotectedWarns(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	_, logs, stop := start(t, "-benchmark-unprotected", "-benchmark-unprotected-ack", unprotectedAckPhrase)
	stop()
	if !strings.Contains(logs.String(), "BENCHMARK-UNPROTECTED") || !strings.Contains(logs.String(), "INSECURE UNPROTECTED MODE") {
		t.Errorf("no warning:\n%s", logs.String())
	}
	_, logs, stop = start(t)
	stop()
	if strings.Contains(logs.String(), "UNPROTECTED") {
		t.Errorf("a protected server warns of being unprotected:\n%s", logs.String())
	}
}

// TestRunWritesAuditPublicKey: -audit-public-key writes the checkpoint
// signer's public keyset, which reads back without secrets as a signature
// verifier (the loadtest verifies whole chains with it).
func TestRunWritesAuditPublicKey(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	path := filepath.Join(t.TempDir(), "audit-public.json")
	_, _, stop := start(t, "-audit-public-key", path)
	stop()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := keyset.ReadWithNoSecrets(keyset.NewJSONReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("not a public keyset: %v", err)
	}
	if _, err := signature.NewVerifier(h); err != nil {
		t.Fatalf("not a signature verifier: %v", err)
	}
}
