package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Exit statuses.
const (
	exitOK       = 0 // done, nothing wrong found
	exitFindings = 1 // tampering or findings
	exitUsage    = 2 // usage, configuration or connection error
)

// Environment variables the tool reads.
const (
	envDatabaseURL = "DATABASE_URL"
	envConfig      = "COMPLIANCECTL_CONFIG"
)

// exitError carries the exit status an error maps to.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usagef reports a mistake in the command line or the configuration.
func usagef(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// errFindings is returned by a command that completed and found something
// wrong; it has already printed what.
var errFindings = &exitError{code: exitFindings, err: errors.New("findings reported")}

// command is one subcommand: its words ("audit verify"), a one-line
// summary, the synopsis of its arguments, an example, and a function that
// declares its flags and returns what runs it.
type command struct {
	name     string
	summary  string
	synopsis string
	example  string
	bind     func(fs *flag.FlagSet, e *env) func(args []string) error
}

// env is what a command runs with: the standard streams, the environment,
// the common flags and, once asked for, the database and the configuration.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	databaseURL string
	schema      string
	configPath  string
	json        bool
	noProgress  bool
	timeout     time.Duration

	pool *pgxpool.Pool
	cfg  *Config
}

// commands returns every subcommand, in help order.
func commands() []*command {
	return []*command{
		migrateCommand(),
		auditVerifyCommand(),
		auditExportCommand(),
		auditVerifyExportCommand(),
		auditProveInclusionCommand(), auditProveConsistencyCommand(), auditVerifyProofCommand(),
		integrityVerifyCommand(),
		retentionSweepCommand(),
		retentionForecastCommand(),
		keysRotateCommand(),
		keysRewrapCommand(),
		keysShredCommand(),
		reportEvidenceCommand(),
		reportBreachScopeCommand(),
		reportDisclosuresCommand(),
	}
}

// run is the whole program; main only supplies the process's streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cmds := commands()
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		topic := args
		if len(topic) > 0 {
			topic = topic[1:]
		}
		return help(stdout, stderr, cmds, topic)
	}

	cmd, rest := find(cmds, hoistFlags(cmds, args))
	if cmd == nil {
		// A group name alone ("audit") or with --help lists its commands.
		if group := groupOf(cmds, args[0]); len(group) > 0 && (len(args) == 1 || isHelp(args[1])) {
			listCommands(stdout, group)
			if len(args) == 1 {
				return exitUsage
			}
			return exitOK
		}
		fmt.Fprintf(stderr, "compliancectl: unknown command %q; run 'compliancectl help' for the list\n", strings.Join(args[:min(2, len(args))], " "))
		return exitUsage
	}

	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	defer e.close()
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e.commonFlags(fs)
	runCmd := cmd.bind(fs, e)

	pos, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		commandHelp(stdout, cmd, fs)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "compliancectl %s: %v\nrun 'compliancectl %s --help' for its flags and an example\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	if e.timeout > 0 {
		var cancel context.CancelFunc
		e.ctx, cancel = context.WithTimeout(e.ctx, e.timeout)
		defer cancel()
	}

	err = runCmd(pos)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) && ee == errFindings {
		return exitFindings
	}
	code := exitUsage
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(stderr, "compliancectl %s: %v\n", cmd.name, err)
	if code == exitUsage && errors.As(err, &ee) {
		fmt.Fprintf(stderr, "run 'compliancectl %s --help' for its flags and an example\n", cmd.name)
	}
	if e.json {
		// Automation reads one document on standard output, even on failure.
		_ = json.NewEncoder(stdout).Encode(map[string]any{"error": err.Error(), "exit": code})
	}
	return code
}

// hoistFlags moves flags written before the command's words
// ("--json audit verify") after them, where the command parses them.
func hoistFlags(cmds []*command, args []string) []string {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") {
		return args
	}
	for i := 1; i < len(args); i++ {
		if c, rest := find(cmds, args[i:]); c != nil {
			words := args[i : len(args)-len(rest)]
			out := append(append([]string{}, words...), args[:i]...)
			return append(out, rest...)
		}
	}
	return args
}

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// find returns the command named by the first one or two words of args and
// the arguments after them.
func find(cmds []*command, args []string) (*command, []string) {
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

func groupOf(cmds []*command, word string) []*command {
	var out []*command
	for _, c := range cmds {
		if strings.HasPrefix(c.name, word+" ") {
			out = append(out, c)
		}
	}
	return out
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments ("verify-export FILE --public-key K"), and returns
// the positional ones. After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// commonFlags declares the flags every command takes.
func (e *env) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.databaseURL, "database-url", "", "Postgres connection URL; defaults to $"+envDatabaseURL)
	fs.StringVar(&e.schema, "schema", "", "schema holding the module's tables; defaults to the URL's search_path")
	fs.StringVar(&e.configPath, "config", "", "JSON file declaring keys, tables and targets; defaults to $"+envConfig)
	fs.BoolVar(&e.json, "json", false, "print the result as JSON on standard output, for automation")
	fs.BoolVar(&e.noProgress, "no-progress", false, "never draw a progress bar, even on a terminal")
	fs.DurationVar(&e.timeout, "timeout", 0, "give up after this long (e.g. 30m); zero means no limit")
}

// emit prints a result: as indented JSON with --json, or with human.
func (e *env) emit(result any, human func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(result)
	}
	human(e.stdout)
	return nil
}

func (e *env) close() {
	if e.pool != nil {
		e.pool.Close()
	}
}

// help prints the overview or, given a command's words, its help.
func help(stdout, stderr io.Writer, cmds []*command, topic []string) int {
	if len(topic) > 0 {
		cmd, _ := find(cmds, topic)
		if cmd == nil {
			if group := groupOf(cmds, topic[0]); len(group) > 0 {
				listCommands(stdout, group)
				return exitOK
			}
			fmt.Fprintf(stderr, "compliancectl: no help for %q; run 'compliancectl help' for the list\n", strings.Join(topic, " "))
			return exitUsage
		}
		fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
		e := &env{}
		e.commonFlags(fs)
		cmd.bind(fs, e)
		commandHelp(stdout, cmd, fs)
		return exitOK
	}
	fmt.Fprint(stdout, `compliancectl checks and operates the HIPAA safeguards of the compliance module.

Usage: compliancectl <command> [flags] [arguments]

`)
	listCommands(stdout, cmds)
	fmt.Fprint(stdout, `
Every command takes --database-url (or $DATABASE_URL), --schema, --config
(or $COMPLIANCECTL_CONFIG) and --json. Run 'compliancectl <command> --help'
for a command's flags and an example.

Exit status: 0 done and nothing wrong, 1 tampering or findings reported,
2 usage, configuration or connection error.
`)
	return exitOK
}

func listCommands(w io.Writer, cmds []*command) {
	fmt.Fprintln(w, "Commands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-22s %s\n", c.name, c.summary)
	}
}

// commandHelp prints a command's synopsis, flags and example; the common
// flags come last.
func commandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: compliancectl %s %s\n\n%s\n\nFlags:\n", cmd.name, cmd.synopsis, cmd.summary)
	common := map[string]bool{"database-url": true, "schema": true, "config": true, "json": true, "no-progress": true, "timeout": true}
	var own, shared []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if common[f.Name] {
			shared = append(shared, f)
		} else {
			own = append(own, f)
		}
	})
	sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
	for _, f := range append(own, shared...) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n        %s", f.Name, name, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nExample:\n%s\n", indent(cmd.example, "  "))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && termIsTerminal(int(f.Fd()))
}

// parseTime reads a time flag: RFC 3339 ("2026-01-31T00:00:00Z") or a date
// ("2026-01-31", midnight UTC).
func parseTime(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--%s %q is not a time: write RFC 3339 (2026-01-31T09:00:00Z) or a date (2026-01-31)", flagName, s)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
