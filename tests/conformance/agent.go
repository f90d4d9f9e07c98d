package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	version "github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2/hcldec"

	"dtleconf/proto/base"
	"dtleconf/proto/drivers"
)

// The Nomad client's own port range for plugin subsystems (client config defaults), sent to the
// long-lived instance in SetConfig's nomad_config.
const (
	clientMinPort = 14000
	clientMaxPort = 14512
)

// callTimeout bounds each unary call that should answer at once.
const callTimeout = 30 * time.Second

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// agentConfig is the `plugin "dtle" { config { ... } }` block of the agent config, as the
// agent's config parser hands it to the plugin loader: a map.
func agentConfig(opts *options) map[string]interface{} {
	return map[string]interface{}{"nats_url": opts.natsURL}
}

// agent is the long-lived plugin instance of one agent start, with what the start learned.
type agent struct {
	*instance
	taskSpec    hcldec.Spec
	fingerprint *fingerprintWatch
}

// fingerprintWatch keeps reading the Fingerprint stream, as the client's driver manager does.
type fingerprintWatch struct {
	mu       sync.Mutex
	messages int
	ended    error
	cancel   context.CancelFunc
}

func (f *fingerprintWatch) state() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.messages, f.ended
}

// negotiateAPIVersion picks the plugin's API version Nomad supports, comparing versions (not
// strings) as the client's loader does, and returns the plugin's own spelling of it.
func negotiateAPIVersion(offered []string) (string, error) {
	for _, theirs := range offered {
		v, err := version.NewVersion(theirs)
		if err != nil {
			return "", errorf("plugin_api_versions entry %q is not a version: %v", theirs, err)
		}
		for _, ours := range nomadDriverAPIVersions {
			if v.Equal(version.Must(version.NewVersion(ours))) {
				return theirs, nil
			}
		}
	}
	return "", errorf("none of %q is a driver API version Nomad 1.6 speaks (%q)", offered, nomadDriverAPIVersions)
}

// startAgent runs the agent's plugin sequence: the loader's two short launches, then the
// long-lived instance, configured and fingerprinted. `round` prefixes the checks' names.
func startAgent(r *report, opts *options, round string) *agent {
	name := func(s string) string { return round + ": " + s }

	// Launch 1: what the plugin is, and its config schema.
	first, err := launch(opts, round+"-1")
	r.must(name("launch 1 handshakes (go-plugin, gRPC, app protocol 2)"), func() error {
		if err != nil {
			return err
		}
		if p := first.client.Protocol(); p != plugin.ProtocolGRPC {
			return errorf("protocol %q", p)
		}
		if v := first.client.NegotiatedVersion(); v != 2 {
			return errorf("app protocol %d", v)
		}
		return nil
	}())
	r.note("launch 1: pid %d, handshake after %v", first.pid(), first.startup.Round(time.Millisecond))
	r.check(name("launch 1 health: go-plugin Ping, grpc.health.v1 Check(\"plugin\") SERVING"), func() error {
		if err := first.rpc.Ping(); err != nil {
			return err
		}
		ctx, cancel := callCtx()
		defer cancel()
		return first.health(ctx)
	}())

	ctx, cancel := callCtx()
	info, err := first.base.PluginInfo(ctx, &base.PluginInfoRequest{})
	cancel()
	var apiVersion string
	r.must(name("launch 1 PluginInfo: a DRIVER named dtle, versions that parse, an API version Nomad speaks"), func() error {
		if err != nil {
			return err
		}
		if info.GetType() != base.PluginType_DRIVER {
			return errorf("type %v", info.GetType())
		}
		if info.GetName() != "dtle" {
			return errorf("name %q", info.GetName())
		}
		if _, err := version.NewVersion(info.GetPluginVersion()); err != nil {
			return errorf("plugin_version %q: %v", info.GetPluginVersion(), err)
		}
		apiVersion, err = negotiateAPIVersion(info.GetPluginApiVersions())
		return err
	}())

	ctx, cancel = callCtx()
	schema, err := first.base.ConfigSchema(ctx, &base.ConfigSchemaRequest{})
	cancel()
	var pluginSpec hcldec.Spec
	r.must(name("launch 1 ConfigSchema converts to an hcldec spec"), func() error {
		if err != nil {
			return err
		}
		pluginSpec, err = toHCLDec(schema.GetSpec())
		return err
	}())
	r.check(name("launch 1 stops on go-plugin's Kill (Shutdown, exit status 0 within 2 s)"), first.stop())
	r.check(name("launch 1 logs reach the client's logger with their levels (hclog JSON on stderr)"),
		pluginLogLevels(opts.logFile, round+"-1"))

	// The agent decodes its block with the schema before launch 2; a bad key never reaches it.
	block := agentConfig(opts)
	bad := map[string]interface{}{"nats_url": opts.natsURL, "nats_port": 4222}
	r.check(name("the agent config decoder refuses an unknown key (nats_port)"), func() error {
		if _, err := decodeJSON(bad, pluginSpec, nil); err == nil {
			return errorf("nats_port was accepted")
		} else if !strings.Contains(err.Error(), "nats_port") {
			return errorf("the error does not name nats_port: %v", err)
		}
		return nil
	}())
	configBytes, err := encodeJSON(block, pluginSpec, nil)
	r.must(name("the agent config block encodes (JSON, hcldec, cty msgpack)"), err)

	// Launch 2: SetConfig to validate the block, without nomad_config.
	second, err := launch(opts, round+"-2")
	r.must(name("launch 2 handshakes"), err)
	ctx, cancel = callCtx()
	_, err = second.base.SetConfig(ctx, &base.SetConfigRequest{
		MsgpackConfig:    configBytes,
		PluginApiVersion: apiVersion,
	})
	cancel()
	r.must(name("launch 2 SetConfig without nomad_config (validation)"), err)
	r.check(name("launch 2 stops on go-plugin's Kill"), second.stop())

	// Launch 3: the long-lived instance.
	third, err := launch(opts, round+"-3")
	r.must(name("launch 3 handshakes"), err)
	r.onExit(third.client.Kill)
	r.note("launch 3: pid %d, handshake after %v", third.pid(), third.startup.Round(time.Millisecond))
	ctx, cancel = callCtx()
	_, err = third.base.PluginInfo(ctx, &base.PluginInfoRequest{})
	if err == nil {
		_, err = third.base.SetConfig(ctx, &base.SetConfigRequest{
			MsgpackConfig:    configBytes,
			PluginApiVersion: apiVersion,
			NomadConfig: &base.NomadConfig{Driver: &base.NomadDriverConfig{
				ClientMinPort: clientMinPort,
				ClientMaxPort: clientMaxPort,
			}},
		})
	}
	cancel()
	r.must(name("launch 3 SetConfig with nomad_config (client ports 14000-14512, API "+apiVersion+")"), err)

	a := &agent{instance: third}
	a.fingerprint = watchFingerprint(r, name, third)

	ctx, cancel = callCtx()
	taskSchema, err := third.driver.TaskConfigSchema(ctx, &drivers.TaskConfigSchemaRequest{})
	cancel()
	r.must(name("TaskConfigSchema converts to an hcldec spec"), func() error {
		if err != nil {
			return err
		}
		a.taskSpec, err = toHCLDec(taskSchema.GetSpec())
		return err
	}())

	ctx, cancel = callCtx()
	caps, err := third.driver.Capabilities(ctx, &drivers.CapabilitiesRequest{})
	cancel()
	r.check(name("Capabilities: signals yes, exec no, no filesystem isolation, no mounts"), func() error {
		if err != nil {
			return err
		}
		c := caps.GetCapabilities()
		switch {
		case c == nil:
			return errorf("no capabilities")
		case !c.GetSendSignals():
			return errorf("send_signals false: Nomad would not forward SIGSTOP/SIGCONT")
		case c.GetExec():
			return errorf("exec declared, but dtle tasks run no commands")
		case c.GetFsIsolation() != drivers.DriverCapabilities_NONE:
			return errorf("fs_isolation %v", c.GetFsIsolation())
		case c.GetMountConfigs() != drivers.DriverCapabilities_NO_MOUNTS:
			return errorf("mount_configs %v", c.GetMountConfigs())
		}
		return nil
	}())
	return a
}

// watchFingerprint opens the Fingerprint stream, checks the first message and keeps reading.
func watchFingerprint(r *report, name func(string) string, inst *instance) *fingerprintWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &fingerprintWatch{cancel: cancel}
	r.onExit(cancel)
	opened := time.Now()
	stream, err := inst.driver.Fingerprint(ctx, &drivers.FingerprintRequest{})
	first := make(chan *drivers.FingerprintResponse, 1)
	if err == nil {
		go func() {
			for {
				msg, err := stream.Recv()
				w.mu.Lock()
				if err != nil {
					w.ended = err
					w.mu.Unlock()
					close(first)
					return
				}
				w.messages++
				w.mu.Unlock()
				select {
				case first <- msg:
				default:
				}
			}
		}()
	}
	r.check(name("Fingerprint: the first message at once, HEALTHY, driver.dtle = true, driver.dtle.version"), func() error {
		if err != nil {
			return err
		}
		var msg *drivers.FingerprintResponse
		select {
		case msg = <-first:
		case <-time.After(5 * time.Second):
			return errorf("no fingerprint within 5 s (the client waits about 50 s, then gives up)")
		}
		if msg == nil {
			_, ended := w.state()
			return errorf("the stream ended: %v", ended)
		}
		r.note("first fingerprint after %v", time.Since(opened).Round(time.Millisecond))
		if msg.GetHealth() != drivers.FingerprintResponse_HEALTHY {
			return errorf("health %v (%q)", msg.GetHealth(), msg.GetHealthDescription())
		}
		attrs := msg.GetAttributes()
		if !attrs["driver.dtle"].GetBoolVal() {
			return errorf("driver.dtle is %v, not true", attrs["driver.dtle"])
		}
		if attrs["driver.dtle.version"].GetStringVal() == "" {
			return errorf("no driver.dtle.version string")
		}
		return nil
	}())
	return w
}

// pluginLogLevels reads what go-plugin's client logged of a launch's stderr. It parses each
// line the plugin writes as hclog JSON and logs it at the line's own @level; any other line is
// logged at DEBUG, where a client at its default level (INFO) drops it, warnings and errors
// included. So the plugin's "serving" line must arrive at INFO, and no plain-text line that
// names a level of its own may arrive at DEBUG.
func pluginLogLevels(logFile, label string) error {
	text, err := os.ReadFile(logFile)
	if err != nil {
		return err
	}
	prefix := " client." + label + ".dtle: "
	var info, plain int
	var example string
	for _, line := range strings.Split(string(text), "\n") {
		if !strings.Contains(line, prefix) {
			continue
		}
		if strings.Contains(line, "[INFO]") && strings.Contains(line, "serving") {
			info++
		}
		if strings.Contains(line, "[DEBUG]") {
			message := line[strings.Index(line, prefix)+len(prefix):]
			for _, level := range []string{" TRACE ", " DEBUG ", " INFO ", " WARN ", " ERROR "} {
				if strings.Contains(message, level) {
					plain++
					example = message
					break
				}
			}
		}
	}
	if plain > 0 {
		return errorf("%d plugin lines logged at DEBUG because they are not hclog JSON, e.g. %q", plain, example)
	}
	if info == 0 {
		return errorf("no \"serving\" line from the plugin at INFO in %s", logFile)
	}
	return nil
}
