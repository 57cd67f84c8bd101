package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// env is one scenario's world: a fresh schema on the database, a directory
// for the server's key files and logs, and the server binary.
type env struct {
	// bin is the chat server binary.
	bin string
	// dbURL is the database server; schema the scenario's own schema.
	dbURL, schema string
	// pool reads the schema for the checks.
	pool *pgxpool.Pool
	// dir holds the KEK, keys, public key, checkpoints and server logs.
	dir string
	// logf reports progress.
	logf func(format string, args ...any)

	mu      sync.Mutex
	servers int
	running map[*server]bool
}

// moduleRoot returns the directory of the module's go.mod, found from the
// working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run inside the github.com/chatsdk/compliance module")
	}
	return filepath.Dir(mod), nil
}

// buildServer builds the example chat server into dir and returns the
// binary's path.
func buildServer(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "chatserver")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/chatserver")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/chatserver: %w\n%s", err, out)
	}
	return bin, nil
}

// createSchema makes a fresh schema named prefix_<random> and returns a
// pool whose connections use it.
func createSchema(ctx context.Context, dbURL, prefix string) (string, *pgxpool.Pool, error) {
	schema := prefix + "_" + randHex(6)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", nil, fmt.Errorf("database: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	pool, err := schemaPool(ctx, dbURL, schema)
	return schema, pool, err
}

func schemaPool(ctx context.Context, dbURL, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 4
	return pgxpool.NewWithConfig(ctx, cfg)
}

// dropSchema removes a schema createSchema made.
func dropSchema(ctx context.Context, dbURL, schema string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// checkpointEvery is the servers' -audit-checkpoint-every: small, so that
// even a short run publishes checkpoints for verifyChains to check the
// chains against.
const checkpointEvery = 100

func (e *env) keysArgs() []string {
	return []string{
		"-audit-checkpoint-every", strconv.Itoa(checkpointEvery),
		"-database-schema", e.schema,
		"-kek-file", filepath.Join(e.dir, "kek.bin"),
		"-keys-file", filepath.Join(e.dir, "keys.json"),
		"-audit-public-key", e.publicKeyPath(),
		"-audit-checkpoints", e.checkpointsPath(),
	}
}

func (e *env) publicKeyPath() string   { return filepath.Join(e.dir, "audit-public.json") }
func (e *env) checkpointsPath() string { return filepath.Join(e.dir, "checkpoints.jsonl") }

// server is one running chat server process.
type server struct {
	cmd  *exec.Cmd
	base string
	// logPath is the file of its JSON log (stderr).
	logPath string
	done    chan struct{}
	exitErr error
}

// start runs the server on a loopback port with the env's database and
// keys, plus extra flags, and waits until it listens.
func (e *env) start(ctx context.Context, extra ...string) (*server, error) {
	e.mu.Lock()
	e.servers++
	n := e.servers
	e.mu.Unlock()

	args := append([]string{"-addr", "127.0.0.1:0"}, e.keysArgs()...)
	args = append(args, extra...)
	cmd := exec.Command(e.bin, args...)
	// The database URL, which may hold a password, goes in the
	// environment: a command line is visible to every local user.
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.dbURL)
	cmd.Stdout = io.Discard
	cmd.SysProcAttr = procAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, logPath: filepath.Join(e.dir, fmt.Sprintf("server-%02d.log", n)), done: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}

	// Copy the log to its file, and catch the line that names the address.
	addrc := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logFile.Write(line)
			logFile.Write([]byte{'\n'})
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				select {
				case addrc <- rec.Addr:
				default:
				}
			}
		}
	}()
	e.mu.Lock()
	if e.running == nil {
		e.running = map[*server]bool{}
	}
	e.running[s] = true
	e.mu.Unlock()
	go func() {
		<-copied
		s.exitErr = cmd.Wait()
		e.mu.Lock()
		delete(e.running, s)
		e.mu.Unlock()
		close(s.done)
	}()

	select {
	case a := <-addrc:
		s.base = "http://" + a
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("server exited before listening (%v); log %s:\n%s", s.exitErr, s.logPath, tail(s.logPath, 20))
	case <-time.After(90 * time.Second):
		s.kill()
		return nil, fmt.Errorf("server did not listen within 90s; log %s", s.logPath)
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
}

// killAll kills every server of the env still running: a test's cleanup,
// so that a failed or stopped test leaves no process behind.
func (e *env) killAll() {
	e.mu.Lock()
	var all []*server
	for s := range e.running {
		all = append(all, s)
	}
	e.mu.Unlock()
	for _, s := range all {
		s.kill()
	}
}

// kill sends SIGKILL and waits for the process to go.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop sends SIGTERM (a clean shutdown that flushes the audit queue) and
// waits up to 30s before killing.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.exitErr
	case <-time.After(30 * time.Second):
		s.kill()
		return errors.New("server did not stop within 30s of SIGTERM")
	}
}

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
