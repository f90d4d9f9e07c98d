package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"dtleconf/proto/base"
	"dtleconf/proto/drivers"
)

// How long replication may take to bring the target level with the source.
const convergeTimeout = 90 * time.Second

// How long rows written to a paused task's source must stay away from the target.
const pauseWindow = 4 * time.Second

// nomadTask is one task of an allocation, as the client's task runner holds it.
type nomadTask struct {
	name    string
	group   string
	allocID string
	config  *drivers.TaskConfig
	handle  *drivers.TaskHandle
	// The current WaitTask call, issued after StartTask and again after RecoverTask.
	wait chan waitOutcome
}

type waitOutcome struct {
	resp *drivers.WaitTaskResponse
	err  error
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// uuid is a random UUID in the usual text form, as Nomad's allocation ids are.
func uuid() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// server is a connection block of a dtle task config, from a test bed address.
func server(opts *options, addr string) map[string]interface{} {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(fmt.Sprintf("address %q: %v", addr, err))
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		panic(fmt.Sprintf("address %q: %v", addr, err))
	}
	return map[string]interface{}{"Host": host, "Port": n, "User": opts.user, "Password": opts.password}
}

// srcConfig is the Src task's `config` map of the job: dtle's later shape (both servers in
// the Src task), the schema taken from the job's meta through the task environment.
func srcConfig(opts *options) map[string]interface{} {
	return map[string]interface{}{
		"SrcConnectionConfig":  server(opts, opts.srcAddr),
		"DestConnectionConfig": server(opts, opts.dstAddr),
		"ReplicateDoDb": []interface{}{map[string]interface{}{
			"TableSchema": "${NOMAD_META_schema}",
			"Tables": []interface{}{
				map[string]interface{}{"TableName": "t"},
				map[string]interface{}{"TableName": "log"},
			},
		}},
		"ChunkSize": 2,
	}
}

// srcConfigHCL is the same config as a job file writes it (native HCL, blocks).
func srcConfigHCL(opts *options) string {
	block := func(name, addr string) string {
		s := server(opts, addr)
		return fmt.Sprintf("%s {\n  Host = %q\n  Port = %d\n  User = %q\n  Password = %q\n}\n",
			name, s["Host"], s["Port"], s["User"], s["Password"])
	}
	return block("SrcConnectionConfig", opts.srcAddr) + block("DestConnectionConfig", opts.dstAddr) + `
ReplicateDoDb {
  TableSchema = "${NOMAD_META_schema}"
  Tables {
    TableName = "t"
  }
  Tables {
    TableName = "log"
  }
}
ChunkSize = 2
`
}

// destConfig is the Dest task's `config` map: its own server.
func destConfig(opts *options) map[string]interface{} {
	return map[string]interface{}{"DestConnectionConfig": server(opts, opts.dstAddr)}
}

// newTask fills a TaskConfig as the client's task runner does for a task of a one-task group:
// id `<alloc_id>/<task>/<8 hex>`, names, environment, resources, the allocation folder and the
// log FIFOs (which a reader drains, as logmon does).
func newTask(opts *options, group, name string) (*nomadTask, error) {
	allocID := uuid()
	allocDir := filepath.Join(opts.workDir, "alloc", allocID)
	logs := filepath.Join(allocDir, "alloc", "logs")
	for _, dir := range []string{logs, filepath.Join(allocDir, name, "local"), filepath.Join(allocDir, name, "secrets")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	stdout := filepath.Join(logs, "."+name+".stdout.fifo")
	stderr := filepath.Join(logs, "."+name+".stderr.fifo")
	for _, fifo := range []string{stdout, stderr} {
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			return nil, fmt.Errorf("mkfifo %s: %w", fifo, err)
		}
		go drainFIFO(fifo)
	}
	env := map[string]string{
		"NOMAD_ALLOC_DIR":      filepath.Join(allocDir, "alloc"),
		"NOMAD_TASK_DIR":       filepath.Join(allocDir, name, "local"),
		"NOMAD_SECRETS_DIR":    filepath.Join(allocDir, name, "secrets"),
		"NOMAD_ALLOC_ID":       allocID,
		"NOMAD_SHORT_ALLOC_ID": allocID[:8],
		"NOMAD_ALLOC_NAME":     fmt.Sprintf("%s.%s[0]", opts.job, group),
		"NOMAD_ALLOC_INDEX":    "0",
		"NOMAD_CPU_LIMIT":      "100",
		"NOMAD_MEMORY_LIMIT":   "300",
		"NOMAD_DC":             "dc1",
		"NOMAD_REGION":         "global",
		"NOMAD_NAMESPACE":      "default",
		"NOMAD_JOB_ID":         opts.job,
		"NOMAD_JOB_NAME":       opts.job,
		"NOMAD_GROUP_NAME":     group,
		"NOMAD_TASK_NAME":      name,
		"NOMAD_META_schema":    opts.schema,
	}
	cfg := &drivers.TaskConfig{
		Id:      fmt.Sprintf("%s/%s/%s", allocID, name, randomHex(4)),
		Name:    name,
		Env:     env,
		AllocId: allocID,
		Resources: &drivers.Resources{
			AllocatedResources: &drivers.AllocatedTaskResources{
				Cpu:    &drivers.AllocatedCpuResources{CpuShares: 100},
				Memory: &drivers.AllocatedMemoryResources{MemoryMb: 300},
			},
			LinuxResources: &drivers.LinuxResources{CpuShares: 100, MemoryLimitBytes: 300 << 20},
		},
		AllocDir:      allocDir,
		StdoutPath:    stdout,
		StderrPath:    stderr,
		TaskGroupName: group,
		JobName:       opts.job,
		JobId:         opts.job,
		Namespace:     "default",
		NodeName:      "conformance",
		NodeId:        uuid(),
	}
	return &nomadTask{name: name, group: group, allocID: allocID, config: cfg}, nil
}

func drainFIFO(path string) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(io.Discard, f)
}

// encodeTaskConfig decodes a task's config map with the task schema and the task's environment
// as variables, and stores the go-cty msgpack in the TaskConfig.
func encodeTaskConfig(t *nomadTask, spec hcldec.Spec, config map[string]interface{}) error {
	b, err := encodeJSON(config, spec, t.config.Env)
	if err != nil {
		return err
	}
	t.config.MsgpackDriverConfig = b
	return nil
}

// waitInBackground issues WaitTask as the client does after StartTask/RecoverTask: one call that
// answers when the task exits.
func waitInBackground(d drivers.DriverClient, t *nomadTask) {
	ch := make(chan waitOutcome, 1)
	id := t.config.GetId()
	go func() {
		resp, err := d.WaitTask(context.Background(), &drivers.WaitTaskRequest{TaskId: id})
		ch <- waitOutcome{resp, err}
	}()
	t.wait = ch
}

// stillWaiting checks that a WaitTask call has not answered.
func stillWaiting(t *nomadTask) error {
	select {
	case out := <-t.wait:
		t.wait <- out
		return errorf("WaitTask answered for %s: %v, %v", t.name, out.resp, out.err)
	default:
		return nil
	}
}

func inspect(d drivers.DriverClient, id string) (*drivers.TaskStatus, error) {
	ctx, cancel := callCtx()
	defer cancel()
	resp, err := d.InspectTask(ctx, &drivers.InspectTaskRequest{TaskId: id})
	if err != nil {
		return nil, err
	}
	st := resp.GetTask()
	if st == nil {
		return nil, errorf("InspectTask answered no task status")
	}
	if st.GetId() != id {
		return nil, errorf("InspectTask answered for %q", st.GetId())
	}
	return st, nil
}

// running checks InspectTask: RUNNING, started, not completed.
func running(d drivers.DriverClient, t *nomadTask) error {
	st, err := inspect(d, t.config.GetId())
	if err != nil {
		return err
	}
	if st.GetState() != drivers.TaskState_RUNNING {
		return errorf("%s is %v", t.name, st.GetState())
	}
	if st.GetStartedAt() == nil || st.GetCompletedAt() != nil {
		return errorf("%s: started_at %v, completed_at %v", t.name, st.GetStartedAt(), st.GetCompletedAt())
	}
	if st.GetName() != t.name {
		return errorf("%s: name %q", t.name, st.GetName())
	}
	return nil
}

// eventLog collects the TaskEvents stream.
type eventLog struct {
	mu     sync.Mutex
	events []*drivers.DriverTaskEvent
	ended  error
}

func watchEvents(d drivers.DriverClient, r *report) (*eventLog, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r.onExit(cancel)
	stream, err := d.TaskEvents(ctx, &drivers.TaskEventsRequest{})
	if err == nil {
		// The call returns once the request is sent; the response headers come once the plugin
		// has opened the stream. Events from before that are not for this subscriber (Nomad's
		// own drivers drop them too), so the test waits for the headers before starting tasks.
		_, err = stream.Header()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	log := &eventLog{}
	go func() {
		for {
			ev, err := stream.Recv()
			log.mu.Lock()
			if err != nil {
				log.ended = err
				log.mu.Unlock()
				return
			}
			log.events = append(log.events, ev)
			log.mu.Unlock()
		}
	}()
	return log, nil
}

// await waits for an event of the task after index `from` whose message contains `word`;
// returns the index after it.
func (l *eventLog) await(t *nomadTask, from int, word string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		for i := from; i < len(l.events); i++ {
			ev := l.events[i]
			if ev.GetTaskId() != t.config.GetId() || !strings.Contains(ev.GetMessage(), word) {
				continue
			}
			l.mu.Unlock()
			switch {
			case ev.GetAllocId() != t.allocID:
				return 0, errorf("event %q has alloc_id %q", ev.GetMessage(), ev.GetAllocId())
			case ev.GetTaskName() != t.name:
				return 0, errorf("event %q has task_name %q", ev.GetMessage(), ev.GetTaskName())
			case ev.GetTimestamp() == nil:
				return 0, errorf("event %q has no timestamp", ev.GetMessage())
			}
			return i + 1, nil
		}
		ended, n := l.ended, len(l.events)
		l.mu.Unlock()
		if ended != nil {
			return 0, errorf("the stream ended: %v", ended)
		}
		if time.Now().After(deadline) {
			return 0, errorf("no event of %s with %q within %v (%d events seen)", t.name, word, timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rows writes rows from..to on the source, each row its own two transactions: one into t
// (primary key) and one into log (no key, so a row applied twice would show as a duplicate).
func (tb *testBed) rows(schema string, from, to int, phase string) error {
	for i := from; i <= to; i++ {
		_, err := tb.src.Exec(fmt.Sprintf(
			"INSERT INTO `%[1]s`.t VALUES (%[2]d, '%[3]s'); INSERT INTO `%[1]s`.log VALUES (%[2]d, '%[3]s')",
			schema, i, phase))
		if err != nil {
			return err
		}
	}
	return nil
}

// statsCheck reads two TaskStats messages (1 s apart) and checks what the client dereferences.
func statsCheck(d drivers.DriverClient, t *nomadTask) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stream, err := d.TaskStats(ctx, &drivers.TaskStatsRequest{
		TaskId:             t.config.GetId(),
		CollectionInterval: durationpb.New(time.Second),
	})
	if err != nil {
		return err
	}
	var last time.Time
	for i := 0; i < 2; i++ {
		msg, err := stream.Recv()
		if err != nil {
			return errorf("message %d: %v", i+1, err)
		}
		st := msg.GetStats()
		switch {
		case st == nil:
			return errorf("message %d has no stats", i+1)
		case st.GetId() != t.config.GetId():
			return errorf("message %d is for %q", i+1, st.GetId())
		case st.GetTimestamp() == nil:
			return errorf("message %d has no timestamp", i+1)
		case st.GetAggResourceUsage() == nil:
			return errorf("message %d has no agg_resource_usage (the client dereferences it)", i+1)
		case st.GetAggResourceUsage().GetMemory().GetRss() == 0:
			return errorf("message %d: memory rss 0", i+1)
		}
		at := st.GetTimestamp().AsTime()
		if i == 1 {
			gap := at.Sub(last)
			if gap < 500*time.Millisecond || gap > 3*time.Second {
				return errorf("messages %v apart for a 1 s interval", gap)
			}
		}
		last = at
	}
	return nil
}

func signal(d drivers.DriverClient, t *nomadTask, sig string) error {
	ctx, cancel := callCtx()
	defer cancel()
	_, err := d.SignalTask(ctx, &drivers.SignalTaskRequest{TaskId: t.config.GetId(), Signal: sig})
	return err
}

// isCode checks that err is a gRPC status with the code.
func isCode(err error, code codes.Code) error {
	if err == nil {
		return errorf("no error; expected %v", code)
	}
	if s, ok := status.FromError(err); !ok || s.Code() != code {
		return errorf("expected %v, got %v", code, err)
	}
	return nil
}

// noDuplicates checks the target's keyless table: each n once.
func (tb *testBed) noDuplicates(schema string) error {
	var dups int64
	err := tb.dst.QueryRow(fmt.Sprintf("SELECT COUNT(*) - COUNT(DISTINCT n) FROM `%s`.log", schema)).Scan(&dups)
	if err != nil {
		return err
	}
	if dups != 0 {
		return errorf("%d rows of %s.log arrived more than once", dups, schema)
	}
	return nil
}

// gtidsOnce checks dtle's position rows on the target: every source transaction recorded once.
func (tb *testBed) gtidsOnce(job string) error {
	var rows, distinct int64
	err := tb.dst.QueryRow(
		"SELECT COUNT(*), COUNT(DISTINCT source_id, gno) FROM dtle.gtid_executed WHERE job_name = ?", job,
	).Scan(&rows, &distinct)
	if err != nil {
		return err
	}
	if rows == 0 || rows != distinct {
		return errorf("%d GTID rows, %d distinct", rows, distinct)
	}
	return nil
}

// expectRows checks the source's own counts (the test's bookkeeping).
func (tb *testBed) expectRows(schema string, t, log int64) error {
	a, err := count(tb.src, schema, "t")
	if err != nil {
		return err
	}
	b, err := count(tb.src, schema, "log")
	if err != nil {
		return err
	}
	if a != t || b != log {
		return errorf("the source has %d rows in t and %d in log; expected %d and %d", a, b, t, log)
	}
	return nil
}

// scenario is the state the phases share: the test bed, the two tasks (their handles as the
// client persisted them) and the source's row bookkeeping.
type scenario struct {
	r         *report
	opts      *options
	tb        *testBed
	src, dest *nomadTask
	// The next row number to write, and how many rows t and log should hold.
	next         int
	tRows, nRows int64
	// The TaskEvents stream of the instance in use.
	events *eventLog
}

// write writes the next n rows (see testBed.rows).
func (s *scenario) write(n int, phase string) {
	from := s.next
	s.next += n
	s.tRows += int64(n)
	s.nRows += int64(n)
	s.r.must(fmt.Sprintf("rows %d-%d are written %s", from, s.next-1, phase),
		s.tb.rows(s.opts.schema, from, s.next-1, phase))
}

func (s *scenario) tasks() []*nomadTask { return []*nomadTask{s.src, s.dest} }

// converge waits for the target and checks exactly-once delivery: the source holds what the
// bookkeeping says, the target the same rows (counts and checksums), no keyless row twice and
// every source transaction recorded once in dtle's position table.
func (s *scenario) converge(what string, since time.Time) bool {
	schema := s.opts.schema
	ok := s.r.check(what+": the target has every row (counts and CHECKSUM TABLE)",
		s.tb.converge(schema, convergeTimeout, "t", "log"))
	if !ok {
		return false
	}
	s.r.note("the target caught up %v after %s", time.Since(since).Round(time.Millisecond), what)
	return s.r.check(what+": exactly once (source and target hold the expected rows, none twice, each GTID once)", func() error {
		if err := s.tb.expectRows(schema, s.tRows, s.nRows); err != nil {
			return err
		}
		if err := s.tb.same(schema, "t", "log"); err != nil {
			return err
		}
		if err := s.tb.noDuplicates(schema); err != nil {
			return err
		}
		return s.tb.gtidsOnce(s.opts.job)
	}())
}

// run is the whole conformance scenario.
func run(r *report, opts *options) {
	tb, err := openTestBed(opts)
	r.must("the test bed answers (source and target MariaDB)", err)
	s := &scenario{r: r, opts: opts, tb: tb, next: 1}
	schema, job := opts.schema, opts.job
	r.must("the schema and the job's position rows are reset", tb.reset(schema, job))
	_, err = tb.src.Exec(fmt.Sprintf(
		"CREATE DATABASE `%[1]s`; CREATE TABLE `%[1]s`.t (id INT PRIMARY KEY, v VARCHAR(64)); "+
			"CREATE TABLE `%[1]s`.log (n INT NOT NULL, phase VARCHAR(64))", schema))
	r.must("the source tables are created", err)
	s.write(10, "before the tasks start")

	a := startAgent(r, opts, "start")
	s.startTasks(a)
	s.pauseAndResume(a)
	live := s.reattachToLivePlugin(a)
	b := s.crashAndRecover(live)
	c := s.shutdownAndRecover(b)
	s.stopTasks(c)
	r.check("the schema and the job's position rows are cleaned up", tb.reset(schema, job))
}

// startTasks encodes the task configs and starts Dest and Src with StartTask.
func (s *scenario) startTasks(a *agent) {
	r, opts, d := s.r, s.opts, a.driver
	var err error
	s.src, err = newTask(opts, "Src", "Src")
	r.must("the Src allocation is laid out", err)
	s.dest, err = newTask(opts, "Dest", "Dest")
	r.must("the Dest allocation is laid out", err)
	src, dest := s.src, s.dest

	events, err := watchEvents(d, r)
	r.must("TaskEvents opens", err)

	// The client decodes the job's task configs with the driver's schema.
	r.must("the Src task config encodes (JSON, hcldec with the task environment, cty msgpack)",
		encodeTaskConfig(src, a.taskSpec, srcConfig(opts)))
	r.must("the Dest task config encodes", encodeTaskConfig(dest, a.taskSpec, destConfig(opts)))
	r.check("the Src config written as HCL blocks encodes to the same bytes as the JSON form", func() error {
		value, err := decodeHCL(srcConfigHCL(opts), a.taskSpec, src.config.Env)
		if err != nil {
			return err
		}
		b, err := ctyBytes(value)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, src.config.MsgpackDriverConfig) {
			return errorf("%d bytes from HCL, %d from JSON", len(b), len(src.config.MsgpackDriverConfig))
		}
		return nil
	}())
	r.check("the task config decoder refuses an unknown key (NoSuchField)", func() error {
		bad := srcConfig(opts)
		bad["NoSuchField"] = 1
		_, err := decodeJSON(bad, a.taskSpec, src.config.Env)
		if err == nil {
			return errorf("NoSuchField was accepted")
		}
		if !strings.Contains(err.Error(), "NoSuchField") {
			return errorf("the error does not name the key: %v", err)
		}
		return nil
	}())
	r.check("the task config decoder refuses a server block without its required Host", func() error {
		bad := destConfig(opts)
		delete(bad["DestConnectionConfig"].(map[string]interface{}), "Host")
		_, err := decodeJSON(bad, a.taskSpec, dest.config.Env)
		if err == nil {
			return errorf("a server without Host was accepted")
		}
		if !strings.Contains(err.Error(), "Host") {
			return errorf("the error does not name Host: %v", err)
		}
		return nil
	}())

	started := time.Now()
	for _, t := range []*nomadTask{dest, src} {
		ctx, cancel := callCtx()
		resp, err := d.StartTask(ctx, &drivers.StartTaskRequest{Task: t.config})
		cancel()
		r.must("StartTask "+t.name+": a RUNNING handle echoing the config, with driver_state", func() error {
			if err != nil {
				return err
			}
			h := resp.GetHandle()
			switch {
			case h == nil:
				return errorf("no handle")
			case h.GetState() != drivers.TaskState_RUNNING:
				return errorf("handle state %v", h.GetState())
			case h.GetConfig().GetId() != t.config.GetId():
				return errorf("the handle's config id is %q", h.GetConfig().GetId())
			case len(h.GetDriverState()) == 0:
				return errorf("no driver_state: RecoverTask would have nothing after a restart")
			}
			t.handle = h
			return nil
		}())
		waitInBackground(d, t)
	}
	r.check("TaskEvents reports both starts (task id, alloc id, name, timestamp)", func() error {
		if _, err := events.await(dest, 0, "started", 10*time.Second); err != nil {
			return err
		}
		_, err := events.await(src, 0, "started", 10*time.Second)
		return err
	}())
	r.check("StartTask again with a running task's id is refused", func() error {
		ctx, cancel := callCtx()
		defer cancel()
		_, err := d.StartTask(ctx, &drivers.StartTaskRequest{Task: src.config})
		if err == nil {
			return errorf("a second task with id %q was started", src.config.GetId())
		}
		return nil
	}())

	s.write(10, "after the start")
	if !s.converge("replication through StartTask", started) {
		panic(abort{"replication through StartTask"})
	}
	for _, t := range s.tasks() {
		r.check("InspectTask "+t.name+": RUNNING, started, not completed", running(d, t))
		r.check("WaitTask "+t.name+" is still pending while the task runs", stillWaiting(t))
	}
	r.check("TaskStats Src: two messages 1 s apart with id, timestamp and agg_resource_usage", statsCheck(d, src))
	s.events = events
}

// pauseAndResume is `nomad alloc signal -s SIGSTOP` then `-s SIGCONT` on the Src task.
func (s *scenario) pauseAndResume(a *agent) {
	r, d, src := s.r, a.driver, s.src
	mark, _ := s.events.await(src, 0, "started", time.Second)
	r.must("SignalTask Src SIGSTOP", signal(d, src, "SIGSTOP"))
	before := s.tRows
	s.write(5, "while Src is paused")
	time.Sleep(pauseWindow)
	r.check(fmt.Sprintf("paused: none of those rows reach the target within %v", pauseWindow), func() error {
		n, err := count(s.tb.dst, s.opts.schema, "t")
		if err != nil {
			return err
		}
		if n != before {
			return errorf("the target has %d rows in t, not %d", n, before)
		}
		return nil
	}())
	r.check("paused: InspectTask Src says RUNNING and WaitTask is still pending", func() error {
		if err := running(d, src); err != nil {
			return err
		}
		return stillWaiting(src)
	}())
	r.check("TaskEvents reports the pause", func() error {
		_, err := s.events.await(src, mark, "paused", 10*time.Second)
		return err
	}())
	resumed := time.Now()
	r.must("SignalTask Src SIGCONT", signal(d, src, "SIGCONT"))
	s.converge("resumed by SIGCONT", resumed)
	r.check("SignalTask with a signal dtle does not take (SIGHUP) is refused, the task runs on", func() error {
		if err := signal(d, src, "SIGHUP"); err == nil {
			return errorf("SIGHUP was accepted")
		}
		return running(d, src)
	}())
}

// recoverTasks is what the client's task runners do after a restart: RecoverTask with the handle
// each persisted (no msgpack_driver_config, no task_id in the request), then WaitTask. `what`
// says what the plugin should do with the first RecoverTask; a second must find the task running.
func (s *scenario) recoverTasks(d drivers.DriverClient, label, what string) {
	for _, t := range []*nomadTask{s.dest, s.src} {
		h := proto.Clone(t.handle).(*drivers.TaskHandle)
		h.Config.MsgpackDriverConfig = nil
		for i, outcome := range []string{what, "again: finds it running"} {
			ctx, cancel := callCtx()
			_, err := d.RecoverTask(ctx, &drivers.RecoverTaskRequest{Handle: h})
			cancel()
			name := fmt.Sprintf("%s: RecoverTask %s from its persisted handle %s", label, t.name, outcome)
			if i == 0 {
				s.r.must(name, err)
			} else {
				s.r.check(name, err)
			}
		}
		waitInBackground(d, t)
	}
	for _, t := range s.tasks() {
		s.r.check(label+": InspectTask "+t.name+" RUNNING", running(d, t))
	}
}

// lostWaits checks that the WaitTask calls pending on a connection that went away ended with a
// transport error, as the client sees them when the plugin dies or it restarts itself.
func (s *scenario) lostWaits(label string) {
	for _, t := range s.tasks() {
		s.r.check(label+": the pending WaitTask "+t.name+" ends with an error, not an exit result", func() error {
			select {
			case out := <-t.wait:
				if out.err == nil {
					return errorf("it answered %v", out.resp)
				}
				return nil
			case <-time.After(10 * time.Second):
				return errorf("still pending 10 s later")
			}
		}())
	}
}

// reattachToLivePlugin is a client restart while the plugin lives on: the old client's
// connection goes away, a new client reattaches with the persisted address and pid (no launch,
// no SetConfig), fingerprints, and recovers the tasks, which must keep running untouched.
func (s *scenario) reattachToLivePlugin(a *agent) *instance {
	r := s.r
	rc := a.client.ReattachConfig()
	r.must("the reattach config names the plugin's address and pid", func() error {
		if rc == nil || rc.Addr == nil || rc.Pid <= 0 {
			return errorf("reattach config %+v", rc)
		}
		return nil
	}())
	startedAt := map[string]time.Time{}
	for _, t := range s.tasks() {
		if st, err := inspect(a.driver, t.config.GetId()); err == nil {
			startedAt[t.name] = st.GetStartedAt().AsTime()
		}
	}
	// The old client process is gone: its streams and its connection with it.
	a.fingerprint.cancel()
	a.conn.Close()
	s.lostWaits("client restart")

	live, err := reattach(s.opts, "reattach", rc)
	r.must("a restarted client reattaches to the live plugin", err)
	r.onExit(live.client.Kill)
	ctx, cancel := callCtx()
	_, err = live.base.PluginInfo(ctx, &base.PluginInfoRequest{})
	cancel()
	r.check("reattached: PluginInfo", err)
	ctx, cancel = callCtx()
	r.check("reattached: health SERVING", live.health(ctx))
	cancel()
	watch := watchFingerprint(r, func(n string) string { return "reattached: " + n }, live)
	r.onExit(watch.cancel)
	s.events, err = watchEvents(live.driver, r)
	r.must("reattached: TaskEvents opens", err)

	s.recoverTasks(live.driver, "reattached", "finds it running")
	for _, t := range s.tasks() {
		r.check("reattached: "+t.name+" was not restarted (same started_at)", func() error {
			st, err := inspect(live.driver, t.config.GetId())
			if err != nil {
				return err
			}
			if got := st.GetStartedAt().AsTime(); !got.Equal(startedAt[t.name]) {
				return errorf("started_at %v, before the client restart %v", got, startedAt[t.name])
			}
			return nil
		}())
	}
	since := time.Now()
	s.write(5, "after the client reattached")
	s.converge("replication after the client reattached", since)
	for _, t := range s.tasks() {
		r.check("reattached: WaitTask "+t.name+" is pending", stillWaiting(t))
	}
	return live
}

// crashAndRecover SIGKILLs the plugin (a crash, the OOM killer), writes rows while nothing runs,
// then starts the agent's sequence afresh and recovers both tasks from their handles alone.
func (s *scenario) crashAndRecover(live *instance) *agent {
	r := s.r
	pid := live.pid()
	r.must("the plugin's pid is in the reattach config", func() error {
		if pid <= 0 {
			return errorf("pid %d", pid)
		}
		return nil
	}())
	r.must("kill -9 the plugin", syscall.Kill(pid, syscall.SIGKILL))
	r.check("go-plugin sees the plugin exit", func() error {
		deadline := time.Now().Add(10 * time.Second)
		for !live.client.Exited() {
			if time.Now().After(deadline) {
				return errorf("still not exited after 10 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	}())
	s.lostWaits("SIGKILL")
	live.client.Kill()
	s.write(10, "while no plugin runs (after SIGKILL)")

	b := startAgent(r, s.opts, "restart after SIGKILL")
	var err error
	s.events, err = watchEvents(b.driver, r)
	r.must("restart after SIGKILL: TaskEvents opens", err)
	recovered := time.Now()
	s.recoverTasks(b.driver, "restart after SIGKILL", "re-creates it")
	r.check("RecoverTask with a driver_state the plugin cannot read fails without harm", func() error {
		ctx, cancel := callCtx()
		defer cancel()
		broken := proto.Clone(s.src.handle).(*drivers.TaskHandle)
		broken.Config.Id = broken.Config.AllocId + "/Src/" + randomHex(4)
		broken.Config.MsgpackDriverConfig = nil
		broken.DriverState = []byte("not a dtle driver state")
		if _, err := b.driver.RecoverTask(ctx, &drivers.RecoverTaskRequest{Handle: broken}); err == nil {
			return errorf("RecoverTask answered OK")
		}
		// The client then destroys the task (force) and starts it afresh; the plugin lives on.
		_, err := b.driver.DestroyTask(ctx, &drivers.DestroyTaskRequest{TaskId: broken.Config.Id, Force: true})
		if err := isCode(err, codes.NotFound); err != nil {
			return errorf("DestroyTask of the task that failed to recover: %v", err)
		}
		return b.health(ctx)
	}())
	s.write(10, "after the recovery")
	r.must("rows 1-5 are updated and 6-7 deleted on the source", func() error {
		_, err := s.tb.src.Exec(fmt.Sprintf(
			"UPDATE `%[1]s`.t SET v = 'updated' WHERE id <= 5; DELETE FROM `%[1]s`.t WHERE id IN (6, 7)", s.opts.schema))
		return err
	}())
	s.tRows -= 2
	s.converge("replication through RecoverTask after SIGKILL", recovered)
	for _, t := range s.tasks() {
		r.check("restart after SIGKILL: WaitTask "+t.name+" is pending while the recovered task runs", stillWaiting(t))
	}
	r.check("restart after SIGKILL: TaskStats Src", statsCheck(b.driver, s.src))
	return b
}

// shutdownAndRecover is a graceful client shutdown with the tasks running: go-plugin's Kill
// (GRPCController/Shutdown) while streams and WaitTask calls are open; then the client starts
// again and recovers the tasks.
func (s *scenario) shutdownAndRecover(b *agent) *agent {
	r := s.r
	r.check("a client shutdown stops the plugin with its tasks running (Shutdown, exit status 0 within 2 s)", b.stop())
	b.fingerprint.cancel()
	s.lostWaits("client shutdown")
	s.write(10, "while no plugin runs (after the client shutdown)")

	c := startAgent(r, s.opts, "restart after shutdown")
	var err error
	s.events, err = watchEvents(c.driver, r)
	r.must("restart after shutdown: TaskEvents opens", err)
	recovered := time.Now()
	s.recoverTasks(c.driver, "restart after shutdown", "re-creates it")
	s.write(5, "after the second recovery")
	s.converge("replication through RecoverTask after a client shutdown", recovered)
	return c
}

// stopTasks is `nomad job stop`: StopTask, WaitTask answers, DestroyTask (force, as the task
// runner always sends it); then unknown ids, and the plugin's own shutdown.
func (s *scenario) stopTasks(c *agent) {
	r, d := s.r, c.driver
	for _, t := range s.tasks() {
		ctx, cancel := callCtx()
		_, err := d.StopTask(ctx, &drivers.StopTaskRequest{
			TaskId:  t.config.GetId(),
			Timeout: durationpb.New(5 * time.Second),
			Signal:  "",
		})
		cancel()
		r.check("StopTask "+t.name+" (timeout 5 s, no signal)", err)
		r.check("WaitTask "+t.name+" answers exit code 0, no signal, no error", func() error {
			select {
			case out := <-t.wait:
				if out.err != nil {
					return out.err
				}
				res := out.resp.GetResult()
				if res.GetExitCode() != 0 || res.GetSignal() != 0 || res.GetOomKilled() || out.resp.GetErr() != "" {
					return errorf("result %v, err %q", res, out.resp.GetErr())
				}
				return nil
			case <-time.After(10 * time.Second):
				return errorf("no answer 10 s after StopTask")
			}
		}())
		r.check("InspectTask "+t.name+": EXITED with completed_at and exit code 0", func() error {
			st, err := inspect(d, t.config.GetId())
			if err != nil {
				return err
			}
			if st.GetState() != drivers.TaskState_EXITED || st.GetCompletedAt() == nil || st.GetResult().GetExitCode() != 0 {
				return errorf("state %v, completed_at %v, result %v", st.GetState(), st.GetCompletedAt(), st.GetResult())
			}
			return nil
		}())
		ctx, cancel = callCtx()
		_, err = d.DestroyTask(ctx, &drivers.DestroyTaskRequest{TaskId: t.config.GetId(), Force: true})
		cancel()
		r.check("DestroyTask "+t.name+" (force, as the task runner sends it)", err)
		_, err = inspect(d, t.config.GetId())
		r.check("InspectTask "+t.name+" after DestroyTask is NotFound", isCode(err, codes.NotFound))
	}
	r.check("TaskEvents reports both stops", func() error {
		if _, err := s.events.await(s.src, 0, "stopped", 10*time.Second); err != nil {
			return err
		}
		_, err := s.events.await(s.dest, 0, "stopped", 10*time.Second)
		return err
	}())

	unknown := uuid() + "/Src/" + randomHex(4)
	ctx, cancel := callCtx()
	defer cancel()
	_, err := d.WaitTask(ctx, &drivers.WaitTaskRequest{TaskId: unknown})
	r.check("WaitTask of an unknown task id is NotFound", isCode(err, codes.NotFound))
	_, err = d.StopTask(ctx, &drivers.StopTaskRequest{TaskId: unknown})
	r.check("StopTask of an unknown task id is NotFound", isCode(err, codes.NotFound))
	_, err = d.DestroyTask(ctx, &drivers.DestroyTaskRequest{TaskId: unknown, Force: true})
	r.check("DestroyTask of an unknown task id is NotFound", isCode(err, codes.NotFound))
	_, err = d.InspectTask(ctx, &drivers.InspectTaskRequest{TaskId: unknown})
	r.check("InspectTask of an unknown task id is NotFound", isCode(err, codes.NotFound))
	_, err = d.SignalTask(ctx, &drivers.SignalTaskRequest{TaskId: unknown, Signal: "SIGSTOP"})
	r.check("SignalTask of an unknown task id is NotFound", isCode(err, codes.NotFound))
	r.check("TaskStats of an unknown task id is NotFound", func() error {
		stream, err := d.TaskStats(ctx, &drivers.TaskStatsRequest{TaskId: unknown})
		if err == nil {
			_, err = stream.Recv()
		}
		return isCode(err, codes.NotFound)
	}())
	r.check("the plugin is healthy after the unknown ids", c.health(ctx))

	r.check("the Fingerprint stream is still open", func() error {
		n, ended := c.fingerprint.state()
		if ended != nil {
			return errorf("it ended after %d messages: %v", n, ended)
		}
		return nil
	}())
	c.fingerprint.cancel()
	r.check("the long-lived instance stops on go-plugin's Kill (Shutdown, exit status 0 within 2 s)", c.stop())
}
