// Command conformance plays a Nomad client against dtle's task-driver plugin mode.
//
// It is built against Debian's go-plugin and the repository's copies of Nomad's plugin protos
// (driver/proto) by scripts/conformance.sh, which also runs it; it needs the test bed of
// scripts/testbed.sh (source and target MariaDB, nats-server) up.
//
// What it does, in the order a Nomad agent does it:
//   - starts the `dtle` binary three times as the agent's plugin loader does at start: (1)
//     handshake, health, PluginInfo and ConfigSchema, then Kill; (2) SetConfig without
//     nomad_config, then Kill; (3) the long-lived instance: SetConfig with nomad_config and the
//     negotiated API version, Fingerprint, TaskConfigSchema, Capabilities;
//   - encodes the agent's `plugin "dtle" { config {...} }` block and each task's `config` the way
//     the client does: the plugin's hclspec turned into an hcldec spec, the config map to JSON,
//     HCL's JSON parser, hcldec.Decode, then go-cty msgpack of the value;
//   - starts a Src and a Dest task with StartTask (task ids, names, allocations, environment and
//     log FIFOs as the client fills them), replicating a `conf_` schema from the source to the
//     target through NATS, and checks WaitTask, InspectTask, TaskStats, TaskEvents and SignalTask
//     (SIGSTOP pauses, SIGCONT resumes);
//   - restarts the client while the plugin lives: a new go-plugin client reattaches with the
//     persisted address and pid and recovers the tasks, which keep running untouched;
//   - SIGKILLs the plugin, writes more rows, starts the agent's sequence again and recovers both
//     tasks with RecoverTask from handles without their config bytes (as a restarted client
//     reloads them); then the same after a graceful client shutdown (go-plugin's Kill with the
//     tasks running); after each step it checks that every row arrived exactly once;
//   - stops, waits for and destroys the tasks, checks that unknown task ids are NotFound, and
//     shuts the plugin down through go-plugin's Kill (GRPCController/Shutdown).
//
// Each check prints one PASS or FAIL line; the last line counts them, and the exit status is 1
// when any failed. The plugin's stderr (through go-plugin's logger) goes to a log file in the
// work folder.
//
// Settings come from the environment, with the test bed's defaults: DTLE_BIN (the binary),
// DTLE_TEST_SRC, DTLE_TEST_DST (host:port), DTLE_TEST_NATS (URL), DTLE_TEST_USER,
// DTLE_TEST_PASSWORD, CONFORMANCE_WORK (a folder for logs and allocation folders).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

type options struct {
	dtleBin  string
	workDir  string
	logFile  string
	log      io.Writer
	srcAddr  string
	dstAddr  string
	natsURL  string
	user     string
	password string
	// The schema replicated and the Nomad job's name (also dtle's job name).
	schema string
	job    string
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func parseOptions() *options {
	opts := &options{
		srcAddr:  env("DTLE_TEST_SRC", "127.0.0.1:3307"),
		dstAddr:  env("DTLE_TEST_DST", "127.0.0.1:3308"),
		natsURL:  env("DTLE_TEST_NATS", "nats://127.0.0.1:8193"),
		user:     env("DTLE_TEST_USER", "dtle"),
		password: env("DTLE_TEST_PASSWORD", "dtle-pass"),
		schema:   "conf_nomad",
		job:      "conf_nomad",
	}
	flag.StringVar(&opts.dtleBin, "dtle", env("DTLE_BIN", ""), "the dtle binary")
	flag.StringVar(&opts.workDir, "work", env("CONFORMANCE_WORK", filepath.Join(os.TempDir(), "dtle-conformance")), "a folder for logs and allocation folders")
	flag.Parse()
	return opts
}

func main() {
	opts := parseOptions()
	if opts.dtleBin == "" {
		fmt.Fprintln(os.Stderr, "conformance: set DTLE_BIN or -dtle to the dtle binary")
		os.Exit(2)
	}
	if err := os.MkdirAll(opts.workDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "conformance: %v\n", err)
		os.Exit(2)
	}
	opts.logFile = filepath.Join(opts.workDir, "plugin.log")
	logFile, err := os.Create(opts.logFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "conformance: %v\n", err)
		os.Exit(2)
	}
	opts.log = logFile
	fmt.Printf("conformance: dtle %s, source %s, target %s, NATS %s, plugin log %s\n",
		opts.dtleBin, opts.srcAddr, opts.dstAddr, opts.natsURL, opts.logFile)

	r := newReport()
	func() {
		defer func() {
			if p := recover(); p != nil {
				a, ok := p.(abort)
				if !ok {
					panic(p)
				}
				r.note("stopped after the failed essential check %q", a.name)
			}
		}()
		run(r, opts)
	}()
	if r.failed > 0 {
		fmt.Printf("conformance: the plugin's log is %s\n", opts.logFile)
	}
	status := r.finish()
	logFile.Close()
	os.Exit(status)
}
